"""File readers: every bad record becomes a quarantined item with a reason; good ones go on."""

from __future__ import annotations

import codecs
import gzip
import json
from contextlib import nullcontext
from pathlib import Path

import pytest

from listenwell import store
from listenwell.collectors.files import (
    FileFormatError,
    normalize_customer,
    normalize_mention,
    read_customers,
    read_mentions,
)

GOOD = {
    "source": "x",
    "external_id": "1",
    "created_at": "2024-01-02T03:04:05Z",
    "author_handle": "@jo",
    "author_name": "Jo",
    "text": "hello",
    "url": "https://x.com/1",
}


@pytest.mark.parametrize(
    "change,outcome",
    [
        ({}, nullcontext()),
        ({"external_id": 12345}, nullcontext()),
        ({"created_at": "2024-01-02T03:04:05+02:00"}, nullcontext()),
        ({"created_at": "2024-01-02 03:04:05"}, nullcontext()),  # naive = UTC
        ({"created_at": 1704164645}, nullcontext()),
        ({"rating": "4"}, nullcontext()),
        ({"rating": 5.0, "text": ""}, nullcontext()),  # a star-only review
        ({"text": "<script>alert(1)</script>"}, nullcontext()),
        (
            {"source": None},
            pytest.raises(store.RecordError, match="missing required field.*source"),
        ),
        ({"external_id": ""}, pytest.raises(store.RecordError, match="external_id")),
        ({"created_at": "yesterday"}, pytest.raises(store.RecordError, match="not ISO 8601")),
        ({"created_at": "2999-01-01T00:00:00Z"}, pytest.raises(store.RecordError, match="future")),
        ({"text": ""}, pytest.raises(store.RecordError, match="missing required field.*text")),
        ({"text": "   "}, pytest.raises(store.RecordError, match="text is empty")),
        ({"text": ["a"]}, pytest.raises(store.RecordError, match="text must be a string")),
        ({"text": "a\x00b"}, pytest.raises(store.RecordError, match="NUL")),
        ({"rating": 6}, pytest.raises(store.RecordError, match="1 to 5")),
        ({"rating": "4.5"}, pytest.raises(store.RecordError, match="whole number")),
        ({"rating": "five"}, pytest.raises(store.RecordError, match="rating")),
        ({"author_handle": {"a": 1}}, pytest.raises(store.RecordError, match="author_handle")),
        (
            {"text": "x" * (store.MAX_TEXT_CHARS + 1)},
            pytest.raises(store.RecordError, match="too long"),
        ),
    ],
)
def test_normalize_mention(change, outcome):
    with outcome:
        m = normalize_mention({**GOOD, **change})
        assert m.source == "x" and m.created_at.tzinfo is not None


def test_normalize_mention_keeps_text_verbatim_and_raw():
    hostile = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))\u202e"
    line = json.dumps({**GOOD, "text": hostile})
    m = normalize_mention(json.loads(line), raw_text=line)
    assert m.text == hostile and m.raw == line


@pytest.mark.parametrize(
    "change,outcome",
    [
        ({}, nullcontext()),
        ({"customer_id": ""}, pytest.raises(store.RecordError, match="customer_id is missing")),
        ({"email": "not-an-email"}, pytest.raises(store.RecordError, match="invalid email")),
        ({"phone": "call me"}, pytest.raises(store.RecordError, match="invalid phone")),
        ({"handles": "x@jo"}, pytest.raises(store.RecordError, match="not platform:handle")),
        (
            {"handles": "x:@this_is_far_too_long_for_x"},
            pytest.raises(store.RecordError, match="X handle"),
        ),
        ({"handles": "x:@jo;twitter:jo"}, pytest.raises(store.RecordError, match="listed twice")),
    ],
)
def test_normalize_customer(change, outcome):
    row = {
        "customer_id": "C1",
        "name": "Jo",
        "email": "Jo@Example.com",
        "phone": "+1 555 0100",
        "handles": "x:@Jo;reddit:u/jo_doe",
        "segment": "VIP",
        "country": "DE",
        **change,
    }
    with outcome:
        c = normalize_customer(row)
        assert c.email == "jo@example.com" and c.segment == "vip"
        assert c.attributes == {"country": "DE"}
        assert [(h.platform, h.handle, h.display) for h in c.handles] == [
            ("x", "jo", "@Jo"),
            ("reddit", "jo_doe", "u/jo_doe"),
        ]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def split(items):
    good = [i for i in items if isinstance(i, store.Mention)]
    bad = [i for i in items if isinstance(i, store.Quarantined)]
    return good, bad


def test_jsonl_quarantines_bad_lines_and_continues(tmp_path):
    lines = [
        json.dumps(GOOD),
        "{not json",
        "[1, 2]",
        "",
        json.dumps({**GOOD, "external_id": "2", "created_at": "nope"}),
        json.dumps({**GOOD, "external_id": "3"}),
    ]
    path = write(tmp_path / "m.jsonl", "\n".join(lines).encode())
    good, bad = split(list(read_mentions(path)))
    assert [m.external_id for m in good] == ["1", "3"]
    assert [(q.origin.rsplit(":", 1)[1], q.reason.split(":")[0]) for q in bad] == [
        ("2", "invalid JSON"),
        ("3", "expected a JSON object, got list"),
        ("5", "created_at is not ISO 8601"),
    ]
    assert bad[0].raw == "{not json"


def test_jsonl_invalid_utf8_line_is_quarantined_with_its_bytes(tmp_path):
    data = json.dumps(GOOD).encode() + b"\n" + b'{"text": "caf\xe9"}\n'
    good, bad = split(list(read_mentions(write(tmp_path / "m.jsonl", data))))
    assert len(good) == 1 and len(bad) == 1
    assert "not valid UTF-8" in bad[0].reason and "\\xe9" in bad[0].raw


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_encodings_are_detected(tmp_path, encoding):
    text = "source,external_id,created_at,text\nx,1,2024-01-01T00:00:00Z,Grüße 👍\n"
    path = write(tmp_path / "m.csv", text.encode(encoding))
    good, bad = split(list(read_mentions(path)))
    assert bad == [] and good[0].text == "Grüße 👍"


def test_declared_encoding_reads_latin1(tmp_path):
    path = write(
        tmp_path / "m.csv",
        "source,external_id,created_at,text\nx,1,2024-01-01,café\n".encode("latin-1"),
    )
    assert split(list(read_mentions(path)))[1][0].reason.startswith("row is not valid UTF-8")
    good, bad = split(list(read_mentions(path, encoding="latin-1")))
    assert bad == [] and good[0].text == "café"


def test_csv_broken_rows(tmp_path):
    text = (
        "source,external_id,created_at,author_handle,text,rating\n"
        'x,1,2024-01-01T00:00:00Z,@a,"multi\nline, with comma",\n'
        "x,2,2024-01-01T00:00:00Z,@a,too,many,fields\n"
        "x,3,2024-01-01T00:00:00Z,@a,short\n"
        "appstore,4,2024-01-01T00:00:00Z,@b,great app,5\n"
        "\n"
        "x,5,2024-01-01T00:00:00Z,@a,,\n"
    )
    good, bad = split(list(read_mentions(write(tmp_path / "m.csv", text.encode()))))
    assert [(m.external_id, m.text, m.rating) for m in good] == [
        ("1", "multi\nline, with comma", None),
        ("4", "great app", 5),
    ]
    assert [(q.origin.rsplit(":", 1)[1], q.reason) for q in bad] == [
        ("4", "row has 7 fields, the header has 6"),
        ("5", "row has 5 fields, the header has 6"),
        ("8", "missing required field(s): text"),
    ]


def test_csv_nul_byte_is_quarantined(tmp_path):
    text = b"source,external_id,created_at,text\nx,1,2024-01-01,a\x00b\nx,2,2024-01-01,ok\n"
    good, bad = split(list(read_mentions(write(tmp_path / "m.csv", text))))
    assert [m.external_id for m in good] == ["2"]
    assert len(bad) == 1 and "NUL" in bad[0].reason


def test_gzip_and_default_source(tmp_path):
    path = tmp_path / "reviews.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("external_id,created_at,text,rating\nr1,2024-01-01,meh,3\n")
    good, bad = split(list(read_mentions(path, default_source="playstore")))
    assert bad == [] and (good[0].source, good[0].rating) == ("playstore", 3)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("m.txt", b"x", "expected a .jsonl or .csv"),
        ("missing.jsonl", None, "file not found"),
        ("empty.csv", b"", "is empty"),
        ("m.csv", b"a,b\n1,2\n", r"lacks column\(s\) source, external_id, created_at"),
        ("m.csv", b"source,source,external_id,created_at\n", "repeats a column"),
    ],
)
def test_whole_file_problems_raise(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message):
        list(read_mentions(path))


def test_reader_streams_lazily(tmp_path):
    path = write(
        tmp_path / "m.jsonl",
        b"\n".join(json.dumps({**GOOD, "external_id": str(i)}).encode() for i in range(10_000)),
    )
    it = read_mentions(path)
    assert next(it).external_id == "0"  # produced before the rest of the file is parsed
    it.close()


def test_read_customers_reports_line_numbers(tmp_path):
    text = (
        "customer_id,name,email,phone,handles,segment,ltv\n"
        "C1,Jo,jo@example.com,,x:@jo,vip,100\n"
        "C2,Al,broken-email,,,standard,5\n"
        ",Nobody,,,,,\n"
        'C4,"Ann, Jr.",ann@example.org,+1-555-0101,reddit:u/ann_jr,new,7\n'
    )
    rows = list(read_customers(write(tmp_path / "c.csv", codecs.BOM_UTF8 + text.encode())))
    assert [(n, c.customer_id if c else None, r) for n, c, r in rows] == [
        (2, "C1", None),
        (3, None, "invalid email 'broken-email'"),
        (4, None, "customer_id is missing"),
        (5, "C4", None),
    ]
    assert rows[3][1].name == "Ann, Jr." and rows[3][1].attributes == {"ltv": "7"}
