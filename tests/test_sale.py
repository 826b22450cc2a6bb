"""SALE: the auction's arithmetic, the MILP weight fit, the memory, and the planner end to end on scripted
models under one ledger (and, marked model, a real auction between the two embedded sizes)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from budgetgraph import Agent, SaleOptions
from budgetgraph.agents.auction_memory import AuctionMemory
from budgetgraph.agents.planners import parse_planner
from budgetgraph.agents.sale import Bidder
from budgetgraph.budget.limits import Budget
from budgetgraph.errors import ConfigError
from budgetgraph.models.messages import Message, ToolSchema
from budgetgraph.models.scripted import ScriptedModel
from budgetgraph.planners.sale import Bid, SaleWeights, TrainingTask, fit_weights, score_bids, winner


def test_cost_minus_value_picks_the_cheaper_plan_when_values_tie() -> None:
    bids = [
        Bid("small", 0.05, 100, 0.5, {"small": 4, "big": 4}),
        Bid("big", 0.36, 100, 0.5, {"small": 4, "big": 4}),
    ]
    assert winner(bids, SaleWeights()) == 0
    scores = score_bids(bids, SaleWeights())
    assert scores[1] - scores[0] == pytest.approx(1.0 - 0.05 / 0.36)  # cost as a share of the dearest bid
    better = [bids[0], Bid("big", 0.36, 100, 0.5, {"small": 5, "big": 5})]
    assert winner(better, SaleWeights(jury_default=5.0)) == 1  # a jury that trusts it more pays for it


def _training() -> tuple[list[TrainingTask], list[str]]:
    """Tasks where the big juror's score tells who succeeds; the small juror's is noise."""
    tasks = []
    for t in range(8):
        small_ok = t % 2 == 0
        bids = [
            Bid("small", 0.05, 80, 0.4, {"small": 3, "big": 4 if small_ok else 1}),
            Bid("big", 0.36, 80, 0.4, {"small": 3, "big": 4}),
        ]
        loss = [0.0 if small_ok else 1.0, 0.1]  # big always succeeds, at a cost
        tasks.append(TrainingTask(bids, loss))
    return tasks, ["small", "big"]


def test_the_min_max_milp_finds_weights_that_route_every_training_task_to_its_best_agent() -> None:
    pytest.importorskip("scipy", reason="the sale extra is not installed (pip install 'budgetgraph[sale]')")
    tasks, jurors = _training()
    default_regret = max(t.loss[winner(t.bids, SaleWeights())] - min(t.loss) for t in tasks)
    assert default_regret > 0  # the uninformed weights send hard tasks to the small agent
    weights = fit_weights(tasks, jurors)
    regrets = [t.loss[winner(t.bids, weights)] - min(t.loss) for t in tasks]
    assert max(regrets) == pytest.approx(0.0, abs=1e-9)
    assert weights.juror("big") > weights.juror("small")
    with pytest.raises(ConfigError, match="losses"):
        fit_weights([TrainingTask(tasks[0].bids, [0.0])], jurors)


def test_the_memory_returns_lost_bids_on_similar_tasks(tmp_path) -> None:
    memory = AuctionMemory(tmp_path / "auctions.sqlite")
    memory.record("sort a list of integers by digit sum", {"small": "plan s", "big": "plan b"}, {}, "big")
    memory.record("parse nested parentheses groups", {"small": "plan s2", "big": "plan b2"}, {}, "small")
    again = AuctionMemory(tmp_path / "auctions.sqlite")  # persisted
    past = again.contrast("sort integers by the sum of their digits", "small")
    assert [(p.plan, p.winner_plan) for p in past] == [("plan s", "plan b")]
    assert again.contrast("sort integers by digit sum", "big") == []  # big won it
    assert len(again) == 2


def _bidder_model(name: str, plan: str, answer: str) -> ScriptedModel:
    """Bids ``plan``; as a juror, rates a plan that checks its work 5 and any other 1."""

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        text = messages[-1].content
        if "single digit" in text:
            return ScriptedModel.text(
                "Score: 5" if "check" in text.split("A proposed strategy plan:")[1] else "1"
            )
        if "strategy plan" in text and "Follow this strategy plan" not in messages[0].content:
            return ScriptedModel.text(plan)
        return ScriptedModel.text(f"<answer>{answer}</answer>")

    return ScriptedModel(script, name=name)


def test_the_auction_runs_under_the_ledger_and_the_winner_executes_its_plan() -> None:
    small = _bidder_model("small", "1. guess", "small answer")
    big = _bidder_model("big", "1. read\n2. check\n3. answer", "big answer")
    pool = [Bidder("small", small, 0.05), Bidder("big", big, 0.36)]
    weights = SaleWeights(jury_default=1.0)  # a jury worth more than the price gap
    options = SaleOptions(pool=pool, weights=weights)
    agent = Agent(small, [], Budget(llm_calls=20), planner="sale", options=options)
    result = agent.run("What is the answer?")
    assert result.details["winner"] == "big" and result.answer == "big answer"
    roles = result.usage.by_role
    assert roles["bid"]["llm_calls"] == 2 and roles["jury"]["llm_calls"] == 4  # every agent judges every plan
    assert result.usage.llm_calls == 2 + 4 + 1  # and the winner's one answering call
    executed = big.requests[-1][0]
    assert "Follow this strategy plan:\n1. read" in executed[0].content
    # the second auction on a similar task: the cheaper agent refines from the memory of its loss
    result = agent.run("What is the answer, again?")
    assert result.details["refined"] == ["small"]
    assert result.usage.by_role["refine"]["llm_calls"] == 1


def test_an_auction_that_does_not_fit_the_budget_spends_nothing_more() -> None:
    small = _bidder_model("small", "1. guess", "x")
    options = SaleOptions(pool=[Bidder("small", small, 0.05)])
    agent = Agent(small, [], Budget(llm_calls=2), planner="sale", options=options)
    result = agent.run("q")
    assert result.answer is None and str(result.stop_reason) == "budget_exhausted: llm_calls"
    assert result.usage.llm_calls <= 2


def test_pool_labels_and_errors() -> None:
    with pytest.raises(ConfigError, match="pool"):
        Agent(ScriptedModel([]), [], planner="sale")
    with pytest.raises(ConfigError, match="one \\$/Mtok price"):
        parse_planner("sale[pool=scripted+scripted;pool_prices=0.1]")
    name, options = parse_planner("sale[pool=scripted+scripted:0;pool_prices=0.05+0.36]")
    assert name == "sale" and [(b.name, b.price) for b in options["pool"]] == [
        ("scripted", 0.05),
        ("scripted:0", 0.36),
    ]


@pytest.mark.model
def test_a_real_auction_between_the_embedded_sizes() -> None:
    pytest.importorskip("llama_cpp", reason="the embedded models need pip install 'budgetgraph[small]'")
    from budgetgraph.models.registry import infer_model

    pool = [Bidder("0.5b", infer_model("local:0.5b"), 0.05), Bidder("1.5b", infer_model("local"), 0.15)]
    options = SaleOptions(pool=pool)
    agent = Agent(
        pool[1].model, [], Budget(output_tokens=1200), planner="sale", options=options, answer_max_tokens=96
    )
    result = asyncio.run(agent.arun("Write a Python function add(a, b) that returns a + b."))
    details = result.details
    assert details["winner"] in ("0.5b", "1.5b")
    assert all(e is not None and 0 < e < 5 for e in details["entropy"].values())  # nats, from the logits
    assert all(0 <= s <= 5 for jury in details["jury"].values() for s in jury.values())
    assert result.usage.output_tokens <= 1200
    assert result.answer


def test_weights_are_fitted_from_a_sale_sweep_and_each_agents_own_sweep(tmp_path) -> None:
    pytest.importorskip("scipy", reason="the sale extra is not installed (pip install 'budgetgraph[sale]')")
    import json

    from conftest import MINI
    from typer.testing import CliRunner

    from budgetgraph.cli import app
    from budgetgraph.envs import EvalSpec, run_eval

    def sweep(planner: str, out, budgets=("3",)):
        spec = EvalSpec(
            env="hotpotqa",
            env_options={"data": str(MINI)},
            model="scripted",
            planners=(planner,),
            budgets=budgets,
            limit=6,
            concurrency=2,
        )
        asyncio.run(run_eval(spec, out, progress=False))

    sweep("sale[pool=scripted+scripted:0;pool_prices=0.05+0.36]", tmp_path / "sale.jsonl")
    sweep("react", tmp_path / "a.jsonl", ("1", "3"))  # two cells: the fit must be told which
    sweep("tracker", tmp_path / "b.jsonl")
    out = tmp_path / "w.json"
    command = [
        "sale-fit",
        str(tmp_path / "sale.jsonl"),
        "--alone",
        f"scripted={tmp_path / 'a.jsonl'}",
        "--alone",
        f"scripted:0={tmp_path / 'b.jsonl'}",
        "--prices",
        "scripted=0.05,scripted:0=0.36",
        "--out",
        str(out),
    ]
    ambiguous = CliRunner().invoke(app, command)
    assert ambiguous.exit_code != 0 and "--budget" in ambiguous.output and not out.exists()
    result = CliRunner().invoke(app, [*command, "--budget", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert len(data["train_tasks"]) == 3 and len(data["held_out_tasks"]) == 3
    name, options = parse_planner(f"sale[pool=scripted+scripted:0;pool_prices=0.05+0.36;weights={out}]")
    assert options["sale_weights"].entropy == data["entropy"]
    bad = CliRunner().invoke(
        app, ["sale-fit", str(tmp_path / "sale.jsonl"), "--alone", "nope", "--prices", "x=1"]
    )
    assert bad.exit_code != 0 and "NAME=VALUE" in bad.output
