"""The agent loop: a small core that reserves and commits, and hooks for every budget behaviour.

``core`` has the steps (act, admit and run the tools, answer, fit the answer), ``hooks`` the protocol a
behaviour implements, ``features`` the built-in behaviours, ``compose`` the hooks an options object builds,
``build`` the graph. A planner composes hooks (``PlannerContext.loop(*hooks)``); it never copies the loop.
"""

from .build import build_loop, loop_graph
from .core import NO_ANSWER, LoopCore
from .hooks import Batch, Hook, Jump, Reply, ToolsDone, Turn
from .settings import LoopSettings

__all__ = [
    "NO_ANSWER",
    "Batch",
    "Hook",
    "Jump",
    "LoopCore",
    "LoopSettings",
    "Reply",
    "ToolsDone",
    "Turn",
    "build_loop",
    "loop_graph",
]
