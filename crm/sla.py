"""Business-time maths for SLA clocks: calendars, due times, pauses, reminders and breaches.

Pure: no database and no I/O, so every rule here is tested with a controlled clock
(``tests/crm/test_sla.py``, property-based with Hypothesis).

**Business time.** A :class:`BusinessCalendar` has a time zone, opening hours per weekday
(wall-clock windows such as ``09:00-17:00``; ``24:00`` closes at midnight) and holidays
(local dates that are closed all day). Business seconds are *real elapsed seconds* inside
those windows. A window boundary is the first instant at which the local clock shows that
time or later, which settles the two daylight-saving edge cases:

* spring forward: a boundary in the skipped hour is the moment of the change, so a window
  that lies wholly in the skipped hour is empty;
* autumn back: a boundary in the repeated hour is its first occurrence.

So a 09:00-17:00 day is always 8 hours, while a night window across the change is one hour
shorter or longer, as a clock on the wall would show.

**Clocks.** :func:`assess` reads one conversation's SLA clock at a given ``now``. The clock
runs in business time from the start of the current *stage* (the conversation's
``opened_at``, then the moment of each automatic upgrade) and stops while the conversation
is pending on the customer: the business time of each pending spell inside the stage is
left out exactly (``Clock.pauses``, and ``pending_since`` for the spell running now).
The target is the first response until there is one, then the resolution; each priority
has its own pair of targets, a supervisor and a manager one window each. Reaching
``reminder_at`` of the window sends one reminder per stage and target; reaching the window
upgrades one step along the ladder (:func:`next_step`): priority up one level until
``urgent``, then supervisor, then manager; a breach at manager level is recorded once.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "LEVELS",
    "METRICS",
    "PRIORITIES",
    "WEEKDAYS",
    "Assessment",
    "BusinessCalendar",
    "CalendarError",
    "Clock",
    "SlaPolicy",
    "Screen",
    "Targets",
    "assess",
    "next_step",
    "parse_window",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
"""Priorities, lowest first (the ``conversations.priority`` values)."""
LEVELS: tuple[str, ...] = ("none", "priority raised", "supervisor", "manager")
"""What each ``conversations.escalation_level`` means (0 to 3)."""
METRICS: tuple[str, ...] = ("first_response", "resolution")

Metric = Literal["first_response", "resolution"]
Action = Literal["remind", "upgrade", "breach"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_MIN_SPAN = 31  # days built around the first query; the timeline then doubles as needed
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class CalendarError(ValueError):
    """A business calendar is invalid (zone, hours, holidays) or a time is out of its range."""


def _to_us(t: datetime) -> int:
    if t.tzinfo is None or t.utcoffset() is None:
        raise CalendarError(f"a timezone-aware time is needed, got {t.isoformat()}")
    return (t - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def parse_window(text: str) -> tuple[int, int]:
    """Parse ``"HH:MM-HH:MM"`` into minutes after local midnight (``24:00`` is 1440).

    Raises:
        CalendarError: Not a window, or it does not end after it starts.
    """
    match = _WINDOW.match(text)
    if not match:
        raise CalendarError(f"not an opening window: {text!r} (use e.g. 09:00-17:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start > 1440 or end > 1440:
        raise CalendarError(f"not a time of day in {text!r}")
    if end <= start:
        raise CalendarError(f"the window {text!r} must end after it starts (24:00 is midnight)")
    return start, end


def _weekday(key: int | str) -> int:
    if isinstance(key, int) and 0 <= key <= 6:
        return key
    name = str(key).strip().lower()[:3]
    if name not in WEEKDAYS:
        raise CalendarError(f"unknown weekday {key!r} (use mon, tue, ... sun)")
    return WEEKDAYS.index(name)


def _windows(value: Sequence[str | tuple[int, int]] | str) -> tuple[tuple[int, int], ...]:
    items = [value] if isinstance(value, str) else list(value)
    spans: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, str):
            spans.append(parse_window(item))
        else:
            start, end = int(item[0]), int(item[1])
            if not 0 <= start < end <= 1440:
                raise CalendarError(f"not a window in minutes after midnight: {item!r}")
            spans.append((start, end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


class BusinessCalendar:
    """Opening hours per weekday in one time zone, minus holidays.

    Args:
        tz: An IANA zone name, e.g. ``Europe/Berlin``.
        hours: Opening windows per weekday (``mon``..``sun`` or 0..6), each a list of
            ``"HH:MM-HH:MM"`` strings or ``(start_minute, end_minute)`` pairs. A weekday
            that is absent is closed. ``None`` means open around the clock.
        holidays: Local dates that are closed all day.

    Raises:
        CalendarError: Unknown zone, a bad window, or no opening hours in the whole week.
    """

    __slots__ = (
        "_anchor",
        "_cend",
        "_cum",
        "_ends",
        "_first",
        "_hi_us",
        "_holidays",
        "_hours",
        "_last",
        "_lo_us",
        "_memo",
        "_starts",
        "_tz",
        "_zone",
    )

    def __init__(
        self,
        tz: str = "UTC",
        hours: Mapping[Any, Sequence[str | tuple[int, int]] | str] | None = None,
        holidays: Iterable[date] = (),
    ) -> None:
        try:
            self._zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {tz!r} (use e.g. Europe/Berlin)") from None
        self._tz = tz
        week: list[tuple[tuple[int, int], ...]] = [()] * 7
        if hours is None:
            week = [((0, 1440),)] * 7
        else:
            for key, value in hours.items():
                week[_weekday(key)] = _windows(value)
        if not any(week):
            raise CalendarError("the calendar has no opening hours on any weekday")
        self._hours: tuple[tuple[tuple[int, int], ...], ...] = tuple(week)
        self._holidays = frozenset(holidays)
        self._first: date | None = None
        self._last: date | None = None
        self._anchor: int | None = None
        self._lo_us = 0
        self._hi_us = -1
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._cum: list[int] = []
        self._cend: list[int] = []
        self._memo: tuple[datetime, int] | None = None

    @classmethod
    def always_open(cls, tz: str = "UTC") -> BusinessCalendar:
        """A calendar open around the clock, every day: business time is wall time."""
        return cls(tz, None)

    @property
    def tz(self) -> str:
        """The IANA zone name."""
        return self._tz

    @property
    def hours(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Opening windows per weekday (Monday first), in minutes after local midnight."""
        return self._hours

    @property
    def holidays(self) -> frozenset[date]:
        """Local dates that are closed all day."""
        return self._holidays

    def __repr__(self) -> str:
        return f"BusinessCalendar(tz={self._tz!r}, holidays={len(self._holidays)})"

    # ------------------------------------------------------------------ wall clock -> UTC

    def _offset_us(self, us: int) -> int:
        offset = _from_us(us).astimezone(self._zone).utcoffset()
        assert offset is not None
        return offset // _US

    def _local_us(self, day: date, minute: int) -> int:
        """The first instant (UTC microseconds) at which the local clock shows ``day minute``."""
        naive = datetime.combine(day, time()) + timedelta(minutes=minute)
        u0 = _to_us(naive.replace(tzinfo=self._zone))
        if _from_us(u0).astimezone(self._zone).replace(tzinfo=None) == naive:
            return u0  # exists; for a repeated hour fold=0 is the first occurrence
        # In a skipped hour: the answer is the moment of the change, between the two readings.
        lo = _to_us(naive.replace(tzinfo=self._zone, fold=1))
        hi = u0
        after = self._offset_us(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._offset_us(mid) == after:
                hi = mid
            else:
                lo = mid
        return hi

    def _local_date(self, us: int) -> date:
        return _from_us(us).astimezone(self._zone).date()

    # ------------------------------------------------------------------ the timeline

    def _build(self, first: date, last: date) -> None:
        starts: list[int] = []
        ends: list[int] = []
        day = first
        while day <= last:
            if day not in self._holidays:
                for s, e in self._hours[day.weekday()]:
                    a = self._local_us(day, s)
                    b = self._local_us(day, e)
                    if b <= a:
                        continue  # wholly inside a skipped hour
                    if ends and a <= ends[-1]:
                        ends[-1] = max(ends[-1], b)
                    else:
                        starts.append(a)
                        ends.append(b)
            day += _DAY
        cum: list[int] = []
        cend: list[int] = []
        total = 0
        for a, b in zip(starts, ends, strict=True):
            cum.append(total)
            total += b - a
            cend.append(total)
        lo_us = self._local_us(first, 0)
        if self._anchor is None:
            self._anchor = lo_us
        else:
            # Keep positions stable: the anchor instant stays at 0 however the range grows.
            i = bisect.bisect_right(starts, self._anchor) - 1
            shift = 0 if i < 0 else cum[i] + min(self._anchor, ends[i]) - starts[i]
            if shift:
                cum = [c - shift for c in cum]
                cend = [c - shift for c in cend]
        self._first, self._last = first, last
        self._starts, self._ends, self._cum, self._cend = starts, ends, cum, cend
        self._lo_us = lo_us
        self._hi_us = self._local_us(last + _DAY, 0)

    def _cover(self, us: int) -> None:
        if self._lo_us <= us < self._hi_us:
            return
        try:
            day = self._local_date(us)
            if self._first is None or self._last is None:
                self._build(day - timedelta(days=_MIN_SPAN), day + timedelta(days=_MIN_SPAN))
                return
            span = max(self._last - self._first, timedelta(days=_MIN_SPAN))
            first = min(self._first, day - span) if day <= self._first else self._first
            last = max(self._last, day + span) if day >= self._last else self._last
            self._build(first, last)
        except (OverflowError, ValueError):
            raise CalendarError("the time is outside the range the calendar can count") from None

    def _grow(self) -> None:
        assert self._first is not None and self._last is not None
        span = max(self._last - self._first, timedelta(days=_MIN_SPAN))
        try:
            self._build(self._first, self._last + span)
        except (OverflowError, ValueError):
            raise CalendarError("the due time is beyond the range the calendar can count") from None

    def _cum_at(self, us: int) -> int:
        """Business microseconds from the calendar's anchor instant up to ``us``."""
        if not self._lo_us <= us < self._hi_us:
            self._cover(us)
        i = bisect.bisect_right(self._starts, us) - 1
        if i < 0:
            return self._cum[0] if self._cum else 0
        return self._cum[i] + min(us, self._ends[i]) - self._starts[i]

    def _last_at(self, pos: int) -> int | None:
        """The last instant (UTC microseconds) whose position is at most ``pos``.

        ``None`` where the timeline built so far cannot tell (``pos`` before its first
        window or at or after the end of its last one).
        """
        i = bisect.bisect_right(self._cum, pos) - 1
        if i < 0 or pos >= self._cend[i]:
            return None
        # Positions rise strictly inside a window, so the instant that reaches ``pos`` is
        # the last one at or below it (one microsecond later is one more).
        return self._starts[i] + (pos - self._cum[i])

    def _add_us(self, start: int, amount: int) -> int:
        if amount < 0:
            raise CalendarError("cannot add a negative business time")
        if amount == 0:
            return start
        while True:
            target = self._cum_at(start) + amount
            if self._cend and self._cend[-1] >= target:
                i = bisect.bisect_left(self._cend, target)
                return self._starts[i] + (target - self._cum[i])
            self._grow()

    # ------------------------------------------------------------------ public maths

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant at or after ``start`` that is ``seconds`` business seconds later.

        Adding 0 returns ``start`` itself; adding more lands inside opening hours (at
        most on a window's closing instant), never on a weekend, holiday or night.

        Args:
            start: A timezone-aware time.
            seconds: Business seconds to add (not negative); microsecond precision.

        Returns:
            A timezone-aware time in UTC.

        Raises:
            CalendarError: ``start`` is naive, ``seconds`` is negative, or the result is
                beyond the years a datetime can hold.
        """
        return _from_us(self._add_us(_to_us(start), round(seconds * 1_000_000)))

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds from ``a`` to ``b`` (negative when ``b`` is before ``a``).

        Raises:
            CalendarError: A time is naive.
        """
        # Positions never move once built, so covering one end cannot shift the other. The
        # later end is often the same ``now`` object for a whole sweep: its position is kept.
        memo = self._memo
        if memo is not None and memo[0] is b:
            pb = memo[1]
        else:
            pb = self._cum_at(_to_us(b))
            self._memo = (b, pb)
        return (pb - self._cum_at(_to_us(a))) / 1_000_000

    def position(self, t: datetime) -> int:
        """Business microseconds from a fixed instant of this calendar to ``t`` (may be < 0).

        The difference of two positions is the business time between them, exactly; the
        reference instant never moves for a given calendar object, so positions can be
        kept and compared (the sweep computes ``position(now)`` once).

        Raises:
            CalendarError: ``t`` is naive.
        """
        return self._cum_at(_to_us(t))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` falls inside opening hours (a window's start included, its end not)."""
        us = _to_us(t)
        self._cover(us)
        i = bisect.bisect_right(self._starts, us) - 1
        return i >= 0 and us < self._ends[i]

    def next_open(self, t: datetime) -> datetime:
        """``t`` if the calendar is open then, else the start of the next opening window."""
        us = _to_us(t)
        while True:
            self._cover(us)
            i = bisect.bisect_right(self._starts, us) - 1
            if i >= 0 and us < self._ends[i]:
                return _from_us(us)
            if i + 1 < len(self._starts):
                return _from_us(self._starts[i + 1])
            self._grow()


# ---------------------------------------------------------------------------- SLA policies


@dataclass(frozen=True, slots=True)
class Targets:
    """One priority's SLA targets, in business seconds from the start of the stage."""

    first_response_s: float
    resolution_s: float


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets per priority, the calendar they count in, reminders and the upgrade ladder.

    Attributes:
        calendar: Business hours and holidays.
        targets: :class:`Targets` for each of :data:`PRIORITIES`.
        reminder_at: Fraction of a window at which a reminder is sent (0 turns them off).
        raise_priority: Whether the first upgrades raise the priority (up to ``urgent``)
            before a supervisor is called in.
        supervisor_s: Business seconds a supervisor has before a manager is called in.
        manager_s: Business seconds a manager has before a final breach is recorded.
    """

    calendar: BusinessCalendar
    targets: Mapping[str, Targets]
    reminder_at: float = 0.8
    raise_priority: bool = True
    supervisor_s: float = 3600.0
    manager_s: float = 7200.0


@dataclass(frozen=True, slots=True)
class Clock:
    """What :func:`assess` needs from one conversation.

    Attributes:
        priority: Its priority now.
        level: Its ``escalation_level`` now (0 to 3).
        opened_at: When it was opened (the first stage's start).
        first_response_at: When it was first answered, if it was.
        pending_since: When it went pending on the customer, *only while it is pending*.
        pauses: Its closed pending spells, ``(start, end)``; each is left out of the
            stage it overlaps, to the microsecond of business time.
        paused_s: Business seconds of closed pending spells that ``pauses`` does not
            list (known only as a total).
        reminded_at: When the last reminder was sent.
        stage_since: When the last automatic upgrade happened (``None``: never).
        stage_paused_s: ``paused_s`` as it stood at ``stage_since``, so only the part of
            that total added during the stage counts against it.
        final_breached: Whether the breach at manager level has been recorded.
    """

    priority: str
    level: int
    opened_at: datetime
    first_response_at: datetime | None = None
    pending_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    paused_s: float = 0.0
    reminded_at: datetime | None = None
    stage_since: datetime | None = None
    stage_paused_s: float = 0.0
    final_breached: bool = False


@dataclass(frozen=True, slots=True)
class Assessment:
    """A conversation's SLA clock at one moment, and what the sweep should do about it.

    Attributes:
        metric: The target being measured: ``first_response`` until there is one, then
            ``resolution``.
        stage: ``low``..``urgent`` (a priority's targets), ``supervisor`` or ``manager``.
        stage_since: When the stage started.
        window_s: The stage's target, in business seconds.
        elapsed_s: Business seconds the clock has run in this stage (pauses excluded).
        paused_s: Business seconds of closed pending spells left out of this stage.
        remaining_s: ``window_s - elapsed_s``; negative when overdue.
        paused: Whether the clock is stopped (pending on the customer).
        due_at: When the target is (or was) reached at the earliest; ``None`` while paused
            and not yet overdue. Only computed when asked for.
        remind_at: When the reminder is (or was) due; ``None`` when off or paused.
        state: ``running``, ``paused``, ``reminded`` (reminder zone) or ``breached``.
        action: What is due now: ``remind``, ``upgrade``, ``breach`` or ``None``.
        to_priority: The priority after an ``upgrade``.
        to_level: The escalation level after an ``upgrade``.
    """

    metric: Metric
    stage: str
    stage_since: datetime
    window_s: float
    elapsed_s: float
    remaining_s: float
    paused: bool
    due_at: datetime | None
    remind_at: datetime | None
    state: str
    action: Action | None
    to_priority: str | None = None
    to_level: int | None = None
    paused_s: float = 0.0

    def breach_at(self, calendar: BusinessCalendar) -> datetime:
        """When the stage's target is (or was) reached, pauses so far left out."""
        return calendar.add_business_seconds(self.stage_since, self.window_s + self.paused_s)


def next_step(policy: SlaPolicy, priority: str, level: int) -> tuple[str, int] | None:
    """The next rung of the upgrade ladder from ``(priority, level)``; ``None`` at the top.

    With ``raise_priority`` the priority rises one level at a time until ``urgent``
    (level at least 1), then level 2 calls in a supervisor and level 3 a manager.
    """
    if policy.raise_priority and priority in PRIORITIES and priority != "urgent":
        return PRIORITIES[PRIORITIES.index(priority) + 1], max(level, 1)
    if level < 2:
        return priority, 2
    if level < 3:
        return priority, 3
    return None


class Screen:
    """A cheap and exact pre-check for one sweep: can a clock need an action at ``now``?

    Pauses only ever slow a clock down, so the business time from the stage's start to
    ``now`` (or to the start of the pending spell running now) is an upper bound of its
    elapsed time. When even that bound is short of the reminder point (or of the window,
    with reminders off), :func:`assess` would find nothing to do. The sweep screens every
    open conversation this way and assesses only the rest.
    """

    __slots__ = ("_cal", "_now", "_now_pos", "_limits", "_latest")

    def __init__(self, policy: SlaPolicy, now: datetime) -> None:
        self._cal = policy.calendar
        self._now = now
        self._now_pos = self._cal.position(now)
        share = policy.reminder_at if policy.reminder_at > 0 else 1.0
        self._limits: dict[tuple[str, int, bool], int] = {}
        for priority in PRIORITIES:
            for level in range(4):
                for responded in (False, True):
                    metric: Metric = "resolution" if responded else "first_response"
                    _, window = _window(policy, priority, level, metric)
                    # Rounded down (and one less): the screen may let through, never drop.
                    self._limits[(priority, level, responded)] = int(share * window * 1e6) - 1
        # A clock that is not pending passes when position(since) <= now_pos - limit; the
        # positions only rise, so that is a plain comparison with the last such instant.
        self._latest: dict[tuple[str, int, bool], datetime] = {}
        for key, limit in self._limits.items():
            last = self._cal._last_at(self._now_pos - limit)
            if last is not None:
                self._latest[key] = _from_us(last)

    def may_act(
        self,
        priority: str,
        level: int,
        since: datetime,
        first_response_at: datetime | None = None,
        pending_since: datetime | None = None,
        final_breached: bool = False,
    ) -> bool:
        """Whether :func:`assess` might return an action for a clock with these fields."""
        if level >= 3 and final_breached:
            return False
        responded = first_response_at is not None and first_response_at <= self._now
        key = (priority, min(max(level, 0), 3), responded)
        limit = self._limits.get(key)
        if limit is None:
            return True
        if pending_since is not None and pending_since <= self._now:
            stop = self._cal.position(max(since, pending_since))
        else:
            latest = self._latest.get(key)
            if latest is not None:
                if since.tzinfo is None:
                    raise CalendarError(f"a timezone-aware time is needed, got {since}")
                return since <= latest
            stop = self._now_pos
        return stop - self._cal.position(since) >= limit


def _window(policy: SlaPolicy, priority: str, level: int, metric: Metric) -> tuple[str, float]:
    if level >= 3:
        return "manager", policy.manager_s
    if level == 2:
        return "supervisor", policy.supervisor_s
    targets = policy.targets.get(priority) or policy.targets["normal"]
    window = targets.first_response_s if metric == "first_response" else targets.resolution_s
    return priority, window


def assess(
    policy: SlaPolicy, clock: Clock, now: datetime, *, with_times: bool = True
) -> Assessment:
    """Read one conversation's SLA clock at ``now`` and decide the sweep's action.

    Args:
        policy: The SLA policy in force.
        clock: The conversation's clock fields.
        now: The moment to assess (timezone-aware).
        with_times: Also compute ``due_at`` and ``remind_at`` (two calendar searches);
            the sweep skips them for conversations that need no action.

    Returns:
        The assessment; ``action`` is at most one step (a breach that is long overdue
        still upgrades one rung per pass, each rung getting its full window from the
        moment it was reached).
    """
    cal = policy.calendar
    since = clock.stage_since or clock.opened_at
    # Replays (a ``now`` in the past) see only what had happened by then.
    responded = clock.first_response_at is not None and clock.first_response_at <= now
    pending = clock.pending_since if clock.pending_since and clock.pending_since <= now else None
    metric: Metric = "resolution" if responded else "first_response"
    stage, window = _window(policy, clock.priority, clock.level, metric)
    paused = pending is not None
    stop = max(since, pending) if pending is not None else max(since, now)
    closed_pauses = max(0.0, clock.paused_s - clock.stage_paused_s)
    for start, end in clock.pauses:
        a, b = max(start, since), min(end, stop)
        if b > a:
            closed_pauses += cal.business_seconds_between(a, b)
    elapsed = max(0.0, cal.business_seconds_between(since, stop) - closed_pauses)
    remaining = window - elapsed
    breached = remaining <= 0
    reminder = policy.reminder_at * window if policy.reminder_at > 0 else None
    # A reminder is sent once per stage and target: the resolution target's zone starts
    # again after the first response.
    remind_since = since
    if responded and clock.first_response_at is not None:
        remind_since = max(since, clock.first_response_at)
    reminded = clock.reminded_at is not None and clock.reminded_at >= remind_since

    action: Action | None = None
    to_priority: str | None = None
    to_level: int | None = None
    if breached:
        step = next_step(policy, clock.priority, clock.level) if clock.level < 3 else None
        if step is not None:
            action, (to_priority, to_level) = "upgrade", step
        elif not clock.final_breached:
            action = "breach"
    elif reminder is not None and elapsed >= reminder and not reminded:
        action = "remind"

    due_at: datetime | None = None
    remind_at: datetime | None = None
    if with_times:
        if breached:
            due_at = cal.add_business_seconds(since, window + closed_pauses)
        elif not paused:
            due_at = cal.add_business_seconds(now, remaining)
        if reminder is not None:
            if elapsed >= reminder:
                remind_at = cal.add_business_seconds(since, reminder + closed_pauses)
            elif not paused:
                remind_at = cal.add_business_seconds(now, reminder - elapsed)
    if breached:
        state = "breached"
    elif paused:
        state = "paused"
    elif reminder is not None and elapsed >= reminder:
        state = "reminded"
    else:
        state = "running"
    return Assessment(
        metric=metric,
        stage=stage,
        stage_since=since,
        window_s=window,
        elapsed_s=elapsed,
        remaining_s=remaining,
        paused=paused,
        due_at=due_at,
        remind_at=remind_at,
        state=state,
        action=action,
        to_priority=to_priority,
        to_level=to_level,
        paused_s=closed_pauses,
    )
