from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HOTPOT = DATA / "hotpotqa" / "hotpot_dev_hard_350.jsonl"


def hotpot_rows(limit: int) -> list[dict]:
    if not HOTPOT.exists():
        pytest.skip(f"shared data not found at {HOTPOT}")
    rows = []
    with HOTPOT.open() as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


@pytest.fixture(scope="session")
def hotpot20() -> list[dict]:
    return hotpot_rows(20)


@pytest.fixture(scope="session")
def hotpot_corpus(hotpot20, tmp_path_factory):
    from budgetgraph.tools import Corpus, Document

    docs, seen = [], set()
    for row in hotpot20:
        for title, sentences in row["context"]:
            text = "".join(sentences)
            if (title, text) not in seen:
                seen.add((title, text))
                docs.append(Document(f"{len(docs)}", title, text))
    return Corpus.from_documents(docs, name="hotpot20", cache_dir=tmp_path_factory.mktemp("corpora"))
