"""One typed settings object, layered as defaults < YAML file < environment.

Every setting is declared once here, with its default and a help line (the
field description). Environment names are derived mechanically from the
setting path: ``LISTENWELL_`` + the path upper-cased with ``__`` between the
levels, e.g. ``sources.reddit.client_secret`` is
``LISTENWELL_SOURCES__REDDIT__CLIENT_SECRET``. Lists and mappings are given
in the environment as JSON.

Secrets are :class:`pydantic.SecretStr` and carry ``secret=True`` in their
schema: they print as ``**********``, are never logged and never shown in
the UI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "ENV_CONFIG",
    "AppStoreSettings",
    "ENV_PREFIX",
    "BrandSettings",
    "ConfigError",
    "RedditSettings",
    "Settings",
    "SourcesSettings",
    "XSettings",
    "default_config_path",
    "default_data_dir",
    "default_database_url",
    "is_secret",
    "iter_settings",
    "load_settings",
]

ENV_PREFIX = "LISTENWELL_"
ENV_CONFIG = "LISTENWELL_CONFIG"
APP_NAME = "listenwell"


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad key at once."""


def _secret(description: str) -> Any:
    return Field(default=None, description=description, json_schema_extra={"secret": True})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class BrandSettings(_Section):
    """The brand being listened to."""

    name: str = Field(default="Acme", description="Brand name shown in the dashboard and reports.")
    keywords: list[str] = Field(
        default_factory=list,
        description="Words, hashtags and handles that identify a mention of the brand "
        "(case-insensitive). Collectors search for them; share of voice counts them.",
    )
    competitors: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Competitors for share of voice: a mapping of name to keywords, or a plain "
        "list of names (each name is then its own keyword).",
    )

    @field_validator("competitors", mode="before")
    @classmethod
    def _list_to_mapping(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {str(name): [str(name)] for name in value}
        return value


class RedditSettings(_Section):
    """Reddit, read through the praw client."""

    client_id: str | None = Field(
        default=None, description="Reddit app client id (from reddit.com/prefs/apps)."
    )
    client_secret: SecretStr | None = _secret("Reddit app client secret. Secret.")
    username: str | None = Field(
        default=None,
        description="Reddit account that sends the inbox's replies (a 'script' app owned by it); "
        "reading needs no account.",
    )
    password: SecretStr | None = _secret("Password of that Reddit account. Secret.")
    refresh_token: SecretStr | None = _secret(
        "OAuth refresh token for sending replies, instead of username and password. Secret."
    )
    user_agent: str = Field(
        default="listenwell/0.1 (social listening)",
        description="User-Agent sent to Reddit; Reddit asks for a unique, descriptive one.",
    )
    oauth_url: str = Field(
        default="https://oauth.reddit.com",
        description="Base URL of Reddit's API. Point it at 127.0.0.1 for tests and the demo.",
    )
    reddit_url: str = Field(
        default="https://www.reddit.com",
        description="Base URL for Reddit's token endpoint (/api/v1/access_token).",
    )
    queries: list[str] = Field(
        default_factory=list,
        description="Search queries for brand mentions; empty means the brand keywords.",
    )
    subreddits: list[str] = Field(
        default_factory=list,
        description="Subreddits to search within; empty means all of Reddit.",
    )
    include_comments: bool = Field(
        default=True,
        description="Also read the newest comments (of `subreddits`, or all of Reddit) and keep "
        "those containing a query; Reddit's API has no comment search.",
    )
    overlap_s: float = Field(
        default=3600.0,
        ge=0,
        description="How far below the saved cursor to re-read, because Reddit search indexes "
        "posts late; re-read posts are not stored twice.",
    )


class XSettings(_Section):
    """X (Twitter) API v2, read through the tweepy client."""

    bearer_token: SecretStr | None = _secret("X API v2 app bearer token. Secret.")
    consumer_key: SecretStr | None = _secret(
        "X app consumer (API) key, for posting replies with OAuth 1.0a user context. Secret."
    )
    consumer_secret: SecretStr | None = _secret("X app consumer (API) secret. Secret.")
    access_token: SecretStr | None = _secret(
        "Access token of the X account that posts replies (OAuth 1.0a). Secret."
    )
    access_token_secret: SecretStr | None = _secret("Its access token secret. Secret.")
    user_token: SecretStr | None = _secret(
        "OAuth 2.0 user-context token with tweet.write, instead of the OAuth 1.0a keys. Secret."
    )
    api_base_url: str = Field(
        default="https://api.twitter.com",
        description="Base URL of the X API (without /2). Point it at 127.0.0.1 for tests and "
        "the demo; requests keep their /2/... paths.",
    )
    queries: list[str] = Field(
        default_factory=list,
        description="Recent-search queries; empty means the brand keywords.",
    )
    max_results: int = Field(
        default=100,
        ge=10,
        le=100,
        description="Posts per recent-search request (X allows 10 to 100).",
    )


class AppStoreSettings(_Section):
    """Apple App Store reviews, from the public customer-reviews RSS feed."""

    app_ids: list[str] = Field(
        default_factory=list,
        description="Numeric App Store ids (id123456789 or 123456789); empty turns the source off.",
    )
    countries: list[str] = Field(
        default_factory=lambda: ["us"],
        description="Two-letter storefront codes; each storefront has its own reviews.",
    )
    base_url: str = Field(
        default="https://itunes.apple.com",
        description="Base URL of the reviews feed. Point it at 127.0.0.1 for tests and the demo.",
    )


class SourcesSettings(_Section):
    """Where mentions come from."""

    reddit: RedditSettings = Field(default_factory=RedditSettings, description="Reddit source.")
    x: XSettings = Field(default_factory=XSettings, description="X (Twitter) source.")
    appstore: AppStoreSettings = Field(
        default_factory=AppStoreSettings, description="Apple App Store reviews source."
    )
    timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="Seconds to wait for any one HTTP request to a source (connect and each "
        "read) before it counts as failed and is retried.",
    )
    retries: int = Field(
        default=4,
        ge=1,
        description="Tries per page, the first included, for 429, 5xx, timeouts and broken "
        "answers.",
    )
    max_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest wait between tries; a server asking for longer (Retry-After, "
        "rate-limit reset) ends that source's run, and the next run resumes from the saved "
        "cursor.",
    )
    max_pages: int = Field(
        default=50,
        ge=1,
        description="Pages per stream per run; a longer backlog is read over the following runs.",
    )


class NlpSettings(_Section):
    """NLP enrichment (`listenwell enrich`): models, batches, threads."""

    batch_size: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="Mentions per enrichment batch; each batch's embeddings and results are "
        "written in one transaction, so an interrupted run loses at most one batch.",
    )
    threads: int = Field(
        default=2,
        ge=1,
        description="CPU threads torch uses for the embedding and sentiment models.",
    )
    low_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A fine-tuned sentiment whose calibrated probability is below this keeps its "
        "label but is flagged data.low_confidence = true.",
    )
    sentiment_model: Literal["finetuned", "vader", "off"] = Field(
        default="finetuned",
        description="Sentiment stage: finetuned (the shipped MiniLM model), vader (lexicon "
        "baseline) or off.",
    )
    sentiment_model_dir: str | None = Field(
        default=None,
        description="Folder of the fine-tuned sentiment artefact (meta.json + "
        "model.safetensors); empty means the one shipped in nlp/models/sentiment.",
    )
    embeddings: bool = Field(
        default=True,
        description="Compute and store one MiniLM embedding per mention (reused by themes, "
        "intent and linking).",
    )
    intent_model: Literal["prototypes", "off"] = Field(
        default="prototypes",
        description="Intent stage (complaint, question, praise, feature_request, other): "
        "prototypes (few-shot prototypes over the embeddings plus rules) or off.",
    )
    language_model: Literal["langid", "off"] = Field(
        default="langid",
        description="Language stage: langid (py3langid, shipped in its package) or off.",
    )
    languages: list[str] | None = Field(
        default=None,
        description="Only choose among these language codes, e.g. [en, de, fr]; empty means "
        "all the languages py3langid knows.",
    )
    language_min_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Below this language probability the language is 'und' (undetermined).",
    )
    themes: Literal["kmeans", "off"] = Field(
        default="kmeans",
        description="Feedback themes stage: kmeans (clusters of the stored embeddings, "
        "labelled by their top terms, ids stable across refits) or off.",
    )
    themes_count: int = Field(
        default=0,
        ge=0,
        le=200,
        description="How many themes the first fit and `listenwell themes refit` make; 0 chooses "
        "between 5 and 25 by silhouette.",
    )
    themes_min_mentions: int = Field(
        default=50,
        ge=2,
        description="With fewer embedded mentions than this no themes are fitted yet (mentions "
        "stay unthemed until there are enough).",
    )
    themes_threshold: float = Field(
        default=0.3,
        ge=-1,
        le=1,
        description="A mention whose cosine similarity to the nearest theme is below this "
        "stays unthemed.",
    )
    themes_stop_words: list[str] = Field(
        default_factory=list,
        description="Extra words left out of theme labels (the brand's and competitors' "
        "names are always left out).",
    )
    language_min_letters: int = Field(
        default=3,
        ge=0,
        description="Texts with fewer letters than this, once links, handles, tags and emoji "
        "are removed, get language 'und'.",
    )


class LinkingSettings(_Section):
    """Linking mentions to known customers, fuzzy customer search and duplicate detection."""

    enabled: bool = Field(
        default=True,
        description="Run the customer-linking stage in `listenwell enrich` (handle, e-mail, "
        "phone or account-number evidence; a name alone is only a suggestion).",
    )
    default_region: str = Field(
        default="US",
        min_length=2,
        max_length=2,
        description="Region (ISO 3166 code) assumed for phone numbers written without a "
        "country code.",
    )
    duplicate_min_score: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Customer pairs scoring at least this are listed by `listenwell customers "
        "duplicates`.",
    )
    account_fields: str = Field(
        default=(
            "order|account|acct|invoice|ticket|booking|reservation|member|loyalty|"
            "contract|policy|subscription|reference|serial"
        ),
        description="Regular expression of the customer attribute names that hold order or "
        "account numbers; such a number in a post is strong evidence.",
    )
    name_min_score: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Smallest name similarity offered as a (never exported) link suggestion.",
    )


class EscalationSettings(_Section):
    """Escalation rules and the SLA sweep."""

    rules_file: str | None = Field(
        default=None,
        description="YAML escalation rules and SLA policies used while no version is saved "
        "in the database (`listenwell rules save`); empty means the shipped config/rules.yaml.",
    )
    sweep_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between passes of `listenwell escalations sweep --watch` (reminders "
        "and automatic upgrades).",
    )


PiiKind = Literal["email", "phone", "card"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "card")


class PrivacySettings(_Section):
    """Personal data in exports."""

    redact_exports: bool = Field(
        default=False,
        description="Replace e-mail addresses, phone numbers and card numbers in exported "
        "text with [email], [phone] and [card].",
    )
    redact_kinds: list[PiiKind] = Field(
        default_factory=lambda: list(PII_KINDS),
        description="Which kinds of personal data redact_exports replaces.",
    )


class InboxSettings(_Section):
    """The inbox: canned replies."""

    templates_file: str | None = Field(
        default=None,
        description="YAML file of canned replies (name: text, placeholders {customer_name}, "
        "{first_name}, {case_id}, {agent}, {handle}); adds to and overrides the built-ins.",
    )


class CorrectionsSettings(_Section):
    """Agents' corrections and the workspace recalibration they allow."""

    min_corrections: int = Field(
        default=50,
        ge=2,
        description="The fewest corrections of the current sentiment model before "
        "`listenwell corrections recalibrate` tries a recalibration.",
    )
    folds: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Cross-validation folds used to accept or refuse a recalibration.",
    )
    l2: float = Field(
        default=1.0,
        ge=0,
        description="Penalty pulling a recalibration toward no change (larger is more cautious).",
    )


class DashboardSettings(_Section):
    """The dashboard: sign-in and sessions."""

    sign_in: Literal["password", "demo"] = Field(
        default="password",
        description="How people sign in: 'password' (accounts made with `listenwell users "
        "add`) or 'demo' (no passwords: pick a demo user of any role; for the demo only).",
    )
    session_idle_min: int = Field(
        default=60,
        ge=1,
        le=7 * 24 * 60,
        description="Minutes without any action after which a signed-in session expires.",
    )
    session_max_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="Hours after sign-in after which a session expires even if in use.",
    )


class JobsSettings(_Section):
    """Background work: `listenwell worker` (a task queue on PostgreSQL, a loop on SQLite)."""

    enrich_chunk: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Mentions per enrichment job: the backlog is cut into jobs of this many "
        "mentions, shared among the workers.",
    )
    heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between a worker's heartbeats (PostgreSQL queue).",
    )
    stalled_after_s: float = Field(
        default=30.0,
        gt=0,
        description="A job whose worker sent no heartbeat for this long (it was killed or "
        "lost its machine) is given back to the queue and retried by another worker.",
    )
    collect_every_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between collection passes of each configured source.",
    )
    enrich_every_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between checks for mentions to enrich.",
    )


class RetentionSettings(_Section):
    """How long mentions are kept (applied by `listenwell retention apply` and the worker)."""

    months: int | None = Field(
        default=None,
        ge=1,
        description="Delete or anonymise mentions older than this many months; empty keeps "
        "everything.",
    )
    mode: Literal["delete", "anonymise"] = Field(
        default="anonymise",
        description="'delete' removes old mentions with everything derived from them; "
        "'anonymise' keeps their labels for trends but blanks text, author, URL and raw data.",
    )


def default_data_dir() -> Path:
    """The per-user data directory, e.g. ``~/.local/share/listenwell`` on Linux."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_database_url() -> str:
    """A SQLite file in the per-user data directory."""
    return f"sqlite:///{default_data_dir() / 'listenwell.db'}"


def default_config_path() -> Path:
    """Where the config file is looked for when neither --config nor LISTENWELL_CONFIG is set."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "listenwell.yaml"


class Settings(BaseSettings):
    """All of Listenwell's settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL of the database: sqlite:///PATH (default, a file in the "
        "per-user data directory) or postgresql+psycopg://USER@HOST:PORT/DB for teams.",
    )
    brand: BrandSettings = Field(default_factory=BrandSettings, description="The brand.")
    sources: SourcesSettings = Field(
        default_factory=SourcesSettings, description="Mention sources and their credentials."
    )
    nlp: NlpSettings = Field(
        default_factory=NlpSettings,
        description="NLP enrichment (listenwell enrich): models, batches, threads.",
    )
    linking: LinkingSettings = Field(
        default_factory=LinkingSettings,
        description="Linking mentions to customers; customer search and duplicates.",
    )
    escalations: EscalationSettings = Field(
        default_factory=EscalationSettings, description="Escalation rules and the SLA sweep."
    )
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="Personal data in exports."
    )
    inbox: InboxSettings = Field(
        default_factory=InboxSettings, description="The inbox: canned replies."
    )
    corrections: CorrectionsSettings = Field(
        default_factory=CorrectionsSettings,
        description="Agents' corrections and the workspace recalibration they allow.",
    )
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings, description="The dashboard: sign-in and sessions."
    )
    jobs: JobsSettings = Field(
        default_factory=JobsSettings,
        description="Background work: `listenwell worker` (task queue on PostgreSQL).",
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description="How long mentions are kept."
    )
    query_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="Time limit in seconds for one dashboard read query; a slower query fails "
        "with a clear message instead of hanging.",
    )
    batch_size: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="Rows per database write transaction for file imports; larger batches "
        "import faster (fewer index pages rewritten per row) and use more memory.",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:// and postgresql:// URLs are supported")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: environment over the YAML file (passed in as init values) over defaults.
        return (env_settings, init_settings)

    def __repr_args__(self) -> Any:
        # The database URL may carry a password: never let it reach a log line.
        for key, value in super().__repr_args__():
            yield key, (_mask_url(value) if key == "database_url" else value)

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data with secrets masked, safe to print or show."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url(self.database_url)
        return data


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings at the top level")
    return data


def _format_errors(exc: ValidationError, origin: str) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {msg}")
    return f"invalid configuration ({origin}): " + "; ".join(problems)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from defaults, then a YAML file, then ``LISTENWELL_*`` variables.

    Args:
        path: The YAML config file. ``None`` means ``$LISTENWELL_CONFIG``, else the
            per-user default config file if it exists, else no file.

    Returns:
        The validated settings.

    Raises:
        ConfigError: The file is missing or malformed, or any setting is invalid;
            the message names every bad key at once.
    """
    file_data: dict[str, Any] = {}
    if path is None and os.environ.get(ENV_CONFIG):
        path = os.environ[ENV_CONFIG]
    if path is None and default_config_path().is_file():
        path = default_config_path()
    origin = "defaults and environment"
    if path is not None:
        file_data = _read_yaml(Path(path))
        origin = f"{path} and environment"
    try:
        return Settings(**file_data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None


def iter_settings(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo]]:
    """Yield ``(dotted.key, field)`` for every leaf setting, depth first."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_settings(annotation, prefix=f"{key}.")
        else:
            yield key, field


def is_secret(field: FieldInfo) -> bool:
    """Whether a setting holds a secret."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))
