"""The dashboard's aggregate queries against a plain-Python reading of the same rows.

The queries join only the enrichments they need and look corrections up only
for corrected mentions (``store/queries.py``); this checks, filter by filter, that
they still count exactly what the labels in force say: the newest correction
over the model's label, merged themes under their survivor's name, segments
only through strong links.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from listenwell import store
from listenwell.store.models import CorrectionRow, CustomerRow, MentionRow, ThemeRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SENTIMENTS = ("negative", "neutral", "positive")
# id -> (label, name, merged_into)
THEMES = {
    1: ("battery / charge", None, None),
    2: ("delivery / late", "Late deliveries", None),
    3: ("shipping", None, 2),  # merged into 2: counts as "Late deliveries"
    4: ("app / crash", "Crashes", None),
}


def _seed(engine) -> dict[str, list]:
    rng = random.Random(5)
    mentions = [
        store.Mention(
            source=rng.choice(["x", "reddit"]),
            external_id=str(i),
            created_at=T0 + timedelta(hours=rng.randint(0, 24 * 20)),
            author_handle=rng.choice([None, "@ann", "@bob", "@cy", "@dee", "@eve"]),
            text=rng.choice(["my Refund is late", "great app", "battery dies", "where is it"]),
        )
        for i in range(160)
    ]
    store.upsert_mentions(engine, mentions)
    store.upsert_customers(
        engine,
        [
            ("1", store.Customer("C1", "Ann", segment="vip")),
            ("2", store.Customer("C2", "Bob", segment="smb")),
            ("3", store.Customer("C3", "Cy")),
        ],
    )
    with engine.begin() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                MentionRow.__table__.select().with_only_columns(MentionRow.id).order_by("id")
            )
        ]
        pks = dict(conn.execute(CustomerRow.__table__.select().with_only_columns(
            CustomerRow.customer_id, CustomerRow.id)).all())  # fmt: skip
        conn.execute(
            insert(ThemeRow.__table__),
            [
                {"id": tid, "label": label, "name": name, "merged_into": merged,
                 "status": "merged" if merged else "active", "origin": "cluster",
                 "pinned": False, "size": 0, "created_at": T0, "updated_at": T0}
                for tid, (label, name, merged) in THEMES.items()
            ],
        )  # fmt: skip
        results = []
        for mid in ids:
            if rng.random() < 0.85:
                results.append(
                    store.EnrichmentResult(mid, "sentiment", rng.choice(SENTIMENTS), 0.9, "m", "1")
                )
            if rng.random() < 0.8:
                key = rng.choice(["1", "2", "3", "4", "99", None])  # 99: no such theme
                results.append(store.EnrichmentResult(mid, "themes", key, 0.5, "m", "1"))
            if rng.random() < 0.3:
                cid = rng.choice(["C1", "C2", "C3"])
                strength = rng.choice(["strong", "weak"])
                data = {"customer_pk": int(pks[cid]), "strength": strength, "evidence": []}
                results.append(store.EnrichmentResult(mid, "links", cid, 0.9, "l", "1", data))
        store.upsert_enrichments(conn, results)
        corrections = []
        for mid in rng.sample(ids, 40):
            for _ in range(rng.randint(1, 2)):
                stage = rng.choice(["sentiment", "themes"])
                label = rng.choice(SENTIMENTS if stage == "sentiment" else ["1", "2", "3", "4"])
                corrections.append(
                    {"mention_id": mid, "stage": stage, "label": label, "actor": "agent",
                     "created_at": T0}
                )  # fmt: skip
        conn.execute(insert(CorrectionRow.__table__), corrections)
    return {"ids": ids}


def _truth(engine) -> list[dict]:
    """Every mention with its labels in force, worked out in Python from the raw rows."""
    from sqlalchemy import select

    from listenwell.store.models import EnrichmentRow

    with engine.connect() as conn:
        ms = conn.execute(select(MentionRow.__table__)).mappings().all()
        enr = conn.execute(select(EnrichmentRow.__table__)).mappings().all()
        corr = conn.execute(select(CorrectionRow.__table__).order_by("id")).mappings().all()
        segs = dict(conn.execute(select(CustomerRow.customer_id, CustomerRow.segment)).all())
    model = {(e["mention_id"], e["stage"]): e for e in enr}
    newest = {(c["mention_id"], c["stage"]): c["label"] for c in corr}  # last (largest id) wins
    out = []
    for m in ms:
        mid = m["id"]

        def in_force(stage: str, mid: int = mid) -> str | None:
            if (mid, stage) in newest:
                return newest[(mid, stage)]
            e = model.get((mid, stage))
            return e["label"] if e else None

        key = in_force("themes")
        theme_id = theme = None
        if key is not None and key.isdigit() and int(key) in THEMES:
            tid = int(key)
            label, name, merged = THEMES[tid]
            if merged is not None:
                tid = merged
                label, name, _ = THEMES[tid]
            theme_id, theme = tid, name or label
        link = model.get((mid, "links"))
        strong = link is not None and (link["data"] or {}).get("strength") == "strong"
        out.append(
            {
                "id": mid,
                "source": m["source"],
                "at": m["created_at"],
                "author": m["author_handle"],
                "text": m["text"],
                "sentiment": in_force("sentiment"),
                "theme_id": theme_id,
                "theme": theme,
                "segment": segs.get(link["label"]) if strong else None,
            }
        )
    return out


def _matches(row: dict, f: store.MentionFilter) -> bool:
    day = row["at"].astimezone(UTC).date()
    return (
        (f.start is None or day >= f.start)
        and (f.end is None or day <= f.end)
        and (not f.sources or row["source"] in f.sources)
        and (not f.search or f.search.lower() in row["text"].lower())
        and (not f.sentiments or row["sentiment"] in f.sentiments)
        and (not f.topics or row["theme"] in f.topics)
        and (not f.segments or row["segment"] in f.segments)
    )


FILTERS = [
    store.MentionFilter(),
    store.MentionFilter(sentiments=("negative",)),
    store.MentionFilter(sentiments=("positive", "neutral"), sources=("x",)),
    store.MentionFilter(topics=("Late deliveries",)),
    store.MentionFilter(topics=("battery / charge", "Crashes"), sentiments=("negative",)),
    store.MentionFilter(topics=("no such theme",)),
    store.MentionFilter(segments=("vip",)),
    store.MentionFilter(segments=("vip", "smb"), topics=("Late deliveries",)),
    store.MentionFilter(start=date(2026, 3, 5), end=date(2026, 3, 12), search="refund"),
    store.MentionFilter(start=date(2026, 3, 9), end=date(2026, 3, 9), sources=("reddit",)),
]


@pytest.fixture
def seeded(engine):
    _seed(engine)
    return engine, _truth(engine)


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: repr(f).replace(" ", ""))
def test_dashboard_queries_count_the_labels_in_force(seeded, f):
    engine, truth = seeded
    check_queries(engine, truth, f)


def check_queries(engine, truth: list[dict], f: store.MentionFilter) -> None:
    """Every dashboard query under ``f`` against the rows of ``truth`` that match it."""
    rows = [r for r in truth if _matches(r, f)]

    counts = store.overview_counts(engine, f)
    assert counts["mentions"] == len(rows)
    assert counts["authors"] == len({r["author"] for r in rows if r["author"]})
    assert counts["first"] == (min(r["at"] for r in rows) if rows else None)
    assert counts["last"] == (max(r["at"] for r in rows) if rows else None)

    volume = store.mention_volume(engine, f, freq="day")
    assert {(b.date(), s): n for b, s, n in volume.itertuples(index=False)} == Counter(
        (r["at"].date(), r["source"]) for r in rows
    )

    sentiment = store.sentiment_volume(engine, f, freq="day")
    assert {(b.date(), s): n for b, s, n in sentiment.itertuples(index=False)} == Counter(
        (r["at"].date(), r["sentiment"]) for r in rows if r["sentiment"]
    )

    themes = store.theme_volume(engine, f)
    monday = {r["id"]: r["at"].date() - timedelta(days=r["at"].weekday()) for r in rows}
    expected = Counter(
        (monday[r["id"]], r["theme_id"], r["theme"], r["sentiment"])
        for r in rows
        if r["theme_id"] is not None
    )
    got = {
        (b.date(), int(t), name, s if isinstance(s, str) else None): n
        for b, t, name, s, n in themes.itertuples(index=False)
    }
    assert got == expected
    assert themes["bucket"].is_monotonic_increasing
    assert len(got) == len(themes)  # one row per group

    sources = store.source_counts(engine, f)
    assert dict(zip(sources["source"], sources["mentions"], strict=True)) == Counter(
        r["source"] for r in rows
    )
    assert sources["mentions"].is_monotonic_decreasing

    authors = store.top_authors(engine, f, limit=3)
    ranked = sorted(
        Counter(r["author"] for r in rows if r["author"]).items(), key=lambda kv: (-kv[1], kv[0])
    )[:3]
    assert list(zip(authors["author_handle"], authors["mentions"], strict=True)) == ranked

    frame = store.mentions_frame(engine, f, limit=1000)
    newest = sorted(rows, key=lambda r: (r["at"], r["id"]), reverse=True)
    assert frame["id"].tolist() == [r["id"] for r in newest]
    page = store.mentions_frame(engine, f, limit=7, offset=5)
    assert page["id"].tolist() == [r["id"] for r in newest[5:12]]
    by_id = {r["id"]: r for r in rows}
    for mid, s, topic in zip(frame["id"], frame["sentiment"], frame["topic"], strict=True):
        assert (s if isinstance(s, str) else None) == by_id[mid]["sentiment"]
        assert (topic if isinstance(topic, str) else None) == by_id[mid]["theme"]


def test_the_export_shows_the_labels_in_force(seeded):
    engine, truth = seeded
    by_external = {r["external_id"]: r for r in store.iter_export_rows(engine, batch_size=7)}
    with engine.connect() as conn:
        from sqlalchemy import select

        external = dict(conn.execute(select(MentionRow.id, MentionRow.external_id)).all())
    for row in truth:
        exported = by_external[external[row["id"]]]
        assert exported["sentiment"] == row["sentiment"]
        assert exported["topic"] == row["theme"]
        assert (int(exported["theme_id"]) if exported["theme_id"] else None) == row["theme_id"]
