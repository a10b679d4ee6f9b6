"""The engagement issue's "done when", on the demo data, through the real commands.

On the enriched demo: complaints escalate with visible reasons, an overdue one is
upgraded by the sweep, an agent's reply goes out through the real X client
(tweepy) to the fake X API, the customer's timeline shows it, the reports open
as a spreadsheet and a web page, and erasure leaves no trace of the person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from cli_helpers import run
from openpyxl import load_workbook
from sqlalchemy import JSON, String, Text, cast, or_, select

from listenwell import store
from listenwell.cli.demo import build_demo, enrich_demo
from listenwell.demo.fakes.x import FakeX
from listenwell.store.models import ConversationRow, metadata


@pytest.fixture(scope="module")
def fake_x() -> Iterator[FakeX]:
    """A fake X API that accepts the inbox's replies."""
    x = FakeX()
    x.server.start()
    yield x
    x.server.stop()


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory, fake_x: FakeX) -> Path:
    """The enriched demo, with the X source pointed at the fake for sending replies."""
    folder = tmp_path_factory.mktemp("engagement")
    config_path, _ = build_demo(folder / "demo")
    enrich_demo(config_path, threads=2)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["sources"] = {
        "x": {"user_token": fake_x.user_token, "api_base_url": fake_x.server.base_url},
        "timeout_s": 5,
    }
    path = folder / "engagement.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def cli(capsys, config: Path, *args: str) -> str:
    code, out, err = run(capsys, "--config", str(config), *args)
    assert code == 0, err
    return out


def test_demo_engagement_from_escalation_to_erasure(capsys, demo_config, fake_x, tmp_path):
    cfg = demo_config
    cli(capsys, cfg, "inbox", "sync")
    applied = json.loads(cli(capsys, cfg, "escalations", "apply", "--json"))
    assert applied["escalated"] > 0

    # Complaints escalate, each with the rules that fired and why.
    queue = json.loads(cli(capsys, cfg, "escalations", "list", "--json", "--limit", "500"))
    assert queue and all(item["escalated"] for item in queue)
    assert all(item["rules"] for item in queue)
    shown = cli(capsys, cfg, "escalations", "show", str(queue[0]["conversation_id"]))
    assert "why" in shown and queue[0]["rules"][0] in shown

    # The demo posts are years old: the sweep finds them overdue and upgrades them.
    swept = json.loads(
        cli(capsys, cfg, "escalations", "sweep", "--now", "2030-01-07T10:00:00+00:00", "--json")
    )
    assert swept["sweep"]["upgraded"] > 0
    history = cli(capsys, cfg, "escalations", "show", str(queue[0]["conversation_id"]))
    assert "upgraded" in history

    # An agent replies through the real X client; the fake X API receives it.
    settings = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    engine = store.connect(settings["database_url"])
    try:
        customers = store.customers_frame(engine)
        frame = store.mentions_frame(engine, limit=5000)
    finally:
        engine.dispose()
    with_customer = frame[frame["customer_id"].notna() & (frame["source"] == "x")]
    assert not with_customer.empty
    mention = with_customer.iloc[0]
    engine = store.connect(settings["database_url"])
    try:
        with engine.connect() as conn:
            conv = conn.execute(
                select(ConversationRow.id).where(ConversationRow.mention_id == int(mention["id"]))
            ).scalar_one()
    finally:
        engine.dispose()
    cli(
        capsys,
        cfg,
        "inbox",
        "reply",
        str(conv),
        "--text",
        "Sorry about this, we are on it",
        "--by",
        "agent-ana",
    )
    assert fake_x.posted and fake_x.posted[-1]["text"] == "Sorry about this, we are on it"
    assert fake_x.posted[-1]["in_reply_to_tweet_id"] == str(mention["external_id"])

    # The customer's timeline shows the mention and the reply.
    customer_id = str(mention["customer_id"])
    view = json.loads(cli(capsys, cfg, "customers", "show", customer_id, "--json"))
    kinds = {event["kind"] for event in view["timeline"]}
    assert {"mention", "reply"} <= kinds

    # Reports open in a spreadsheet and a browser.
    xlsx, page = tmp_path / "feedback.xlsx", tmp_path / "escalations.html"
    cli(capsys, cfg, "report", "feedback", "-o", str(xlsx))
    cli(capsys, cfg, "report", "escalations", "-o", str(page))
    book = load_workbook(xlsx)
    assert len(book.sheetnames) >= 2 and book[book.sheetnames[1]].max_row > 1
    parser = HTMLParser()
    parser.feed(page.read_text(encoding="utf-8"))
    assert "<table" in page.read_text(encoding="utf-8")

    # Erasure leaves no trace of the person (only a hashed audit entry).
    person = customers[customers["customer_id"] == customer_id].iloc[0]
    cli(capsys, cfg, "customers", "erase", customer_id, "--yes", "--by", "dpo")
    needles = [customer_id, str(person["name"]), str(person["email"])]
    needles += [h.split(":", 1)[1] for h in str(person["handles"] or "").split(";") if h]
    engine = store.connect(settings["database_url"])
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                columns = [
                    c
                    for c in table.columns
                    if isinstance(c.type, String | Text | JSON) or c.name in ("data", "detail")
                ]
                for needle in needles:
                    if not columns:
                        continue
                    hit = conn.execute(
                        select(table)
                        .where(or_(*[cast(c, String).contains(needle) for c in columns]))
                        .limit(1)
                    ).first()
                    assert hit is None, f"{needle!r} still in {table.name}"
    finally:
        engine.dispose()
