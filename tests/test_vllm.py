"""The in-process vLLM backend: the call schema anywhere; the engine itself only on a GPU with vllm installed."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time

import pytest

from budgetgraph.models.messages import Message, ToolSchema
from budgetgraph.models.vllm import call_schema

SEARCH = ToolSchema(
    "search",
    "Search.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
OPEN = ToolSchema(
    "open", "Open.", {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
)


def test_call_schema_constrains_name_and_arguments():
    one = call_schema([SEARCH])
    assert (
        one["properties"]["name"] == {"const": "search"}
        and one["properties"]["arguments"] == SEARCH.parameters
    )
    both = call_schema([SEARCH, OPEN])
    assert [o["properties"]["name"]["const"] for o in both["anyOf"]] == ["search", "open"]


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install 'budgetgraph[vllm]' on a GPU machine)"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    return None


def test_in_process_engine_on_a_gpu():
    reason = _gpu_reason()
    if reason:
        print(f"skipping the vLLM engine test: {reason}")
        pytest.skip(reason)
    from budgetgraph.models.vllm import VLLMModel

    model = VLLMModel(
        os.environ.get("BUDGETGRAPH_VLLM_MODEL", "Qwen/Qwen2.5-1.5B-Instruct"), gpu_memory_utilization=0.5
    )
    messages = [Message.user("Find who designed the Apple Remote.")]

    async def many(n: int):
        return await asyncio.gather(
            *(
                model.request(messages, [SEARCH, OPEN], {"max_tokens": 96, "tool_choice": "required"})
                for _ in range(n)
            )
        )

    asyncio.run(many(1))  # warm-up
    started = time.perf_counter()
    responses = asyncio.run(many(64))
    seconds = time.perf_counter() - started
    tokens = sum(r.usage.output_tokens for r in responses)
    print(f"vLLM: 64 concurrent forced tool calls in {seconds:.2f}s, {tokens / seconds:.0f} output tokens/s")
    assert all(r.message.tool_calls and r.message.tool_calls[0].name in ("search", "open") for r in responses)
    assert all(r.usage.input_tokens == model.count_tokens(messages, [SEARCH, OPEN]) for r in responses)
