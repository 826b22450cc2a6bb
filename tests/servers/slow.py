"""Module-level tool functions for the process-isolation test (a spawned child imports them by name)."""

from __future__ import annotations

import time


def sleep_for(secs: float) -> str:
    """Sleep for secs seconds."""
    time.sleep(secs)
    return "awake"
