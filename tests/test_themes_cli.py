"""`listenwell themes ...` through the real command line, on SQLite and PostgreSQL.

The mentions get synthetic vectors in three known clusters (the embedding
model is not what is tested here), written straight to the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from cli_helpers import run
from sqlalchemy import select

from listenwell import store
from listenwell.store.models import AuditRow, MentionRow

WORDS = {
    0: ["battery", "drains", "charge"],
    1: ["refund", "money", "waiting"],
    2: ["delivery", "courier", "package"],
}
SENTIMENT = {0: "negative", 1: "neutral", 2: "positive"}


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def cfg(config_file, capsys) -> str:
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    return str(config_file)


@pytest.fixture
def corpus(cfg, engine) -> dict[int, list[int]]:
    """Three clusters of 20 mentions each, embedded and sentiment-labelled."""
    rng = np.random.default_rng(0)
    t0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
    mentions, groups = [], []
    for g in range(3):
        for i in range(20):
            n = 20 * g + i
            text = f"@acme {' '.join(rng.choice(WORDS[g], size=3))} {n}"
            mentions.append(
                store.Mention(
                    source="x", external_id=str(n), created_at=t0 + timedelta(days=n), text=text
                )
            )
            groups.append(g)
    store.upsert_mentions(engine, mentions)
    with engine.connect() as conn:
        by_ext = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
    ids = [by_ext[m.external_id] for m in mentions]
    vectors = np.eye(8, dtype=np.float32)[groups] + 0.02 * rng.normal(size=(60, 8))
    store.write_embeddings(engine, ids, vectors, model_name="synthetic", model_version="1")
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(i, "sentiment", SENTIMENT[g], 0.9, "s", "1")
            for i, g in zip(ids, groups, strict=True)
        ],
    )
    out: dict[int, list[int]] = {}
    for i, g in zip(ids, groups, strict=True):
        out.setdefault(g, []).append(i)
    return out


def themes_json(capsys, cfg, *extra: str) -> list[dict]:
    code, out, err = run(capsys, "--config", cfg, "themes", "list", "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_help_lists_every_themes_command(capsys):
    code, out, _ = run(capsys, "themes", "--help")
    assert code == 0
    for word in ("list", "show", "refit", "name", "merge", "pin", "unpin", "define", "history"):
        assert word in out


def test_list_before_any_fit_says_what_to_do(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "themes", "list")
    assert code == 0 and "no themes yet" in out and "refit" in out
    code, _, err = run(capsys, "--config", cfg, "themes", "refit")
    assert_one_line_error(code, err)
    assert "at least 50 mentions" in err and "listenwell enrich" in err


def test_refit_list_show_and_history(cfg, corpus, capsys):
    code, out, err = run(capsys, "--config", cfg, "themes", "refit", "--count", "3", "--by", "ana")
    assert code == 0, err
    assert "3 clusters over 60 mentions" in out and "(0 unthemed)" in out
    themes = themes_json(capsys, cfg)
    assert len(themes) == 3 and [t["mentions"] for t in themes] == [20, 20, 20]
    first_words = {t["label"].split(", ")[0] for t in themes}
    assert all(any(w in WORDS[g] for w in first_words) for g in WORDS)
    battery = next(t for t in themes if t["label"].split(", ")[0] in WORDS[0])
    assert battery["sentiment"] == {"negative": 20, "neutral": 0, "positive": 0}
    assert "acme" not in battery["label"]

    code, out, _ = run(capsys, "--config", cfg, "themes", "list")
    assert code == 0 and str(battery["id"]) in out and "100%" in out

    code, out, _ = run(capsys, "--config", cfg, "themes", "show", str(battery["id"]))
    assert code == 0
    assert f"theme {battery['id']}: {battery['label']}" in out
    assert "sentiment: negative 100%" in out and "quotes:" in out and "per week:" in out
    assert out.count("  #") == 3
    code, out, _ = run(
        capsys, "--config", cfg, "themes", "show", str(battery["id"]), "--json", "--quotes", "2"
    )
    detail = json.loads(out)
    assert len(detail["quotes"]) == 2 and sum(n for _, n in detail["trend"]) == 20
    assert all(q["mention_id"] in corpus[0] for q in detail["quotes"])

    # A second refit on the same data keeps every id.
    code, out, _ = run(capsys, "--config", cfg, "themes", "refit", "--count", "3", "--json")
    report = json.loads(out)
    assert sorted(report["kept"]) == sorted(t["id"] for t in themes) and report["new"] == []
    code, out, _ = run(capsys, "--config", cfg, "themes", "history")
    assert code == 0 and "fit " in out and "refit" in out and "ana" in out


def test_name_pin_merge_define_are_recorded(cfg, corpus, engine, capsys):
    assert run(capsys, "--config", cfg, "themes", "refit", "--count", "3")[0] == 0
    ids = {
        g: t["id"]
        for t in themes_json(capsys, cfg)
        for g in WORDS
        if t["label"].split(", ")[0] in WORDS[g]
    }
    a, b, c = ids[0], ids[1], ids[2]

    code, out, _ = run(
        capsys, "--config", cfg, "themes", "name", str(a), "Battery life", "--by", "pm"
    )
    assert code == 0 and "Battery life" in out
    code, out, _ = run(capsys, "--config", cfg, "themes", "pin", str(b), "--by", "pm")
    assert code == 0 and "pinned" in out
    code, out, _ = run(capsys, "--config", cfg, "themes", "unpin", str(b), "--by", "pm")
    assert code == 0 and "no longer pinned" in out
    code, out, _ = run(
        capsys, "--config", cfg, "themes", "merge", str(c), "--into", str(b), "--by", "pm"
    )
    assert code == 0 and f"merged {c} into theme {b}" in out

    listed = themes_json(capsys, cfg)
    assert {t["id"] for t in listed} == {a, b}
    assert next(t for t in listed if t["id"] == a)["title"] == "Battery life"
    everything = themes_json(capsys, cfg, "--all")
    gone = next(t for t in everything if t["id"] == c)
    assert gone["status"] == "merged" and gone["merged_into"] == b

    examples = [str(i) for i in corpus[2][:3]]
    code, out, err = run(
        capsys,
        "--config",
        cfg,
        "themes",
        "define",
        "Shipping",
        *[x for e in examples for x in ("--example", e)],
        "--by",
        "pm",
    )
    assert code == 0, err
    assert "'Shipping': 20 mentions" in out
    defined = next(t for t in themes_json(capsys, cfg) if t["title"] == "Shipping")
    assert defined["origin"] == "user" and defined["pinned"]

    code, out, _ = run(capsys, "--config", cfg, "themes", "history", "--json")
    kinds = [(e["kind"], e["actor"]) for e in json.loads(out)]
    assert kinds[1:] == [
        ("name", "pm"),
        ("pin", "pm"),
        ("unpin", "pm"),
        ("merge", "pm"),
        ("define", "pm"),
    ]
    code, out, _ = run(capsys, "--config", cfg, "themes", "history", "--theme", str(c))
    assert code == 0 and f"{c} merged into {b}" in out
    with engine.connect() as conn:
        actions = list(conn.execute(select(AuditRow.action).order_by(AuditRow.id)).scalars())
    assert actions == [
        "themes.fit",
        "theme.name",
        "theme.pin",
        "theme.unpin",
        "theme.merge",
        "theme.define",
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        (["show", "999"], "no theme 999"),
        (["name", "999", "x"], "no theme 999"),
        (["pin", "999"], "no theme 999"),
        (["merge", "998", "--into", "999"], "no theme 999"),
        (["define", "x", "--example", "123456"], "no mention with id 123456"),
        (["refit", "--count", "1"], "--count"),
    ],
)
def test_errors_are_one_line(cfg, capsys, args, words):
    code, _, err = run(capsys, "--config", cfg, "themes", *args)
    assert_one_line_error(code, err)
    assert words in err
