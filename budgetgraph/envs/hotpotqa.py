"""HotpotQA (distractor setting) over the pooled context paragraphs of a data file, searched with FTS5."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._files import loads, read_text
from ..agents.result import RunResult
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..tools.corpus import Corpus, Document
from .base import CorpusQAEnv, Task
from .scoring import best_scores

__all__ = ["HotpotQAEnv", "opened_titles", "read_hotpot"]


def read_hotpot(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an official HotpotQA file: a JSON list (as distributed) or JSON Lines."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"HotpotQA data file not found: {path}")
    text = read_text(path, "HotpotQA file")
    if text.lstrip().startswith("["):
        try:
            rows = list(loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    for n, row in enumerate(rows, 1):
        missing = [
            k for k in ("_id", "question", "answer", "context") if not isinstance(row, dict) or k not in row
        ]
        if missing:
            raise ConfigError(
                f"{path}: item {n} lacks {', '.join(missing)}; is this a HotpotQA file "
                "(fields _id, question, answer, context, supporting_facts)?"
            )
    if not rows:
        raise ConfigError(f"{path}: no questions")
    return rows


def _pool(rows: Sequence[dict[str, Any]]) -> Iterator[Document]:
    seen: set[tuple[str, str]] = set()
    for row in rows:
        for title, sentences in row["context"]:
            text = "".join(sentences)
            if (title, text) not in seen:
                seen.add((title, text))
                yield Document(str(len(seen)), title, text)


def opened_titles(result: RunResult, tool: str = "open") -> list[str]:
    """Titles the agent asked to open, in order."""
    return [
        str(c.arguments.get("title", ""))
        for m in result.messages
        for c in m.tool_calls
        if c.name == tool and not c.error
    ]


class HotpotQAEnv(CorpusQAEnv):
    """Multi-hop QA; scores: EM and F1 (official normalisation) and recall of the gold supporting titles."""

    name = "hotpotqa"

    def __init__(
        self,
        data: str | Path,
        *,
        cache_dir: str | Path | None = None,
        tool_cache: bool = False,
        **kwargs: Any,
    ) -> None:
        self.path = Path(data)
        self._rows = read_hotpot(self.path)
        corpus = Corpus.from_documents(
            _pool(self._rows), name=f"hotpot-{self.path.stem}", cache_dir=cache_dir
        )
        self.corpus = corpus
        prices = kwargs.pop("prices", None) or PriceTable()
        super().__init__(corpus.tools(cache=tool_cache), prices=prices, **kwargs)

    def tasks(self) -> list[Task]:
        return [
            Task(
                str(r["_id"]),
                r["question"],
                [r["answer"]],
                {
                    "support": sorted({t for t, _ in r.get("supporting_facts", [])}),
                    "type": r.get("type"),
                    "level": r.get("level"),
                },
            )
            for r in self._rows
        ]

    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        scores = best_scores(result.answer, task.gold)
        support = {s.lower() for s in task.meta.get("support", [])}
        if support:
            opened = {t.lower().strip() for t in opened_titles(result)}
            scores["support_recall"] = len(support & opened) / len(support)
        scores["correct"] = scores["em"]
        return scores

    def zero_scores(self) -> dict[str, float]:
        return {"correct": 0.0, "em": 0.0, "f1": 0.0, "support_recall": 0.0}

    def describe(self) -> dict[str, Any]:
        return {"env": self.name, "data": str(self.path.resolve()), "questions": len(self._rows)}
