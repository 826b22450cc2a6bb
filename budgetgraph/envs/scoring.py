"""Answer scoring shared by the QA environments: the official HotpotQA/SQuAD normalisation, EM and token F1."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

__all__ = ["best_scores", "exact_match", "f1_score", "normalize_answer", "short_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_YES_NO = re.compile(r"^\s*(yes|no)\s*(?:[,.;:!]|$)", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles, collapse white space (the official evaluation script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def short_answer(prediction: str) -> str:
    """Reduce a sentence that opens with a yes/no verdict ("No, both are ...") to that word.

    The only answer extraction applied before scoring; it never looks at the gold answer, and a name that
    merely starts with the word ("No Doubt") is left alone.
    """
    found = _YES_NO.match(prediction)
    return found.group(1).lower() if found else prediction


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token F1; yes/no/noanswer only match themselves, as in the HotpotQA script."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    special = {"yes", "no", "noanswer"}
    if (pred in special or ref in special) and pred != ref:
        return 0.0
    p_tokens, r_tokens = pred.split(), ref.split()
    common = Counter(p_tokens) & Counter(r_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p_tokens), same / len(r_tokens)
    return 2 * precision * recall / (precision + recall)


def best_scores(prediction: str | None, golds: Iterable[str]) -> dict[str, float]:
    """EM and F1 against the best-matching gold answer; no answer scores 0."""
    golds = list(golds)
    if not prediction or not golds:
        return {"em": 0.0, "f1": 0.0}
    short = short_answer(prediction)
    return {
        "em": max(exact_match(short, g) for g in golds),
        "f1": max(f1_score(short, g) for g in golds),
    }
