"""Question answering on a user's own data: a questions JSONL plus a corpus JSONL (format in the README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._files import loads, read_text
from ..agents.result import RunResult
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..tools.corpus import Corpus
from .base import CorpusQAEnv, Task
from .scoring import best_scores

__all__ = ["QAEnv", "read_questions"]

_FORMAT = 'each line must be a JSON object {"id": ..., "question": "...", "answers": ["...", ...]}'


def read_questions(path: str | Path) -> list[Task]:
    """Strictly read a questions JSONL; every problem names the file, the line and what to fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"questions file not found: {path}")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(read_text(path, "questions file").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg}); {_FORMAT}") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected a JSON object; {_FORMAT}")
        missing = [k for k in ("id", "question", "answers") if k not in row]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}; {_FORMAT}")
        qid = row["id"]
        if not isinstance(qid, str | int) or isinstance(qid, bool) or str(qid).strip() == "":
            raise ConfigError(f"{where}: id must be a non-empty string or integer, got {qid!r}")
        qid = str(qid)
        if qid in seen:
            raise ConfigError(
                f"{where}: duplicate id {qid!r} (first on line {seen[qid]}); ids must be unique"
            )
        seen[qid] = n
        question = row["question"]
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(f"{where}: question {qid!r} must be a non-empty string")
        answers = row["answers"]
        if isinstance(answers, str):
            raise ConfigError(f'{where}: answers of {qid!r} must be a list of strings, e.g. ["{answers}"]')
        if not isinstance(answers, list) or not answers:
            raise ConfigError(f"{where}: question {qid!r} has no answers; give at least one in a list")
        if not all(isinstance(a, str) and a.strip() for a in answers):
            raise ConfigError(f"{where}: answers of {qid!r} must all be non-empty strings, got {answers!r}")
        tasks.append(Task(qid, question.strip(), list(answers)))
    if not tasks:
        raise ConfigError(f"{path}: no questions found; {_FORMAT}")
    return tasks


class QAEnv(CorpusQAEnv):
    """Any questions + corpus pair; scored like HotpotQA by EM and F1 against the best listed answer."""

    name = "qa"

    def __init__(
        self,
        data: str | Path,
        corpus: str | Path,
        *,
        cache_dir: str | Path | None = None,
        tool_cache: bool = False,
        **kwargs: Any,
    ) -> None:
        self.path, self.corpus_path = Path(data), Path(corpus)
        self._tasks = read_questions(self.path)
        if not self.corpus_path.exists():
            raise ConfigError(
                f"corpus not found: {self.corpus_path} (a JSONL of {{id, title, text}} per line)"
            )
        if self.corpus_path.is_dir():
            self.corpus = Corpus.from_folder(self.corpus_path, cache_dir=cache_dir)
        else:
            self.corpus = Corpus.from_jsonl(self.corpus_path, cache_dir=cache_dir)
        if len(self.corpus) == 0:
            raise ConfigError(f"corpus {self.corpus_path} is empty; it needs at least one document")
        prices = kwargs.pop("prices", None) or PriceTable()
        super().__init__(self.corpus.tools(cache=tool_cache), prices=prices, **kwargs)

    def tasks(self) -> list[Task]:
        return list(self._tasks)

    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        scores = best_scores(result.answer, task.gold)
        scores["correct"] = scores["em"]
        return scores

    def describe(self) -> dict[str, Any]:
        return {
            "env": self.name,
            "data": str(self.path.resolve()),
            "corpus": str(self.corpus_path.resolve()),
            "questions": len(self._tasks),
        }
