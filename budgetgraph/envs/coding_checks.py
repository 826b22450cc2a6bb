"""HumanEval-style problems: the visible examples of a docstring, the programs that check a candidate, and
how a candidate is read from an agent's answer.

The visible examples are what the agent may test against; the hidden ``check`` tests score it and never reach
the agent. Every program ends by printing a random marker, so code that exits early cannot pass.
"""

from __future__ import annotations

import ast
import doctest
import re
import secrets
from dataclasses import dataclass

__all__ = [
    "Example",
    "extract_code",
    "hidden_program",
    "parse_outcome",
    "visible_examples",
    "visible_program",
]

_SEP = re.compile(r"^\s*(?:==>|=>|==|➞|->|→|returns|should return|return)\s*(.+?)\s*$")
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Example:
    """``call`` evaluates to ``want`` (both Python literals around the call)."""

    call: str
    want: str

    def assertion(self) -> str:
        return f"assert {self.call} == {self.want}"


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _is_call(source: str, entry_point: str) -> bool:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point


def _split_compare(source: str) -> tuple[str, str] | None:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        right = ast.get_source_segment(source, node.comparators[0])
        left = ast.get_source_segment(source, node.left)
        if left and right and _literal(right):
            return left, right
    return None


def _call_end(line: str, start: int) -> int | None:
    depth = 0
    for i in range(start, len(line)):
        if line[i] in "([{":
            depth += 1
        elif line[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def visible_examples(prompt: str, entry_point: str) -> list[Example]:
    """The docstring's examples of ``entry_point``: ``>>>`` doctests, else lines such as ``f(1) == 2``,
    ``f(1) => 2`` or ``f(1) ➞ 2`` whose arguments and result are literals (the rest cannot be run as written)."""
    found: list[Example] = []
    for ex in doctest.DocTestParser().get_examples(prompt):
        want = "\n".join(line for line in ex.want.splitlines() if line.strip() not in ('"""', "'''")).strip()
        call = ex.source.strip()
        if want == "" and (split := _split_compare(call)):  # ">>> f(1) == 2" with nothing below it
            call, want = split
        if _is_call(call, entry_point) and (want == "" or _literal(want)):
            found.append(Example(call, want or "None"))
    if found:
        return found
    for line in prompt.splitlines():
        i = line.find(entry_point + "(")
        if i < 0 or (i > 0 and (line[i - 1].isalnum() or line[i - 1] == "_")):
            continue
        j = _call_end(line, i + len(entry_point))
        if j is None:
            continue
        call, rest = line[i:j], line[j:]
        m = _SEP.match(rest)
        if not m:
            continue
        want = re.sub(r"^(?:is|be)\s+", "", m.group(1).rstrip(".,;"))
        args = call[len(entry_point) + 1 : -1]
        if (not args.strip() or _literal(f"({args},)")) and _literal(want):
            found.append(Example(call, want))
    return found


_ESCAPE = re.compile(r"\\u00([0-9a-fA-F]{2})")


def _unescaped(code: str) -> str:
    """Code a model copied out of its own JSON tool call keeps ``\\u0027`` for quotes: decode such escapes
    when, and only when, the code does not compile as written and compiles after."""
    if not _ESCAPE.search(code):
        return code
    try:
        compile(code, "candidate", "exec")
        return code
    except (SyntaxError, ValueError):
        fixed = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), code)
    try:
        compile(fixed, "candidate", "exec")
    except (SyntaxError, ValueError):
        return code
    return fixed


def extract_code(answer: str | None, entry_point: str) -> str | None:
    """The candidate in an answer: the last fenced block that defines ``entry_point``, else the last fenced
    block, else the text itself when it defines it; None when there is no code."""
    code = _extract(answer, entry_point)
    return None if code is None else _unescaped(code)


def _extract(answer: str | None, entry_point: str) -> str | None:
    if not answer:
        return None
    blocks = [str(b).strip("\n") for b in _FENCE.findall(answer)]
    for block in reversed(blocks):
        if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", block):
            return block
    if blocks:
        return blocks[-1]
    if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", answer):
        return answer
    return None


def _base(prompt: str, code: str) -> str:
    # the prompt first (its imports and helper functions; its stub of the entry point returns None), then the
    # candidate: a full function replaces the stub, and a body alone completes the prompt's signature
    if re.match(r"\s", code) and not re.match(r"\s*(?:def|class|import|from)\b", code):
        return prompt + code
    return prompt + "\n    pass\n\n" + code


def visible_program(prompt: str, code: str, examples: list[Example]) -> tuple[str, str]:
    """A program that runs the candidate on the visible examples; returns (program, marker)."""
    marker = "BG-DONE-" + secrets.token_hex(8)
    cases = [(e.call, e.want) for e in examples]
    runner = f"""

def _bg_same(got, want):
    if isinstance(got, float) or isinstance(want, float):
        try:
            return abs(got - want) <= 1e-6 * max(1.0, abs(want))
        except TypeError:
            return False
    return got == want

_bg_failed = 0
for _bg_call, _bg_want in {cases!r}:
    try:
        _bg_got = eval(_bg_call)
    except Exception as _bg_exc:
        _bg_failed += 1
        print("FAIL", _bg_call, "raised", type(_bg_exc).__name__ + ":", _bg_exc, sep="\\t")
        continue
    if not _bg_same(_bg_got, eval(_bg_want)):
        _bg_failed += 1
        print("FAIL", _bg_call, "expected " + _bg_want, "got " + repr(_bg_got)[:300], sep="\\t")
print("{marker}", _bg_failed, {len(cases)})
"""
    return _base(prompt, code) + runner, marker


def behaviour_program(prompt: str, code: str, examples: list[Example]) -> tuple[str, str]:
    """A program that prints what the candidate returns on each visible example (one line after the marker):
    candidates are grouped by this for majority voting, not by their text."""
    marker = "BG-DONE-" + secrets.token_hex(8)
    calls = [e.call for e in examples]
    runner = f"""

_bg_out = []
for _bg_call in {calls!r}:
    try:
        _bg_out.append(repr(eval(_bg_call))[:200])
    except Exception as _bg_exc:
        _bg_out.append("raised " + type(_bg_exc).__name__)
print("{marker}", repr(_bg_out))
"""
    return _base(prompt, code) + runner, marker


def hidden_program(prompt: str, code: str, test: str, entry_point: str) -> tuple[str, str]:
    """HumanEval's own check of the candidate; returns (program, marker)."""
    marker = "BG-DONE-" + secrets.token_hex(8)
    return f"{_base(prompt, code)}\n\n{test}\n\ncheck({entry_point})\nprint({marker!r})\n", marker


def parse_outcome(stdout: str, marker: str) -> tuple[int, int] | None:
    """(failed, total) from a visible-examples run, or None when it did not reach its end."""
    for line in reversed(stdout.splitlines()):
        parts = line.split()
        if len(parts) == 3 and parts[0] == marker:
            return int(parts[1]), int(parts[2])
    return None
