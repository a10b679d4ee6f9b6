"""``listenwell escalations ...`` and ``listenwell rules ...``: rules, SLA sweep, queue, history.

``escalations sweep`` runs one pass (apply the rules in force to new conversations, then
assess every open SLA clock: reminders, one-step upgrades, final breaches); with
``--watch`` or ``--every`` it repeats on the in-process scheduler of ``collect --every``.
``rules ...`` checks, previews, backtests and saves versions of the rules file.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import CliError, state_of
from .io import actor

if TYPE_CHECKING:
    from listenwell.crm.rules import RuleSet
    from listenwell.crm.sla import Assessment

__all__ = ["escalations_app", "register", "rules_app", "run_pass"]

escalations_app = typer.Typer(
    help="Escalations: apply the rules, run the SLA sweep, see the queue and each breakdown.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Escalation rules and SLA policies: show, check, preview, backtest, save, history.",
    no_args_is_help=True,
)

DEFAULT_EVERY_S = 60.0
_EXPORT_COLUMNS = [
    "conversation_id",
    "mention_id",
    "source",
    "author_handle",
    "status",
    "priority",
    "escalated",
    "escalation_level",
    "level",
    "assignee",
    "rules",
    "sla_target",
    "sla_state",
    "sla_left_minutes",
    "sla_due_at",
    "text",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Assess at this moment (ISO 8601, e.g. 2024-05-06T14:00:00+02:00; no offset "
        "means UTC) instead of the current time. For replays and tests.",
    ),
]
FileArg = Annotated[Path, typer.Argument(help="A rules YAML file (see config/rules.yaml).")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only mentions posted on or after this day (YYYY-MM-DD)."),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", "-n", min=1, help="At most this many mentions.")
]
SamplesOpt = Annotated[
    int, typer.Option("--samples", min=0, help="Example mentions shown per rule.")
]


# --------------------------------------------------------------------------- helpers


def _setting(ctx: typer.Context, name: str, default: Any) -> Any:
    """``settings.escalations.<name>`` where that section exists, else ``default``."""
    section = getattr(state_of(ctx).settings, "escalations", None)
    value = getattr(section, name, None) if section is not None else None
    return default if value is None else value


def _in_force(ctx: typer.Context) -> RuleSet:
    from listenwell.crm.rules import RulesError, rules_in_force

    path = _setting(ctx, "rules_file", None)
    try:
        return rules_in_force(state_of(ctx).engine(), default_path=path)
    except RulesError as exc:
        raise CliError(str(exc)) from None


def _load(path: Path) -> RuleSet:
    from listenwell.crm.rules import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as exc:
        raise CliError(str(exc)) from None


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--now must be an ISO 8601 time like 2024-05-06T14:00:00Z, got {value!r}"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"--since must be a date like 2024-01-31, got {value!r}") from None


def _span(seconds: float) -> str:
    """``1h 20m``, ``2d 3h`` or ``-35m`` (overdue) for business seconds."""
    sign = "-" if seconds < 0 else ""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {mins:02d}m"
    return f"{sign}{mins}m"


def _local(t: datetime | None, tz: str) -> str:
    if t is None:
        return "-"
    from zoneinfo import ZoneInfo

    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _sla_text(a: Assessment, tz: str) -> str:
    target = f"{a.metric.replace('_', ' ')} ({a.stage})"
    if a.state == "breached":
        return f"{target}: overdue by {_span(-a.remaining_s)} business time"
    if a.paused:
        return f"{target}: paused (pending), {_span(a.remaining_s)} left"
    return f"{target}: {_span(a.remaining_s)} left, due {_local(a.due_at, tz)}"


def _sla_dict(a: Assessment) -> dict[str, Any]:
    return {
        "target": a.metric,
        "stage": a.stage,
        "state": a.state,
        "window_minutes": round(a.window_s / 60, 2),
        "elapsed_minutes": round(a.elapsed_s / 60, 2),
        "left_minutes": round(a.remaining_s / 60, 2),
        "due_at": a.due_at.isoformat() if a.due_at else None,
        "remind_at": a.remind_at.isoformat() if a.remind_at else None,
        "paused": a.paused,
    }


# --------------------------------------------------------------------------- escalations


def run_pass(
    ctx: typer.Context, now: datetime | None = None, *, apply: bool = True
) -> dict[str, Any]:
    """One scheduled pass: apply the rules in force to new conversations, then sweep.

    The rules are re-read each pass, so a newly saved version takes effect at the next one.

    Returns:
        ``{"apply": ..., "sweep": ...}`` counts.
    """
    from listenwell.crm.rules import apply_rules
    from listenwell.store.escalations import sweep

    engine = state_of(ctx).engine()
    rules = _in_force(ctx)
    when = now or datetime.now(UTC)
    out: dict[str, Any] = {}
    if apply:
        out["apply"] = apply_rules(engine, rules, now=when).as_dict()
    out["sweep"] = sweep(engine, when, rules.policy).as_dict()
    out["rule_version"] = rules.version
    return out


def _pass_line(result: dict[str, Any]) -> str:
    s = result["sweep"]
    line = (
        f"sweep at {s['now']}: {s['open']:,} open, {s['reminded']:,} reminded, "
        f"{s['upgraded']:,} upgraded, {s['breached']:,} breached at manager level"
    )
    if s["conflicts"]:
        line += f", {s['conflicts']:,} skipped (changed meanwhile)"
    line += f" ({s['seconds']:.2f} s)"
    if "apply" in result:
        a = result["apply"]
        line = (
            f"rules v{a['rule_version']}: {a['evaluated']:,} evaluated, "
            f"{a['escalated']:,} escalated, {a['reprioritised']:,} reprioritised; " + line
        )
    return line


@escalations_app.command("apply")
def escalations_apply(ctx: typer.Context, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Evaluate the rules in force on open conversations not yet evaluated
    under them.

    Writes priority, escalated and the breakdown of why; records an event
    for each new escalation. Rules raise a priority and never lower it
    (except on a conversation's untouched first evaluation).
    """
    from listenwell.crm.rules import apply_rules

    engine = state_of(ctx).engine()
    rules = _in_force(ctx)
    report = apply_rules(engine, rules, now=_parse_now(now))
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    typer.echo(
        f"rules v{report.rule_version} ({rules.origin}): {report.evaluated:,} evaluated, "
        f"{report.escalated:,} newly escalated, {report.reprioritised:,} reprioritised, "
        f"{report.conflicts:,} skipped (changed meanwhile; the next pass retries them)"
    )


@escalations_app.command("sweep")
def escalations_sweep(
    ctx: typer.Context,
    now: NowOpt = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep sweeping every minute (escalations.sweep_interval_s) until Ctrl-C.",
        ),
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="Keep sweeping at this interval (e.g. 30s, 1m, 5m) until Ctrl-C; a pass that "
            "runs late skips the ticks it missed.",
        ),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply/--no-apply", help="Apply the rules to new conversations before sweeping."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """One SLA pass over the open conversations: reminders, upgrades, breaches.

    Each open conversation gets at most one step: a reminder once its target
    is 80 % spent (see reminder_at), or, once breached, an upgrade to the
    next level (priority up until urgent, then supervisor, then manager).
    Running it twice at the same --now changes nothing the second time.
    """
    from listenwell.collectors.schedule import parse_interval, run_every

    if every is not None or watch:
        if now is not None:
            raise CliError("--now cannot be combined with --watch or --every")
        try:
            default = float(_setting(ctx, "sweep_interval_s", DEFAULT_EVERY_S))
            interval = default if every is None else parse_interval(every)
        except ValueError as exc:
            raise CliError(f"--every: {exc}") from None
    else:
        result = run_pass(ctx, _parse_now(now), apply=apply)
        typer.echo(json.dumps(result) if as_json else _pass_line(result))
        return
    state_of(ctx).engine()  # fail early, in one line, if the database is not ready
    stop = threading.Event()

    def once(_name: str, _should_stop: Callable[[], bool]) -> None:
        result = run_pass(ctx, apply=apply)
        typer.echo(json.dumps(result) if as_json else _pass_line(result))

    typer.echo(f"sweeping every {interval:g} s; Ctrl-C stops", err=True)
    try:
        run_every(interval, ["escalations"], once, stop)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


@escalations_app.command("list")
def escalations_list(
    ctx: typer.Context,
    everything: Annotated[
        bool, typer.Option("--all", help="Every open conversation, not only escalated ones.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 50,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The escalation queue: urgent first, then by level, then least SLA time
    left.
    """
    from listenwell.crm.sla import LEVELS
    from listenwell.store.escalations import escalation_queue

    engine = state_of(ctx).engine()
    rules = _in_force(ctx)
    items = escalation_queue(
        engine, rules.policy, _parse_now(now), everything=everything, limit=limit
    )
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "conversation_id": i.conversation_id,
                        "mention_id": i.mention_id,
                        "status": i.status,
                        "priority": i.priority,
                        "escalated": i.escalated,
                        "escalation_level": i.level,
                        "level": LEVELS[i.level],
                        "assignee": i.assignee,
                        "source": i.source,
                        "author_handle": i.author_handle,
                        "rules": list(i.rules),
                        "sla": _sla_dict(i.sla),
                        "text": i.text,
                    }
                    for i in items
                ]
            )
        )
        return
    if not items:
        typer.echo("no open escalations" if not everything else "no open conversations")
        return
    tz = rules.policy.calendar.tz
    for i in items:
        text = " ".join(i.text.split())
        text = text if len(text) <= 70 else text[:67] + "..."
        level = f" [{LEVELS[i.level]}]" if i.level else ""
        flag = " escalated" if i.escalated else ""
        typer.echo(
            f"#{i.conversation_id} {i.priority}{flag}{level} {i.status} {i.source} "
            f"{i.author_handle or '-'}: {text}"
        )
        rules_fired = ", ".join(i.rules) or "no rule"
        typer.echo(f"    {_sla_text(i.sla, tz)}; rules: {rules_fired}")


@escalations_app.command("show")
def escalations_show(
    ctx: typer.Context,
    conversation_id: Annotated[int, typer.Argument(help="The conversation id.")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One conversation: why it escalated (each condition), its SLA clock and
    its history.
    """
    from listenwell.crm.sla import LEVELS, assess
    from listenwell.store.escalations import conversation_escalation, escalation_history

    engine = state_of(ctx).engine()
    rules = _in_force(ctx)
    conv = conversation_escalation(engine, conversation_id)
    history = escalation_history(engine, conversation_id)
    open_ = conv.status in ("new", "open", "pending")
    a = assess(rules.policy, conv.clock, _parse_now(now)) if open_ else None
    reasons = conv.escalation.get("reasons") if isinstance(conv.escalation, dict) else None
    reasons = reasons if isinstance(reasons, list) else []
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "conversation_id": conv.conversation_id,
                    "mention_id": conv.mention_id,
                    "status": conv.status,
                    "priority": conv.priority,
                    "escalated": conv.escalated,
                    "escalation_level": conv.level,
                    "level": LEVELS[conv.level],
                    "rule_version": conv.rule_version,
                    "escalation": conv.escalation,
                    "sla": _sla_dict(a) if a else None,
                    "history": [
                        {
                            "at": e.at.isoformat(),
                            "kind": e.kind,
                            "from_level": e.from_level,
                            "to_level": e.to_level,
                            "priority": e.priority,
                            "actor": e.actor,
                            "detail": e.detail,
                        }
                        for e in history
                    ],
                    "text": conv.text,
                },
                default=str,
            )
        )
        return
    tz = rules.policy.calendar.tz
    typer.echo(
        f"conversation #{conv.conversation_id} (mention {conv.mention_id}, {conv.source} "
        f"{conv.author_handle or '-'}): {conv.status}, priority {conv.priority}, "
        f"{'escalated' if conv.escalated else 'not escalated'}, level {LEVELS[conv.level]}"
    )
    typer.echo(f"  text: {' '.join(conv.text.split())[:300]}")
    version = "-" if conv.rule_version is None else f"v{conv.rule_version}"
    if reasons:
        typer.echo(f"  why (rules {version}):")
        for r in reasons:
            typer.echo(
                f"    {r.get('rule')}: {r.get('condition')} = {r.get('value')} "
                f"(threshold {r.get('threshold')}) -> {r.get('contribution')}"
            )
    else:
        typer.echo(f"  why: no rule fired (rules {version})")
    if a is not None:
        typer.echo(f"  sla: {_sla_text(a, tz)}")
    typer.echo("  history:" if history else "  history: none")
    for e in history:
        d = e.detail or {}
        what = e.kind
        if e.kind == "upgraded":
            what += (
                f" {d.get('from_priority')} -> {e.priority}, level "
                f"{LEVELS[e.from_level or 0]} -> {LEVELS[e.to_level or 0]}"
            )
        if d.get("metric"):
            what += (
                f" ({str(d['metric']).replace('_', ' ')} target {d.get('target_minutes')} min, "
                f"{d.get('elapsed_minutes')} min elapsed)"
            )
        elif d.get("rules"):
            what += f" by {', '.join(d['rules'])}"
        typer.echo(f"    {_local(e.at, tz)} {what} [{e.actor}]")


@escalations_app.command("export")
def escalations_export(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="CSV file to write ('-' for stdout).")
    ],
    everything: Annotated[
        bool, typer.Option("--all", help="Every open conversation, not only escalated ones.")
    ] = False,
    now: NowOpt = None,
) -> None:
    """Export the escalation queue as CSV, in queue order, with each SLA clock.

    Columns: conversation_id, mention_id, source, author_handle, status,
    priority, escalated, escalation_level, level, assignee, rules,
    sla_target, sla_state, sla_left_minutes, sla_due_at, text. (The mentions
    export, `listenwell export mentions`, carries escalated and priority per
    mention.)
    """
    from listenwell import store
    from listenwell.crm.sla import LEVELS
    from listenwell.store.escalations import escalation_queue

    engine = state_of(ctx).engine()
    rules = _in_force(ctx)
    items = escalation_queue(engine, rules.policy, _parse_now(now), everything=everything)
    handle = sys.stdout if str(output) == "-" else None
    try:
        f = handle or output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        writer = csv.DictWriter(f, fieldnames=_EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for i in items:
            writer.writerow(
                {
                    "conversation_id": i.conversation_id,
                    "mention_id": i.mention_id,
                    "source": i.source,
                    "author_handle": i.author_handle or "",
                    "status": i.status,
                    "priority": i.priority,
                    "escalated": "true" if i.escalated else "false",
                    "escalation_level": i.level,
                    "level": LEVELS[i.level],
                    "assignee": i.assignee or "",
                    "rules": ";".join(i.rules),
                    "sla_target": i.sla.metric,
                    "sla_state": i.sla.state,
                    "sla_left_minutes": round(i.sla.remaining_s / 60, 2),
                    "sla_due_at": i.sla.due_at.isoformat() if i.sla.due_at else "",
                    "text": i.text,
                }
            )
    finally:
        if handle is None:
            f.close()
    if handle is None:
        typer.echo(f"exported {len(items):,} conversations to {output}")
    store.record_audit(
        engine, actor(), "export.escalations", "file", str(output), {"rows": len(items)}
    )


# --------------------------------------------------------------------------- rules


def _summary(rules: RuleSet) -> str:
    spec = rules.spec
    enabled = sum(1 for r in spec.rules if r.enabled)
    t = spec.sla.targets
    targets = ", ".join(
        f"{p} {t[p].first_response_minutes:g}/{t[p].resolution_minutes:g} min"
        for p in ("urgent", "high", "normal", "low")
    )
    return (
        f"{enabled} rules enabled of {len(spec.rules)}, default priority "
        f"{spec.default_priority}; SLA in {spec.sla.timezone}, targets (first response/"
        f"resolution) {targets}"
    )


@rules_app.command("show")
def rules_show(
    ctx: typer.Context,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="A saved version (default: the one in force)."),
    ] = None,
) -> None:
    """Print the rules in force (or a saved version) as YAML, after a summary
    line on stderr.
    """
    from listenwell.crm.rules import RulesError, RuleSet, parse_rules
    from listenwell.store.escalations import rule_set

    if version is None:
        rules = _in_force(ctx)
    else:
        record = rule_set(state_of(ctx).engine(), version)
        try:
            rules = RuleSet(parse_rules(record.text, f"version {version}"), record.text, version)
        except RulesError as exc:
            raise CliError(str(exc)) from None
    label = f"version {rules.version}" if rules.version else rules.origin
    typer.echo(f"# {label}: {_summary(rules)}", err=True)
    typer.echo(rules.text.rstrip("\n"))


@rules_app.command("check")
def rules_check(path: FileArg) -> None:
    """Validate a rules file: one line naming every bad key, exit code 1 if
    invalid.
    """
    rules = _load(path)
    typer.echo(f"{path}: valid; {_summary(rules)}")


def _print_preview(p: Any, samples: int) -> None:
    d = p.as_dict()
    per_day = d["escalated_per_day"]
    typer.echo(
        f"{d['origin']}: {d['evaluated']:,} mentions, {d['escalated']:,} escalated "
        f"({per_day['mean']:g}/day on average over {per_day['days']} days, at most "
        f"{per_day['max']:,} in a day)"
    )
    typer.echo("  priority: " + ", ".join(f"{k} {v:,}" for k, v in d["by_priority"].items()))
    for rule, n in d["by_rule"].items():
        typer.echo(f"  rule {rule}: fired on {n:,}")
        for s in d["samples"].get(rule, [])[:samples]:
            text = " ".join(s["text"].split())
            text = text if len(text) <= 90 else text[:87] + "..."
            why = "; ".join(f"{r['condition']}={r['value']}" for r in s["reasons"])
            typer.echo(f"    mention {s['mention_id']} ({why}): {text}")


@rules_app.command("preview")
def rules_preview(
    ctx: typer.Context,
    path: FileArg,
    since: SinceOpt = None,
    limit: LimitOpt = None,
    samples: SamplesOpt = 3,
    as_json: JsonOpt = False,
) -> None:
    """What a rules file would decide on the stored mentions, without saving
    it.

    Counts per priority and per rule, escalations per day, and example
    mentions with the conditions that fired.
    """
    from listenwell.crm.rules import preview

    rules = _load(path)
    engine = state_of(ctx).engine()
    result = preview(engine, rules, since=_parse_day(since), limit=limit, samples=samples)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), default=str))
        return
    _print_preview(result, samples)


@rules_app.command("backtest")
def rules_backtest(
    ctx: typer.Context,
    path: FileArg,
    since: SinceOpt = None,
    limit: LimitOpt = None,
    samples: SamplesOpt = 3,
    as_json: JsonOpt = False,
) -> None:
    """Replay a rules file over the stored mentions and compare it with the
    rules in force.

    Shows what would change (newly escalated, no longer escalated,
    priorities raised or lowered) and how it agrees with the inbox as it
    stands (conversations escalated or high/urgent). Nothing is saved.
    """
    from listenwell.crm.rules import backtest

    rules = _load(path)
    engine = state_of(ctx).engine()
    base = _in_force(ctx)
    result = backtest(
        engine, rules, since=_parse_day(since), limit=limit, samples=samples, baseline=base
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), default=str))
        return
    _print_preview(result.candidate, samples)
    c = result.changes
    typer.echo(
        f"against {result.baseline.origin}: {c['newly_escalated']:,} newly escalated, "
        f"{c['no_longer_escalated']:,} no longer escalated, {c['raised']:,} priorities "
        f"raised, {c['lowered']:,} lowered"
    )
    i = result.inbox
    typer.echo(
        f"against the inbox ({i['conversations']:,} conversations; hot = escalated or "
        f"high/urgent): both hot {i['both']:,}, only the rules {i['rules_only']:,}, only the "
        f"inbox {i['inbox_only']:,}, neither {i['neither']:,}"
    )


@rules_app.command("save")
def rules_save(
    ctx: typer.Context,
    path: FileArg,
    by: Annotated[str, typer.Option("--by", help="Who saves this version (audit log).")],
    note: Annotated[
        str | None, typer.Option("--note", help="Why: shown in `rules history`.")
    ] = None,
) -> None:
    """Validate a rules file and save it as the next version; it is in force at
    once.

    Conversations are re-evaluated under the new version by the next
    `escalations apply` (or sweep).
    """
    from listenwell.crm.rules import RulesError, save_rules

    rules = _load(path)
    try:
        saved = save_rules(state_of(ctx).engine(), rules.text, by, note)
    except RulesError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"saved {path} as rules version {saved.version}; {_summary(saved)}")


@rules_app.command("history")
def rules_history(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every saved version of the rules: who saved it, when and why (newest
    first).
    """
    from listenwell.store.escalations import list_rule_sets

    records = list_rule_sets(state_of(ctx).engine())
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "version": r.version,
                        "created_by": r.created_by,
                        "created_at": r.created_at.isoformat(),
                        "note": r.note,
                    }
                    for r in records
                ]
            )
        )
        return
    if not records:
        typer.echo("no saved versions: the shipped default (config/rules.yaml) is in force")
        return
    for i, r in enumerate(records):
        now = " (in force)" if i == 0 else ""
        note = f": {r.note}" if r.note else ""
        typer.echo(f"v{r.version}{now} {r.created_at:%Y-%m-%d %H:%M} UTC by {r.created_by}{note}")


def register(app: typer.Typer) -> None:
    """Add the ``escalations`` and ``rules`` commands to the root app."""
    app.add_typer(escalations_app, name="escalations")
    app.add_typer(rules_app, name="rules")
