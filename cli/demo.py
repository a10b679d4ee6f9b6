"""``listenwell demo``: build the demo database from bundled data and open the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from listenwell import store
from listenwell.collectors.files import read_customers, read_mentions
from listenwell.config import ENV_CONFIG, default_data_dir

from . import CliError, state_of

DEMO_ACTOR = "demo"


def demo_dir() -> Path:
    """Where the demo database and its config live by default."""
    return default_data_dir() / "demo"


def app_script() -> Path:
    """The Streamlit entry point shipped with the package."""
    import listenwell

    return Path(listenwell.__file__).parent / "app.py"


def build_demo(target: Path) -> tuple[Path, dict[str, Any]]:
    """Create or refresh the demo database in ``target``; idempotent.

    Writes ``target/listenwell-demo.yaml`` (a config naming the demo database
    and brand), migrates the schema and imports the bundled customers and
    mentions. Running it again changes nothing already stored.

    Returns:
        The config path, and counts of what was imported.
    """
    from listenwell.demo import data_path

    mentions_file = data_path("mentions.jsonl")
    customers_file = data_path("customers.csv")
    brand_file = data_path("brand.json")
    for f in (mentions_file, customers_file, brand_file):
        if not f.is_file():
            raise CliError(f"the bundled demo data is missing: {f} (reinstall Listenwell)")
    target.mkdir(parents=True, exist_ok=True)
    config_path = target / "listenwell-demo.yaml"
    config = {
        "database_url": f"sqlite:///{(target / 'demo.db').resolve()}",
        "brand": json.loads(brand_file.read_text(encoding="utf-8")),
    }
    config_path.write_text(
        "# Written by `listenwell demo`: the demo database and brand.\n"
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
        mentions = store.upsert_mentions(engine, read_mentions(mentions_file))
        counts = {
            "customers_new": customers.inserted,
            "mentions_new": mentions.inserted,
            "mentions_already_there": mentions.duplicates,
            "quarantined": mentions.quarantined,
        }
        store.record_audit(engine, DEMO_ACTOR, "demo.build", "database", None, counts)
    finally:
        engine.dispose()
    return config_path, counts


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
) -> None:
    """Build the demo database from bundled data and start the dashboard on it.

    Needs no credentials and no network. The demo data is real public
    customer-care conversations (IBM, Apache-2.0), pseudonymised, with a
    generated customer list.
    """
    state_of(ctx)  # global options are validated even though the demo has its own config
    target = directory or demo_dir()
    config_path, counts = build_demo(target)
    if build_only:
        typer.echo(str(config_path))
        return
    typer.echo(
        f"demo database ready ({counts['mentions_new']:,} new mentions); config: {config_path}",
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
    ]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
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
