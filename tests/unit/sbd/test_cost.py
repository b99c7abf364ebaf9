"""Credits and the daily budget."""

from __future__ import annotations

import pytest

from dtncloud.sbd.cost import DAY_MS, CreditBudget, credits_for


@pytest.mark.parametrize(
    ("size", "credits"), [(0, 1), (1, 1), (50, 1), (51, 2), (54, 2), (250, 5), (270, 6), (340, 7)]
)
def test_credits_per_started_50_bytes(size: int, credits: int) -> None:
    assert credits_for(size) == credits


def test_budget_follows_utc_days() -> None:
    budget = CreditBudget(10)
    late = 3 * DAY_MS - 1  # 23:59:59.999 UTC
    assert budget.allows(10, late) and not budget.allows(11, late)
    budget.spend(7, late)
    assert budget.spent_today(late) == 7 and budget.remaining_today(late) == 3
    assert not budget.allows(4, late)
    assert budget.next_day_at(late) == 3 * DAY_MS
    assert budget.allows(10, 3 * DAY_MS)  # midnight: a new day
    budget.spend(12, 3 * DAY_MS)  # received messages are billed beyond the limit
    assert budget.remaining_today(3 * DAY_MS) == 0
    assert budget.total == 19


def test_unlimited_budget_still_counts() -> None:
    budget = CreditBudget()
    budget.spend(1000, 0)
    assert budget.allows(10**9, 0) and budget.remaining_today(0) is None
    assert budget.spent_today(0) == 1000


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CreditBudget(0)
