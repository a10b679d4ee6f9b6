"""Secrets never reach logs, terminals, files, the database or the dashboard.

Every secret setting gets a distinctive value that the fake Reddit and X
refuse, and the database URL (on PostgreSQL) a password. Then the real
commands run, with and without ``--debug``: collection and replies that fail
authentication, imports, exports, a backup, source status, a broken config.
Nothing they print, log (at DEBUG), write to a file or store in any table may
hold a secret, and neither may the dashboard's settings page.
"""

from __future__ import annotations

import json
import logging
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
import yaml
from app_helpers import app_test
from sqlalchemy import select
from sqlalchemy.engine import make_url

from listenwell import store
from listenwell.cli import main
from listenwell.config import ConfigError, is_secret, iter_settings
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX
from listenwell.store.models import metadata

SECRETS = {
    "sources.reddit.client_secret": "LWS-reddit-client-secret-7Hq2",
    "sources.reddit.password": "LWS-reddit-password-8Jr3",
    "sources.reddit.refresh_token": "LWS-reddit-refresh-token-9Ks4",
    "sources.x.bearer_token": "LWS-x-bearer-token-1Lt5",
    "sources.x.consumer_key": "LWS-x-consumer-key-2Mu6",
    "sources.x.consumer_secret": "LWS-x-consumer-secret-3Nv7",
    "sources.x.access_token": "LWS-x-access-token-4Ow8",
    "sources.x.access_token_secret": "LWS-x-access-token-secret-5Px9",
    "sources.x.user_token": "LWS-x-user-token-6Qy0",
}
DB_PASSWORD = "LWS-database-password-0Rz1"
TWEET = "1800000000000000042"


def test_every_secret_setting_is_covered():
    """A new secret setting must be added to SECRETS, so the checks below cover it."""
    declared = {key for key, field in iter_settings() if is_secret(field)}
    assert declared == set(SECRETS)


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeReddit, FakeX]]:
    reddit, x = FakeReddit(), FakeX()
    reddit.server.start()
    x.server.start()
    yield reddit, x
    reddit.server.stop()
    x.server.stop()


@pytest.fixture
def setup(tmp_path: Path, db_url: str, fakes, monkeypatch: pytest.MonkeyPatch):
    """A config with every secret set (refused by the fakes), and some data to work on."""
    reddit, x = fakes
    reddit.reset()
    x.reset()
    x.add_posts(2)
    reddit.add_posts(2)
    secrets = list(SECRETS.values())
    url = db_url
    if make_url(db_url).get_backend_name() == "postgresql":
        # The test server trusts local connections, so any password is accepted.
        url = make_url(db_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
        secrets.append(DB_PASSWORD)
    values: dict[str, Any] = {}
    for key, value in SECRETS.items():
        _, source, name = key.split(".")
        values.setdefault(source, {})[name] = value
    config = {
        "database_url": url,
        "brand": {"name": "Acme"},
        "sources": {
            "reddit": {
                **values["reddit"],
                "client_id": reddit.client_id,
                "username": reddit.username,
                "oauth_url": reddit.server.base_url,
                "reddit_url": reddit.server.base_url,
                "queries": ["Acme"],
            },
            "x": {**values["x"], "api_base_url": x.server.base_url, "queries": ["Acme"]},
            "timeout_s": 2.0,
        },
    }
    cfg = tmp_path / "listenwell.yaml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    mentions = tmp_path / "mentions.jsonl"
    rows = [
        {
            "source": "x",
            "external_id": TWEET,
            "created_at": "2024-05-01T10:00:00Z",
            "author_handle": "@jdoe",
            "text": "My Acme order never came",
        },
        {
            "source": "reddit",
            "external_id": "t1_c00002",
            "created_at": "2024-05-01T11:00:00Z",
            "author_handle": "u/kim",
            "text": "Acme app crashes",
        },
    ]
    mentions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "customer_id,name,email,phone,handles,segment\nC1,Jo Doe,jo@example.com,,x:@jdoe,vip\n",
        encoding="utf-8",
    )
    return {"cfg": str(cfg), "url": url, "secrets": secrets, "tmp": tmp_path}


def _run(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in-process; returns the exit code and everything it printed (and, under
    --debug, the traceback of what it raised)."""
    extra = ""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - --debug lets errors out: their text counts too
        code = 1
        extra = "".join(traceback.format_exception(exc))
    out, err = capsys.readouterr()
    return code, out + err + extra


def _all_rows(url: str) -> str:
    eng = store.connect(url)
    try:
        with eng.connect() as c:
            return "\n".join(
                repr(row) for t in metadata.sorted_tables for row in c.execute(select(t)).all()
            )
    finally:
        eng.dispose()


def test_no_command_prints_logs_or_stores_a_secret(setup, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    cfg, tmp, secrets = setup["cfg"], setup["tmp"], setup["secrets"]
    printed: list[str] = []

    def cli(*args: str, expect: int | None = 0) -> None:
        for debug in ((), ("--debug",)):
            code, text = _run(capsys, "--config", cfg, *debug, *args)
            printed.append(text)
            if expect is not None:
                assert code == expect, (args, debug, text)

    cli("db", "upgrade")
    cli("db", "status")
    cli("import", "mentions", str(tmp / "mentions.jsonl"))
    cli("import", "customers", str(tmp / "customers.csv"))
    # Collection fails authentication on both platforms (the fakes refuse these secrets).
    cli("collect", expect=1)
    assert any("refused" in t for t in printed[-2:]), printed[-2:]
    cli("sources", "status")
    cli("inbox", "sync")
    # Replies fail authentication too, and are kept as failed drafts with the reason.
    for conv in ("1", "2"):
        cli("inbox", "reply", conv, "--text", "Sorry, we are on it", expect=None)
    cli("inbox", "replies")
    cli("inbox", "retry", "1", expect=None)
    cli("export", "mentions", "-o", str(tmp / "mentions.csv"))
    cli("customers", "export", "C1", "-o", str(tmp / "c1.json"))
    cli("db", "backup", str(tmp / "backup.zip"))
    cli("quarantine", "list")

    failed = _all_rows(setup["url"])
    assert "failed" in failed  # the replies did fail (and their reasons are checked here)
    assert not _leaks(failed, secrets), "a secret is stored in the database"
    for text in printed:
        assert not _leaks(text, secrets), text
    logged = caplog.text + "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert caplog.records  # the clients did log something at DEBUG
    assert not _leaks(logged, secrets), "a secret reached a log record"
    files = [tmp / "mentions.csv", tmp / "c1.json"]
    for f in files:
        assert not _leaks(f.read_text(encoding="utf-8"), secrets), f
    with zipfile.ZipFile(tmp / "backup.zip") as z:
        for name in z.namelist():
            assert not _leaks(z.read(name).decode("utf-8", "replace"), secrets), name


@pytest.mark.parametrize(
    "bad",
    [
        {"sources": {"x": {"bearer_token": ["LWS-x-bearer-token-1Lt5"]}}},
        {"sources": {"x": {"bearer_tokn": "LWS-x-bearer-token-1Lt5"}}},
        {"sources": {"reddit": {"password": {"nested": "LWS-reddit-password-8Jr3"}}}},
        {
            "sources": {
                "reddit": {"client_secret": "LWS-reddit-client-secret-7Hq2"},
                "timeout_s": -1,
            }
        },
    ],
)
def test_a_broken_config_never_echoes_a_secret(tmp_path, capsys, bad):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(bad), encoding="utf-8")
    code, text = _run(capsys, "--config", str(cfg), "db", "status")
    assert code == 1 and "invalid configuration" in text
    assert not _leaks(text, list(SECRETS.values()))
    with pytest.raises(ConfigError) as info:
        main(["--config", str(cfg), "--debug", "db", "status"])
    shown = "".join(traceback.format_exception(info.value))
    assert not _leaks(shown, list(SECRETS.values()))


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def test_the_settings_page_shows_no_secret(setup, capsys, fresh_caches):
    assert _run(capsys, "--config", setup["cfg"], "db", "upgrade")[0] == 0
    _run(capsys, "--config", setup["cfg"], "collect")  # failed runs, with their errors
    at = app_test("admin")
    try:
        at.run()
        at.switch_page("app_pages/settings.py").run()
        assert not at.exception, at.exception
        assert any(s.value == "Credentials" for s in at.subheader)
        kinds = ("markdown", "caption", "text", "code", "info", "error", "warning")
        shown = [str(getattr(e, "value", "")) for kind in kinds for e in at.get(kind)]
        shown += [df.value.to_csv() for df in at.dataframe]
        assert "LWS-" not in "\n".join(shown)
        assert not _leaks("\n".join(shown), setup["secrets"])
    finally:
        # The page's engine lives in st.cache_resource: close its connections before the
        # cache is cleared.
        from listenwell.app_pages import common

        common._engine(setup["url"]).dispose()


def test_masking_lasts_as_long_as_the_run(setup, capsys, caplog):
    """Records made while a command runs are masked; the mask is lifted when it ends, so one
    run's secrets do not garble another's logs in the same process (tests, a worker)."""
    from listenwell import cli

    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def during() -> None:
        logging.getLogger("tweepy.client").debug("Headers: %s", SECRETS["sources.x.bearer_token"])
        seen.append(caplog.records[-1].getMessage())

    state = cli.State(config_path=Path(setup["cfg"]))
    assert state.settings.sources.x.bearer_token is not None  # loading them starts the masking
    during()
    state.close()
    during()
    assert seen == ["Headers: ****", f"Headers: {SECRETS['sources.x.bearer_token']}"]
