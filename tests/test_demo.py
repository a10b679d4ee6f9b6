"""The demo: bundled data builds a real database, idempotently, and the dashboard starts on it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from listenwell import store
from listenwell.cli.demo import build_demo
from listenwell.demo import data_path


def test_bundled_data_ships_with_licence_and_provenance():
    folder = data_path("mentions.jsonl").parents[1]
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "IBM/twitter-customer-care-document-prediction" in source


def test_build_demo_imports_everything_and_is_idempotent(tmp_path):
    config_path, counts = build_demo(tmp_path / "demo")
    lines = data_path("mentions.jsonl").read_text(encoding="utf-8").splitlines()
    assert counts["mentions_new"] == len(lines) > 1000
    assert counts["quarantined"] == 0 and counts["customers_new"] >= 250
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert config["brand"]["name"] and config["brand"]["keywords"]
    again_path, again = build_demo(tmp_path / "demo")
    assert again_path == config_path
    assert again["mentions_new"] == 0 and again["mentions_already_there"] == len(lines)
    eng = store.connect(config["database_url"])
    try:
        overview = store.overview_counts(eng)
        assert (
            overview["mentions"] == len(lines) and overview["customers"] == counts["customers_new"]
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
def test_demo_command_serves_the_dashboard(tmp_path):
    port = free_port()
    exe = Path(sys.executable).with_name("listenwell")
    env = {**os.environ, "HOME": str(tmp_path)}
    log = tmp_path / "demo.log"
    with (
        log.open("w") as out,
        subprocess.Popen(
            [str(exe), "demo", "--dir", str(tmp_path / "d"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 90
            body = ""
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    url = f"http://127.0.0.1:{port}/_stcore/health"
                    with urllib.request.urlopen(url, timeout=2) as r:
                        body = r.read().decode()
                        break
                except OSError:
                    time.sleep(0.5)
            assert body == "ok", log.read_text()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                assert r.status == 200 and "<html" in r.read().decode().lower()
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert (tmp_path / "d" / "listenwell-demo.yaml").is_file()


def test_build_only_prints_the_config_path(tmp_path, capsys):
    from listenwell.cli import main

    main(["demo", "--build-only", "--dir", str(tmp_path / "d")])
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "d" / "listenwell-demo.yaml")
