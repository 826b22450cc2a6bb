"""Planners that use the budget (BATS, cost-augmented MCTS, knapsack, plan-and-budget): not built yet.

The budget-tracker planner lives in :mod:`budgetgraph.agents` (``planner="tracker"``).
"""

__all__: list[str] = []
