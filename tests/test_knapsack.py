"""Exact knapsack against brute force, and the online composer's budget guarantee."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetgraph.errors import ConfigError
from budgetgraph.planners.knapsack import Component, OnlineComposer, select, zcl_threshold


def _brute(items, budget):
    best = 0.0
    for r in range(len(items) + 1):
        for combo in itertools.combinations(items, r):
            if sum(c.cost for c in combo) <= budget:
                best = max(best, sum(c.value for c in combo))
    return best


items_st = st.lists(
    st.builds(
        Component,
        name=st.text("abcdefgh", min_size=1, max_size=3),
        cost=st.integers(0, 30),
        value=st.floats(0, 100, allow_nan=False, allow_infinity=False),
    ),
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(items=items_st, budget=st.integers(0, 80))
def test_dp_matches_brute_force(items, budget):
    chosen = select(items, budget)
    assert sum(c.cost for c in chosen) <= budget
    assert sum(c.value for c in chosen) == pytest.approx(_brute(items, budget))


@settings(max_examples=100, deadline=None)
@given(items=items_st, budget=st.integers(0, 80))
def test_branch_and_bound_matches_brute_force(items, budget):
    from budgetgraph.planners.knapsack import _branch_and_bound

    chosen = _branch_and_bound([c.cost for c in items], [c.value for c in items], budget)
    assert sum(items[i].cost for i in chosen) <= budget
    assert sum(items[i].value for i in chosen) == pytest.approx(_brute(items, budget))


def test_decimal_costs_are_exact_and_bad_input_is_refused():
    items = [
        Component("a", Decimal("0.10"), 3),
        Component("b", Decimal("0.20"), 5),
        Component("c", Decimal("0.15"), 4),
    ]
    assert [c.name for c in select(items, Decimal("0.30"))] == ["a", "b"]
    assert [c.name for c in select(items, 0.25)] == ["a", "c"]
    huge = [Component(str(i), 10**7 + i, float(i)) for i in range(8)]
    assert sum(c.cost for c in select(huge, 3 * 10**7)) <= 3 * 10**7  # branch and bound path
    with pytest.raises(ConfigError, match="must be >= 0"):
        select([Component("x", -1, 1)], 5)


def test_zcl_threshold_rises_from_l_over_e_to_u():
    lo, hi = 0.05, 4.0
    assert zcl_threshold(0, lo, hi) == pytest.approx(lo / 2.718281828, rel=1e-6)
    assert zcl_threshold(1, lo, hi) == pytest.approx(hi)
    assert zcl_threshold(0.3, lo, hi) < zcl_threshold(0.6, lo, hi)


@pytest.mark.parametrize("seed", range(20))
def test_online_composer_never_exceeds_its_budget(seed):
    rng = random.Random(seed)
    candidates = [Component(f"c{i}", rng.randint(1, 10), 0.0) for i in range(25)]
    hidden = {c.name: rng.choice([None, 0.0, rng.uniform(0, 5)]) for c in candidates}
    budget = rng.randint(5, 30)
    composer = OnlineComposer.for_candidates(budget, [c.cost for c in candidates], total_importance=5.0)
    result = composer.run(candidates, lambda c: hidden[c.name])
    assert result.cost <= budget and composer.spent == sum(c.cost for c in result.chosen)
    assert all(hidden[c.name] for c in result.chosen)  # broken and useless candidates are never taken
    probed = [e for e in composer.log if "why" not in e or e["why"] == "broken"]
    assert all(
        e["accepted"] == (e.get("value", 0) > 0 and e["ratio"] >= e["threshold"])
        for e in probed
        if "ratio" in e
    )
