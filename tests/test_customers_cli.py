"""`listenwell customers` and `listenwell links`, through the real command line."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run

from listenwell import store
from listenwell.store.links import LINK_STAGE, list_decisions

REPO = Path(__file__).resolve().parents[1]
DEMO_CUSTOMERS = REPO / "demo" / "data" / "customers.csv"


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def cfg(config_file: Path, capsys) -> str:
    """A migrated database holding the 300 demo customers."""
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    code, out, _ = run(
        capsys, "--config", str(config_file), "import", "customers", str(DEMO_CUSTOMERS)
    )
    assert code == 0 and "300 new" in out
    return str(config_file)


def test_help_texts(capsys):
    for args in (
        ["customers", "--help"],
        ["customers", "search", "--help"],
        ["customers", "duplicates", "--help"],
        ["links", "--help"],
        ["links", "confirm", "--help"],
        ["links", "reject", "--help"],
        ["links", "list", "--help"],
    ):
        code, out, _ = run(capsys, *args)
        assert code == 0 and "Usage" in out
    _, out, _ = run(capsys, "customers", "duplicates", "--help")
    assert "--output" in out and "--min-score" in out


def test_search_finds_by_approximate_name(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "customers", "search", "ravi urbn", "--json")
    assert code == 0
    hits = json.loads(out)
    assert hits[0]["customer_id"] == "C00236" and hits[0]["matched"] == "name"
    assert {"customer_id", "name", "email", "phone", "handles", "score", "matched"} <= set(hits[0])
    code, out, _ = run(capsys, "--config", cfg, "customers", "search", "ines yates", "-n", "2")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and "C00073" in lines[0] and "C00128" in lines[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("jude.gomez@example.com", "C00001"),
        ("303 555 0199", "C00236"),
        ("@raviurban12", "C00236"),
        ("u/gusreed", "C00120"),
    ],
)
def test_search_by_email_phone_handle(cfg, capsys, query, expected):
    code, out, _ = run(capsys, "--config", cfg, "customers", "search", query, "--json")
    assert code == 0 and json.loads(out)[0]["customer_id"] == expected


def test_search_without_hits_and_empty_query(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "customers", "search", "qqqqzzzz")
    assert code == 0 and "no customer matches" in out
    code, _, err = run(capsys, "--config", cfg, "customers", "search", "  ")
    assert_one_line_error(code, err)


def test_duplicates_writes_the_documented_pairs(cfg, capsys, tmp_path):
    out_csv = tmp_path / "dups" / "pairs.csv"
    code, out, _ = run(capsys, "--config", cfg, "customers", "duplicates", "--output", str(out_csv))
    assert code == 0 and "3 likely duplicate pairs among 300 customers" in out
    with out_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["customer_id_a", "customer_id_b", "score", "reasons"]
    assert {(a, b) for a, b, _, _ in rows[1:]} == {
        ("C00236", "C00254"),
        ("C00073", "C00128"),
        ("C00067", "C00120"),
    }
    by_pair = {(a, b): (float(s), r) for a, b, s, r in rows[1:]}
    assert "same phone" in by_pair[("C00236", "C00254")][1]
    assert all(0.6 <= s <= 1 for s, _ in by_pair.values())


def test_duplicates_min_score_and_json(cfg, capsys, tmp_path):
    out_csv = tmp_path / "p.csv"
    code, out, _ = run(
        capsys,
        "--config",
        cfg,
        "customers",
        "duplicates",
        "-o",
        str(out_csv),
        "--min-score",
        "0.95",
        "--json",
    )
    assert code == 0
    counts = json.loads(out)
    assert counts["customers"] == 300 and counts["min_score"] == 0.95
    assert counts["pairs"] == len(out_csv.read_text().splitlines()) - 1 < 3
    code, _, err = run(
        capsys, "--config", cfg, "customers", "duplicates", "-o", str(out_csv), "--min-score", "2"
    )
    assert code == 2 and "usage error" in err


def test_duplicates_unwritable_output_is_one_line(cfg, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(
        capsys, "--config", cfg, "customers", "duplicates", "-o", str(blocker / "p.csv")
    )
    assert_one_line_error(code, err)


def _mention(engine) -> int:
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source="x",
                external_id="1",
                created_at=datetime(2024, 1, 1, tzinfo=UTC),
                text="order late",
                author_handle="@RaviUrban12",
            )
        ],
    )
    return int(store.mentions_frame(engine)["id"].iloc[0])


def test_links_confirm_reject_and_list(cfg, capsys, engine):
    mid = _mention(engine)
    code, out, _ = run(
        capsys, "--config", cfg, "links", "reject", str(mid), "C00254", "--by", "alice"
    )
    assert code == 0 and f"mention {mid} -> customer C00254: rejected by alice" in out
    code, out, _ = run(
        capsys,
        "--config",
        cfg,
        "links",
        "confirm",
        str(mid),
        "C00236",
        "--by",
        "bob",
        "--note",
        "called her",
    )
    assert code == 0 and "confirmed by bob" in out
    assert [(d.customer_id, d.decision) for d in list_decisions(engine, mid)] == [
        ("C00236", "confirmed"),
        ("C00254", "rejected"),
    ]
    code, out, _ = run(capsys, "--config", cfg, "links", "list", "--mention", str(mid))
    assert code == 0
    assert f"mention {mid}: linked to C00236 (confidence 1.00; agent bob (confirmed)" in out
    assert "called her" in out and "rejected" in out
    code, out, _ = run(capsys, "--config", cfg, "links", "list", "--mention", str(mid), "--json")
    data = json.loads(out)
    assert data["link"]["customer_id"] == "C00236" and data["linker"] is None
    assert [d["decision"] for d in data["decisions"]] == ["confirmed", "rejected"]


def test_links_list_shows_the_linkers_result(cfg, capsys, engine):
    mid = _mention(engine)
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                mention_id=mid,
                stage=LINK_STAGE,
                label="C00236",
                score=0.95,
                model_name="listenwell-evidence-linker",
                model_version="1",
                data={
                    "strength": "strong",
                    "evidence": [{"kind": "handle", "value": "x:@RaviUrban12", "weight": 0.95}],
                    "suggestions": [],
                },
            )
        ],
    )
    code, out, _ = run(capsys, "--config", cfg, "links", "list", "--mention", str(mid))
    assert code == 0
    assert "linked to C00236 (confidence 0.95; handle x:@RaviUrban12 (0.95))" in out
    assert "linker: C00236 (strong, confidence 0.95)" in out
    assert "no link decisions yet" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["links", "confirm", "999999", "C00001", "--by", "a"], "no mention with id 999999"),
        (["links", "confirm", "{mid}", "NOPE", "--by", "a"], "no customer with id 'NOPE'"),
        (["links", "reject", "{mid}", "C00001", "--by", " "], "--by must name who decides"),
    ],
)
def test_links_errors_are_one_line(cfg, capsys, engine, args, message):
    mid = _mention(engine)
    code, _, err = run(capsys, "--config", cfg, *[a.format(mid=mid) for a in args])
    assert_one_line_error(code, err)
    assert message in err


def test_links_list_empty(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "links", "list")
    assert code == 0 and "no link decisions yet" in out
