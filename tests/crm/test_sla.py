"""Business-time maths and SLA clocks: properties (Hypothesis) and worked examples.

Time zones, daylight-saving changes (Europe/Berlin, America/New_York), weekends,
holidays and pauses, all with a controlled clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from listenwell.crm.sla import (
    PRIORITIES,
    WEEKDAYS,
    BusinessCalendar,
    CalendarError,
    Clock,
    SlaPolicy,
    Targets,
    assess,
    next_step,
    parse_window,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
OFFICE = {d: ["09:00-17:00"] for d in WEEKDAYS[:5]}

PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- strategies


@st.composite
def windows(draw: st.DrawFn, lo: int = 0, step: int = 15) -> list[tuple[int, int]]:
    """0-2 disjoint windows of a day, on a ``step``-minute grid, starting at ``lo`` or later."""
    cuts = sorted(
        draw(st.sets(st.integers(lo // step, 1440 // step), min_size=0, max_size=4).map(list))
    )
    cuts = [c * step for c in cuts]
    return [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2) if cuts[i] < cuts[i + 1]]


@st.composite
def calendars(draw: st.DrawFn, *, zones: list[str] = ZONES, lo: int = 0) -> BusinessCalendar:
    tz = draw(st.sampled_from(zones))
    week = {day: draw(windows(lo=lo)) for day in WEEKDAYS}
    assume(any(week.values()))
    holidays = draw(
        st.sets(st.dates(min_value=date(2023, 12, 1), max_value=date(2025, 2, 1)), max_size=40)
    )
    return BusinessCalendar(tz, week, holidays)


def times() -> st.SearchStrategy[datetime]:
    """Aware times in 2024, in UTC or a local zone (including skipped and repeated hours)."""
    return st.datetimes(
        min_value=datetime(2024, 1, 1),
        max_value=datetime(2024, 12, 31),
        timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
    )


def real(*ts: datetime) -> list[datetime]:
    """Sorted by the real instant. (Python compares and subtracts two times of the *same*
    zone by their wall clocks, which is wrong across a daylight-saving change.)"""
    return sorted(ts, key=lambda t: t.astimezone(UTC))


def elapsed(a: datetime, b: datetime) -> float:
    return (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds()


SECONDS = st.integers(min_value=0, max_value=40 * 86400)


def _open_by_wall_clock(cal: BusinessCalendar, t: datetime) -> bool:
    """An independent oracle: is the local wall time of ``t`` inside a window?"""
    local = t.astimezone(ZoneInfo(cal.tz))
    if local.date() in cal.holidays:
        return False
    minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
    return any(s <= minute < e for s, e in cal.hours[local.weekday()])


# --------------------------------------------------------------------------- properties


@PROPS
@given(cal=calendars(), a=times(), x=SECONDS, y=SECONDS)
def test_add_is_additive(cal, a, x, y):
    assert cal.add_business_seconds(a, x + y) == cal.add_business_seconds(
        cal.add_business_seconds(a, x), y
    )


@PROPS
@given(cal=calendars(), a=times(), x=SECONDS, y=SECONDS)
def test_add_is_monotonic(cal, a, x, y):
    lo, hi = sorted((x, y))
    r_lo, r_hi = cal.add_business_seconds(a, lo), cal.add_business_seconds(a, hi)
    assert a <= r_lo <= r_hi
    if hi > lo:
        assert r_lo < r_hi


@PROPS
@given(cal=calendars(), a=times(), b=times(), x=SECONDS)
def test_add_is_monotonic_in_the_start(cal, a, b, x):
    a, b = real(a, b)
    assert cal.add_business_seconds(a, x) <= cal.add_business_seconds(b, x)


@PROPS
@given(cal=calendars(), a=times(), x=st.integers(min_value=1, max_value=40 * 86400))
def test_add_lands_inside_business_hours(cal, a, x):
    r = cal.add_business_seconds(a, x)
    # The result is a window's inside or its closing instant: just before it, it is open.
    assert cal.is_open(r - US)
    assert r.tzinfo is not None


@PROPS
@given(
    cal=calendars(zones=["UTC", "Europe/Berlin", "America/New_York"], lo=240),
    a=times(),
    x=st.integers(min_value=1, max_value=40 * 86400),
)
def test_add_never_lands_on_a_night_weekend_or_holiday_by_the_wall_clock(cal, a, x):
    # Windows from 04:00 on: no boundary falls in a daylight-saving change, so the local
    # wall clock is an independent judge of where the result lands.
    r = cal.add_business_seconds(a, x)
    assert _open_by_wall_clock(cal, r - US)


@PROPS
@given(cal=calendars(), a=times(), x=SECONDS)
def test_between_undoes_add(cal, a, x):
    assert cal.business_seconds_between(a, cal.add_business_seconds(a, x)) == x


@PROPS
@given(cal=calendars(), a=times(), b=times())
def test_add_of_between_reaches_b_or_the_last_open_moment_before_it(cal, a, b):
    a, b = real(a, b)
    r = cal.add_business_seconds(a, cal.business_seconds_between(a, b))
    assert a <= r <= b
    assert cal.business_seconds_between(r, b) == 0
    if cal.is_open(b - US) and b - US >= a:
        assert r == b


@PROPS
@given(cal=calendars(), a=times(), b=times(), c=times())
def test_between_is_additive_and_antisymmetric(cal, a, b, c):
    ab = cal.business_seconds_between(a, b)
    assert ab == -cal.business_seconds_between(b, a)
    assert ab + cal.business_seconds_between(b, c) == pytest.approx(
        cal.business_seconds_between(a, c), abs=1e-6
    )
    if elapsed(a, b) >= 0:
        assert 0 <= ab <= elapsed(a, b)


@PROPS
@given(tz=st.sampled_from(ZONES), a=times(), b=times())
def test_always_open_counts_real_elapsed_time_across_dst(tz, a, b):
    cal = BusinessCalendar.always_open(tz)
    assert cal.business_seconds_between(a, b) == elapsed(a, b)


@PROPS
@given(
    tz=st.sampled_from(["Europe/Berlin", "America/New_York"]),
    monday=st.dates(min_value=date(2024, 1, 1), max_value=date(2025, 12, 31)).map(
        lambda d: d - timedelta(days=d.weekday())
    ),
)
def test_an_office_week_is_40_hours_even_across_dst(tz, monday):
    cal = BusinessCalendar(tz, OFFICE)
    zone = ZoneInfo(tz)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=zone)
    assert cal.business_seconds_between(start, end) == 40 * 3600


@PROPS
@given(cal=calendars(), a=times(), x=SECONDS)
def test_holidays_only_ever_push_due_times_later(cal, a, x):
    plain = BusinessCalendar(cal.tz, {WEEKDAYS[i]: list(w) for i, w in enumerate(cal.hours)})
    assert cal.add_business_seconds(a, x) >= plain.add_business_seconds(a, x)


# --------------------------------------------------------------------------- worked examples


def test_weekend_is_skipped_across_the_spring_change_in_berlin():
    cal = BusinessCalendar("Europe/Berlin", OFFICE)
    friday_4pm = datetime(2024, 3, 29, 16, 0, tzinfo=BERLIN)  # Good Friday: not a holiday here
    due = cal.add_business_seconds(friday_4pm, 2 * 3600)
    assert due == datetime(2024, 4, 1, 10, 0, tzinfo=BERLIN)  # Monday, summer time
    assert due.utcoffset() is None or due.astimezone(BERLIN).utcoffset() == timedelta(hours=2)


def test_holidays_are_closed_all_day():
    cal = BusinessCalendar("Europe/Berlin", OFFICE, [date(2024, 12, 25), date(2024, 12, 26)])
    tuesday_4pm = datetime(2024, 12, 24, 16, 0, tzinfo=BERLIN)
    assert cal.add_business_seconds(tuesday_4pm, 2 * 3600) == datetime(
        2024, 12, 27, 10, 0, tzinfo=BERLIN
    )
    assert not cal.is_open(datetime(2024, 12, 25, 12, 0, tzinfo=BERLIN))


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        ("Europe/Berlin", date(2024, 3, 31), 5),  # spring forward: 02:00 -> 03:00
        ("Europe/Berlin", date(2024, 10, 27), 7),  # autumn back: 03:00 -> 02:00
        ("Europe/Berlin", date(2024, 6, 2), 6),
        ("America/New_York", date(2024, 3, 10), 5),
        ("America/New_York", date(2024, 11, 3), 7),
    ],
)
def test_a_night_window_is_as_long_as_the_wall_clock_says(tz, day, hours):
    cal = BusinessCalendar(tz, {d: ["00:00-06:00"] for d in WEEKDAYS})
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    assert cal.business_seconds_between(start, start + timedelta(hours=12)) == hours * 3600


def test_window_boundaries_in_the_skipped_hour_are_the_moment_of_the_change():
    cal = BusinessCalendar("Europe/Berlin", {d: ["02:30-04:00"] for d in WEEKDAYS})
    day = datetime(2024, 3, 31, tzinfo=BERLIN)
    assert cal.business_seconds_between(day, day + timedelta(hours=12)) == 3600
    first = cal.next_open(day)
    assert first == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 summer time
    empty = BusinessCalendar("Europe/Berlin", {"sun": ["02:00-03:00"], "mon": ["09:00-10:00"]})
    assert empty.business_seconds_between(day, day + timedelta(hours=12)) == 0


def test_a_boundary_in_the_repeated_hour_is_its_first_occurrence():
    cal = BusinessCalendar("Europe/Berlin", {d: ["01:00-02:30"] for d in WEEKDAYS})
    day = datetime(2024, 10, 27, tzinfo=BERLIN)
    # 01:00 summer time (23:00 UTC) to the first 02:30 (00:30 UTC): 1.5 hours.
    assert cal.business_seconds_between(day, day + timedelta(hours=12)) == 1.5 * 3600


def test_open_late_until_midnight_and_around_the_clock():
    cal = BusinessCalendar("UTC", {"mon": ["18:00-24:00"], "tue": ["00:00-06:00"]})
    mon = datetime(2024, 5, 6, 23, 0, tzinfo=UTC)
    assert cal.add_business_seconds(mon, 2 * 3600) == datetime(2024, 5, 7, 1, 0, tzinfo=UTC)
    assert cal.is_open(datetime(2024, 5, 7, 0, 0, tzinfo=UTC))


def test_adding_zero_outside_hours_stays_put_and_next_open_finds_monday():
    cal = BusinessCalendar("UTC", OFFICE)
    saturday = datetime(2024, 5, 11, 12, 0, tzinfo=UTC)
    assert cal.add_business_seconds(saturday, 0) == saturday
    assert cal.next_open(saturday) == datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
    assert cal.add_business_seconds(saturday, 60) == datetime(2024, 5, 13, 9, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BusinessCalendar("Mars/Olympus"), "unknown time zone"),
        (lambda: BusinessCalendar("UTC", {"mon": []}), "no opening hours"),
        (lambda: BusinessCalendar("UTC", {"mon": ["17:00-09:00"]}), "must end after"),
        (lambda: BusinessCalendar("UTC", {"mon": ["9-17"]}), "not an opening window"),
        (lambda: BusinessCalendar("UTC", {"funday": ["09:00-17:00"]}), "unknown weekday"),
        (lambda: parse_window("09:00-25:00"), "not a time of day"),
        (
            lambda: BusinessCalendar("UTC", OFFICE).add_business_seconds(datetime(2024, 1, 1), 5),
            "timezone-aware",
        ),
        (
            lambda: BusinessCalendar("UTC", OFFICE).add_business_seconds(
                datetime(2024, 1, 1, tzinfo=UTC), -1
            ),
            "negative",
        ),
    ],
)
def test_invalid_calendars_and_times_are_refused(make, message):
    with pytest.raises(CalendarError, match=message):
        make()


# --------------------------------------------------------------------------- SLA clocks

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday
MIN = 60.0


def policy(**kw) -> SlaPolicy:
    targets = {
        "low": Targets(120 * MIN, 480 * MIN),
        "normal": Targets(60 * MIN, 240 * MIN),
        "high": Targets(30 * MIN, 120 * MIN),
        "urgent": Targets(15 * MIN, 60 * MIN),
    }
    base = {
        "calendar": BusinessCalendar("UTC", OFFICE),
        "targets": targets,
        "reminder_at": 0.8,
        "supervisor_s": 30 * MIN,
        "manager_s": 60 * MIN,
    }
    return SlaPolicy(**{**base, **kw})


def test_the_ladder_climbs_priorities_then_supervisor_then_manager():
    p = policy()
    steps = [("low", 0)]
    while (nxt := next_step(p, *steps[-1])) is not None:
        steps.append(nxt)
    assert steps == [
        ("low", 0),
        ("normal", 1),
        ("high", 1),
        ("urgent", 1),
        ("urgent", 2),
        ("urgent", 3),
    ]
    flat = policy(raise_priority=False)
    assert next_step(flat, "normal", 0) == ("normal", 2)


def test_reminder_then_breach_on_the_first_response_target():
    p = policy()
    clock = Clock(priority="normal", level=0, opened_at=T0)
    assert assess(p, clock, T0 + timedelta(minutes=47)).action is None
    a = assess(p, clock, T0 + timedelta(minutes=48))
    assert (a.action, a.state, a.metric) == ("remind", "reminded", "first_response")
    assert a.due_at == T0 + timedelta(minutes=60)
    assert a.remind_at == T0 + timedelta(minutes=48)
    reminded = Clock(priority="normal", level=0, opened_at=T0, reminded_at=a.remind_at)
    assert assess(p, reminded, T0 + timedelta(minutes=50)).action is None
    b = assess(p, reminded, T0 + timedelta(minutes=60))
    assert (b.action, b.to_priority, b.to_level, b.state) == ("upgrade", "high", 1, "breached")


def test_after_the_first_response_the_resolution_target_runs_and_reminds_again():
    p = policy()
    clock = Clock(
        priority="normal",
        level=0,
        opened_at=T0,
        first_response_at=T0 + timedelta(minutes=55),
        reminded_at=T0 + timedelta(minutes=48),
    )
    a = assess(p, clock, T0 + timedelta(minutes=192))  # 80 % of 240 minutes
    assert (a.metric, a.action) == ("resolution", "remind")
    assert assess(p, clock, T0 + timedelta(minutes=240)).action == "upgrade"


def test_an_upgraded_stage_gets_its_full_window_from_the_upgrade():
    p = policy()
    up = T0 + timedelta(hours=2)
    clock = Clock(priority="high", level=1, opened_at=T0, stage_since=up)
    a = assess(p, clock, up)
    assert (a.action, a.elapsed_s, a.remaining_s, a.stage) == (None, 0.0, 30 * MIN, "high")
    assert assess(p, clock, up + timedelta(minutes=30)).action == "upgrade"


def test_manager_level_records_one_final_breach():
    p = policy()
    clock = Clock(priority="urgent", level=3, opened_at=T0, stage_since=T0)
    a = assess(p, clock, T0 + timedelta(minutes=60))
    assert (a.action, a.stage) == ("breach", "manager")
    done = Clock(priority="urgent", level=3, opened_at=T0, stage_since=T0, final_breached=True)
    assert assess(p, done, T0 + timedelta(hours=5)).action is None


def test_the_clock_stops_while_pending():
    p = policy()
    clock = Clock(
        priority="normal", level=0, opened_at=T0, pending_since=T0 + timedelta(minutes=20)
    )
    for later in (30, 120, 600):
        a = assess(p, clock, T0 + timedelta(minutes=later))
        assert (a.elapsed_s, a.paused, a.state, a.action) == (20 * MIN, True, "paused", None)
        assert a.due_at is None


def test_a_breach_before_going_pending_still_upgrades():
    p = policy()
    clock = Clock(
        priority="normal", level=0, opened_at=T0, pending_since=T0 + timedelta(minutes=90)
    )
    assert assess(p, clock, T0 + timedelta(minutes=120)).action == "upgrade"


@PROPS
@given(
    opened=st.integers(0, 5 * 1440),
    pause_at=st.integers(0, 5 * 1440),
    pause_len=st.integers(0, 3 * 1440),
    now=st.integers(0, 12 * 1440),
)
def test_a_pause_excludes_exactly_its_business_time(opened, pause_at, pause_len, now):
    p = policy(calendar=BusinessCalendar("Europe/Berlin", OFFICE, [date(2024, 5, 9)]))
    cal = p.calendar
    start = T0 + timedelta(minutes=opened)
    a, b = start + timedelta(minutes=pause_at), start + timedelta(minutes=pause_at + pause_len)
    when = start + timedelta(minutes=now)
    plain = assess(p, Clock(priority="low", level=0, opened_at=start), when)
    paused = assess(p, Clock(priority="low", level=0, opened_at=start, pauses=((a, b),)), when)
    inside = max(0.0, cal.business_seconds_between(a, min(b, when))) if a < when else 0.0
    assert plain.elapsed_s - paused.elapsed_s == pytest.approx(inside, abs=1e-6)
    # The same spell given only as a business-seconds total shifts the clock the same way
    # when it lies wholly before now.
    if b <= when:
        total = cal.business_seconds_between(a, b)
        as_total = assess(p, Clock(priority="low", level=0, opened_at=start, paused_s=total), when)
        assert as_total.elapsed_s == pytest.approx(max(0.0, plain.elapsed_s - total), abs=1e-6)


@PROPS
@given(
    opened=st.integers(0, 3 * 1440),
    minutes=st.integers(0, 6 * 1440),
    priority=st.sampled_from(PRIORITIES),
    level=st.integers(0, 3),
)
def test_actions_follow_the_clock(opened, minutes, priority, level):
    p = policy()
    start = T0 + timedelta(minutes=opened)
    clock = Clock(priority=priority, level=level, opened_at=start, stage_since=start)
    a = assess(p, clock, start + timedelta(minutes=minutes))
    assert a.elapsed_s + a.remaining_s == pytest.approx(a.window_s)
    if a.remaining_s <= 0:
        assert a.action == ("upgrade" if level < 3 else "breach")
        assert a.due_at is not None and a.due_at <= start + timedelta(minutes=minutes)
    elif a.elapsed_s >= 0.8 * a.window_s:
        assert a.action == "remind"
    else:
        assert a.action is None
        assert a.due_at is not None and p.calendar.business_seconds_between(
            start, a.due_at
        ) == pytest.approx(a.window_s)
