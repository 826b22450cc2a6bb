"""SALE's auction memory in SQLite: every auction's task, bids and winner, and the past tasks most like a new
one by BM25 over their text (FTS5). The paper retrieves by MiniLM embeddings; with no embedding model offline
we use the project's own lexical index instead."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AuctionMemory", "PastBid"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS auctions (id INTEGER PRIMARY KEY, task TEXT NOT NULL, winner TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bids (
    auction INTEGER NOT NULL REFERENCES auctions(id), agent TEXT NOT NULL, plan TEXT NOT NULL,
    score REAL NOT NULL, won INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts USING fts5(task, content='auctions', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS auctions_ai AFTER INSERT ON auctions BEGIN
    INSERT INTO tasks_fts(rowid, task) VALUES (new.id, new.task);
END;
"""
_WORD = re.compile(r"[A-Za-z0-9_]{3,}")


@dataclass(frozen=True, slots=True)
class PastBid:
    task: str
    agent: str
    plan: str
    won: bool
    winner_plan: str


class AuctionMemory:
    """``path`` a SQLite file (kept across runs), or ``":memory:"``."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def record(self, task: str, plans: dict[str, str], scores: dict[str, float], winner: str) -> None:
        with self._lock, self._db:
            cur = self._db.execute("INSERT INTO auctions(task, winner) VALUES (?, ?)", (task, winner))
            self._db.executemany(
                "INSERT INTO bids(auction, agent, plan, score, won) VALUES (?, ?, ?, ?, ?)",
                [
                    (cur.lastrowid, a, p, float(scores.get(a, 0.0)), int(a == winner))
                    for a, p in plans.items()
                ],
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM auctions").fetchone()[0])

    def contrast(self, task: str, agent: str, k: int = 8) -> list[PastBid]:
        """Of the ``k`` past tasks most like ``task`` (BM25), those where ``agent`` lost: its plan beside the
        winning plan (what the contrastive refinement prompt shows)."""
        words = _WORD.findall(task.lower())[:64]
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ? ORDER BY bm25(tasks_fts) LIMIT ?",
                    (query, k),
                )
            ]
            out = []
            for aid in ids:
                row = self._db.execute(
                    "SELECT a.task, b.plan, w.plan FROM auctions a JOIN bids b ON b.auction = a.id "
                    "JOIN bids w ON w.auction = a.id AND w.won = 1 WHERE a.id = ? AND b.agent = ? AND b.won = 0",
                    (aid, agent),
                ).fetchone()
                if row:
                    out.append(PastBid(row[0], agent, row[1], False, row[2]))
        return out

    def close(self) -> None:
        self._db.close()
