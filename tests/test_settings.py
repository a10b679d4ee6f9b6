"""Settings: layering, validation that names every bad key, secrets, and documentation."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import yaml

from listenwell.config import (
    ConfigError,
    Settings,
    default_config_path,
    is_secret,
    iter_settings,
    load_settings,
)

REPO = Path(__file__).resolve().parents[1]

# The keys other tools depend on: renaming any of them is a breaking change.
CONTRACT_KEYS = {
    "database_url",
    "brand.name",
    "brand.keywords",
    "brand.competitors",
    "sources.reddit.client_id",
    "sources.reddit.client_secret",
    "sources.reddit.user_agent",
    "sources.reddit.oauth_url",
    "sources.reddit.reddit_url",
    "sources.reddit.queries",
    "sources.reddit.subreddits",
    "sources.x.bearer_token",
    "sources.x.api_base_url",
    "sources.x.queries",
}


def write(tmp_path: Path, data: object, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_contract_keys_exist():
    assert CONTRACT_KEYS <= {key for key, _ in iter_settings()}


def test_defaults_without_any_file():
    s = load_settings()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("listenwell.db")
    assert s.sources.reddit.oauth_url == "https://oauth.reddit.com"
    assert s.sources.x.api_base_url == "https://api.twitter.com"


def test_file_then_environment(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        {"brand": {"name": "FromFile", "keywords": ["a"]}, "sources": {"x": {"queries": ["file"]}}},
    )
    assert load_settings(path).brand.name == "FromFile"
    monkeypatch.setenv("LISTENWELL_BRAND__NAME", "FromEnv")
    monkeypatch.setenv("LISTENWELL_SOURCES__X__QUERIES", '["env1", "env2"]')
    s = load_settings(path)
    assert s.brand.name == "FromEnv" and s.brand.keywords == ["a"]
    assert s.sources.x.queries == ["env1", "env2"]


def test_config_path_from_environment_and_default_location(tmp_path, monkeypatch):
    path = write(tmp_path, {"brand": {"name": "ViaEnvVar"}})
    monkeypatch.setenv("LISTENWELL_CONFIG", str(path))
    assert load_settings().brand.name == "ViaEnvVar"
    monkeypatch.delenv("LISTENWELL_CONFIG")
    default = default_config_path()
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text("brand: {name: ViaDefaultFile}\n", encoding="utf-8")
    assert load_settings().brand.name == "ViaDefaultFile"


def test_competitors_list_or_mapping(tmp_path):
    s = load_settings(write(tmp_path, {"brand": {"competitors": ["Globex", "Initech"]}}))
    assert s.brand.competitors == {"Globex": ["Globex"], "Initech": ["Initech"]}
    s = load_settings(write(tmp_path, {"brand": {"competitors": {"Globex": ["globex", "#gx"]}}}))
    assert s.brand.competitors == {"Globex": ["globex", "#gx"]}


def test_every_bad_key_is_named_at_once(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        {
            "brand": {"nam": "typo", "keywords": "not-a-list"},
            "batch_size": 0,
            "database_url": "mysql://x/y",
            "sources": {"reddit": {"queries": 5}, "mastodon": {}},
        },
    )
    monkeypatch.setenv("LISTENWELL_QUERY_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    for key in (
        "brand.nam: unknown setting",
        "brand.keywords",
        "batch_size",
        "database_url",
        "sources.reddit.queries",
        "sources.mastodon: unknown setting",
        "query_timeout_s",
    ):
        assert key in message


@pytest.mark.parametrize(
    "content,message",
    [
        ("brand: [unclosed", "not valid YAML at line 1"),
        ("- just\n- a list\n", "must hold a mapping"),
        (None, "config file not found"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_empty_file_means_defaults(tmp_path):
    assert load_settings(write(tmp_path, "")).brand.name == "Acme"


def test_secrets_never_printed(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LISTENWELL_SOURCES__X__BEARER_TOKEN", "tok-SECRET-1")
    monkeypatch.setenv("LISTENWELL_SOURCES__REDDIT__CLIENT_SECRET", "cs-SECRET-2")
    monkeypatch.setenv("LISTENWELL_DATABASE_URL", "postgresql+psycopg://u:pw-SECRET-3@h/db")
    s = load_settings()
    assert s.sources.x.bearer_token.get_secret_value() == "tok-SECRET-1"
    logging.getLogger("test").warning("settings: %s %r", s, s)
    shown = " ".join([str(s), repr(s), str(s.public_dict()), caplog.text])
    assert "SECRET" not in shown
    assert s.public_dict()["database_url"] == "postgresql+psycopg://u:***@h/db"


def test_secret_fields_are_flagged():
    secrets = {key for key, field in iter_settings() if is_secret(field)}
    assert secrets == {
        "sources.reddit.client_secret",
        "sources.reddit.password",
        "sources.reddit.refresh_token",
        "sources.x.bearer_token",
        "sources.x.consumer_key",
        "sources.x.consumer_secret",
        "sources.x.access_token",
        "sources.x.access_token_secret",
        "sources.x.user_token",
    }


def test_every_setting_has_help_and_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = (REPO / "config" / "listenwell.example.yaml").read_text(encoding="utf-8")
    for key, field in iter_settings():
        assert field.description and len(field.description) > 10, f"{key} has no help text"
        env = "LISTENWELL_" + key.upper().replace(".", "__")
        assert re.search(rf"\| `{re.escape(key)}` \|.*\| `{env}` \|", doc), f"{key} not in docs"
        assert key.rsplit(".", 1)[-1] + ":" in example, f"{key} not in the example config"


def test_example_config_is_valid():
    s = load_settings(REPO / "config" / "listenwell.example.yaml")
    assert isinstance(s, Settings) and s.brand.competitors["Globex"] == ["globex", "@GlobexHelp"]
