from __future__ import annotations

from dtncloud.sim.scheduler import Scheduler


def test_events_run_in_time_then_scheduling_order() -> None:
    scheduler = Scheduler(100)
    seen: list[tuple[int, str]] = []
    for when, name in ((300, "c"), (200, "a"), (200, "b"), (250, "x")):
        scheduler.at(when, lambda n: seen.append((scheduler.now, n)), name)
    while scheduler.step():
        pass
    assert seen == [(200, "a"), (200, "b"), (250, "x"), (300, "c")]
    assert scheduler.events_run == 4
    assert scheduler.next_time() is None


def test_a_time_in_the_past_runs_now_after_what_is_due() -> None:
    scheduler = Scheduler()
    seen: list[str] = []
    scheduler.call_at(10, lambda: scheduler.call_at(5, lambda: seen.append("late")))
    scheduler.call_at(10, lambda: seen.append("due"))
    while scheduler.step():
        pass
    assert seen == ["due", "late"]
    assert scheduler.now == 10


def test_advance_moves_the_clock_only_forward() -> None:
    scheduler = Scheduler(50)
    scheduler.advance(40)
    assert scheduler.now == 50
    scheduler.advance(70)
    assert scheduler.now == 70
