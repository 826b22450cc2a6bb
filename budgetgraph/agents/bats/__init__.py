"""BATS (papers.md section 1): a plan checklist, a verifier that decides to dig deeper or pivot, and answer
selection, built on the core loop with a hook and three steps of its own."""

from .attempts import evidence_only, failed
from .graph import bats_graph

__all__ = ["bats_graph", "evidence_only", "failed"]
