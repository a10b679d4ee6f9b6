"""``listenwell db refresh-stats`` through the real command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cli_helpers import run
from sqlalchemy import func, select

from listenwell import store
from listenwell.store import rollup
from listenwell.store.models import StatsDailyRow
from listenwell.store.voice import party_key


def test_refresh_stats_counts_every_day_and_the_configured_parties(config_file, db_url, capsys):
    eng = store.connect(db_url)
    t = datetime(2024, 5, 1, 9, tzinfo=UTC)
    store.upsert_mentions(
        eng,
        [store.Mention("x", str(i), t.replace(day=1 + i % 3), f"Acme post {i}") for i in range(30)],
    )
    code, out, err = run(capsys, "--config", str(config_file), "db", "refresh-stats", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["watermark"] == 30 and report["previous"] == 0 and report["days"] == 3
    with eng.connect() as conn:
        assert conn.execute(select(func.sum(StatsDailyRow.mentions))).scalar_one() == 30
        assert rollup.voice_keys(conn) == {party_key(["Acme"])}  # brand.name of the config
    # Nothing new: nothing counted, and the plain output is one line.
    code, out, err = run(capsys, "--config", str(config_file), "db", "refresh-stats")
    assert code == 0, err
    assert out.startswith("dashboard counts up to mention 30 (0 day(s) counted in ")
    assert len(out.strip().splitlines()) == 1
    eng.dispose()
