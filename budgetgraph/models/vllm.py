"""An in-process vLLM engine (``vllm`` extra, a GPU): many concurrent episodes share one ``AsyncLLM`` engine,
whose continuous batching is the point. Exact token counts come from the engine; forced tool calls are
decoded under a JSON schema built from the tool schemas (vLLM's structured outputs); with ``tool_choice=auto``
the model writes Hermes-style ``<tool_call>`` text, which is parsed.

For a separate server use ``vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes`` and the
OpenAI-compatible backend (``openai:MODEL@http://host:8000/v1``) instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from .._extras import require
from ..budget.prices import FREE, ModelPrice
from ..errors import ModelError
from .messages import (
    Message,
    ModelResponse,
    ModelSettings,
    RequestUsage,
    ToolSchema,
    to_openai_messages,
    to_openai_tools,
)
from .toolparse import make_call, new_call_id, parse_tool_calls

__all__ = ["VLLMModel", "call_schema"]


def call_schema(tools: Sequence[ToolSchema]) -> dict[str, Any]:
    """The JSON schema of one call to one of ``tools``: ``{"name": ..., "arguments": {...}}``."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": dict(t.parameters) or {"type": "object"}},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


class VLLMModel:
    """``VLLMModel("Qwen/Qwen2.5-7B-Instruct")``; engine arguments (``gpu_memory_utilization``, ...) pass through."""

    counts_own_usage = True
    """Usage is counted in this process with the model's own tokenizer (the meter does not second-guess it)."""

    price: ModelPrice | None = FREE

    def __init__(self, model: str, *, max_model_len: int = 16384, **engine_args: Any) -> None:
        require("vllm", "vllm")
        self.name = model
        self._engine_args = {"model": model, "max_model_len": max_model_len, **engine_args}
        self._engine: Any = None
        self._tokenizer: Any = None

    def _start(self) -> Any:
        if self._engine is None:
            from vllm import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM

            self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self._engine_args))
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._engine_args["model"])
        return self._engine

    def _prompt(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> str:
        self._start()
        return str(
            self._tokenizer.apply_chat_template(
                to_openai_messages(messages),
                tools=to_openai_tools(tools) or None,
                tokenize=False,
                add_generation_prompt=True,
            )
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        return len(self._tokenizer.encode(self._prompt(messages, tools), add_special_tokens=False))

    def _sampling(self, settings: ModelSettings, schema: dict[str, Any] | None) -> Any:
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "max_tokens": settings.get("max_tokens", 512),
            "temperature": settings.get("temperature", 0.0),
            "top_p": settings.get("top_p", 1.0),
            "stop": list(settings.get("stop", [])) or None,
            "seed": settings.get("seed"),
        }
        if schema is not None:
            try:  # vLLM >= 0.10
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(json=schema)
            except ImportError:  # older releases
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(json=schema)
        return SamplingParams(**kwargs)

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        engine = self._start()
        choice = settings.get("tool_choice", "auto")
        offered = (
            []
            if choice == "none"
            else [t for t in tools if choice in ("auto", "required") or t.name == choice]
        )
        forced = bool(offered) and choice != "auto"
        prompt = self._prompt(messages, offered)
        params = self._sampling(settings, call_schema(offered) if forced else None)
        final = None
        try:
            async for out in engine.generate(prompt, params, request_id=uuid.uuid4().hex):
                final = out
        except Exception as exc:
            raise ModelError(f"vLLM engine ({self.name}) failed: {type(exc).__name__}: {exc}") from exc
        if final is None:
            raise ModelError(f"vLLM engine ({self.name}) returned nothing")
        completion = final.outputs[0]
        text = completion.text
        names = [t.name for t in offered]
        if forced:
            try:
                obj = json.loads(text)
                calls: tuple[Any, ...] = (make_call(new_call_id(), obj["name"], obj["arguments"], names),)
                text = ""
            except (json.JSONDecodeError, KeyError, TypeError):
                calls = parse_tool_calls(text, names).calls
        else:
            parsed = parse_tool_calls(text, names) if names else None
            calls = parsed.calls if parsed else ()
            text = parsed.text if parsed and parsed.calls else text
        usage = RequestUsage(len(final.prompt_token_ids or []), len(completion.token_ids))
        finish = "tool_calls" if calls else (completion.finish_reason or "stop")
        return ModelResponse(Message.assistant(text, calls), usage, self.name, finish)
