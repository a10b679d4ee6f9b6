"""Themes in the database: fit, refit history, user actions and summaries, on SQLite and PostgreSQL.

The vectors are synthetic (known clusters on chosen directions), so what a
refit must do is known in advance; the texts carry each cluster's words so
the labels can be checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import delete, select

from listenwell import store
from listenwell.nlp.themes import (
    MODEL_NAME,
    NotEnoughMentionsError,
    ThemeAssigner,
    ThemeError,
    ThemeOptions,
    assign_all,
    define_theme,
    merge_themes,
    name_theme,
    pin_theme,
    refit,
)
from listenwell.store import themes as ts
from listenwell.store.models import AuditRow, MentionRow

DIM = 16
T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday


def direction(*parts: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for axis, w in parts:
        v[axis] = w
    return v / np.linalg.norm(v)


# A1 and A2 are close (cosine 0.86): one theme at k=3, two at k=4. B, C, D are orthogonal.
CENTRES = {
    "A1": direction((0, 1.0)),
    "A2": direction((0, 1.0), (1, 0.6)),
    "B": direction((2, 1.0)),
    "C": direction((3, 1.0)),
    "D": direction((4, 1.0)),
}
WORDS = {
    "A1": ["battery", "drains", "charge"],
    "A2": ["charger", "cable", "broken"],
    "B": ["refund", "money", "waiting"],
    "C": ["delivery", "courier", "package"],
    "D": ["wifi", "router", "signal"],
}
SENTIMENT = {"A1": "negative", "A2": "negative", "B": "neutral", "C": "positive", "D": "negative"}


def seed(engine, counts: dict[str, int], *, start: int = 0, seed: int = 0) -> dict[str, list[int]]:
    """Store mentions of each group with vectors near its centre and a sentiment each."""
    rng = np.random.default_rng(seed + start)
    mentions, groups = [], []
    n = start
    for group, count in counts.items():
        for _ in range(count):
            words = rng.choice(WORDS[group], size=3)
            text = f"@acme the {' '.join(words)} again {n} https://t.co/x{n}"
            mentions.append(
                store.Mention(
                    source="x",
                    external_id=f"t{n}",
                    created_at=T0 + timedelta(days=n % 20),
                    text=text,
                    author_handle=f"@u{n}",
                )
            )
            groups.append(group)
            n += 1
    store.upsert_mentions(engine, mentions)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
    mids = [ids[m.external_id] for m in mentions]
    noise = 0.08 * rng.normal(size=(len(mids), DIM)) / np.sqrt(DIM)
    vectors = np.stack([CENTRES[g] for g in groups]) + noise
    store.write_embeddings(engine, mids, vectors, model_name="synthetic", model_version="1")
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(mid, "sentiment", SENTIMENT[g], 0.9, "s", "1")
            for mid, g in zip(mids, groups, strict=True)
        ],
    )
    out: dict[str, list[int]] = {}
    for mid, g in zip(mids, groups, strict=True):
        out.setdefault(g, []).append(mid)
    return out


def opts(k: int | None = 3, **kw) -> ThemeOptions:
    return ThemeOptions(n_themes=k, min_mentions=kw.pop("min_mentions", 20), threads=1, **kw)


def theme_of(engine, mention_ids) -> set[int]:
    """The themes these mentions are assigned to."""
    members = ts.theme_members(engine)
    return {t for t, m in members.items() if m & set(mention_ids)}


def audit_actions(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditRow.action).order_by(AuditRow.id)).scalars())


def test_first_fit_labels_themes_and_assigns_every_mention(engine):
    groups = seed(engine, {"A1": 20, "B": 20, "C": 20})
    report = refit(engine, opts(stop_words=("acme",)), actor="tester")
    themes = ts.load_themes(engine)
    assert len(themes) == 3 and report.k == 3 and sorted(report.new) == [t.id for t in themes]
    members = ts.theme_members(engine)
    by_group = {g: theme_of(engine, ids) for g, ids in groups.items()}
    assert all(len(t) == 1 for t in by_group.values())  # each group is exactly one theme
    for g, (tid,) in by_group.items():
        theme = next(t for t in themes if t.id == tid)
        assert members[tid] == set(groups[g]) and theme.size == 20
        assert theme.label.split(", ")[0] in WORDS[g]
        assert {t for t, _ in theme.terms} >= set(WORDS[g])
        assert "acme" not in theme.label and theme.origin == "cluster"
        assert theme.fit_id == report.fit_id and theme.centroid is not None
    got = store.read_enrichments(engine, "themes")
    assert len(got) == 60 and {r.model_name for r in got.values()} == {MODEL_NAME}
    assert {r.model_version for r in got.values()} == {report.fit_id}
    assert all(r.score is not None and r.score > 0.9 for r in got.values())
    events = ts.theme_events(engine)
    assert [e.kind for e in events] == ["fit"] and events[0].actor == "tester"
    assert sorted(events[0].to_ids) == sorted(t.id for t in themes)
    assert audit_actions(engine) == ["themes.fit"]
    assert ts.latest_fit_id(engine) == report.fit_id


def test_too_few_mentions_fit_nothing(engine):
    seed(engine, {"A1": 5})
    with pytest.raises(NotEnoughMentionsError, match="at least 20"):
        refit(engine, opts())
    assert ts.load_themes(engine) == []


def test_refit_on_more_data_keeps_every_id(engine):
    first = seed(engine, {"A1": 20, "B": 20, "C": 20})
    refit(engine, opts())
    before = {g: theme_of(engine, ids) for g, ids in first.items()}
    more = seed(engine, {"A1": 10, "B": 10, "C": 10}, start=100)
    report = refit(engine, opts())
    after = {g: theme_of(engine, ids + more[g]) for g, ids in first.items()}
    assert after == before
    assert sorted(report.kept) == sorted(t for ids in before.values() for t in ids)
    assert report.new == report.split == report.merged == report.retired == []
    assert [e.kind for e in ts.theme_events(engine)] == ["fit", "refit"]
    assert all(t.size == 30 for t in ts.load_themes(engine))


def test_refit_records_a_split_and_the_old_id_keeps_the_larger_part(engine):
    groups = seed(engine, {"A1": 30, "A2": 18, "B": 20, "C": 20})
    refit(engine, opts(3))
    (a,) = theme_of(engine, groups["A1"] + groups["A2"])  # one theme at k=3
    report = refit(engine, opts(4), actor="tester")
    assert theme_of(engine, groups["A1"]) == {a}
    (child,) = theme_of(engine, groups["A2"])
    assert child != a and report.split == [(a, [child])]
    assert ts.get_theme(engine, child).origin == "split"
    assert ts.get_theme(engine, a).label.split(", ")[0] in WORDS["A1"]
    assert ts.get_theme(engine, child).label.split(", ")[0] in WORDS["A2"]
    split = [e for e in ts.theme_events(engine) if e.kind == "split"]
    assert len(split) == 1 and split[0].from_ids == [a] and split[0].to_ids == [a, child]
    assert split[0].actor == "tester" and split[0].fit_id == report.fit_id
    assert [e.kind for e in ts.theme_events(engine, theme_id=child)] == ["split", "refit"]


def test_refit_records_a_merge_and_the_larger_theme_survives(engine):
    groups = seed(engine, {"A1": 30, "A2": 18, "B": 20, "C": 20})
    refit(engine, opts(4))
    (a1,) = theme_of(engine, groups["A1"])
    (a2,) = theme_of(engine, groups["A2"])
    report = refit(engine, opts(3))
    assert report.merged == [(a1, [a2])]
    assert theme_of(engine, groups["A1"] + groups["A2"]) == {a1}
    gone = ts.get_theme(engine, a2)
    assert gone.status == "merged" and gone.merged_into == a1
    merge = [e for e in ts.theme_events(engine) if e.kind == "merge"]
    assert merge[0].from_ids == [a1, a2] and merge[0].to_ids == [a1]
    assert ts.theme_detail(engine, a1).merged == [a2]


def test_a_pinned_theme_is_never_merged_or_relabelled_by_a_refit(engine):
    groups = seed(engine, {"A1": 30, "A2": 18, "B": 20, "C": 20})
    refit(engine, opts(4))
    (a1,) = theme_of(engine, groups["A1"])
    (a2,) = theme_of(engine, groups["A2"])
    pin_theme(engine, a2, actor="pm")
    pinned = ts.get_theme(engine, a2)
    report = refit(engine, opts(3))
    after = ts.get_theme(engine, a2)
    assert after.status == "active" and after.pinned and report.frozen == [a2]
    assert after.label == pinned.label and after.terms == pinned.terms
    assert np.array_equal(after.centroid, pinned.centroid)
    # The data says A1 and A2 are one theme: the unpinned one merges into the pinned one.
    assert ts.get_theme(engine, a1).merged_into == a2 and report.merged == [(a2, [a1])]


def test_refit_retires_a_theme_whose_mentions_are_gone(engine):
    groups = seed(engine, {"A1": 20, "B": 20, "C": 20})
    refit(engine, opts(3))
    (c,) = theme_of(engine, groups["C"])
    with engine.begin() as conn:
        conn.execute(delete(MentionRow).where(MentionRow.id.in_(groups["C"])))
    report = refit(engine, opts(2))
    assert report.retired == [c] and ts.get_theme(engine, c).status == "retired"
    assert c not in {t.id for t in ts.load_themes(engine)}
    assert [e.kind for e in ts.theme_events(engine, theme_id=c)][-2:] == ["retire", "refit"]


def test_name_pin_and_merge_by_a_user(engine):
    groups = seed(engine, {"A1": 20, "B": 20, "C": 20})
    refit(engine, opts(3))
    (a,), (b,), (c,) = (theme_of(engine, groups[g]) for g in ("A1", "B", "C"))
    name_theme(engine, a, "  Battery   life ", actor="pm@acme")
    assert ts.get_theme(engine, a).name == "Battery life"
    assert ts.get_theme(engine, a).title == "Battery life"
    pin_theme(engine, b, actor="pm@acme")
    assert ts.get_theme(engine, b).pinned
    pin_theme(engine, b, pinned=False, actor="pm@acme")
    assert not ts.get_theme(engine, b).pinned
    merge_themes(engine, [b, c], into=a, actor="pm@acme", options=opts(3))
    assert [t.id for t in ts.load_themes(engine)] == [a]
    assert ts.get_theme(engine, c).merged_into == a and ts.get_theme(engine, b).status == "merged"
    # Every mention now belongs to the survivor (its centroid is the weighted mean).
    assert ts.theme_members(engine) == {a: set(groups["A1"] + groups["B"] + groups["C"])}
    survivor = ts.get_theme(engine, a)
    assert survivor.name == "Battery life" and len(survivor.terms) > 3
    kinds = [(e.kind, e.actor) for e in ts.theme_events(engine)]
    assert kinds[1:] == [
        ("name", "pm@acme"),
        ("pin", "pm@acme"),
        ("unpin", "pm@acme"),
        ("merge", "pm@acme"),
    ]
    assert audit_actions(engine)[1:] == ["theme.name", "theme.pin", "theme.unpin", "theme.merge"]
    with pytest.raises(ThemeError, match="merged into theme"):
        name_theme(engine, b, "x", actor="pm")
    with pytest.raises(ThemeError, match="no theme 9999"):
        pin_theme(engine, 9999, actor="pm")
    with pytest.raises(ThemeError, match="empty"):
        name_theme(engine, a, "   ", actor="pm")
    with pytest.raises(ThemeError, match="besides"):
        merge_themes(engine, [a], into=a, actor="pm")


def test_define_a_theme_from_examples_and_a_refit_keeps_it(engine):
    groups = seed(engine, {"A1": 20, "B": 20, "C": 20})
    refit(engine, opts(3))
    wifi = seed(engine, {"D": 12}, start=200)["D"]
    assign_all(engine, opts(3))
    assert theme_of(engine, wifi) == set()  # far from every theme: unthemed
    tid = define_theme(engine, "Wi-fi drops", wifi[:3], actor="pm@acme", options=opts(3))
    theme = ts.get_theme(engine, tid)
    assert theme.origin == "user" and theme.pinned and theme.name == "Wi-fi drops"
    assert theme.examples == wifi[:3] and theme.label.split(", ")[0] in WORDS["D"]
    assert ts.theme_members(engine)[tid] == set(wifi)
    report = refit(engine, opts(3))
    assert tid in report.frozen and ts.get_theme(engine, tid).status == "active"
    assert ts.theme_members(engine)[tid] == set(wifi)
    assert theme_of(engine, groups["B"]) != {tid}
    define = [e for e in ts.theme_events(engine) if e.kind == "define"]
    assert define[0].to_ids == [tid] and define[0].detail == {"examples": wifi[:3]}
    unembedded = store.upsert_mentions(
        engine, [store.Mention(source="x", external_id="new", created_at=T0, text="no vector")]
    )
    assert unembedded.inserted == 1
    with engine.connect() as conn:
        bare = conn.execute(select(MentionRow.id).where(MentionRow.external_id == "new")).scalar()
    with pytest.raises(ThemeError, match="no stored embedding"):
        define_theme(engine, "x", [bare], actor="pm")
    with pytest.raises(ThemeError, match="no mention with id 123456"):
        define_theme(engine, "x", [123456], actor="pm")
    with pytest.raises(ThemeError, match="at least one example"):
        define_theme(engine, "x", [], actor="pm")


def test_summaries_sentiment_quotes_and_trend(engine):
    groups = seed(engine, {"A1": 20, "B": 16, "C": 12})
    refit(engine, opts(3))
    summaries = ts.theme_summaries(engine)
    assert [s.mentions for s in summaries] == [20, 16, 12]  # largest first
    by_theme = {s.theme.id: s for s in summaries}
    (a,), (c,) = theme_of(engine, groups["A1"]), theme_of(engine, groups["C"])
    assert by_theme[a].sentiment == {"negative": 20, "neutral": 0, "positive": 0}
    assert by_theme[c].sentiment == {"negative": 0, "neutral": 0, "positive": 12}
    assert by_theme[a].negative_share == 1.0 and by_theme[c].negative_share == 0.0
    detail = ts.theme_detail(engine, a, quotes=4)
    assert len(detail.quotes) == 4 and detail.summary.mentions == 20
    sims = [q.similarity for q in detail.quotes]
    assert sims == sorted(sims, reverse=True)
    assert all(q.mention_id in groups["A1"] and q.sentiment == "negative" for q in detail.quotes)
    assert sum(n for _, n in detail.trend) == 20
    assert all(week.weekday() == 0 for week, _ in detail.trend)
    assert [w for w, _ in detail.trend] == sorted(w for w, _ in detail.trend)
    with pytest.raises(store.NotFoundError):
        ts.theme_detail(engine, 424242)


def test_stage_prepare_waits_for_enough_mentions_then_fits_and_assigns(engine):
    seed(engine, {"A1": 6, "B": 6})
    stage = ThemeAssigner(opts(2))
    stage.prepare(engine)
    out = stage.run(["x"], np.ones((1, DIM), dtype=np.float32))
    assert out[0].label is None and "too few mentions" in out[0].data["reason"]
    assert ts.load_themes(engine) == []
    groups = seed(engine, {"A1": 10, "B": 10}, start=50)
    stage.prepare(engine)
    themes = ts.load_themes(engine)
    assert len(themes) == 2 and stage.model_version == ts.latest_fit_id(engine)
    # The first fit assigned every embedded mention, the early ones included.
    assert len(store.read_enrichments(engine, "themes")) == 32
    (a,) = theme_of(engine, groups["A1"])
    got = stage.run(["battery"], CENTRES["A1"][None, :])
    assert got[0].label == str(a) and got[0].score == pytest.approx(1.0, abs=0.01)
    # A second prepare loads the same themes instead of fitting again.
    stage.prepare(engine)
    assert [e.kind for e in ts.theme_events(engine)] == ["fit"]


def test_update_and_insert_validate(engine):
    tid = ts.insert_theme(engine, ts.NewTheme(label="x", centroid=np.ones(4, np.float32)))
    with pytest.raises(ValueError, match="cannot update"):
        ts.update_theme(engine, tid, {"bogus": 1})
    with pytest.raises(ValueError, match="status"):
        ts.update_theme(engine, tid, {"status": "gone"})
    with pytest.raises(store.NotFoundError):
        ts.update_theme(engine, tid + 1, {"name": "y"})
    with pytest.raises(ValueError, match="themes"):
        ts.replace_assignments(engine, [store.EnrichmentResult(1, "sentiment", "x", 1, "m", "1")])
    ids, x = ts.embedding_matrix(engine)
    assert ids == [] and x.shape[0] == 0


def test_the_pipeline_runs_the_stage_after_every_vector_is_stored(engine):
    from listenwell.nlp.embeddings import Embedder
    from listenwell.nlp.pipeline import Pipeline

    first = seed(engine, {"A1": 12, "B": 12})
    # Every mention already has its vector, so the embedder never loads the model.
    pipeline = Pipeline([ThemeAssigner(opts(2))], embedder=Embedder(threads=1))
    pipeline.run(engine)
    fit = ts.latest_fit_id(engine)
    assert fit is not None and len(store.read_enrichments(engine, "themes")) == 24
    (a,) = theme_of(engine, first["A1"])
    more = seed(engine, {"A1": 5}, start=100)
    report = pipeline.run(engine)
    assert report.results == {"themes": 5}
    assert theme_of(engine, first["A1"] + more["A1"]) == {a}
    got = store.read_enrichments(engine, "themes")
    assert {got[i].model_version for i in more["A1"]} == {fit}
    assert [e.kind for e in ts.theme_events(engine)] == ["fit"]  # no second fit
