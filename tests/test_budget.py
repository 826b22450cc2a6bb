from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetgraph import Budget, BudgetExceeded, ConfigError, Ledger, PriceError, PriceTable
from budgetgraph.budget import regime_of, render_budget_block


def test_parse_budget_string():
    b = Budget.parse("search=5, open=3,usd=$0.02,tokens=2000,seconds=30,llm_calls=4,tools=6")
    assert dict(b.tool_calls) == {"search": 5, "open": 3}
    assert b.usd == Decimal("0.02") and b.total_tokens == 2000 and b.seconds == 30.0
    assert b.llm_calls == 4 and b.total_tool_calls == 6
    assert Budget.from_limits(b.limits()) == b


@pytest.mark.parametrize("bad", ["", "search", "search=", "search=abc", "usd=x", "=3", "search=-1", "a b=2"])
def test_bad_budget_strings_name_the_problem(bad):
    with pytest.raises(ConfigError) as err:
        Budget.parse(bad)
    assert "budget" in str(err.value)


def test_reserve_commit_refund_and_refusal():
    ledger = Ledger(Budget(tool_calls={"search": 2}, total_tokens=100))
    r1 = ledger.reserve({"tool:search": 1})
    r2 = ledger.reserve({"tool:search": 1})
    refused = ledger.try_reserve({"tool:search": 1})
    assert isinstance(refused, BudgetExceeded) and refused.resource == "tool:search"
    ledger.refund(r2)
    assert ledger.remaining("tool:search") == 1
    ledger.commit(r1)
    assert ledger.spent("tool:search") == 1
    # commit records actual usage, smaller than reserved
    r = ledger.reserve({"total_tokens": 80})
    ledger.commit(r, {"total_tokens": 30})
    assert ledger.remaining("total_tokens") == 70


def test_hold_is_only_for_use_hold_reservations():
    ledger = Ledger(Budget(llm_calls=3))
    ledger.set_hold({"llm_calls": 1})
    ledger.reserve({"llm_calls": 1})
    ledger.reserve({"llm_calls": 1})
    assert isinstance(ledger.try_reserve({"llm_calls": 1}), BudgetExceeded)
    assert not isinstance(ledger.try_reserve({"llm_calls": 1}, use_hold=True), BudgetExceeded)


def test_snapshot_round_trip_keeps_exact_dollars():
    ledger = Ledger(Budget(usd=Decimal("0.003"), tool_calls={"s": 5}))
    for _ in range(3):
        ledger.commit(ledger.reserve({"usd": Decimal("0.001"), "tool:s": 1}))
    assert isinstance(ledger.try_reserve({"usd": Decimal("0.001")}), BudgetExceeded)
    data = ledger.snapshot()
    assert data["spent"]["usd"] == "0.003"
    again = Ledger.from_snapshot(data)
    assert again.spent("usd") == Decimal("0.003") and again.spent("tool:s") == 3
    assert isinstance(again.try_reserve({"usd": Decimal("0.0001")}), BudgetExceeded)
    assert again.elapsed() >= data["seconds"]


def test_child_ledger_spends_through_parent_and_returns_the_rest():
    parent = Ledger(Budget(tool_calls={"search": 10}))
    child = parent.child(Budget(tool_calls={"search": 3}))
    for _ in range(3):
        child.commit(child.reserve({"tool:search": 1}))
    assert isinstance(child.try_reserve({"tool:search": 1}), BudgetExceeded)
    assert parent.spent("tool:search") == 3 and parent.remaining("tool:search") == 7
    small = Ledger(Budget(tool_calls={"search": 1})).child(Budget(tool_calls={"search": 5}))
    small.commit(small.reserve({"tool:search": 1}))
    assert isinstance(small.try_reserve({"tool:search": 1}), BudgetExceeded)  # the parent's cap binds


def test_regimes_follow_the_remaining_fraction():
    assert [regime_of(x) for x in (1.0, 0.7, 0.69, 0.3, 0.29, 0.1, 0.09, 0.0)] == [
        "HIGH",
        "HIGH",
        "MEDIUM",
        "MEDIUM",
        "LOW",
        "LOW",
        "CRITICAL",
        "CRITICAL",
    ]
    ledger = Ledger(Budget(tool_calls={"search": 10, "open": 10}))
    ledger.commit(ledger.reserve({"tool:search": 8}))
    block = render_budget_block(ledger)
    assert "search: used 8, remaining 2 of 10" in block and "regime: LOW" in block
    assert block.startswith("<budget>") and block.endswith("</budget>")


def test_prices_unknown_model_with_dollar_cap_is_an_error(tmp_path):
    table = PriceTable()
    dated = table.model_price(
        "claude-sonnet-4-20250514", provider="anthropic"
    )  # a match genai-prices declares
    assert dated is not None and dated.cost(1_000_000, 0) == Decimal(3)
    assert table.model_price("my-private-model", provider="openai") is None
    with pytest.raises(PriceError, match="my-private-model"):
        table.require_model_price("my-private-model", provider="openai")
    f = tmp_path / "prices.yaml"
    f.write_text("models:\n  my-private-model: {input: 1, output: 2}\ntools:\n  search: 0.01\n")
    loaded = PriceTable.from_file(f)
    assert loaded.require_model_price("my-private-model").cost(1_000_000, 500_000) == Decimal(2)
    assert loaded.tool_price("search", Decimal(0)) == Decimal("0.01")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        PriceTable.from_file(bad)


@settings(max_examples=60, deadline=None)
@given(
    cap=st.integers(min_value=0, max_value=12),
    token_cap=st.integers(min_value=0, max_value=500),
    requests=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=3), st.integers(min_value=0, max_value=120), st.booleans()
        ),
        min_size=1,
        max_size=40,
    ),
    threads=st.integers(min_value=2, max_value=8),
)
def test_no_interleaving_of_concurrent_reservations_exceeds_a_cap(cap, token_cap, requests, threads):
    ledger = Ledger(Budget(tool_calls={"search": cap}, total_tokens=token_cap, total_tool_calls=cap + 1))
    peak = {"search": 0, "tokens": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(k: int) -> None:
        barrier.wait()
        for units, tokens, commit in requests[k::threads]:
            r = ledger.try_reserve({"tool:search": units, "tool_calls": units, "total_tokens": tokens})
            if isinstance(r, BudgetExceeded):
                continue
            with lock:
                peak["search"] = max(peak["search"], cap - int(ledger.remaining("tool:search")))
                peak["tokens"] = max(peak["tokens"], token_cap - int(ledger.remaining("total_tokens")))
            if commit:
                ledger.commit(r, {"tool:search": units, "tool_calls": units, "total_tokens": tokens // 2})
            else:
                ledger.refund(r)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert ledger.spent("tool:search") <= cap and peak["search"] <= cap
    assert ledger.spent("total_tokens") <= token_cap and peak["tokens"] <= token_cap
    assert ledger.spent("tool_calls") <= cap + 1
