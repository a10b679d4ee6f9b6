"""End-to-end: a team's day on the demo data, in a real headless Chromium (Debian's package).

The demo database is built once for the module by the real command (``listenwell
demo --build-only``, which also enriches it with the packaged models). A copy of
it becomes a "team" install: password sign-in, three accounts made with
``listenwell users add`` (a manager, an agent and an analyst), the X source
pointed at a fake X API running in this test process (with a user token that may
post), one hostile post collected through it by ``listenwell collect``, and the
inbox filled by ``listenwell inbox sync`` and ``listenwell escalations apply``.
The real ``streamlit run app.py`` serves it; each test drives its own browser
page and checks that no page shows an exception and the browser logs no error.

The untouched demo database is then served by ``listenwell demo`` itself
(``running_demo``) to check its passwordless user switch.

Skipped with the reason where Chromium or Playwright is absent; in CI
(``CI=true``) their absence is an error.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import yaml

from listenwell import store
from listenwell.cli.demo import app_script
from listenwell.demo.fakes.harness import sources_settings
from listenwell.demo.fakes.x import FakeX
from listenwell.store import inbox as ib

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LISTENWELL = Path(sys.executable).with_name("listenwell")
PASSWORD = "correct horse battery"
WAIT_MS = 30_000

# username -> (role, display name)
TEAM = {
    "mo": ("manager", "Mo Manager"),
    "ann": ("agent", "Ann Agent"),
    "al": ("analyst", "Al Analyst"),
}

ALL_PAGES = {
    "Overview",
    "Mentions",
    "Feedback themes",
    "Inbox",
    "Escalations",
    "Customers",
    "Reports",
    "Settings",
    "Quarantine",
}
#: The sidebar links each role gets (crm/auth.py PERMISSIONS, as the issue describes the roles).
PAGES_BY_ROLE = {
    "admin": ALL_PAGES,
    "manager": ALL_PAGES,
    "agent": ALL_PAGES - {"Settings"},
    "analyst": {"Overview", "Mentions", "Feedback themes", "Reports", "Quarantine"},
}

# One post written to break a page that renders post text as HTML or markdown. It is
# dated just after the newest demo post so the default date filters include it.
MARKER = "zqxhostile"
HOSTILE_ID = "1999999999999999901"
HOSTILE_TEXT = (
    f"@RockstarSupport {MARKER} <script>alert(1)</script> <img src=x onerror=alert(2)> "
    '[click me](javascript:alert(3)) <a href="javascript:alert(5)">link</a> **bold**'
)
HOSTILE_NAME = "<img src=x onerror=alert(4)>"
# Elements with an event-handler attribute or a javascript: URL (React sets neither).
SCRIPTED = """() => [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
    .filter(a => a.name.toLowerCase().startsWith('on')
        || a.value.trim().toLowerCase().startsWith('javascript:'))
    .map(a => `${el.tagName} ${a.name}=${a.value.slice(0, 80)}`))"""

# The page icon (:material/hearing:) makes Streamlit load the favicon from Google's font
# CDN; nothing else may leave 127.0.0.1.
KNOWN_EXTERNAL_HOSTS = {"fonts.gstatic.com"}


def _need(what: str | None, reason: str) -> None:
    if not what:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run the browser tests)")
        pytest.skip(reason)


def _need_browser() -> None:
    """Skip (or, in CI, fail) before any slow set-up when the browser cannot run."""
    _need(CHROMIUM, "Chromium not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need(None, "playwright not installed")


# ---------------------------------------------------------------------------- the servers


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without LISTENWELL_* settings or the user's own config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENWELL_")}
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    env.update(extra)
    return env


def _listenwell(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run the real ``listenwell`` command; its output, or the test fails with its errors."""
    proc = subprocess.run(
        [str(LISTENWELL), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"listenwell {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``demo/`` holds the enriched demo database, built by the real command."""
    _need_browser()
    folder = tmp_path_factory.mktemp("team-e2e")
    env = _env(folder / "home")
    _listenwell(env, "demo", "--build-only", "--dir", str(folder / "demo"))
    return folder


@pytest.fixture(scope="module")
def fake_x() -> Iterator[FakeX]:
    """A fake X API serving one hostile post; it records the replies posted to it."""
    fake = FakeX()
    fake.add_mentions(
        [
            {
                "external_id": HOSTILE_ID,
                "created_at": "2020-04-03T06:00:00+00:00",
                "author_handle": "html_tester",
                "author_name": HOSTILE_NAME,
                "text": HOSTILE_TEXT,
                "in_reply_to": None,
            }
        ]
    )
    fake.server.start()
    yield fake
    fake.server.stop()


@dataclass(frozen=True)
class Team:
    """The team install: its dashboard's URL and database."""

    url: str
    database_url: str


@pytest.fixture(scope="module")
def team(demo_folder: Path, fake_x: FakeX) -> Iterator[Team]:
    """A copy of the demo with password sign-in, three accounts and the X source on the fake,
    served by the real ``streamlit run app.py``."""
    folder = demo_folder / "team"
    folder.mkdir()
    with (
        closing(sqlite3.connect(demo_folder / "demo" / "demo.db")) as src,
        closing(sqlite3.connect(folder / "team.db")) as dst,
    ):
        src.backup(dst)
    demo_config = yaml.safe_load(
        (demo_folder / "demo" / "listenwell-demo.yaml").read_text(encoding="utf-8")
    )
    sources = sources_settings(x=fake_x, queries=(MARKER,))
    sources["x"]["user_token"] = fake_x.user_token  # the harness gives only the app token
    sources["timeout_s"] = 5
    database_url = f"sqlite:///{folder / 'team.db'}"
    config = folder / "team.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "brand": demo_config["brand"],
                "dashboard": {"sign_in": "password"},
                "sources": sources,
            }
        ),
        encoding="utf-8",
    )
    env = _env(folder / "home")
    cfg = ("--config", str(config))
    for username, (role, name) in TEAM.items():
        _listenwell(
            env,
            *cfg,
            "users",
            "add",
            username,
            "--role",
            role,
            "--name",
            name,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    _listenwell(env, *cfg, "collect", "--source", "x")
    _listenwell(env, *cfg, "inbox", "sync")
    _listenwell(env, *cfg, "escalations", "apply")

    port = _free_port()
    log = folder / "streamlit.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        # Others edit this tree while the tests run: a "source changed" banner is no help.
        "--server.fileWatcherType",
        "none",
    ]
    server_env = _env(folder / "home", LISTENWELL_CONFIG=str(config))
    with (
        log.open("w") as out,
        subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=server_env) as proc,
    ):
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the team dashboard did not start: " + log.read_text()[-2000:])
                try:
                    health = f"http://127.0.0.1:{port}/_stcore/health"
                    with urllib.request.urlopen(health, timeout=2) as r:
                        if r.read().decode() == "ok":
                            break
                except OSError:
                    time.sleep(0.5)
            yield Team(f"http://127.0.0.1:{port}", database_url)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def demo_url(
    demo_folder: Path, running_demo: Callable[..., AbstractContextManager[str]]
) -> Iterator[str]:
    """The untouched demo database, served by ``listenwell demo`` (demo sign-in)."""
    with running_demo(demo_folder, enrich=False) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


# ---------------------------------------------------------------------------- the page


@dataclass
class Tab:
    """One fresh browser page and what it saw: console errors, dialogs, requests."""

    page: Page
    base: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    external: set[str] = field(default_factory=set)

    def settle(self) -> None:
        """Wait until the app is connected and no script run is in progress."""
        app = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
        self.page.wait_for_selector(app, timeout=WAIT_MS)
        self.page.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS
        )
        self.page.wait_for_timeout(150)

    def assert_healthy(self) -> None:
        """No exception box on the page, and no error alert either."""
        exceptions = self.page.get_by_test_id("stException")
        assert exceptions.count() == 0, exceptions.all_inner_texts()
        errors = self.page.get_by_test_id("stAlertContentError")
        assert errors.count() == 0, errors.all_inner_texts()

    def assert_clean(self) -> None:
        """Nothing went wrong in the browser: no error logged, no dialog, no stray request."""
        self.assert_healthy()
        assert self.console_errors == []
        assert self.dialogs == []
        assert self.external <= KNOWN_EXTERNAL_HOSTS

    def sidebar(self) -> Locator:
        """The sidebar."""
        return self.page.get_by_test_id("stSidebar")

    def nav_links(self) -> set[str]:
        """The titles of the pages in the sidebar navigation."""
        links = self.page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
        links.first.wait_for(timeout=WAIT_MS)
        return {text.splitlines()[-1].strip() for text in links.all_inner_texts()}

    def open_page(self, title: str) -> None:
        """Follow the sidebar link ``title`` and wait for the page's heading."""
        nav = self.page.get_by_test_id("stSidebarNav")
        nav.get_by_role("link", name=title, exact=True).click()
        self.heading(title).wait_for(timeout=WAIT_MS)
        self.settle()

    def heading(self, title: str) -> Locator:
        """The page title ``title`` (an ``h1``)."""
        return self.page.locator("h1").filter(has_text=re.compile(f"^{re.escape(title)}$"))

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        """Fill in and submit the sign-in form."""
        self.page.get_by_role("textbox", name="Username").fill(username)
        self.page.get_by_role("textbox", name="Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def signed_in(self, username: str) -> None:
        """Open the dashboard and sign in; waits for the Overview."""
        self.page.goto(self.base)
        self.sign_in(username)
        self.heading("Overview").wait_for(timeout=WAIT_MS)
        self.settle()

    def pick(self, label: str, option: str | re.Pattern[str] | None = None) -> str:
        """Choose ``option`` (the first one if None) in the selectbox ``label``; its text."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        box = self.page.get_by_test_id("stSelectbox").filter(has_text=label).first
        combo = box.get_by_role("combobox")
        combo.wait_for(timeout=WAIT_MS)
        listbox = self.page.get_by_role("listbox")
        options = listbox.get_by_role("option")
        choice = options.first if option is None else options.filter(has_text=option).first
        seen: list[str] = []
        for _ in range(3):  # a rerun may redraw the box while it opens: then try again
            try:
                combo.click()
                combo.press("ArrowDown")
                listbox.wait_for(timeout=5_000)
                choice.wait_for(timeout=5_000)
                text = choice.inner_text()
                choice.click()
                return text
            except PlaywrightTimeout:
                seen = options.all_inner_texts()[:5]
                self.page.keyboard.press("Escape")
                self.settle()
        pytest.fail(f"no option {option!r} in {label!r}; it offered {seen}")


OpenTab = Callable[[str], Tab]
"""The ``tab`` fixture: ``tab(base_url)`` opens a fresh page on that dashboard."""


@pytest.fixture
def tab(browser: Browser) -> Iterator[OpenTab]:
    """``tab(base_url)``: a fresh page (its own context: no shared session) on that app."""
    contexts = []

    def make(base: str) -> Tab:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        t = Tab(page, base)
        local = urlsplit(base).hostname

        def on_console(msg: Any) -> None:
            url = str((msg.location or {}).get("url") or "")
            if msg.type == "error" and urlsplit(url).hostname not in KNOWN_EXTERNAL_HOSTS:
                t.console_errors.append(f"{msg.text} ({url})")

        def on_request(request: Any) -> None:
            host = urlsplit(request.url).hostname
            if host and host not in (local, "localhost", "127.0.0.1"):
                t.external.add(host)

        def on_dialog(dialog: Any) -> None:
            t.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("request", on_request)
        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: t.console_errors.append(f"page error: {exc}"))
        return t

    yield make
    for context in contexts:
        context.close()


# ---------------------------------------------------------------------------- the tests


def test_sign_in_refuses_a_wrong_password_then_signs_in_and_out(team: Team, tab: OpenTab) -> None:
    t = tab(team.url)
    t.page.goto(team.url)
    t.heading("Listenwell").wait_for()
    t.sign_in("mo", "not the password")
    refusal = t.page.get_by_test_id("stAlertContentError").filter(has_text="Sign-in refused")
    refusal.wait_for()
    assert "wrong username or password" in refusal.inner_text()
    assert t.page.get_by_test_id("stSidebarNav").count() == 0  # nothing behind the form
    assert t.page.get_by_test_id("stMetric").count() == 0

    t.page.get_by_role("textbox", name="Password").fill(PASSWORD)
    t.page.get_by_role("button", name="Sign in").click()
    metric = t.page.get_by_test_id("stMetric").filter(has_text="Mentions").first
    metric.wait_for()
    t.settle()
    assert int(metric.get_by_test_id("stMetricValue").inner_text().replace(",", "")) > 0
    assert "Signed in as mo (manager)" in t.sidebar().inner_text()
    t.assert_clean()

    t.sidebar().get_by_role("button", name="Sign out").click()
    t.page.get_by_role("button", name="Sign in").wait_for()
    t.settle()
    assert t.page.get_by_test_id("stMetric").count() == 0
    # Signed out there is no sidebar at all (only the sign-in page), or one without a user.
    assert t.sidebar().count() == 0 or "Signed in as" not in t.sidebar().inner_text()
    # Were a link of the last user still listed, following it must only bring the form back.
    stale = t.page.get_by_test_id("stSidebarNav").get_by_role("link", name="Inbox", exact=True)
    if stale.count():
        stale.click()
        t.page.wait_for_selector(
            '[data-testid="stSidebarNavLink"][aria-current="page"][href$="/inbox"]'
        )
        t.page.wait_for_timeout(500)
        t.settle()
        assert t.page.get_by_role("button", name="Sign in").is_visible()
        assert t.heading("Inbox").count() == 0
        assert t.page.get_by_test_id("stDataFrame").count() == 0

    t.sign_in("al")
    t.heading("Overview").wait_for()
    t.settle()
    assert t.nav_links() == PAGES_BY_ROLE["analyst"]
    t.assert_clean()


def test_signing_out_clears_the_navigation(team: Team, tab: OpenTab) -> None:
    t = tab(team.url)
    t.signed_in("mo")
    t.sidebar().get_by_role("button", name="Sign out").click()
    t.page.get_by_role("button", name="Sign in").wait_for()
    t.settle()
    assert t.page.get_by_test_id("stSidebarNav").count() == 0


@pytest.mark.parametrize("username", list(TEAM), ids=[role for role, _ in TEAM.values()])
def test_each_role_opens_exactly_its_pages(team: Team, tab: OpenTab, username: str) -> None:
    role = TEAM[username][0]
    t = tab(team.url)
    t.signed_in(username)
    assert t.nav_links() == PAGES_BY_ROLE[role]
    assert f"Signed in as {username} ({role})" in t.sidebar().inner_text()
    for title in sorted(PAGES_BY_ROLE[role] - {"Overview"}):
        t.open_page(title)
        assert urlsplit(t.page.url).path != "/"  # the page's own address
        t.assert_healthy()
    t.assert_clean()


def test_agent_replies_to_an_x_mention_with_a_canned_reply(
    team: Team, tab: OpenTab, fake_x: FakeX
) -> None:
    t = tab(team.url)
    t.signed_in("ann")
    t.open_page("Inbox")
    picked = t.pick("Open conversation")
    match = re.match(r"#(\d+) · ", picked)
    assert match, picked
    cid = int(match.group(1))
    t.page.get_by_role("heading", name=f"Conversation #{cid}").wait_for()
    t.settle()
    engine = store.connect(team.database_url)
    try:
        conv = ib.get_conversation(engine, cid)
    finally:
        engine.dispose()
    assert conv.source == "x" and conv.first_response_at is None
    before = len(fake_x.posted)

    t.pick("Canned reply", "acknowledge")
    t.page.get_by_role("button", name="Use it").click()
    box = t.page.get_by_role("textbox", name="Reply on x (public)")
    t.page.wait_for_function(
        "() => [...document.querySelectorAll('textarea')].some(a => a.value.startsWith('Hi '))"
    )
    t.settle()
    text = box.input_value()
    assert f"(case {cid})" in text and text.endswith("- Ann Agent")

    t.page.get_by_role("button", name="Send reply").click()
    sent = t.page.get_by_test_id("stAlertContentSuccess").filter(has_text="sent on x as")
    sent.wait_for()
    t.settle()
    assert len(fake_x.posted) == before + 1
    post = fake_x.posted[-1]
    assert post["in_reply_to_tweet_id"] == conv.external_id
    assert post["text"] == text and post["auth"] == "oauth2-user"
    assert f"as {post['id']}" in sent.inner_text()
    assert t.page.get_by_text(re.compile(r"first response \d{4}-\d\d-\d\d")).count() == 1

    engine = store.connect(team.database_url)
    try:
        replies = ib.list_replies(engine, conversation_id=cid)
        after = ib.get_conversation(engine, cid)
    finally:
        engine.dispose()
    assert [(r.status, r.external_id, r.actor) for r in replies] == [
        ("sent", post["id"], "user:ann")
    ]
    assert after.first_response_at is not None and after.status == "open"
    t.assert_clean()


def _download(t: Tab, button: str) -> tuple[str, bytes]:
    with t.page.expect_download() as info:
        t.page.get_by_role("button", name=button).click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_manager_downloads_reports(team: Team, tab: OpenTab) -> None:
    t = tab(team.url)
    t.signed_in("mo")
    t.open_page("Reports")
    title = t.page.locator("h3").first.inner_text().strip()
    assert title

    name, data = _download(t, "Download CSV")
    assert name.startswith("feedback-report-") and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) > 1 and all(rows)

    name, data = _download(t, "Download HTML")
    assert name.endswith(".html")
    page_text = data.decode("utf-8")
    assert "<table" in page_text and title in page_text

    name, data = _download(t, "Download PDF")
    assert name.endswith(".pdf")
    assert data.startswith(b"%PDF") and b"%%EOF" in data[-1024:]

    metric = t.page.get_by_test_id("stMetric").filter(has_text="Mentions matching the filters")
    expected = int(metric.get_by_test_id("stMetricValue").inner_text().replace(",", ""))
    name, data = _download(t, "Download the filtered mentions (CSV)")
    assert name.endswith(".csv")
    exported = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert len(exported) == expected > 0
    assert list(exported[0]) == list(store.EXPORT_COLUMNS)
    t.assert_clean()


def test_hostile_post_text_stays_text(team: Team, tab: OpenTab) -> None:
    t = tab(team.url)
    t.signed_in("mo")  # the Overview lists the latest mentions: the hostile one is the newest
    t.page.get_by_test_id("stPlotlyChart").first.wait_for()
    assert t.page.evaluate(SCRIPTED) == []
    t.open_page("Mentions")
    search = t.sidebar().get_by_role("textbox", name="Text contains")
    search.fill(MARKER)
    search.press("Enter")
    t.page.get_by_text("1 newest mentions matching the filters", exact=True).wait_for()
    t.settle()
    t.page.get_by_text("Why this sentiment?").click()
    t.page.get_by_test_id("stSelectbox").filter(has_text="Mention").first.wait_for()
    shown = t.pick("Mention", MARKER)  # the option label is the post's text, as text
    assert "<script>alert(1)</script>" in shown and "<img src=x onerror=alert(2)>" in shown
    # The words that drove its sentiment, charted (plotly reads some HTML in labels).
    t.page.get_by_text("Predicted:").wait_for()
    t.page.get_by_test_id("stPlotlyChart").last.wait_for()
    t.settle()
    assert t.page.evaluate(SCRIPTED) == []

    t.open_page("Inbox")
    box = t.page.get_by_role("textbox", name="Text or author contains")
    box.fill(MARKER)
    box.press("Enter")
    t.page.get_by_text("Page 1, 1 conversations").wait_for()
    t.settle()
    t.pick("Open conversation")
    t.page.get_by_role("heading", name="Conversation #").wait_for()
    t.settle()
    assert t.page.evaluate(SCRIPTED) == []
    assert t.page.locator("img[src='x'], script:has-text('alert(')").count() == 0
    t.assert_clean()  # above all: no dialog opened


def test_demo_switches_between_passwordless_users(demo_url: str, tab: OpenTab) -> None:
    t = tab(demo_url)
    t.page.goto(demo_url)
    t.heading("Overview").wait_for()
    t.settle()
    assert t.page.get_by_role("textbox", name="Password").count() == 0
    assert "Signed in as demo-manager (manager)" in t.sidebar().inner_text()
    assert t.nav_links() == PAGES_BY_ROLE["manager"]
    t.open_page("Settings")
    t.assert_healthy()

    for label, username, role, page in [
        ("Avery (demo agent)", "demo-agent", "agent", "Inbox"),
        ("Ana (demo analyst)", "demo-analyst", "analyst", "Feedback themes"),
        ("Adrian (demo admin)", "demo-admin", "admin", "Customers"),
    ]:
        t.pick("Demo user", label)
        t.sidebar().get_by_text(f"Signed in as {username} ({role})").wait_for()
        t.settle()
        assert t.nav_links() == PAGES_BY_ROLE[role]
        t.open_page(page)
        t.assert_healthy()
    t.assert_clean()


def test_demo_agent_has_conversations_to_work_on(demo_url: str, tab: OpenTab) -> None:
    t = tab(demo_url)
    t.page.goto(demo_url)
    t.heading("Overview").wait_for()
    t.settle()
    t.pick("Demo user", "Avery (demo agent)")
    t.sidebar().get_by_text("Signed in as demo-agent (agent)").wait_for()
    t.settle()
    t.open_page("Inbox")
    t.assert_healthy()
    assert t.page.get_by_text("No conversations match these filters.").count() == 0
