"""The demo: bundled data builds a real database, idempotently, and the dashboard starts on it."""

from __future__ import annotations

import json
import re
import socket
import urllib.request

import pytest
import yaml
from sqlalchemy import select

from listenwell import store
from listenwell.cli import CliError
from listenwell.cli.demo import build_demo, demo_queries
from listenwell.demo import data_path
from listenwell.demo.fakes.server import Reply, fault
from listenwell.demo.fakes.x import FakeX
from listenwell.store import runs
from listenwell.store.models import metadata


def test_bundled_data_ships_with_licence_and_provenance():
    folder = data_path("mentions.jsonl").parents[1]
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "IBM/twitter-customer-care-document-prediction" in source


def bundled() -> list[dict]:
    lines = data_path("mentions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def stored_rows(database_url: str) -> list[dict]:
    eng = store.connect(database_url)
    try:
        table = metadata.tables["mentions"]
        with eng.connect() as conn:
            return [dict(r) for r in conn.execute(select(table)).mappings()]
    finally:
        eng.dispose()


def test_build_demo_collects_every_bundled_mention_once_and_is_idempotent(tmp_path):
    records = bundled()
    fake = FakeX()
    config_path, counts = build_demo(tmp_path / "demo", fake_x=fake)
    assert counts["mentions_new"] == len(records) > 1000
    assert counts["quarantined"] == 0 and counts["customers_new"] >= 250
    # They came through the real X collector's searches, from the fake, which is stopped.
    searches = fake.server.requests_to(r"/2/tweets/search/recent")
    assert len(searches) == counts["x_pages"] >= counts["x_queries"] > 1
    assert {r.query["query"] for r in searches} == set(demo_queries(fake, json_brand()))
    with pytest.raises(AssertionError):
        fake.server.base_url  # noqa: B018 - the server is gone
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert config["brand"]["name"] and config["brand"]["keywords"]
    assert "sources" not in config  # nothing points at the stopped fake's port

    rows = stored_rows(config["database_url"])
    by_id = {r["external_id"]: r for r in rows}
    assert len(rows) == len(by_id) == len(records)
    for rec in records:
        row = by_id[rec["external_id"]]
        assert row["source"] == "x" and row["text"] == rec["text"]
        assert row["in_reply_to"] == rec["in_reply_to"]
        assert row["author_handle"] == rec["author_handle"]
        created = row["created_at"].replace(tzinfo=None).isoformat() + "Z"
        assert created == rec["created_at"]
        assert json.loads(row["raw"])["tweet"]["id"] == rec["external_id"]  # X's wire format
    assert sum(len(r["text"]) > 280 for r in records) > 10  # long posts came via note_tweet

    again_path, again = build_demo(tmp_path / "demo")
    assert again_path == config_path
    assert again["mentions_new"] == 0 and again["quarantined"] == 0
    assert len(stored_rows(config["database_url"])) == len(records)

    eng = store.connect(config["database_url"])
    try:
        assert runs.last_runs(eng)["x"].new == 0  # the second pass ran, and found nothing new
        overview = store.overview_counts(eng)
        assert (
            overview["mentions"] == len(records)
            and overview["customers"] == counts["customers_new"]
        )
        # Some demo customers really posted: their X handles match mention authors.
        authors = set(store.mentions_frame(eng, limit=100_000)["author_handle"].str.lower())
        handles = store.customers_frame(eng, limit=100_000)["handles"].dropna()
        linked = {
            h.split(":", 1)[1].lower()
            for hs in handles
            for h in hs.split(";")
            if h.startswith("x:")
        }
        assert len(linked & authors) >= 50
    finally:
        eng.dispose()


def json_brand() -> dict:
    return json.loads(data_path("brand.json").read_text(encoding="utf-8"))


def test_demo_queries_are_x_syntax_within_its_length_limit():
    fake = FakeX()
    fake.add_mentions(bundled())
    queries = demo_queries(fake, json_brand())
    assert queries[0].startswith('"@RockstarSupport" OR ')  # the brand's own search first
    assert all(len(q) <= 512 for q in queries)
    assert any("from:XboxSupport" in q for q in queries)
    found = {t["id"] for q in queries for t in fake.matching(q)}
    assert found == {r["external_id"] for r in bundled()}


def test_build_demo_fails_in_one_line_when_collecting_fails(tmp_path):
    fake = FakeX()
    fake.server.fail_next(r"/2/tweets/search/recent", *[fault("500") for _ in range(3)])
    with pytest.raises(CliError) as info:
        build_demo(tmp_path / "demo", fake_x=fake)
    message = str(info.value)
    assert "fake X server failed (1 of " in message and "HTTP 500" in message
    assert "\n" not in message


def test_demo_command_reports_a_collection_failure_without_traceback(tmp_path, monkeypatch, capsys):
    from listenwell.cli import demo as demo_module
    from listenwell.cli import main

    class BrokenX(FakeX):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.server.fail_next(r"/2/tweets", Reply(401, {"title": "Unauthorized"}))

    monkeypatch.setattr(demo_module, "FakeX", BrokenX)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--build-only", "--dir", str(tmp_path / "d")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: collecting the demo mentions") and "(401)" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_demo_data_is_pseudonymised(shared_data):
    """No customer handle of the original data set appears anywhere in the bundled mentions."""
    originals = set()
    for name in ("dev.json", "test.json"):
        for conv in json.loads(shared_data("ibm-twitter-customer-care", name).read_text()):
            for turn in conv["dialogContent"]:
                for role in ("client", "client1"):
                    if role in turn:
                        originals.add(turn[role].lower())
    assert len(originals) > 500
    text = data_path("mentions.jsonl").read_text(encoding="utf-8").lower()
    words = set(re.findall(r"@?([a-z0-9_]{4,15})", text))
    # Organisations' accounts (Amazon, Windows, ...) are kept on purpose; people are not.
    from listenwell.demo.build_sample import ORG_ACCOUNTS

    leaked = {h for h in originals - ORG_ACCOUNTS if len(h) >= 6 and h in words}
    assert not leaked, sorted(leaked)[:10]
    emails = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text))
    assert all(e.rstrip(".").endswith(("example.com", "example.org")) for e in emails), emails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_command_serves_the_dashboard(tmp_path, running_demo):
    with running_demo(tmp_path) as url, urllib.request.urlopen(url + "/", timeout=5) as r:
        assert r.status == 200 and "<html" in r.read().decode().lower()
    assert (tmp_path / "demo" / "listenwell-demo.yaml").is_file()
    # Stopping the command stops the server: no orphaned Streamlit keeps the port.
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/_stcore/health", timeout=2)


def test_build_only_prints_the_config_path(tmp_path, capsys):
    from listenwell.cli import main

    main(["demo", "--build-only", "--dir", str(tmp_path / "d")])
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "d" / "listenwell-demo.yaml")


def test_enriched_demo_export_has_sentiment_themes_intent_and_links(tmp_path):
    """The issue's "done when": enrich on the demo data fills every stage; the export shows it."""
    from listenwell.cli.demo import enrich_demo

    config_path, _ = build_demo(tmp_path / "demo")
    report = enrich_demo(config_path, threads=2)
    assert report["embedded"] == len(bundled())
    settings = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    eng = store.connect(settings["database_url"])
    try:
        rows = list(store.iter_export_rows(eng))
    finally:
        eng.dispose()
    assert len(rows) == len(bundled())
    share = {
        col: sum(r[col] not in (None, "") for r in rows) / len(rows)
        for col in ("sentiment", "intent", "language", "topic", "customer_id")
    }
    assert share["sentiment"] == share["intent"] == share["language"] == 1.0
    assert share["topic"] > 0.5  # most mentions are near a theme; the rest stay unthemed
    # 120 generated customers share an author's handle: their mentions link, with evidence.
    linked = [r for r in rows if r["customer_id"]]
    assert 0.02 < share["customer_id"] < 0.5 and linked
    assert all("handle x:" in r["link_evidence"] and r["link_confidence"] > 0.9 for r in linked)
    assert {r["sentiment"] for r in rows} == {"negative", "neutral", "positive"}
    assert {r["intent"] for r in rows} <= {
        "complaint",
        "question",
        "praise",
        "feature_request",
        "other",
    }
