"""Hostile post text is stored verbatim and rendered inert.

Script tags, Markdown links and images, ``javascript:`` URLs, zero-width and
bidirectional-override characters, every control character but NUL, and a
1 MB post go through the store and through ``listenwell import mentions``
(JSONL and CSV) on SQLite and PostgreSQL and come back identical, and
``export mentions --no-formula-guard`` writes them back out unchanged. On the
dashboard they appear only as data (tables, plain text, code): no
Markdown-rendering element holds them and no element may render HTML.

Documented limits (store/records.py): a text over ``MAX_TEXT_CHARS`` (two
million characters) is quarantined with the reason, never truncated; NUL
cannot be stored by either database and is quarantined too.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from app_helpers import app_test
from cli_helpers import run
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.store.inbox import ensure_conversations
from listenwell.store.models import MentionRow, QuarantineRow

MARK = "Zq9"  # in every hostile text, and in no string of the dashboard's own
_BLOCK = "<script>alert(1)</script> [x](javascript:alert(1)) \u202e\u200b é 😀 "
# 1 MiB of UTF-8, made of the hostile pieces (about 700,000 characters).
HUGE = MARK + (_BLOCK * (2**20 // len(_BLOCK.encode()) + 1))
HOSTILE: dict[str, str] = {
    "script": f"<script>alert('{MARK}')</script>",
    "img": f'<img src=x onerror="alert(1)">{MARK}',
    "md_link": f"[click me {MARK}](javascript:alert(document.cookie))",
    "md_image": f"![{MARK}](https://evil.example/pixel.png)",
    "js_url": f"javascript:alert('{MARK}')",
    "autolink": f"<javascript:alert(1)> {MARK} <https://evil.example>",
    "zero_width": f"{MARK}\u200bhid\ufeffden\u200d\u2060\u200c",
    "rtl": f"{MARK} invoice\u202egnp.exe\u202c \u2066iso\u2069 \u200f",
    "controls": MARK + "".join(chr(c) for c in range(1, 32)) + "\x7f\x85\u2028\u2029",
    "entities": f"&lt;b&gt;{MARK}&amp;&#x3C;script&#x3E;",
    "markdown": f"# {MARK}\n---\n**b** _i_ `c` $x^2$ :red[red] :material/home: ~~s~~ | t |",
    "formula": f'=HYPERLINK("https://evil.example","{MARK}")',
    "huge": HUGE,
}


def test_the_huge_post_is_a_megabyte_and_storable():
    assert len(HUGE.encode("utf-8")) >= 2**20
    assert len(HUGE) <= store.MAX_TEXT_CHARS
    assert store.check_text(HUGE) == HUGE


def _mention(n: int, text: str) -> store.Mention:
    return store.Mention(
        "x",
        f"h{n}",
        datetime(2024, 5, 1, tzinfo=UTC) + timedelta(hours=n),
        text,
        author_handle=f"<b>{MARK}</b>\u202e",
        author_name=f"**{MARK}** [a](javascript:1)",
        url=f"javascript:alert('{MARK}')",
        raw=text,
    )


# ----------------------------------------------------------------- the store


def test_the_store_keeps_every_hostile_text_verbatim(engine: Engine):
    mentions = [_mention(n, text) for n, text in enumerate(HOSTILE.values())]
    assert store.upsert_mentions(engine, mentions).inserted == len(mentions)
    with engine.connect() as c:
        rows = {
            r.external_id: r
            for r in c.execute(
                select(
                    MentionRow.external_id,
                    MentionRow.text,
                    MentionRow.raw,
                    MentionRow.author_handle,
                    MentionRow.author_name,
                    MentionRow.url,
                )
            )
        }
    for n, m in enumerate(mentions):
        r = rows[f"h{n}"]
        assert r.text.encode("utf-8") == m.text.encode("utf-8")
        assert (r.raw, r.author_handle, r.author_name, r.url) == (
            m.raw,
            m.author_handle,
            m.author_name,
            m.url,
        )
    # What the dashboard reads comes back the same way.
    frame = store.mentions_frame(engine, limit=100)
    assert set(frame["text"]) == set(HOSTILE.values())


def test_a_too_long_or_nul_text_is_quarantined_with_the_reason_never_cut(engine: Engine):
    too_long = "x" * (store.MAX_TEXT_CHARS + 1)
    for bad, reason in [(too_long, "too long"), (f"a\x00{MARK}", "NUL")]:
        with pytest.raises(store.RecordError, match=reason):
            store.check_text(bad)
    assert store.mentions_frame(engine).empty


# ----------------------------------------------------------------- import and export


def _rows() -> list[dict[str, str]]:
    return [
        {
            "source": "x",
            "external_id": f"h{n}",
            "created_at": f"2024-05-01T{n:02d}:00:00Z",
            "author_handle": f"<b>{MARK}</b>\u202e",
            "author_name": f"**{MARK}**",
            "text": text,
            "url": f"javascript:alert('{MARK}')",
        }
        for n, text in enumerate(HOSTILE.values())
    ]


def _stored(db_url: str) -> dict[str, tuple[str, ...]]:
    eng = store.connect(db_url)
    try:
        with eng.connect() as c:
            return {
                r.external_id: (r.text, r.author_handle, r.author_name, r.url)
                for r in c.execute(
                    select(
                        MentionRow.external_id,
                        MentionRow.text,
                        MentionRow.author_handle,
                        MentionRow.author_name,
                        MentionRow.url,
                    )
                )
            }
    finally:
        eng.dispose()


def _expected() -> dict[str, tuple[str, ...]]:
    return {
        r["external_id"]: (r["text"], r["author_handle"], r["author_name"], r["url"])
        for r in _rows()
    }


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_import_then_export_is_byte_identical(config_file, db_url, tmp_path, capsys, kind):
    path = tmp_path / f"hostile.{kind}"
    if kind == "jsonl":
        # Raw characters in the file (ensure_ascii=False): only what JSON must escape is.
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows()), encoding="utf-8"
        )
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(_rows()[0]))
            writer.writeheader()
            writer.writerows(_rows())
    code, out, err = run(capsys, "--config", str(config_file), "import", "mentions", str(path))
    assert code == 0, err
    assert f"{len(HOSTILE)} new" in out and "0 quarantined" in out
    assert _stored(db_url) == _expected()

    exported = tmp_path / "out.csv"
    code, _, err = run(
        capsys,
        "--config",
        str(config_file),
        "export",
        "mentions",
        "-o",
        str(exported),
        "--no-formula-guard",
    )
    assert code == 0, err
    with exported.open(encoding="utf-8", newline="") as f:
        back = {
            r["external_id"]: (r["text"], r["author_handle"], r["author_name"], r["url"])
            for r in csv.DictReader(f)
        }
    assert back == _expected()


def test_export_guards_formulas_by_default(config_file, db_url, tmp_path, capsys):
    """The documented exception to "verbatim": a text a spreadsheet would run gets a '."""
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    assert run(capsys, "--config", str(config_file), "import", "mentions", str(path))[0] == 0
    out = tmp_path / "out.csv"
    assert run(capsys, "--config", str(config_file), "export", "mentions", "-o", str(out))[0] == 0
    with out.open(encoding="utf-8", newline="") as f:
        texts = {r["external_id"]: r["text"] for r in csv.DictReader(f)}
    formula = list(HOSTILE).index("formula")
    assert texts[f"h{formula}"] == "'" + HOSTILE["formula"]
    assert texts[f"h{list(HOSTILE).index('script')}"] == HOSTILE["script"]


def test_import_quarantines_a_too_long_post_with_its_reason(config_file, db_url, tmp_path, capsys):
    row = {**_rows()[0], "external_id": "long", "text": "y" * (store.MAX_TEXT_CHARS + 1)}
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config_file), "import", "mentions", str(path))
    assert code == 0 and "0 new" in out and "1 quarantined" in out
    eng = store.connect(db_url)
    try:
        with eng.connect() as c:
            reasons = c.execute(select(QuarantineRow.reason)).scalars().all()
    finally:
        eng.dispose()
    assert len(reasons) == 1 and "too long" in reasons[0]
    assert "long" not in _stored(db_url)


# ----------------------------------------------------------------- the dashboard

# Elements whose content is shown as data, never interpreted.
_DATA = {"Text", "Code", "Arrow", "Dataframe", "Json"}
# Fields of a widget that are data (values); its label and help are Markdown.
_WIDGET_DATA = {"default", "value", "raw_value", "placeholder", "id", "form_id"}
# Widgets whose options show as plain text (radio buttons and pills render theirs as Markdown).
_PLAIN_OPTIONS = {"Selectbox", "MultiSelect", "Slider"}


def _strings(message: Any, skip: frozenset[str] | set[str] = frozenset()) -> Iterator[str]:
    """Every string field of a protobuf message, recursively."""
    for desc, value in message.ListFields():
        if desc.name in skip:
            continue
        single = isinstance(value, str | bytes | int | float) or hasattr(value, "ListFields")
        for v in [value] if single else value:
            if isinstance(v, str):
                yield v
            elif hasattr(v, "ListFields"):
                yield from _strings(v)


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


def _audit_tree(at: AppTest) -> tuple[list[str], list[str]]:
    """(what Markdown-capable parts of the page hold, what its data parts hold)."""
    interpreted: list[str] = []
    data: list[str] = []
    for node in [*at.main, *at.sidebar]:
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        name = proto.DESCRIPTOR.name
        assert name != "Html", "an st.html element"
        assert not getattr(proto, "allow_html", False), f"{name} renders HTML"
        assert not getattr(proto, "unsafe_allow_html", False), f"{name} renders HTML"
        if name in _DATA:
            data += list(_strings(proto))
            if name in ("Arrow", "Dataframe"):
                frame = node.value
                data += [str(c) for c in frame.columns]
                data += [str(v) for v in frame.to_numpy().ravel()]
        elif name == "PlotlyChart":
            # Plotly reads a few HTML tags in labels (<b>, <a href>): post text may be in a
            # chart, but only with its angle brackets defanged.
            for text in _json_strings(json.loads(proto.spec)):
                if MARK in text:
                    assert "<" not in text and ">" not in text, text[:200]
                    data.append(text)
        elif "label" in proto.DESCRIPTOR.fields_by_name:  # a widget (or a labelled block)
            skip = _WIDGET_DATA | ({"options"} if name in _PLAIN_OPTIONS else set())
            interpreted += list(_strings(proto, skip))
            data += [str(getattr(node, "value", ""))]
        else:
            interpreted += list(_strings(proto))
    return interpreted, data


@pytest.fixture
def hostile_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    st.cache_data.clear()
    st.cache_resource.clear()
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    now = datetime.now(UTC) - timedelta(days=1)
    store.upsert_mentions(
        eng,
        [
            store.Mention(
                "x",
                f"h{n}",
                now - timedelta(hours=n),
                text,
                author_handle=f"<b>{MARK}</b>",
                author_name=f"**{MARK}**",
                url=f"javascript:alert('{MARK}')",
            )
            for n, text in enumerate(HOSTILE.values())
        ],
    )
    store.quarantine(eng, [store.Quarantined("x", f"bad record {MARK}", HOSTILE["script"])])
    store.upsert_customers(
        eng,
        [("1", store.Customer("H1", HOSTILE["md_link"], email="h@example.com"))],
    )
    ensure_conversations(eng)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    try:
        yield eng
    finally:
        eng.dispose()
        st.cache_data.clear()
        st.cache_resource.clear()


def _check_inert(at: AppTest, must_show: list[str]) -> None:
    assert not at.exception, at.exception
    interpreted, data = _audit_tree(at)
    leaked = [s for s in interpreted if MARK in s]
    assert not leaked, f"post text in a Markdown element: {leaked[:3]!r}"
    shown = "\n".join(data)
    for text in must_show:
        assert text in shown, f"not shown as data: {text[:60]!r}"


PAGES = ["overview", "mentions", "themes", "escalations", "reports", "quarantine", "settings"]


@pytest.mark.parametrize("page", PAGES)
def test_pages_show_hostile_text_only_as_data(hostile_app, page):
    at = app_test("admin")
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    must = {
        "mentions": list(HOSTILE.values()),
        "quarantine": [HOSTILE["script"]],
    }.get(page, [])
    _check_inert(at, must)


def test_mentions_table_holds_the_exact_texts(hostile_app):
    at = app_test("admin")
    at.run()
    at.switch_page("app_pages/mentions.py").run()
    frame = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert set(frame["text"]) == set(HOSTILE.values())


def test_the_inbox_shows_a_hostile_conversation_as_data(hostile_app):
    from listenwell.store.inbox import list_conversations

    conv = {c.external_id: c.id for c in list_conversations(hostile_app, limit=100).items}
    at = app_test("agent")
    at.run()
    at.switch_page("app_pages/inbox.py").run()
    for kind in ("script", "md_link", "md_image", "rtl", "markdown", "huge"):
        n = list(HOSTILE).index(kind)
        at.selectbox(key="inbox_pick").set_value(conv[f"h{n}"]).run()
        _check_inert(at, [HOSTILE[kind]])


def test_the_customer_360_shows_a_hostile_name_as_data(hostile_app):
    at = app_test("admin")
    at.run()
    at.switch_page("app_pages/customers.py").run()
    at.text_input(key="customers_query").input("H1").run()
    at.selectbox(key="customers_pick").select("H1").run()
    _check_inert(at, [HOSTILE["md_link"]])


def test_the_audit_catches_markdown_and_html():
    """The control: the same audit flags post text drawn as Markdown, or HTML allowed."""
    at = AppTest.from_string(
        f"""
import streamlit as st
st.dataframe({{"text": [{HOSTILE["script"]!r}]}})
st.text({HOSTILE["md_link"]!r})
st.caption({HOSTILE["md_image"]!r})
"""
    ).run()
    interpreted, data = _audit_tree(at)
    assert [s for s in interpreted if MARK in s] == [HOSTILE["md_image"]]
    assert HOSTILE["script"] in data and HOSTILE["md_link"] in data
    html = AppTest.from_string(
        "import streamlit as st\nst.markdown('<b>x</b>', unsafe_allow_html=True)"
    )
    with pytest.raises(AssertionError, match="renders HTML"):
        _audit_tree(html.run())
