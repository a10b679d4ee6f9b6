"""Replies through the real praw and tweepy clients, against the fake APIs on 127.0.0.1.

Nothing of ours is stood in for: the reply rows go through the store, the
clients are built from the same settings users write, and the HTTP goes to
:class:`FakeReddit` / :class:`FakeX`, which record what they were sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from listenwell import store
from listenwell.config import Settings
from listenwell.crm import replies as cr
from listenwell.crm import templates as ct
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.server import Reply
from listenwell.demo.fakes.x import FakeX
from listenwell.store import inbox
from listenwell.store.models import AuditRow, ConversationRow

TWEET = "1800000000000000042"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeReddit, FakeX]]:
    """The fake Reddit and X, serving for this module."""
    reddit, x = FakeReddit(), FakeX()
    reddit.server.start()
    x.server.start()
    yield reddit, x
    reddit.server.stop()
    x.server.stop()


@pytest.fixture
def reddit(fakes) -> FakeReddit:
    fakes[0].reset()
    return fakes[0]


@pytest.fixture
def x(fakes) -> FakeX:
    fakes[1].reset()
    return fakes[1]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database (the store itself is tested on both databases elsewhere)."""
    eng = store.connect(f"sqlite:///{tmp_path / 'replies.db'}")
    store.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def reddit_login(monkeypatch, reddit):
    """The replying Reddit account, given the way praw documents: praw_* variables."""
    monkeypatch.setenv("praw_username", reddit.username)
    monkeypatch.setenv("praw_password", reddit.password)


def settings_for(reddit: FakeReddit, x: FakeX, *, x_token: str | None = None, **extra) -> Settings:
    """Settings pointing the real clients at the fakes, as a user's config file would."""
    return Settings(
        sources={
            "reddit": {
                "client_id": reddit.client_id,
                "client_secret": reddit.client_secret,
                "oauth_url": reddit.server.base_url,
                "reddit_url": reddit.server.base_url,
            },
            "x": {
                "bearer_token": x_token or x.user_token,
                "api_base_url": x.server.base_url,
            },
            "timeout_s": 2.0,
            **extra,
        }
    )


def conversation(engine, source: str, external_id: str, **kw) -> inbox.Conversation:
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source=source,
                external_id=external_id,
                created_at=store.models.utcnow(),
                text=kw.get("text", "my order never came"),
                author_handle=kw.get("author"),
            )
        ],
    )
    inbox.ensure_conversations(engine)
    with engine.connect() as conn:
        from listenwell.store.models import MentionRow

        cid = conn.execute(
            select(ConversationRow.id)
            .join(MentionRow, MentionRow.id == ConversationRow.mention_id)
            .where(MentionRow.source == source, MentionRow.external_id == external_id)
        ).scalar_one()
    return inbox.get_conversation(engine, cid)


# -- success ------------------------------------------------------------------------------


@pytest.mark.parametrize("thing", ["t1_c00002", "t3_p00001"])
def test_reddit_reply_through_praw_records_the_new_comment(engine, reddit, x, reddit_login, thing):
    c = conversation(engine, "reddit", thing, author="u/jdoe")
    draft = inbox.create_reply(engine, c.id, body="Sorry about that! DM us.", actor="alice")
    result = cr.send_reply(engine, draft.id, settings_for(reddit, x))
    assert result.sent and not result.maybe_posted
    assert reddit.posted == [
        {"thing_id": thing, "text": "Sorry about that! DM us.", "id": "r00001", "name": "t1_r00001"}
    ]
    (post,) = reddit.server.requests_to(r"^/api/comment")
    assert post.headers["authorization"] == "bearer fake-reddit-user-token"
    r = result.reply
    assert (r.status, r.external_id, r.attempts, r.error) == ("sent", "t1_r00001", 1, None)
    assert r.sent_at is not None
    conv = inbox.get_conversation(engine, c.id)
    assert (conv.status, conv.first_response_at) == ("open", r.sent_at)


def test_x_reply_through_tweepy_sends_in_reply_to(engine, reddit, x):
    c = conversation(engine, "x", TWEET, author="@jdoe")
    draft = inbox.create_reply(engine, c.id, body="We're on it, @jdoe", actor="bob")
    result = cr.send_reply(engine, draft.id, settings_for(reddit, x))
    assert result.sent
    (posted,) = x.posted
    assert posted["in_reply_to_tweet_id"] == TWEET and posted["text"] == "We're on it, @jdoe"
    assert posted["auth"] == "oauth2-user"
    assert result.reply.external_id == posted["id"]
    with engine.connect() as conn:
        actions = [a for (a,) in conn.execute(select(AuditRow.action).order_by(AuditRow.id))]
    assert actions[-4:] == ["reply.draft", "reply.sending", "reply.sent", "conversation.update"]


def test_x_reply_with_oauth1_user_keys(x):
    sender = cr.XSender(
        bearer_token=x.bearer_token,  # the app-only token: not used for posting here
        consumer_key=x.consumer_key,
        consumer_secret=x.consumer_secret,
        access_token=x.access_token,
        access_token_secret=x.access_token_secret,
        api_base_url=x.server.base_url,
        timeout=2.0,
    )
    try:
        new_id = sender.send(TWEET, "Thanks for the feedback")
    finally:
        sender.close()
    assert x.posted == [
        {
            "id": new_id,
            "text": "Thanks for the feedback",
            "in_reply_to_tweet_id": TWEET,
            "auth": "oauth1",
        }
    ]
    (req,) = x.server.requests_to(r"^/2/tweets$")
    assert (
        req.headers["authorization"].startswith("OAuth ")
        and "oauth_signature=" in req.headers["authorization"]
    )


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            "duplicate",
            "X refused the reply (403): You are not allowed to create a Tweet with duplicate",
        ),
        ("429", "rate limited by X (429); try again after"),
        ("503", "X had a server error (HTTP 503)"),
    ],
)
def test_x_failure_keeps_a_failed_draft_and_retry_sends_it(engine, reddit, x, fault, reason):
    settings = settings_for(reddit, x)
    c = conversation(engine, "x", TWEET)
    draft = inbox.create_reply(engine, c.id, body="Hello there", actor="alice")
    x.fail_next_post(fault)
    failed = cr.send_reply(engine, draft.id, settings)
    assert not failed.sent and x.posted == []
    r = failed.reply
    assert (r.status, r.attempts, r.body) == ("failed", 1, "Hello there")
    assert r.error.startswith(reason) and "\n" not in r.error
    assert [f.id for f in inbox.list_replies(engine, status="failed")] == [draft.id]
    conv = inbox.get_conversation(engine, c.id)
    assert (conv.status, conv.first_response_at) == ("new", None)

    again = cr.retry_reply(engine, draft.id, settings, actor="bob")
    assert again.sent and again.reply.attempts == 2 and again.reply.error is None
    assert [p["text"] for p in x.posted] == ["Hello there"]
    with pytest.raises(inbox.ReplyStateError, match="already sent"):
        cr.retry_reply(engine, draft.id, settings)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("locked", "Reddit refused the reply: THREAD_LOCKED: Comments are locked."),
        ("ratelimit", "Reddit refused the reply: RATELIMIT: Looks like you've been doing that"),
        ("403", "Reddit refused the reply (403 Forbidden)"),
    ],
)
def test_reddit_failure_keeps_a_failed_draft_and_retry_sends_it(
    engine, reddit, x, reddit_login, fault, reason
):
    settings = settings_for(reddit, x)
    c = conversation(engine, "reddit", "t1_c00009")
    draft = inbox.create_reply(engine, c.id, body="Hi!", actor="alice")
    reddit.fail_next_reply(fault)
    failed = cr.send_reply(engine, draft.id, settings)
    assert failed.reply.status == "failed" and failed.reply.error.startswith(reason)
    assert reddit.posted == []
    again = cr.retry_reply(engine, draft.id, settings)
    assert again.sent and again.reply.external_id == "t1_r00001"
    assert reddit.posted[0]["thing_id"] == "t1_c00009"


def test_a_timeout_may_have_posted_so_it_says_so_and_is_not_retried(engine, reddit, x):
    c = conversation(engine, "x", TWEET)
    draft = inbox.create_reply(engine, c.id, body="Slow one", actor="alice")
    x.server.fail_next(r"^/2/tweets$", Reply(delay=1.0, passthrough=True))
    result = cr.send_reply(engine, draft.id, settings_for(reddit, x, timeout_s=0.3))
    assert result.maybe_posted and result.reply.status == "failed"
    assert "may have been posted" in result.reply.error
    # It was in fact posted (the answer came too late): exactly once, no automatic retry.
    assert [p["text"] for p in x.posted] == ["Slow one"]
    assert len(x.server.requests_to(r"^/2/tweets$")) == 1


def test_missing_user_credentials_fail_clearly_without_posting(engine, reddit, x):
    c = conversation(engine, "reddit", "t3_p00001")
    draft = inbox.create_reply(engine, c.id, body="Hi", actor="alice")
    result = cr.send_reply(engine, draft.id, settings_for(reddit, x))  # no praw_* login
    assert result.reply.status == "failed"
    assert "Reddit replies need a user login" in result.reply.error
    assert reddit.server.requests_to(r"^/api/comment") == []

    # On X an app-only bearer token is refused by X itself, and the reason says what to set.
    cx = conversation(engine, "x", TWEET)
    dx = inbox.create_reply(engine, cx.id, body="Hi", actor="alice")
    rx = cr.send_reply(engine, dx.id, settings_for(reddit, x, x_token=x.bearer_token))
    assert "Application-Only is forbidden" in rx.reply.error
    assert "sources.x.consumer_key" in rx.reply.error and x.posted == []


def test_a_platform_without_a_sender_fails_visibly(engine, reddit, x):
    c = conversation(engine, "appstore", "rev-1")
    draft = inbox.create_reply(engine, c.id, body="Thanks for the review", actor="alice")
    result = cr.send_reply(engine, draft.id, settings_for(reddit, x))
    assert result.reply.status == "failed"
    assert result.reply.error.startswith("replies on appstore cannot be sent from Listenwell")


def test_a_reply_stuck_sending_is_listed_and_only_resent_with_force(engine, reddit, x):
    settings = settings_for(reddit, x)
    c = conversation(engine, "x", TWEET)
    draft = inbox.create_reply(engine, c.id, body="Interrupted", actor="alice")
    inbox.claim_reply(engine, draft.id, actor="alice")  # ... and the process died here
    stuck = inbox.list_replies(engine, status="sending")
    assert [r.id for r in stuck] == [draft.id]
    with pytest.raises(inbox.ReplyStateError, match="being sent"):
        cr.send_reply(engine, draft.id, settings)
    with pytest.raises(inbox.ReplyStateError, match="--force"):
        cr.retry_reply(engine, draft.id, settings)
    result = cr.retry_reply(engine, draft.id, settings, actor="bob", force=True)
    assert result.sent and result.reply.attempts == 2
    with engine.connect() as conn:
        errors = [
            d["error"]
            for (d,) in conn.execute(
                select(AuditRow.detail).where(AuditRow.action == "reply.failed")
            )
        ]
    assert errors == ["abandoned while sending, by bob"]


# -- templates ----------------------------------------------------------------------------


def test_canned_replies_fill_placeholders_from_the_conversation(engine, reddit, x):
    store.upsert_customers(
        engine, [("l1", store.Customer(customer_id="C1", name="Jane {agent} Doe"))]
    )
    c = conversation(engine, "x", TWEET, author="@jdoe")
    with engine.begin() as conn:  # link it as a confirmed link would (tested in the store)
        from listenwell.store.models import CustomerRow

        pk = conn.execute(select(CustomerRow.id)).scalar_one()
        conn.execute(
            ConversationRow.__table__.update()
            .where(ConversationRow.id == c.id)
            .values(customer_pk=pk)
        )
    draft = cr.draft_reply(engine, c.id, actor="alice", template="acknowledge")
    # The customer's name holds a placeholder: inserted as text, never expanded.
    assert draft.body.startswith("Hi Jane, thanks for reaching out.")
    assert f"(case {c.id}). - alice" in draft.body and draft.template == "acknowledge"
    custom = {"hello": ct.Template("hello", "Hello {customer_name} ({handle}), case {case_id}")}
    d2 = cr.draft_reply(engine, c.id, actor="bob", template="hello", templates=custom)
    assert d2.body == f"Hello Jane {{agent}} Doe (@jdoe), case {c.id}"

    unknown = conversation(engine, "reddit", "t3_p00001")
    d3 = cr.draft_reply(engine, unknown.id, actor="alice", template="apology_dm")
    assert d3.body.startswith("Hi there, we're sorry about this.")
    # Typed text is taken as it is, braces and all.
    d4 = cr.draft_reply(engine, unknown.id, actor="alice", text="Use {first_name}? No: {{x}}")
    assert d4.body == "Use {first_name}? No: {{x}}" and d4.template is None
    with pytest.raises(ct.TemplateError, match="no template 'nope'"):
        cr.draft_reply(engine, unknown.id, actor="alice", template="nope")
    with pytest.raises(ValueError, match="either a text or a template"):
        cr.draft_reply(engine, unknown.id, actor="alice")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi {first_name}", "Hi Jane"),
        ("{{literal}} {agent}", "{literal} alice"),
        ("{customer_name}/{handle}/{case_id}", "Jane Doe/there/12"),
        ("{unknown}", ct.TemplateError("unknown placeholder {unknown}")),
        ("{first_name.__class__}", ct.TemplateError("is not allowed")),
        ("{agent[0]}", ct.TemplateError("is not allowed")),
        ("{agent:>99999999}", ct.TemplateError("may not have a format")),
        ("{agent!r}", ct.TemplateError("may not have a format or conversion")),
        ("{}", ct.TemplateError("is not allowed")),
        ("a lone { brace", ct.TemplateError("malformed template")),
    ],
)
def test_render_is_safe(text, expected):
    values = ct.reply_context(case_id=12, agent="alice", customer_name="Jane  Doe")
    if isinstance(expected, Exception):
        with pytest.raises(
            ct.TemplateError, match=str(expected).replace("{", r"\{").replace("[", r"\[")
        ):
            ct.render(text, values)
    else:
        assert ct.render(text, values) == expected


def test_user_templates_file_adds_and_overrides_and_is_checked(tmp_path):
    path = tmp_path / "templates.yaml"
    path.write_text(
        "shipping: 'Hi {first_name}, your parcel is on its way (case {case_id}).'\n"
        "acknowledge:\n  text: 'Got it, {handle}!'\n  description: Short ack.\n",
        encoding="utf-8",
    )
    known = ct.load_templates(path)
    assert set(ct.BUILTIN_TEMPLATES) <= set(known)
    assert known["acknowledge"] == ct.Template("acknowledge", "Got it, {handle}!", "Short ack.")
    assert not known["shipping"].builtin and known["need_info"].builtin
    values = ct.reply_context(case_id=3, agent="a", handle="@jd")
    assert ct.render_template("acknowledge", values, known) == "Got it, @jd!"

    for body, message in [
        ("bad: 'Hi {email}'\n", "template 'bad': unknown placeholder {email}"),
        ("- a list\n", "must map template names to texts"),
        ("empty: ''\n", "template 'empty' needs a text"),
        ("'two words': hi\n", "may only have letters"),
        ("x: [unclosed\n", "is not valid YAML"),
    ]:
        path.write_text(body, encoding="utf-8")
        with pytest.raises(ct.TemplateError, match=message.replace("{", r"\{")):
            ct.load_templates(path)
    with pytest.raises(ct.TemplateError, match="not found"):
        ct.load_templates(tmp_path / "missing.yaml")
    assert ct.templates_file(Settings()) is None  # until the setting exists, none is read
