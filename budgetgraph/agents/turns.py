"""Turn control for agent loops (papers.md section 7): a turn cap from the model's own turn distribution, the
reminder every turn carries, and the dynamic variant that grants more turns when the agent asks for them."""

from __future__ import annotations

TURN_REMINDER = "ENVIRONMENT REMINDER: You have {n} turns left to complete the task."
TURN_LIMIT_REACHED = (
    "ENVIRONMENT REMINDER: You have used all {used} turns you were given. If you need more turns to finish, "
    "reply with <more_turns>why you need them</more_turns> and nothing else; otherwise give your final answer now."
)
