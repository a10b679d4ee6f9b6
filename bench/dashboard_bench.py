"""Dashboard at 1,000,000 mentions: every page's server-side render time, the inbox, memory.

Two parts:

1. **A seeded generator** writes ``--rows`` realistic, pre-enriched mentions into a
   database it keeps under ``--db-dir`` (SQLite file) or in a PostgreSQL database
   named after the size and seed, so re-runs reuse it (``--rebuild`` starts over;
   ``store.upgrade`` runs on every start, so a new migration is applied to, and
   timed on, the cached database). Five sources, authors drawn from a Zipf law,
   two years of timestamps with a growth trend, weekly and daily seasonality and
   a few incident spikes, texts of 100-300 characters from a vocabulary with the
   brand's and competitors' keywords; every mention has its ``sentiment``,
   ``themes`` (20 themes, one merged), ``intent``, ``language`` and ``links``
   results (about 5,000 customers, strong links where the author is a
   customer's handle) and its conversation (status by age, priority, some
   escalated, assigned, tagged), plus agents' corrections, replies, notes,
   escalation events and survey answers. Rows go in with one driver-level
   ``executemany`` per chunk on SQLite and ``COPY`` on PostgreSQL.

2. **The measurement** runs in a fresh child process (so its memory is the
   dashboard's, not the generator's). Every page that ``app.py`` can put in
   ``st.navigation`` (found by reading ``app.py``, so pages added later are
   included) is rendered with Streamlit's AppTest, signed in as an admin the way
   ``tests/app_helpers.py`` does it. The process first renders every page once on
   a small database (2,000 mentions), so it is a running server: modules
   imported, Streamlit started. Then per page, *cold* is the first run with
   Streamlit's caches cleared (the query caches expired: a new engine, every query
   run), *warm* the next runs; each page is timed ``--repeat`` times (default 3)
   and the medians reported, with the slowest cold run beside them. Overview and themes are timed again
   over the whole two years (the widest range the date filter offers). Then the
   process's peak RSS, and ``store.inbox.list_conversations``' first page, on a
   fresh engine and warm: with its defaults, and with the inbox page's defaults.

    python bench/dashboard_bench.py --db both                  # 1,000,000 mentions
    python bench/dashboard_bench.py --rows 100000 --db sqlite --pages overview mentions

Progress goes to stderr; the Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Bump when the generated data changes, so cached databases are rebuilt.
GENERATOR_VERSION = 1
MARKER_ACTION = "bench.dashboard.seeded"
BENCH_USER = "bench-admin"
SESSION_KEY = "listenwell_session"  # app_pages/common.py
NOISE = ("missing ScriptRunContext", "No runtime found")
WARMUP_ROWS = 2_000
WIDE = ("app_pages/overview.py", "app_pages/themes.py")  # also timed over all the data

T_END = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DAYS = 730
CHUNK = 50_000

TARGET_COLD_S, TARGET_WARM_S, TARGET_INBOX_MS, TARGET_RSS_MIB = 3.0, 1.0, 300.0, 1536.0

SOURCES = ("x", "reddit", "appstore", "googleplay", "trustpilot")
SOURCE_SHARE = (0.48, 0.24, 0.13, 0.09, 0.06)
REVIEW_SOURCES = frozenset({"appstore", "googleplay", "trustpilot"})
BRAND = ("@NorthwindHelp", "Northwind", "#northwind", "Northwind app", "NW+")
COMPETITORS = ("Contoso", "@ContosoCares", "Fabrikam", "Tailspin", "@FabrikamSupport")
# The share-of-voice parties of the bench's config (brand.keywords and brand.competitors).
PARTIES = {
    "Northwind": ["Northwind"],
    "Contoso": ["Contoso", "@ContosoCares"],
    "Fabrikam": ["Fabrikam", "@FabrikamSupport"],
    "Tailspin": ["Tailspin"],
}
FILLER = (
    "the a to and of my is it for on this that with was have just but not you so at be "
    "can they all your from get when now out if what about there one been again still "
    "after today week day time really even why how would could anyone else here".split()
)
SENTIMENT_WORDS = {
    "negative": "awful broken terrible useless worst angry refund cancel disappointed slow".split(),
    "neutral": "okay update question wondering changed noticed version order account maybe".split(),
    "positive": "love great thanks awesome fast smooth helpful finally perfect happy".split(),
}
THEMES = [  # (automatic label's terms, user-given name or None)
    (("battery", "drain", "charge"), "Battery drain"),
    (("login", "password", "2fa"), "Sign-in problems"),
    (("delivery", "late", "courier"), "Late delivery"),
    (("refund", "charge", "billing"), "Billing and refunds"),
    (("app", "crash", "update"), "Crashes after update"),
    (("price", "expensive", "plan"), "Pricing"),
    (("support", "agent", "wait"), "Support wait times"),
    (("sync", "cloud", "backup"), None),
    (("screen", "dark", "mode"), "Dark mode"),
    (("notification", "spam", "push"), None),
    (("account", "locked", "suspended"), "Locked accounts"),
    (("subscription", "renew", "cancel"), "Subscription cancellation"),
    (("feature", "request", "widget"), "Feature requests"),
    (("order", "missing", "item"), "Missing items"),
    (("offline", "outage", "down"), "Outages"),
    (("translation", "language", "german"), None),
    (("privacy", "data", "tracking"), "Privacy"),
    (("speed", "slow", "loading"), "Slow loading"),
    (("coupon", "discount", "promo"), None),
    (("crash", "freeze", "launch"), None),  # merged into theme 5 ("Crashes after update")
]
MERGED = {20: 5}
INTENTS = ("complaint", "question", "praise", "feature_request", "other")
LANGUAGES = ("en", "de", "fr", "es", "nl", "und")
LANGUAGE_SHARE = (0.82, 0.06, 0.04, 0.04, 0.02, 0.02)
AGENTS = tuple(f"agent{i:02d}" for i in range(1, 13))
TAGS = ("billing", "bug", "shipping", "vip", "follow-up", "press")
AUTHORS = 200_000
CUSTOMERS = 5_000
SYLLABLES = "ka lo mi ne ru sa ti vo ze an el is or um ba de fi go hu ja".split()


def log(message: str) -> None:
    """Progress to stderr, with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the generator ---------------------------------------------------------------------------


@dataclass
class Plan:
    """The per-mention draws, as arrays in mention-id order (id = index + 1)."""

    when: np.ndarray  # seconds since the epoch, int64
    author: np.ndarray  # author index
    source: np.ndarray  # index into SOURCES
    theme: np.ndarray  # theme id, or 0 for "below threshold"
    theme_score: np.ndarray
    sentiment: np.ndarray  # 0 negative, 1 neutral, 2 positive
    sentiment_score: np.ndarray
    intent: np.ndarray
    language: np.ndarray
    words: np.ndarray  # number of filler words per text
    home: np.ndarray  # each author's source (index into SOURCES)


def _plan(rows: int, rng: np.random.Generator) -> Plan:
    # Days: volume doubles over two years, weekends are quieter, a few incident spikes.
    day = np.arange(DAYS)
    weight = (1.0 + day / DAYS) * np.where((day + 2) % 7 >= 5, 0.7, 1.0)
    for spike in rng.choice(DAYS, 6, replace=False):
        weight[spike] *= rng.uniform(3, 6)
    hour_w = 0.3 + np.exp(-(((np.arange(24) - 16) / 4.5) ** 2))  # afternoon/evening peak, UTC
    days = rng.choice(DAYS, rows, p=weight / weight.sum())
    hours = rng.choice(24, rows, p=hour_w / hour_w.sum())
    start = int((T_END - timedelta(days=DAYS)).timestamp()) + 1
    when = start + days * 86400 + hours * 3600 + rng.integers(0, 3600, rows)
    # Ids follow collection order: roughly time order, with up to two days of jitter
    # (late collection, backfills), so the table is not perfectly sorted by time.
    order = np.argsort(when + rng.integers(0, 2 * 86400, rows), kind="stable")
    when = when[order]
    # Authors: Zipf over AUTHORS handles; each author posts on one home source.
    ranks = np.arange(1, AUTHORS + 1)
    p = 1.0 / ranks**1.1
    author = rng.choice(AUTHORS, rows, p=p / p.sum())
    home = rng.choice(len(SOURCES), AUTHORS, p=SOURCE_SHARE)
    theme = np.where(rng.random(rows) < 0.72, rng.integers(1, len(THEMES) + 1, rows), 0)
    sentiment = rng.choice(3, rows, p=(0.38, 0.37, 0.25))
    return Plan(
        when=when.astype(np.int64),
        author=author,
        source=home[author],
        theme=theme,
        theme_score=np.round(rng.uniform(0.35, 0.9, rows), 6),
        sentiment=sentiment,
        sentiment_score=np.round(rng.uniform(0.4, 0.99, rows), 6),
        intent=rng.choice(len(INTENTS), rows, p=(0.4, 0.25, 0.15, 0.08, 0.12)),
        language=rng.choice(len(LANGUAGES), rows, p=LANGUAGE_SHARE),
        words=rng.integers(14, 45, rows),
        home=home,
    )


def _author_handle(i: int, source: str) -> str:
    name = SYLLABLES[i % 20] + SYLLABLES[(i // 20) % 20] + SYLLABLES[(i // 400) % 20]
    base = f"{name}{i // 8000}"
    if source == "x":
        return f"@{base.capitalize()}"
    if source == "reddit":
        return f"u/{base}"
    return base.capitalize()


class Writer:
    """Bulk inserts at the driver level: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.raw: Any = engine.raw_connection()
        if not self.pg:
            cur = self.raw.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
            cur.close()

    def when(self, seconds: int | float | datetime | None) -> Any:
        """A timestamp as each driver wants it (SQLite: the text SQLAlchemy writes)."""
        if seconds is None:
            return None
        at = (
            seconds
            if isinstance(seconds, datetime)
            else datetime.fromtimestamp(float(seconds), UTC)
        )
        return at if self.pg else at.replace(tzinfo=None).isoformat(" ", "microseconds")

    def js(self, value: Any) -> str | None:
        """A JSON column value."""
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def flag(self, value: bool) -> Any:
        """A boolean column value."""
        return bool(value) if self.pg else int(value)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert ``rows`` (tuples in ``columns`` order); returns how many."""
        cur = self.raw.cursor()
        n = 0
        if self.pg:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch = list(rows)
            cur.executemany(sql, batch)
            n = len(batch)
        cur.close()
        return n

    def commit(self) -> None:
        """Commit what was written so far."""
        self.raw.commit()

    def close(self) -> None:
        """Commit, fix the id sequences (PostgreSQL) and close."""
        self.raw.commit()
        if self.pg:
            cur = self.raw.cursor()
            for table in (
                "customers",
                "customer_handles",
                "themes",
                "mentions",
                "enrichments",
                "conversations",
                "corrections",
                "replies",
                "conversation_notes",
                "escalation_events",
                "surveys",
                "users",
                "audit_log",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            self.raw.commit()
            cur.close()
        self.raw.close()


def _texts(plan: Plan, lo: int, hi: int, rng: np.random.Generator) -> list[str]:
    out = []
    n_filler = len(FILLER)
    picks = rng.integers(0, n_filler, (hi - lo, 45)).tolist()
    brand_pick = rng.integers(0, len(BRAND), hi - lo).tolist()
    rival = rng.random(hi - lo) < 0.15
    rival_pick = rng.integers(0, len(COMPETITORS), hi - lo).tolist()
    sent_pick = rng.integers(0, 10, (hi - lo, 2)).tolist()
    for k, i in enumerate(range(lo, hi)):
        words = [FILLER[j] for j in picks[k][: int(plan.words[i])]]
        sw = SENTIMENT_WORDS[("negative", "neutral", "positive")[int(plan.sentiment[i])]]
        words.insert(len(words) // 3, sw[sent_pick[k][0]])
        words.insert(2 * len(words) // 3, sw[sent_pick[k][1]])
        theme = int(plan.theme[i])
        if theme:
            terms = THEMES[theme - 1][0]
            words.insert(len(words) // 2, terms[k % 3])
            words.insert(len(words) // 4, terms[(k + 1) % 3])
        words.insert(0, BRAND[brand_pick[k]])
        if rival[k]:
            words.append(f"than {COMPETITORS[rival_pick[k]]}")
        out.append(" ".join(words)[:300])
    return out


def populate(engine: Engine, rows: int, seed: int) -> dict[str, int]:
    """Write the whole data set into a migrated, empty database; returns row counts."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    plan = _plan(rows, rng)
    log(f"planned {rows:,} mentions in {time.perf_counter() - t0:.1f} s")
    w = Writer(engine)
    now = w.when(T_END)
    counts: dict[str, int] = {}

    # Customers: 5,000, most with an X or Reddit handle of one of the more active authors.
    cust_author = rng.choice(np.arange(50, 60_000), CUSTOMERS, replace=False)
    segments = ("standard", "standard", "standard", "vip", "smb", "enterprise")
    customers = []
    handles = []
    author_customer: dict[int, int] = {}
    for pk in range(1, CUSTOMERS + 1):
        a = int(cust_author[pk - 1])
        first, last = SYLLABLES[a % 20].capitalize(), SYLLABLES[(a // 7) % 20].capitalize() + "son"
        attrs = {"lifetime_value": round(float(rng.uniform(20, 9000)), 2), "country": "DE"}
        customers.append(
            (pk, f"C{pk:05d}", f"{first} {last}", f"c{pk}@example.com", None,
             segments[pk % len(segments)], w.js(attrs), w.flag(pk % 3 != 0), now, now)
        )  # fmt: skip
        source = SOURCES[int(plan.home[a])]
        if source in ("x", "reddit") and pk % 10:
            display = _author_handle(a, source)
            norm = display.lower().removeprefix("@").removeprefix("u/")
            handles.append((pk, pk, source, norm, display))
            author_customer[a] = pk
    counts["customers"] = w.insert(
        "customers",
        ("id", "customer_id", "name", "email", "phone", "segment", "attributes",
         "consent_contact", "created_at", "updated_at"),
        customers,
    )  # fmt: skip
    counts["customer_handles"] = w.insert(
        "customer_handles", ("id", "customer_pk", "platform", "handle", "display"), handles
    )
    themes = []
    for tid, (terms, name) in enumerate(THEMES, start=1):
        merged = MERGED.get(tid)
        themes.append(
            (tid, ", ".join(terms), name, w.js([[t, 0.1] for t in terms]), "cluster",
             "merged" if merged else "active", w.flag(tid in (1, 2)), merged, 0,
             "bench-fit-1", now, now)
        )  # fmt: skip
    counts["themes"] = w.insert(
        "themes",
        ("id", "label", "name", "terms", "origin", "status", "pinned", "merged_into", "size",
         "fit_id", "created_at", "updated_at"),
        themes,
    )  # fmt: skip
    w.commit()

    sentiments = ("negative", "neutral", "positive")
    enr_cols = ("id", "mention_id", "stage", "label", "score", "data", "model_name",
                "model_version", "created_at")  # fmt: skip
    conv_cols = ("id", "mention_id", "customer_pk", "status", "assignee", "tags", "priority",
                 "escalated", "escalation_level", "escalation", "opened_at",
                 "first_response_at", "resolved_at", "pending_since", "paused_s", "version",
                 "created_at", "updated_at", "updated_by")  # fmt: skip
    m_cols = ("id", "source", "external_id", "created_at", "author_handle", "author_name",
              "text", "url", "rating", "in_reply_to", "raw", "collected_at")  # fmt: skip
    end_s = T_END.timestamp()
    enr_id = 0
    counts.update(mentions=0, enrichments=0, conversations=0)
    escalated_convs: list[tuple[int, int]] = []
    closed_convs: list[tuple[int, int]] = []
    strong_mentions: list[int] = []
    t0 = time.perf_counter()
    for lo in range(0, rows, CHUNK):
        hi = min(rows, lo + CHUNK)
        texts = _texts(plan, lo, hi, rng)
        r = rng.random((hi - lo, 8))
        mentions: list[tuple[Any, ...]] = []
        enrich: list[tuple[Any, ...]] = []
        convs: list[tuple[Any, ...]] = []
        for k, i in enumerate(range(lo, hi)):
            mid = i + 1
            src = SOURCES[int(plan.source[i])]
            a = int(plan.author[i])
            at = int(plan.when[i])
            handle = _author_handle(a, src)
            s = int(plan.sentiment[i])
            rating = (1 + 2 * s + int(r[k, 0] < 0.5)) if src in REVIEW_SOURCES else None
            reply_to = f"{src}-{mid - 1}" if mid > 1 and r[k, 1] < 0.08 else None
            name = handle.lstrip("@").replace("u/", "")
            url = f"https://example.com/{src}/{mid}"
            rating = min(rating, 5) if rating else None
            raw = {
                "id": f"{src}-{mid}",
                "created_at": at,
                "user": handle,
                "name": name,
                "text": texts[k],
                "url": url,
                "rating": rating,
                "in_reply_to": reply_to,
            }
            mentions.append(
                (mid, src, f"{src}-{mid}", w.when(at), handle, name, texts[k], url, rating,
                 reply_to, w.js(raw), w.when(at + 300))
            )  # fmt: skip
            made = w.when(at + 900)
            sp = float(plan.sentiment_score[i])
            rest = round((1 - sp) / 2, 6)
            probs = {lab: (sp if j == s else rest) for j, lab in enumerate(sentiments)}
            enrich.append(
                (enr_id + 1, mid, "sentiment", sentiments[s], sp,
                 w.js({"probs": probs, "low_confidence": sp < 0.5}),
                 "listenwell-sentiment-minilm", "0.1.0", made)
            )  # fmt: skip
            theme = int(plan.theme[i])
            enrich.append(
                (enr_id + 2, mid, "themes", str(theme) if theme else None,
                 float(plan.theme_score[i]) if theme else round(float(r[k, 2]) * 0.35, 6),
                 None if theme else w.js({"reason": "below threshold"}),
                 "themes.embedding", "bench-fit-1", made)
            )  # fmt: skip
            intent = INTENTS[int(plan.intent[i])]
            enrich.append(
                (enr_id + 3, mid, "intent", intent, round(0.5 + float(r[k, 3]) / 2, 6),
                 w.js({"rules": []}), "listenwell-intent-prototypes", "0.1.0", made)
            )  # fmt: skip
            lang = LANGUAGES[int(plan.language[i])]
            enrich.append(
                (enr_id + 4, mid, "language", lang, round(0.6 + float(r[k, 4]) * 0.4, 6),
                 w.js({"language": lang, "chars": len(texts[k])}), "py3langid", "0.3.0", made)
            )  # fmt: skip
            linked = author_customer.get(a)
            weak = linked is None and r[k, 5] < 0.02
            if linked is not None or weak:
                cpk = linked if linked is not None else 1 + int(r[k, 6] * CUSTOMERS) % CUSTOMERS
                strength = "strong" if linked is not None else "weak"
                conf = 0.95 if linked is not None else 0.4
                data = {"customer_pk": cpk, "strength": strength, "ambiguous": False,
                        "evidence": [{"kind": "handle" if linked else "name", "value": handle,
                                      "weight": conf}], "suggestions": []}  # fmt: skip
                enrich.append(
                    (enr_id + 5, mid, "links", f"C{cpk:05d}", conf, w.js(data),
                     "listenwell-linker", "0.1.0", made)
                )  # fmt: skip
                if linked is not None:
                    strong_mentions.append(mid)
            else:
                data = {"customer_pk": None, "strength": None, "ambiguous": False,
                        "evidence": [], "suggestions": []}  # fmt: skip
                enrich.append(
                    (enr_id + 5, mid, "links", None, None, w.js(data), "listenwell-linker",
                     "0.1.0", made)
                )  # fmt: skip
            enr_id += 5
            age_days = (end_s - at) / 86400
            u = float(r[k, 7])
            if age_days < 3:
                status = "new" if u < 0.5 else "open" if u < 0.85 else "pending"
            elif age_days < 14:
                status = ("open", "pending", "resolved", "resolved", "closed")[int(u * 5)]
            else:
                status = "resolved" if u < 0.4 else "closed"
            pr = r[k, 0]
            priority = (
                "low" if pr < 0.1 else "normal" if pr < 0.75 else "high" if pr < 0.93 else "urgent"
            )
            escalated = r[k, 2] < 0.03
            level = 1 + int(r[k, 3] * 3) if escalated else 0
            answered = status != "new"
            assignee = AGENTS[int(r[k, 4] * len(AGENTS))] if answered or r[k, 4] < 0.2 else None
            tags = [TAGS[int(r[k, 6] * len(TAGS))]] if r[k, 5] < 0.15 else []
            done = status in ("resolved", "closed")
            convs.append(
                (mid, mid, linked, status, assignee, w.js(tags), priority, w.flag(escalated), level,
                 w.js({"rules": ["negative_vip"], "score": 0.9}) if escalated else None,
                 w.when(at), w.when(at + 1800 + int(r[k, 1] * 20000)) if answered else None,
                 w.when(at + 90000) if done else None,
                 w.when(at + 7200) if status == "pending" else None, 0.0, 1 + int(answered),
                 made, made, "system")
            )  # fmt: skip
            if escalated:
                escalated_convs.append((mid, at))
            if done and r[k, 5] > 0.85:
                closed_convs.append((mid, at))
        counts["mentions"] += w.insert("mentions", m_cols, mentions)
        counts["enrichments"] += w.insert("enrichments", enr_cols, enrich)
        counts["conversations"] += w.insert("conversations", conv_cols, convs)
        w.commit()
        rate = hi / (time.perf_counter() - t0)
        log(f"  {hi:,}/{rows:,} mentions written ({rate:,.0f} mentions/s with their rows)")

    # Agents' corrections (a few hundred), replies, notes, escalation history, surveys.
    picks = rng.choice(rows, min(rows, 800), replace=False)
    corrections = []
    model: str | None
    for n, i in enumerate(picks.tolist(), start=1):
        stage = ("sentiment", "sentiment", "themes", "intent")[n % 4]
        if stage == "sentiment":
            label, model = (
                sentiments[(int(plan.sentiment[i]) + 1) % 3],
                sentiments[int(plan.sentiment[i])],
            )
        elif stage == "themes":
            label, model = str(1 + n % 19), str(int(plan.theme[i])) if plan.theme[i] else None
        else:
            label, model = INTENTS[(int(plan.intent[i]) + 1) % 5], INTENTS[int(plan.intent[i])]
        corrections.append(
            (n, i + 1, stage, label, model, "bench-model", "1", AGENTS[n % len(AGENTS)],
             w.when(int(plan.when[i]) + 86400))
        )  # fmt: skip
    counts["corrections"] = w.insert(
        "corrections",
        ("id", "mention_id", "stage", "label", "model_label", "model_name", "model_version",
         "actor", "created_at"),
        corrections,
    )  # fmt: skip
    counts["replies"] = w.insert(
        "replies",
        ("id", "conversation_id", "body", "status", "platform", "attempts", "actor",
         "created_at", "sent_at"),
        (
            (n, cid, "Thanks for reaching out! We have fixed this on our side.", "sent",
             "x", 1, AGENTS[n % len(AGENTS)], w.when(at + 3600), w.when(at + 3601))
            for n, (cid, at) in enumerate(closed_convs, start=1)
        ),
    )  # fmt: skip
    counts["conversation_notes"] = w.insert(
        "conversation_notes",
        ("id", "conversation_id", "author", "body", "created_at"),
        (
            (n, cid, AGENTS[n % len(AGENTS)], "Checked the order, waiting for the courier.",
             w.when(at + 1200))
            for n, (cid, at) in enumerate(closed_convs[::3], start=1)
        ),
    )  # fmt: skip
    counts["escalation_events"] = w.insert(
        "escalation_events",
        ("id", "conversation_id", "at", "kind", "from_level", "to_level", "priority", "actor",
         "detail"),
        (
            (n, cid, w.when(at + 600), "escalated", 0, 1, "high", "system",
             w.js({"rules": ["negative_vip"]}))
            for n, (cid, at) in enumerate(escalated_convs, start=1)
        ),
    )  # fmt: skip
    counts["surveys"] = w.insert(
        "surveys",
        ("id", "source", "external_id", "kind", "score", "comment", "customer_pk",
         "conversation_id", "answered_at", "imported_at"),
        (
            (n, "bench", f"s{n}", "csat" if n % 2 else "nps",
             (1 + n % 5) if n % 2 else n % 11, None, 1 + n % CUSTOMERS, cid,
             w.when(at + 100_000), now)
            for n, (cid, at) in enumerate(closed_convs[:30_000], start=1)
        ),
    )  # fmt: skip
    w.insert(
        "audit_log",
        ("id", "at", "actor", "action", "entity", "entity_id", "detail"),
        [(1, now, "bench", MARKER_ACTION, "bench", str(rows),
          w.js({"rows": rows, "seed": seed, "version": GENERATOR_VERSION, "counts": counts}))],
    )  # fmt: skip
    w.close()
    return counts


# -- the cached databases ----------------------------------------------------------------------


def _seeded(engine: Engine, rows: int, seed: int) -> bool:
    from listenwell.store.models import AuditRow

    try:
        with engine.connect() as conn:
            detail = conn.execute(
                select(AuditRow.detail).where(AuditRow.action == MARKER_ACTION)
            ).scalar()
    except Exception:  # noqa: BLE001 - no table, no database: not seeded
        return False
    if not isinstance(detail, dict):
        return False
    wanted = {"version": GENERATOR_VERSION, "rows": rows, "seed": seed}
    return all(detail.get(k) == v for k, v in wanted.items())


def database(kind: str, args: argparse.Namespace) -> str:
    """The URL of the cached database of ``kind``, generated first where needed."""
    from listenwell import store

    name = f"dashboard-{args.rows}-s{args.seed}-g{GENERATOR_VERSION}"
    if kind == "sqlite":
        folder = Path(args.db_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.db"
        url = f"sqlite:///{path}"
        if args.rebuild:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        db = name.replace("-", "_")
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db}
            ).scalar()
            if exists and args.rebuild:
                conn.execute(text(f'DROP DATABASE "{db}" WITH (FORCE)'))
                exists = None
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        url = make_url(args.pg).set(database=db).render_as_string(hide_password=False)
    engine = store.connect(url)
    try:
        if not _seeded(engine, args.rows, args.seed):
            log(f"{kind}: generating {args.rows:,} mentions into {_safe(url)}")
            _reset(engine)
            t0 = time.perf_counter()
            store.upgrade(engine)
            counts = populate(engine, args.rows, args.seed)
            log(f"{kind}: generated in {time.perf_counter() - t0:.0f} s: {counts}")
            if kind == "postgresql":  # what autovacuum does soon after a bulk load
                t0 = time.perf_counter()
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text("VACUUM ANALYZE"))
                log(f"{kind}: VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        status = store.upgrade(engine)
        log(
            f"{kind}: schema at {status.applied[-1].split()[0]} "
            f"(upgrade check {time.perf_counter() - t0:.1f} s)"
        )
        try:  # the dashboard's daily counts (migration 0009), as the workers keep them
            from listenwell.store.rollup import refresh
        except ImportError:  # a version without them
            pass
        else:
            done = refresh(engine, parties=PARTIES)
            log(
                f"{kind}: dashboard counts refreshed up to mention {done.watermark:,} "
                f"({done.days:,} days counted in {done.seconds:.1f} s)"
            )
    finally:
        engine.dispose()
    return url


def _reset(engine: Engine) -> None:
    """Empty a half-written database (an interrupted generation)."""
    from listenwell.store.models import metadata

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            names = [t.name for t in reversed(metadata.sorted_tables)] + ["alembic_version"]
            for name in names:
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- the measurement (in a child process) -------------------------------------------------------


def app_pages() -> list[str]:
    """The pages ``app.py`` can put in ``st.navigation``, in the order it names them.

    Both spellings count: a literal ``"app_pages/x.py"``, and a page-table entry
    ``"x"`` where ``app.py`` builds the path as ``f"app_pages/{name}.py"`` (then
    only pages whose file exists, as ``app.py`` itself checks).
    """
    tree = ast.parse(APP.read_text(encoding="utf-8"))
    builds = any(
        isinstance(n, ast.JoinedStr)
        and any(isinstance(v, ast.Constant) and "app_pages/" in str(v.value) for v in n.values)
        for n in ast.walk(tree)
    )
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value = node.value
        if re.fullmatch(r"app_pages/[\w/]+\.py", value):
            found.append(value)
        elif (
            builds and re.fullmatch(r"\w+", value) and (REPO / "app_pages" / f"{value}.py").exists()
        ):
            if value not in ("common", "charts", "__init__"):
                found.append(f"app_pages/{value}.py")
    return list(dict.fromkeys(found))


def _sign_in(at: Any, url: str) -> None:
    """Sign the AppTest session in as an admin, the way tests/app_helpers.py does it:
    the user exists in the database and the session is in ``at.session_state``."""
    try:
        from listenwell.store.users import ensure_user
    except ImportError:  # a version without sign-in: every page is open
        return
    from listenwell import store

    engine = store.connect(url)
    try:
        ensure_user(engine, BENCH_USER, "admin", "Bench Admin", actor="bench")
    finally:
        engine.dispose()
    now = time.time()
    at.session_state[SESSION_KEY] = {"username": BENCH_USER, "signed_in_at": now, "last_seen": now}


def _rss_mib() -> tuple[float, float]:
    """(peak, current) resident set size of this process, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return peak, current


def measure(
    url: str, pages: list[str], runs: int, repeat: int, warmup: str | None
) -> dict[str, Any]:
    """Render ``pages`` cold and warm, then time the inbox; returns the figures.

    With ``warmup`` (a config file), every page is first rendered once on that
    config's small database, so the timings are those of a running server: its
    modules imported and Streamlit started, but no query of this database cached.
    """
    import streamlit as st
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    set_log_level("error")  # AppTest's "missing ScriptRunContext" warnings
    from listenwell.store.inbox import ACTIVE_STATUSES

    if warmup:
        real = os.environ["LISTENWELL_CONFIG"]
        os.environ["LISTENWELL_CONFIG"] = warmup
        small = yaml_url(Path(warmup))
        for page in pages:
            _time_page(AppTest, small, page, 0, quiet=True)
        os.environ["LISTENWELL_CONFIG"] = real
        st.cache_data.clear()
        st.cache_resource.clear()
        log(f"  warmed up on {WARMUP_ROWS:,} mentions")

    out: dict[str, Any] = {"pages": []}
    for page in pages:
        out["pages"].append(_time_page(AppTest, url, page, runs, repeat=repeat))
    # The same pages over the whole two years: the widest view a user can pick.
    for page in [p for p in WIDE if p in pages]:
        out["pages"].append(_time_page(AppTest, url, page, runs, repeat=repeat, whole_range=True))
    out["rss_peak_mib"], out["rss_now_mib"] = _rss_mib()

    out["inbox"] = {
        "default": _time_inbox(url, {}),
        # What app_pages/inbox.py asks for on a fresh inbox (its DEFAULTS).
        "page": _time_inbox(url, {"status": ACTIVE_STATUSES, "escalated": False}),
    }
    log(f"  inbox first page: {out['inbox']}")
    return out


def yaml_url(config: Path) -> str:
    """The ``database_url`` of a config file this bench wrote."""
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.startswith("database_url:"):
            return line.split(":", 1)[1].strip().strip("'")
    raise ValueError(f"no database_url in {config}")


def _time_page(
    app_test: Any,
    url: str,
    page: str,
    runs: int,
    *,
    repeat: int = 1,
    whole_range: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """One page, ``repeat`` times: the first run with Streamlit's caches cleared (cold),
    then ``runs`` more (warm); the medians. With ``whole_range`` the sidebar's dates are
    first set to every day with data (on a warmed-up run), then the caches cleared."""
    colds: list[float] = []
    warms: list[float] = []
    problem = ""
    for _ in range(repeat):
        cold, warm_runs, problem = _render(app_test, url, page, runs, whole_range)
        colds.append(cold)
        warms += warm_runs
        if problem:
            break
    label = f"{page}, all {DAYS // 365} years" if whole_range else page
    row: dict[str, Any] = {
        "page": label,
        "cold_s": statistics.median(colds),
        "cold_max_s": max(colds),
        "warm_s": statistics.median(warms) if warms else None,
        "problem": problem,
    }
    if not quiet:
        shown = " ".join(f"{c:.2f}" for c in colds)
        warm = "-" if row["warm_s"] is None else f"{row['warm_s']:.3f}"
        log(f"  {label}: cold {shown} s, warm {warm} s {problem}")
    return row


def _render(
    app_test: Any, url: str, page: str, runs: int, whole_range: bool
) -> tuple[float, list[float], str]:
    """One cold run of ``page`` and ``runs`` warm ones: (cold s, warm s, problem or "")."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    at = app_test.from_file(str(APP), default_timeout=300)
    _sign_in(at, url)
    at.switch_page(page)
    if whole_range:
        at.run()
        picker = at.date_input(key="filter_dates")
        picker.set_value((picker.min, picker.max))
        st.cache_data.clear()
        st.cache_resource.clear()
    times = []
    for _ in range(1 + runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            return times[0], [], "exception: " + str(at.exception[0].message).splitlines()[0][:120]
        if at.error:
            return times[0], [], "error: " + str(at.error[0].value).splitlines()[0][:120]
    return times[0], times[1:], ""


def _time_inbox(url: str, filters: dict[str, Any]) -> dict[str, float]:
    """``list_conversations``' first page (cold: a fresh engine), warm, the next page, and
    newest first; milliseconds."""
    from listenwell import store
    from listenwell.store.inbox import list_conversations

    engine = store.connect(url)
    try:
        t0 = time.perf_counter()
        first = list_conversations(engine, **filters)
        cold = (time.perf_counter() - t0) * 1000
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            list_conversations(engine, **filters)
            warm.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        list_conversations(engine, after=first.next_after, **filters)
        page2 = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        list_conversations(engine, order="newest", **filters)
        newest = (time.perf_counter() - t0) * 1000
    finally:
        engine.dispose()
    return {
        "cold_ms": cold,
        "warm_ms": statistics.median(warm),
        "next_page_ms": page2,
        "newest_ms": newest,
    }


def _config(folder: Path, name: str, url: str) -> Path:
    config = folder / f"dashboard-bench-{name}.yaml"
    brand, *rivals = PARTIES.items()
    lines = [
        f"database_url: '{url}'",
        "brand:",
        f"  name: {brand[0]}",
        f"  keywords: {json.dumps(brand[1])}",
        "  competitors:",
        *(f"    {name}: {json.dumps(words)}" for name, words in rivals),
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def warmup_database(args: argparse.Namespace) -> Path:
    """A config naming a small SQLite database (2,000 mentions) to warm the child process up on."""
    folder = Path(args.db_dir)
    folder.mkdir(parents=True, exist_ok=True)
    small = argparse.Namespace(**{**vars(args), "rows": WARMUP_ROWS, "rebuild": False})
    return _config(folder, "warmup", database("sqlite", small))


def _child(
    kind: str, url: str, pages: list[str], runs: int, repeat: int, folder: Path, warmup: Path
) -> dict[str, Any]:
    env = {**os.environ, "LISTENWELL_CONFIG": str(_config(folder, kind, url))}
    cmd = [sys.executable, __file__, "--measure", url, "--runs", str(runs)]
    cmd += ["--repeat", str(repeat), "--pages", *pages]
    cmd += ["--warmup-config", str(warmup)]
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stderr:  # progress through, AppTest's bare-mode warnings out
            if not any(noise in line for noise in NOISE):
                sys.stderr.write(line)
        out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"the measurement of {kind} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


def _ok(value: float | None, limit: float) -> str:
    return "n/a" if value is None else ("yes" if value < limit else "**no**")


def report(kind: str, rows: int, r: dict[str, Any]) -> str:
    """One database's figures as Markdown."""
    lines = [
        f"**{'SQLite' if kind == 'sqlite' else 'PostgreSQL'}**, {rows:,} mentions",
        "",
        "| page | cold s (median) | cold s (slowest) | warm s | target met? (cold < 3 s, warm < 1 s) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for p in r["pages"]:
        warm = "–" if p["warm_s"] is None else f"{p['warm_s']:.2f}"
        met = f"cold {_ok(p['cold_s'], TARGET_COLD_S)}, warm {_ok(p['warm_s'], TARGET_WARM_S)}"
        if p["problem"]:
            met += f" ({p['problem']})"
        path, _, note = p["page"].partition(", ")
        name = f"`{path}`" + (f", {note}" if note else "")
        lines.append(f"| {name} | {p['cold_s']:.2f} | {p['cold_max_s']:.2f} | {warm} | {met} |")
    lines.append("")
    for key, what in (
        ("default", "`list_conversations(engine)`, default order and filters"),
        ("page", "the inbox page's defaults: active statuses, not escalated"),
    ):
        i = r["inbox"][key]
        lines.append(
            f"- Inbox first page ({what}, 50 rows): **{i['cold_ms']:.0f} ms** on a fresh "
            f"engine, {i['warm_ms']:.0f} ms warm (target < 300 ms: "
            f"{_ok(i['cold_ms'], TARGET_INBOX_MS)}); next page {i['next_page_ms']:.0f} ms; "
            f"newest first {i['newest_ms']:.0f} ms."
        )
    lines += [
        f"- Dashboard process after rendering every page: peak RSS **{r['rss_peak_mib']:,.0f} MiB**, "
        f"now {r['rss_now_mib']:,.0f} MiB (target < 1,536 MiB: "
        f"{_ok(r['rss_peak_mib'], TARGET_RSS_MIB)}).",
    ]
    return "\n".join(lines)


def main() -> None:
    """Generate (or reuse) the databases, measure each, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Mentions (default 1,000,000).")
    parser.add_argument(
        "--db",
        choices=["sqlite", "postgresql", "postgres", "both"],
        default="sqlite",
        help="Database(s) to measure (default sqlite).",
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL to create databases on.")
    parser.add_argument(
        "--db-dir",
        default=str(Path(tempfile.gettempdir()) / "listenwell-bench"),
        help="Folder of the cached SQLite database (default: listenwell-bench in the temp dir).",
    )
    parser.add_argument("--seed", type=int, default=7, help="Generator seed (default 7).")
    parser.add_argument("--rebuild", action="store_true", help="Generate the data again.")
    parser.add_argument(
        "--pages",
        nargs="+",
        help="Only these pages (a name like 'overview' or a path like app_pages/overview.py).",
    )
    parser.add_argument("--runs", type=int, default=2, help="Warm runs per page (median).")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="Cold renders per page, each with the caches cleared (median; default 3).",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's mode: a URL
    parser.add_argument("--warmup-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    pages = app_pages()
    if args.pages:
        wanted = {p.removeprefix("app_pages/").removesuffix(".py") for p in args.pages}
        pages = [p for p in pages if Path(p).stem in wanted]
        if not pages:
            parser.error(f"no page of app.py matches {args.pages}")
    if args.measure:
        result = measure(args.measure, pages, args.runs, args.repeat, args.warmup_config)
        json.dump(result, sys.stdout)
        return
    kinds = {"both": ["sqlite", "postgresql"], "postgres": ["postgresql"]}.get(args.db, [args.db])
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; load {os.getloadavg()[0]:.1f}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    warmup = warmup_database(args)
    for kind in kinds:
        url = database(kind, args)
        log(f"{kind}: measuring {len(pages)} page(s)")
        result = _child(kind, url, pages, args.runs, args.repeat, Path(args.db_dir), warmup)
        print()
        print(report(kind, args.rows, result), flush=True)
        print(f"\n(load average at the end: {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
