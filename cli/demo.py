"""``listenwell demo``: build the demo database from bundled data and open the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from listenwell import store
from listenwell.collectors.files import read_customers, read_mentions
from listenwell.config import ENV_CONFIG, default_data_dir
from listenwell.crm.auth import DEMO_USERS
from listenwell.demo.fakes.x import FakeX
from listenwell.store.users import ensure_user

from . import CliError, state_of

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from listenwell.collectors.base import SourceResult

DEMO_ACTOR = "demo"
#: Longest X search query (standard access).
QUERY_LIMIT = 512
#: An account that answered at least this many people is a care account.
CARE_ACCOUNT_MIN = 3


def demo_dir() -> Path:
    """Where the demo database and its config live by default."""
    return default_data_dir() / "demo"


def app_script() -> Path:
    """The Streamlit entry point shipped with the package."""
    import listenwell

    return Path(listenwell.__file__).parent / "app.py"


def _pack(terms: list[str], limit: int = QUERY_LIMIT) -> list[str]:
    """Join ``terms`` with `` OR `` into as few queries of at most ``limit`` characters as fit."""
    queries: list[str] = []
    current = ""
    for term in terms:
        joined = f"{current} OR {term}" if current else term
        if current and len(joined) > limit:
            queries.append(current)
            joined = term
        current = joined
    return [*queries, current] if current else queries


def demo_queries(fake: FakeX, brand: dict[str, Any]) -> list[str]:
    """The X searches that find every post the fake serves, in X's own query syntax.

    First the brand and its competitors (their keywords as quoted phrases, the
    form of the default query ``listenwell collect`` builds from the brand
    keywords); then the care accounts (an account that answered at least three
    people) as ``@account OR from:account``; then, for each conversation with a
    post neither finds, ``conversation_id:`` (X's operator for a whole thread),
    as a care team follows the threads it is in. Each query stays within X's
    512 characters. Overlapping searches are fine: the store keeps a post once.

    Args:
        fake: The fake X API, already serving the posts.
        brand: The demo brand (``name``, ``keywords``, ``competitors``).

    Returns:
        The queries, brand first.
    """
    keywords = list(brand.get("keywords") or [brand.get("name") or "demo"])
    for words in (brand.get("competitors") or {}).values():
        keywords += list(words)
    queries = _pack([f'"{k}"' for k in dict.fromkeys(keywords) if k])
    answered: dict[str, set[str]] = {}
    for tweet in fake.tweets:
        to = tweet.get("in_reply_to_user_id")
        if to and to != tweet.get("author_id"):
            answered.setdefault(str(tweet["author_id"]), set()).add(str(to))
    accounts = sorted(
        fake.users[uid]["username"]
        for uid, people in answered.items()
        if len(people) >= CARE_ACCOUNT_MIN and uid in fake.users
    )
    queries += _pack([t for a in accounts for t in (f"@{a}", f"from:{a}")])
    found = {str(t.get("id")) for q in queries for t in fake.matching(q)}
    threads = dict.fromkeys(
        str(t.get("conversation_id")) for t in fake.tweets if str(t.get("id")) not in found
    )
    return queries + _pack([f"conversation_id:{c}" for c in threads])


def _collect_through_fake(
    engine: Engine, mentions: list[store.Mention], brand: dict[str, Any], fake: FakeX
) -> tuple[SourceResult, int]:
    """Serve ``mentions`` from ``fake`` on 127.0.0.1 and read them with the real X collector.

    Returns:
        The collector's counts and the number of queries it ran.

    Raises:
        CliError: The fake could not start, or any query failed; one line, with the reason.
    """
    from listenwell.collectors.base import RetryPolicy
    from listenwell.collectors.runner import run_collector
    from listenwell.collectors.x import XCollector

    fake.add_mentions(
        {
            "external_id": m.external_id,
            "created_at": m.created_at.isoformat(),
            "author_handle": m.author_handle,
            "author_name": m.author_name,
            "text": m.text,
            "in_reply_to": m.in_reply_to,
        }
        for m in mentions
    )
    queries = demo_queries(fake, brand)
    try:
        fake.server.start()
    except OSError as exc:
        raise CliError(f"cannot start the local fake X server on 127.0.0.1: {exc}") from None
    try:
        collector = XCollector(
            bearer_token=fake.bearer_token,
            queries=queries,
            api_base_url=fake.server.base_url,
            timeout=10.0,
            page_size=100,
            retry=RetryPolicy(attempts=3, max_wait=2.0, backoff=0.2),
            max_pages=10_000,
        )
        try:
            result = run_collector(engine, collector)
        finally:
            collector.close()
    finally:
        fake.server.stop()
    if result.errors:
        reasons = []
        for error in result.errors:
            for stream in collector.streams():
                error = error.removeprefix(f"{stream}: ")
            reasons.append(error)
        raise CliError(
            "collecting the demo mentions through the local fake X server failed "
            f"({len(reasons)} of {len(queries)} queries): {reasons[0]}"
        )
    return result, len(queries)


def build_demo(target: Path, *, fake_x: FakeX | None = None) -> tuple[Path, dict[str, Any]]:
    """Create or refresh the demo database in ``target``; idempotent.

    Writes ``target/listenwell-demo.yaml`` (a config naming the demo database
    and brand), migrates the schema and imports the bundled customers. The
    bundled mentions arrive the way live ones do: a fake X API on an ephemeral
    port of 127.0.0.1 serves them in X's wire format, the real X collector
    (tweepy) reads them with its searches (see :func:`demo_queries`) and
    stores them with its cursor, and the fake is stopped. A second build finds
    nothing newer than the saved cursor and stores nothing.

    Args:
        target: The folder of the demo database and config.
        fake_x: The fake X API to serve the bundled mentions from (a fresh one
            by default; tests pass one with faults queued).

    Returns:
        The config path, and counts of what was stored.

    Raises:
        CliError: The bundled data is missing or broken, or collecting failed.
    """
    from listenwell.demo import data_path

    mentions_file = data_path("mentions.jsonl")
    customers_file = data_path("customers.csv")
    brand_file = data_path("brand.json")
    for f in (mentions_file, customers_file, brand_file):
        if not f.is_file():
            raise CliError(f"the bundled demo data is missing: {f} (reinstall Listenwell)")
    mentions: list[store.Mention] = []
    for item in read_mentions(mentions_file):
        if not isinstance(item, store.Mention):
            raise CliError(f"the bundled demo mentions are broken: {item.origin}: {item.reason}")
        mentions.append(item)
    brand = json.loads(brand_file.read_text(encoding="utf-8"))
    target.mkdir(parents=True, exist_ok=True)
    config_path = target / "listenwell-demo.yaml"
    config = {
        "database_url": f"sqlite:///{(target / 'demo.db').resolve()}",
        "brand": brand,
        # Passwordless demo users of every role; a real install uses `listenwell users add`.
        "dashboard": {"sign_in": "demo"},
    }
    # No `sources:`: the fake X server the mentions came through is gone once the build ends.
    config_path.write_text(
        "# Written by `listenwell demo`: the demo database and brand. The mentions were\n"
        "# collected by the X collector from a local fake X API, stopped after the build.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    engine = store.connect(config["database_url"])
    try:
        store.upgrade(engine)
        customers = store.upsert_customers(
            engine,
            ((f"line {n}", c) for n, c, _ in read_customers(customers_file) if c is not None),
            actor=DEMO_ACTOR,
        )
        for username, (role, name) in DEMO_USERS.items():
            ensure_user(engine, username, role, name, actor=DEMO_ACTOR)
        result, queries = _collect_through_fake(engine, mentions, brand, fake_x or FakeX())
        counts = {
            "customers_new": customers.inserted,
            "mentions_new": result.new,
            "mentions_already_there": result.duplicates,
            "quarantined": result.quarantined,
            "x_queries": queries,
            "x_pages": result.pages,
        }
        store.record_audit(engine, DEMO_ACTOR, "demo.build", "database", None, counts)
    finally:
        engine.dispose()
    return config_path, counts


def enrich_demo(config_path: Path, *, threads: int = 2) -> dict[str, Any]:
    """Run the enrichment pipeline over the demo database, with progress bars on stderr.

    Raises:
        CliError: A model could not be loaded, or a stage failed.
    """
    from dataclasses import replace

    from listenwell.config import load_settings
    from listenwell.nlp import NlpError, NlpOptions
    from listenwell.nlp.pipeline import build_pipeline

    from .nlp import refresh_dashboard_counts, run_with_progress

    settings = load_settings(config_path)
    options = replace(NlpOptions.from_settings(settings), threads=threads)
    engine = store.connect(settings.database_url)
    try:
        pipeline = build_pipeline(options, settings)
        report = run_with_progress(pipeline, engine)
        refresh_dashboard_counts(engine, settings)
    except NlpError as exc:
        raise CliError(f"enriching the demo mentions failed: {exc}") from None
    finally:
        engine.dispose()
    return report.as_dict()


def engage_demo(config_path: Path) -> dict[str, Any]:
    """Give every demo mention its inbox conversation (linked to its customer) and apply the
    escalation rules in force, as `inbox sync` and `escalations apply` do; idempotent."""
    from listenwell.config import load_settings
    from listenwell.crm.rules import apply_rules, rules_in_force
    from listenwell.store.inbox import ensure_conversations, link_customers

    settings = load_settings(config_path)
    engine = store.connect(settings.database_url)
    try:
        created = ensure_conversations(engine)
        linked = link_customers(engine)
        rules = rules_in_force(engine, default_path=settings.escalations.rules_file)
        applied = apply_rules(engine, rules).as_dict()
    finally:
        engine.dispose()
    return {"conversations_new": created, "linked": linked, "rules": applied}


def demo(
    ctx: typer.Context,
    build_only: Annotated[
        bool,
        typer.Option("--build-only", help="Build the demo database, print its config path, exit."),
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to put the demo database and config (default: per-user data)."
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Dashboard port.", min=1, max=65535)] = 8501,
    enrich: Annotated[
        bool,
        typer.Option(
            "--enrich/--no-enrich",
            help="Run the NLP stages (sentiment, themes, intent, language, customer links) "
            "over the demo mentions before the dashboard starts; only new mentions are "
            "processed, so later starts are quick.",
        ),
    ] = True,
) -> None:
    """Build the demo database from bundled data and start the dashboard on it.

    Needs no credentials and no network. The demo data is real public
    customer-care conversations (IBM, Apache-2.0), pseudonymised, with a
    generated customer list. The first start enriches the mentions with the
    packaged models (about a minute on two cores, with a progress bar).
    """
    state = state_of(ctx)  # global options are validated even though the demo has its own config
    target = directory or demo_dir()
    config_path, counts = build_demo(target)
    if enrich:
        enrich_demo(config_path, threads=state.settings.nlp.threads)
    engage_demo(config_path)  # the inbox and the escalation queue have their items
    if build_only:
        typer.echo(str(config_path))
        return
    typer.echo(
        f"demo database ready ({counts['mentions_new']:,} new mentions, read by the X "
        f"collector from a local fake X API); config: {config_path}",
        err=True,
    )
    typer.echo(f"starting the dashboard on http://localhost:{port} (Ctrl-C to stop)", err=True)
    raise typer.Exit(run_dashboard(config_path, port=port))


def run_dashboard(config_path: Path | None, *, port: int = 8501, headless: bool = True) -> int:
    """Run ``streamlit run app.py`` with ``LISTENWELL_CONFIG`` set; returns its exit code."""
    env = dict(os.environ)
    if config_path is not None:
        env[ENV_CONFIG] = str(config_path.resolve())
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        # A served dashboard does not reload on source edits; watching the tree costs CPU.
        "--server.fileWatcherType",
        "none",
    ]
    if os.name == "posix":
        # Become the Streamlit server rather than its parent, so that a signal sent to this
        # process (Ctrl-C, SIGTERM from a supervisor or a test) reaches the server and no
        # orphaned server is left behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, cmd, env)
    try:  # pragma: no cover - Windows has no exec that keeps the process id
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:  # pragma: no cover
        return 0


def dashboard(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Dashboard port.", min=1, max=65535)] = 8501,
) -> None:
    """Start the dashboard on the configured database."""
    state = state_of(ctx)
    state.engine()  # fail here, in one line, if the database is missing or out of date
    raise typer.Exit(run_dashboard(state.config_path, port=port))


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``dashboard`` to the root app."""
    app.command("demo")(demo)
    app.command("dashboard")(dashboard)
