"""The embedded default backend: llama.cpp (llama-cpp-python) on the CPU.

The prompt is rendered with the GGUF's own chat template (Qwen2.5 puts tool schemas in the system turn and
expects ``<tool_call>{...}</tool_call>``). The model writes calls unconstrained (fast); only a reply that
tries a call and does not parse is redone with decoding constrained by a small GBNF grammar built from the
tool names. One llama.cpp context is shared per model file, so consecutive turns of an episode reuse the KV
cache of their common prompt prefix, and saved prompt states (``cache_bytes``) keep that reuse when calls
alternate between prompts (BATS's act and verify prompts, sub-agents). Reuse is cut at whole aligned
ubatches (``local_prefix``), so a reply at temperature 0 is the same whatever ran before it.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import json
import os
import re
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .._extras import require
from ..budget.prices import FREE, ModelPrice
from ..errors import ConfigError, ModelError
from .base import text_sink
from .llama_load import cpu_safe_loading
from .local_prefix import DEFAULT_UBATCH, PrefixReuse
from .messages import Message, ModelResponse, ModelSettings, RequestUsage, ToolSchema, to_openai_tools
from .toolparse import parse_tool_calls

__all__ = ["LocalModel", "LocalStats", "answer_json_grammar", "tool_call_grammar"]

_STOP = ["<|im_end|>", "<|endoftext|>"]
_ENGINES: dict[tuple[str, int], _Engine] = {}
_ENGINES_LOCK = threading.Lock()

_JSON_GBNF = r"""
object ::= "{" ws ( member ( ws "," ws member )* )? ws "}"
member ::= string ws ":" ws value
value ::= object | array | string | number | "true" | "false" | "null"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] ) )* "\""
number ::= "-"? [0-9]+ ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws ::= [ \t\n]?
"""


def answer_json_grammar(schema: dict[str, Any]) -> str:
    """GBNF for ``<answer>`` + one JSON object of ``schema`` + ``</answer>`` (llama.cpp's schema converter)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    body = re.sub(r"(?m)^root ::=", "answer-json ::=", json_schema_to_gbnf(json.dumps(schema)), count=1)
    return 'root ::= "<answer>" answer-json "</answer>"\n' + body


GRAMMAR_MAX_ITEMS = 5
"""The most items a list argument of a grammar-bound call may hold when its schema sets no ``maxItems``."""
GRAMMAR_CEILINGS = {"maxItems": 64, "minItems": 64, "maxLength": 4096, "minLength": 4096}
"""What a client's schema may ask of a grammar (a ``maxItems`` of 10 million would be a 200 MB grammar)."""
GRAMMAR_DEPTH = 24
"""Nesting a schema may have before deeper parts are any JSON value."""
GRAMMAR_MAX_CHARS = 200_000
"""A larger grammar is not built: the call is held to JSON only."""


def tool_call_grammar(
    tool_names: Sequence[str],
    max_calls: int = 3,
    schema: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """A compact GBNF grammar for 1 to ``max_calls`` ``<tool_call>`` blocks naming only the given tools.

    The bounds matter: with an unbounded repeat a small model loops on the same call, or on the items of one
    list argument, until ``max_tokens``, and the cut-off call is lost. With ``schema`` (one forced tool: a
    structured output), the arguments follow that JSON schema with every property written, in the schema's
    order, so a small model neither wraps them in an extra object nor skips the decision. With
    ``parameters`` (each tool's argument schema), every call's arguments follow its own tool's schema, lists
    held to ``maxItems`` (:data:`GRAMMAR_MAX_ITEMS` where none is set). A schema the converter cannot take
    falls back to any JSON object.
    """
    names = " | ".join(json.dumps(json.dumps(n)[1:-1]) for n in tool_names)
    call = r'"<tool_call>\n{\"name\": \"" tool-name "\", \"arguments\": " object "}\n</tool_call>"'
    rules = f"tool-name ::= {names}\n" + _JSON_GBNF
    if schema is not None:
        body = _gbnf(_bounded(schema, every=True))
        if body:
            call = call.replace(" object ", " arguments ")
            rules = f"tool-name ::= {names}\n" + re.sub(r"(?m)^root ::=", "arguments ::=", body, count=1)
    elif parameters and set(tool_names) <= set(parameters):
        each = [
            {
                "type": "object",
                "properties": {"name": {"const": n}, "arguments": _bounded(parameters[n], every=False)},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for n in tool_names
        ]
        body = _gbnf(each[0] if len(each) == 1 else {"oneOf": each})
        if body:
            call = r'"<tool_call>\n" call-json "\n</tool_call>"'
            rules = re.sub(r"(?m)^root ::=", "call-json ::=", body, count=1)
    more = ' ( "\\n" tool-call )?' * max(0, max_calls - 1)
    return f"root ::= tool-call{more}\ntool-call ::= {call}\n" + rules


def _gbnf(schema: Any) -> str:
    """llama.cpp's GBNF for a JSON schema; "" where the converter cannot take it, or it would be too large."""
    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        grammar = str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception:  # noqa: BLE001 - an unsupported schema keyword: constrain to JSON only
        return ""
    return grammar if len(grammar) <= GRAMMAR_MAX_CHARS else ""


def _bounded(schema: Any, every: bool, depth: int = 0) -> Any:
    """The schema with each list held to ``maxItems`` (:data:`GRAMMAR_MAX_ITEMS` where none is set, and never
    above :data:`GRAMMAR_CEILINGS`) and, with ``every``, each object's properties all required (the converter
    writes required ones first); below :data:`GRAMMAR_DEPTH` levels, any JSON value."""
    if depth > GRAMMAR_DEPTH:
        return {}
    if isinstance(schema, list):
        return [_bounded(v, every, depth + 1) for v in schema]
    if not isinstance(schema, dict):
        return schema
    nested = ("properties", "$defs", "definitions")
    out = {k: v if k in nested else _bounded(v, every, depth + 1) for k, v in schema.items()}
    for group in nested:
        if isinstance(schema.get(group), dict):
            out[group] = {k: _bounded(v, every, depth + 1) for k, v in schema[group].items()}
    if every and isinstance(out.get("properties"), dict):
        out["required"] = list(out["properties"])
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = GRAMMAR_MAX_ITEMS
    for key, ceiling in GRAMMAR_CEILINGS.items():
        value = out.get(key)
        if isinstance(value, bool) or (value is not None and not isinstance(value, int)):
            out.pop(key)
        elif isinstance(value, int):
            out[key] = max(0, min(value, ceiling))
    if isinstance(out.get("minItems"), int) and isinstance(out.get("maxItems"), int):
        out["minItems"] = min(out["minItems"], out["maxItems"])
    return out


@dataclass
class LocalStats:
    """Turn statistics: how often a reply needed the grammar redo, and turn latency."""

    turns: int = 0
    parse_failures: int = 0
    unparsed_after_redo: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def parse_failure_rate(self) -> float:
        return self.parse_failures / self.turns if self.turns else 0.0

    @property
    def median_latency(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


class Completion(NamedTuple):
    """One completion of the engine."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cut: bool
    """Stopped by the deadline."""
    entropy: float | None
    """Mean entropy of the reply's tokens, when ``settings["entropy"]`` asked for it."""
    reused: int
    """Prompt tokens whose key/value cache was reused (not evaluated again)."""


class _Engine:
    """One llama.cpp context plus its chat template; calls are serialised (llama.cpp is not thread-safe)."""

    def __init__(
        self, path: Path, n_ctx: int, n_threads: int | None, cache_bytes: int, n_gpu_layers: int = 0
    ) -> None:
        llama_cpp = require("llama_cpp", "local")
        jinja2_sandbox = require("jinja2.sandbox", "local")
        threads = n_threads or os.cpu_count() or 2
        try:
            with cpu_safe_loading():
                self.llm = llama_cpp.Llama(
                    str(path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers,
                    n_batch=512,
                    n_ubatch=DEFAULT_UBATCH,
                    verbose=False,
                    seed=0,
                )
        except Exception as exc:
            raise ConfigError(f"cannot load GGUF model {path}: {exc}") from exc
        self.prefix = PrefixReuse(self.llm, DEFAULT_UBATCH, cache_bytes)
        self._stop: Callable[[], bool] | None = None
        self.llm.eval = self._eval  # deadline checks between ubatches of a prompt
        # free the model before interpreter teardown: llama_cpp's own __del__ fails that late
        atexit.register(self.llm.close)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"{path} has no chat template in its metadata; pass chat_template=")
        env = jinja2_sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
        self.template = env.from_string(template)
        self.grammar_cls = llama_cpp.LlamaGrammar
        self.n_ctx = n_ctx
        self.lock = threading.Lock()

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> str:
        items: list[dict[str, Any]] = []
        for m in messages:
            item: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                item["tool_calls"] = [{"name": c.name, "arguments": dict(c.arguments)} for c in m.tool_calls]
            items.append(item)
        return str(
            self.template.render(
                messages=items, tools=to_openai_tools(tools) or None, add_generation_prompt=True
            )
        )

    def tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens as llama.cpp evaluates them (the chat template writes the special tokens)."""
        return list(self.llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def count(self, prompt: str) -> int:
        return len(self.tokens(prompt))

    def generate(
        self,
        prompt: str,
        settings: ModelSettings,
        grammar: str | None,
        on_text: Callable[[str], None] | None = None,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """One completion. ``on_text`` gets the reply's text as it is sampled (usage stays exact); past
        ``deadline`` (``time.monotonic()``), or once ``cancel`` is set, generation stops at the next token,
        and a prompt still being evaluated at the next ubatch."""
        deltas = _Deltas(self.llm, on_text) if on_text else None
        entropy = _Entropy() if settings.get("entropy") else None
        processors = [p for p in (deltas, entropy) if p is not None]
        tokens = self.tokens(prompt)
        llama_cpp = require("llama_cpp", "local")

        def stop() -> bool:
            return (deadline is not None and time.monotonic() >= deadline) or (
                cancel is not None and cancel.is_set()
            )

        late = (lambda _ids, _logits: stop()) if deadline is not None or cancel is not None else None
        with self.lock:
            reused = self.prefix.prepare(tokens)
            self._stop = stop
            try:
                out = self.llm.create_completion(
                    tokens,
                    max_tokens=settings.get("max_tokens", 512),
                    temperature=settings.get("temperature", 0.0),
                    top_p=settings.get("top_p", 1.0),
                    seed=settings.get("seed", 0),
                    stop=_STOP + list(settings.get("stop", [])),
                    grammar=self.grammar_cls.from_string(grammar, verbose=False) if grammar else None,
                    logits_processor=processors or None,
                    stopping_criteria=llama_cpp.StoppingCriteriaList([late]) if late else None,
                )
            except _PromptCut:
                self.prefix.interrupted()
                return Completion("", len(tokens), 0, True, None, reused)
            finally:
                self._stop = None
            self.prefix.finished(tokens)
        text = out["choices"][0]["text"]
        if deltas:
            deltas.finish(text)
        usage = out["usage"]
        cut = stop()
        mean = entropy.mean if entropy is not None else None
        return Completion(
            text, int(usage["prompt_tokens"]), int(usage["completion_tokens"]), cut, mean, reused
        )

    def _eval(self, tokens: Sequence[int]) -> None:
        """Llama.eval in ubatch-sized steps, stopping a long prompt (deadline, cancel) between steps."""
        step = DEFAULT_UBATCH
        for start in range(0, len(tokens), step):
            if len(tokens) > 1 and self._stop is not None and self._stop():
                raise _PromptCut
            type(self.llm).eval(self.llm, tokens[start : start + step])


class _PromptCut(Exception):
    """The deadline passed, or the call was cancelled, while the prompt was still being evaluated."""


def _threads() -> int | None:
    raw = os.environ.get("BUDGETGRAPH_THREADS")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"BUDGETGRAPH_THREADS={raw!r} is not a positive integer: give the CPU threads llama.cpp may use"
        )
    return value


def _gpu_layers() -> int:
    raw = os.environ.get("BUDGETGRAPH_GPU_LAYERS", "0")
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"BUDGETGRAPH_GPU_LAYERS={raw!r} is not an integer: give a layer count, -1 for all, or 0 for none"
        ) from None


class _Entropy:
    """Mean entropy (nats) of the model's next-token distribution at each sampled token (before temperature
    and grammar): the uncertainty of the reply."""

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        import numpy as np

        x = np.asarray(logits, dtype=np.float64)
        x = x - x.max()
        p = np.exp(x)
        p /= p.sum()
        nz = p[p > 0]
        self.total += float(-(nz * np.log(nz)).sum())
        self.n += 1
        return logits

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


class _Deltas:
    """Streams text from inside llama.cpp's sampling loop (a logits processor sees every token sampled so
    far), so usage is the same as without streaming. Text from ``<tool_call>`` on is held back: it is a call."""

    _TAG = "<tool_call>"

    def __init__(self, llm: Any, emit: Callable[[str], None]) -> None:
        self.llm = llm
        self.emit = emit
        self.seen: int | None = None  # tokens already turned into text (the prompt at first)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.sent = ""
        self.closed = False

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        if self.seen is None:
            self.seen = len(input_ids)
        elif not self.closed and len(input_ids) > self.seen:
            new = [int(t) for t in input_ids[self.seen :]]
            self.seen = len(input_ids)
            self._push(self.decoder.decode(self.llm.detokenize(new)))
        return logits

    def _push(self, text: str) -> None:
        self.pending += text
        cut = self.pending.find(self._TAG)
        if cut >= 0:
            self.closed = True
            self._send(self.pending[:cut])
            return
        keep = next((k for k in range(len(self._TAG) - 1, 0, -1) if self.pending.endswith(self._TAG[:k])), 0)
        self._send(self.pending[: len(self.pending) - keep])
        self.pending = self.pending[len(self.pending) - keep :]

    def _send(self, text: str) -> None:
        if text:
            self.sent += text
            self.emit(text)

    def finish(self, text: str) -> None:
        """Send what the loop could not see (the last token), up to any tool call."""
        visible = text.split(self._TAG, 1)[0]
        if visible.startswith(self.sent):
            self._send(visible[len(self.sent) :])


class LocalModel:
    """A GGUF model run in-process by llama.cpp. ``LocalModel()`` is the embedded default model.

    A reply's ``usage.cached_input_tokens`` counts the prompt tokens taken from the prefix cache (priced at
    ``price.cached_input``, the input rate when that is unset). ``cache_bytes`` bounds the RAM kept for saved
    prompt states (0 turns the cache off; about 28 KiB a token for the default model). ``n_gpu_layers``
    offloads layers to a GPU (-1: all) when llama-cpp-python was built with one (e.g.
    ``CMAKE_ARGS="-DGGML_CUDA=on"``); its default is ``$BUDGETGRAPH_GPU_LAYERS``, else 0. ``n_threads``
    defaults to ``$BUDGETGRAPH_THREADS``, else every CPU (llama.cpp's threads spin, so processes that share
    the cores should split them). The llama.cpp context is shared per (file, n_ctx): the first model to
    load it sets threads, layers and cache.
    """

    counts_own_usage = True
    """Usage is counted in this process with the model's own tokenizer (the meter does not second-guess it)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        cache_bytes: int = 2 << 30,
        n_gpu_layers: int | None = None,
        name: str | None = None,
        price: ModelPrice | None = FREE,
    ) -> None:
        self._path = Path(path).expanduser() if path else None
        if self._path is not None and not self._path.is_file():
            raise ConfigError(f"model file {self._path} does not exist; give the path of a .gguf file")
        self.n_ctx = n_ctx
        self.n_threads = _threads() if n_threads is None else n_threads
        self.cache_bytes = cache_bytes
        self.n_gpu_layers = _gpu_layers() if n_gpu_layers is None else n_gpu_layers
        self.name = name or (self._path.stem if self._path else "local")
        self.price = price
        self.stats = LocalStats()

    @property
    def context_window(self) -> int:
        """Prompt plus reply tokens one call can hold; the agent loop keeps its calls inside it."""
        return self.n_ctx

    @property
    def path(self) -> Path:
        if self._path is None:
            from .local_assets import default_model_path

            self._path = default_model_path()
        return self._path

    def _engine(self) -> _Engine:
        key = (str(self.path), self.n_ctx)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _Engine(
                    self.path, self.n_ctx, self.n_threads, self.cache_bytes, self.n_gpu_layers
                )
        return engine

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        engine = self._engine()
        return engine.count(engine.render(messages, tools))

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        sink = text_sink.get() if settings.get("stream") else None
        on_text: Callable[[str], None] | None = None
        if sink is not None:
            loop = asyncio.get_running_loop()
            emit = sink

            def on_text(text: str) -> None:  # called on llama.cpp's thread
                loop.call_soon_threadsafe(emit, text)

        # a cancelled await (Ctrl-C, an app's timeout) stops llama.cpp at its next token or prompt ubatch,
        # instead of leaving the thread to finish the whole call
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._request_sync, messages, tools, settings, on_text, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise

    def load(self) -> None:
        """Load the weights now (joining the embedded model's parts on first use), not at the first call."""
        self._engine()

    def _request_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema],
        settings: ModelSettings,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ModelResponse:
        started = time.perf_counter()
        timeout = settings.get("timeout")
        deadline = time.monotonic() + timeout if timeout is not None else None
        engine = self._engine()
        choice = settings.get("tool_choice", "auto")
        offered = [] if choice == "none" else list(tools)
        if choice not in ("auto", "none", "required"):
            offered = [t for t in tools if t.name == choice]
        prompt = engine.render(messages, offered)
        max_tokens = settings.get("max_tokens", 512)
        prompt_tokens = engine.count(prompt)
        if prompt_tokens + max_tokens > engine.n_ctx:
            raise ModelError(
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the context window "
                f"({engine.n_ctx}); use LocalModel(n_ctx=...) or shorter tool results"
            )
        names = [t.name for t in offered]
        forced = bool(offered) and choice != "auto"
        # a forced call is decoded under the grammar with no room to reason first: one call, not blind guesses
        most = 1 if forced or settings.get("parallel_tool_calls") is False else 3
        schema = offered[0].parameters if forced and len(offered) == 1 else None
        parameters = {t.name: t.parameters for t in offered}
        grammar = tool_call_grammar(names, most, schema, parameters) if forced else None
        if grammar is None and not offered and settings.get("json_schema"):
            grammar = answer_json_grammar(settings["json_schema"])
        # a grammar-bound reply is a tool call: nothing to stream
        text, n_in, n_out, cut, entropy, reused = engine.generate(
            prompt, settings, grammar, None if forced else on_text, deadline, cancel
        )
        parsed = parse_tool_calls(text, names)
        self.stats.turns += 1
        if (
            offered
            and not forced
            and not cut
            and parsed.attempted
            and not parsed.calls
            and n_out < max_tokens
        ):
            self.stats.parse_failures += 1
            redo = dict(settings, max_tokens=max_tokens - n_out)
            grammar = tool_call_grammar(names, most, None, parameters)
            text, _, extra, cut, entropy, _ = engine.generate(prompt, redo, grammar, None, deadline, cancel)  # type: ignore[arg-type]
            n_out += extra
            parsed = parse_tool_calls(text, names)
            if not parsed.calls:
                self.stats.unparsed_after_redo += 1
        self.stats.latencies.append(time.perf_counter() - started)
        finish = "tool_calls" if parsed.calls else ("length" if n_out >= max_tokens else "stop")
        if cut:
            finish = "timeout"  # the deadline stopped it: what it used so far is in the usage
        return ModelResponse(
            Message.assistant(parsed.text if parsed.calls else text.strip(), parsed.calls),
            RequestUsage(input_tokens=n_in, output_tokens=n_out, cached_input_tokens=reused),
            self.name,
            finish,
            entropy,
        )
