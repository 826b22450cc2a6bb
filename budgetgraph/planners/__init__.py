"""Pure decision logic that uses the budget: BATS (checklist, verifier rules, answer selection), cost-augmented
MCTS, knapsack selection, budget allocation over sub-questions, SALE's auction scoring, and the
Adaptive-Consistency stopping rule. No metering, no backends, no graphs: the planners of the registry
(:mod:`budgetgraph.agents.planners`) compose these with the metered loop."""

from .allocation import SCHEDULES, SubQuestion, SubQuestions, allocate, fit_subquestions
from .consistency import StopRule, beta_confidence, dirichlet_confidence, majority, stop_verdict
from .knapsack import Component, OnlineComposer, select, zcl_threshold
from .mcts import DEFAULT_PRIOR_MIX, MCTSResult, PlanningProblem, mcts_search
from .sale import Bid, SaleWeights, fit_weights, score_bids, winner

__all__ = [
    "DEFAULT_PRIOR_MIX",
    "SCHEDULES",
    "Bid",
    "Component",
    "MCTSResult",
    "OnlineComposer",
    "PlanningProblem",
    "SaleWeights",
    "StopRule",
    "SubQuestion",
    "SubQuestions",
    "allocate",
    "beta_confidence",
    "dirichlet_confidence",
    "fit_subquestions",
    "fit_weights",
    "majority",
    "mcts_search",
    "score_bids",
    "select",
    "stop_verdict",
    "winner",
    "zcl_threshold",
]
