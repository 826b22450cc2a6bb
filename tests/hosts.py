"""The same scripted agent in three frameworks, for the integration tests: one policy (what the model does at
step n given the tools it is offered), replayed by budgetgraph's ScriptedModel, a LangChain chat model and a
pydantic-ai FunctionModel, each reporting a usage between what the text must be and what was reserved."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Callable[[int, list[str]], tuple[str, list[tuple[str, dict[str, Any]]]]]


def search_policy(step: int, offered: list[str]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """Two queries, then a parallel pair (two and one), then one more each turn; with no tools, the answer."""
    if not offered:
        return "<answer>c</answer>", []
    plan = {
        0: [("search", {"queries": ["a", "b"]})],
        1: [("search", {"queries": ["c", "d"]}), ("search", {"queries": ["e"]})],
    }
    return "", plan.get(step, [("search", {"queries": [f"q{step}"]})])


def usage_of(prompt_chars: int, reply: str, calls: Sequence[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    """An honest usage report: about three characters a token, plus a template's framing."""
    out = len(reply) + sum(len(n) + len(json.dumps(a)) for n, a in calls)
    return prompt_chars // 3 + 12, out // 3 + 3


@dataclass
class Log:
    """What a fake model saw and reported: tools offered, max_tokens sent, usage reported per call."""

    offered: list[list[str]] = field(default_factory=list)
    max_tokens: list[Any] = field(default_factory=list)
    reported: list[tuple[int, int]] = field(default_factory=list)

    def totals(self) -> tuple[int, int]:
        return sum(i for i, _ in self.reported), sum(o for _, o in self.reported)


def langchain_model(
    policy: Policy, log: Log, lie: Callable[[int], tuple[int, int] | None] | None = None
) -> Any:
    """A LangChain chat model that replays ``policy`` (``lie(step)`` replaces the reported usage)."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool

    class Replay(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "replay"

        def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            step = len(log.reported)
            offered = [t["function"]["name"] for t in kwargs.get("tools") or []]
            log.offered.append(offered)
            log.max_tokens.append(kwargs.get("max_tokens"))
            text, calls = policy(step, offered)
            chars = sum(len(str(m.content)) + len(json.dumps(getattr(m, "tool_calls", []))) for m in messages)
            usage = (lie(step) if lie else None) or usage_of(chars, text, calls)
            log.reported.append(usage)
            message = AIMessage(
                text,
                tool_calls=[{"name": n, "args": a, "id": f"c{step}_{i}"} for i, (n, a) in enumerate(calls)],
                usage_metadata={
                    "input_tokens": usage[0],
                    "output_tokens": usage[1],
                    "total_tokens": usage[0] + usage[1],
                },
            )
            return ChatResult(generations=[ChatGeneration(message=message)])

    return Replay()


def pydantic_ai_model(
    policy: Policy, log: Log, lie: Callable[[int], tuple[int, int] | None] | None = None
) -> Any:
    """A pydantic-ai FunctionModel that replays ``policy``."""
    from pydantic_ai import messages as pm
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.usage import RequestUsage

    def reply(messages: list[pm.ModelMessage], info: AgentInfo) -> pm.ModelResponse:
        step = len(log.reported)
        offered = [t.name for t in info.function_tools]
        log.offered.append(offered)
        log.max_tokens.append((info.model_settings or {}).get("max_tokens"))
        text, calls = policy(step, offered)
        chars = sum(
            len(str(getattr(p, "content", "") or "")) + len(json.dumps(getattr(p, "args", None) or {}))
            for m in messages
            for p in m.parts
        )
        usage = (lie(step) if lie else None) or usage_of(chars, text, calls)
        log.reported.append(usage)
        parts: list[Any] = [pm.TextPart(text)] if text else []
        parts += [pm.ToolCallPart(n, a, f"c{step}_{i}") for i, (n, a) in enumerate(calls)]
        return pm.ModelResponse(
            parts=parts, usage=RequestUsage(input_tokens=usage[0], output_tokens=usage[1])
        )

    return FunctionModel(reply)
