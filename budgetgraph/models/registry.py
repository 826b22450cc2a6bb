"""Resolve a model string (``"local"``, ``"local:/m.gguf"``, ``"local:0.5b"``, ``"openai:NAME[@URL]"``, ``"scripted"``) lazily."""

from __future__ import annotations

from ..budget.limits import closest
from ..errors import ConfigError
from .base import ChatModel

__all__ = ["MODEL_PREFIXES", "infer_model", "model_forms"]

MODEL_PREFIXES: dict[str, tuple[str, str]] = {
    "local": ("local | local:0.5b | local:/path/model.gguf", "the embedded llama.cpp model on the CPU"),
    "openai": ("openai:MODEL | openai:MODEL@http://host:port/v1", "any OpenAI-compatible server"),
    "anthropic": ("anthropic:MODEL", "Anthropic's Messages API"),
    "vllm": ("vllm:MODEL", "an in-process vLLM engine on a GPU"),
    "scripted": ("scripted | scripted:SECONDS", "a scripted offline policy (tests, demos)"),
}
"""Each model prefix: its forms and what it runs (the CLI help and the error for an unknown model read it)."""


_SERVED_OPENAI = {"ollama": "Ollama", "lmstudio": "LM Studio", "llamacpp": "llama.cpp's server"}
_SERVED_URL = {
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
    "llamacpp": "http://localhost:8080/v1",
}
"""Servers people name as a prefix, with the URL of their OpenAI-compatible endpoint."""


def model_forms() -> str:
    """Every model form, for help texts: ``local | local:0.5b | ... | scripted:SECONDS``."""
    return " | ".join(form for form, _ in MODEL_PREFIXES.values())


def infer_model(spec: str | ChatModel) -> ChatModel:
    """A ChatModel from its string form; backend modules (and their extras) are imported only when named."""
    if not isinstance(spec, str):
        return spec
    provider, _, rest = spec.partition(":")
    if provider == "local":
        from .local import LocalModel

        if rest.lower() in ("0.5b", "1.5b"):  # an embedded size: local:0.5b is the small sibling
            from .local_assets import embedded_model_path

            return LocalModel(embedded_model_path(rest), name=f"local-{rest.lower()}")
        return LocalModel(rest or None)
    if provider == "scripted":
        from .scripted import ScriptedModel

        try:
            latency = float(rest) if rest else 0.0
        except ValueError:
            raise ConfigError(
                f"'scripted:{rest}': the part after 'scripted:' is a latency in seconds"
            ) from None
        return ScriptedModel.qa_policy(latency)
    if provider == "openai":
        if not rest:
            raise ConfigError("model 'openai:' needs a model name, e.g. 'openai:gpt-4.1-mini'")
        from .openai import OpenAIModel

        name, _, url = rest.partition("@")
        return OpenAIModel(name, base_url=url or None)
    if provider == "anthropic":
        if not rest:
            raise ConfigError("model 'anthropic:' needs a model name, e.g. 'anthropic:claude-sonnet-4-5'")
        from .anthropic import AnthropicModel

        return AnthropicModel(rest)
    if provider == "vllm":
        if not rest:
            raise ConfigError(
                "model 'vllm:' needs a model name or path, e.g. 'vllm:Qwen/Qwen2.5-7B-Instruct'"
            )
        from .vllm import VLLMModel

        return VLLMModel(rest)
    if provider in _SERVED_OPENAI:
        raise ConfigError(
            f"unknown model {spec!r}: {_SERVED_OPENAI[provider]} serves the OpenAI API, so use "
            f"openai:{rest or 'MODEL'}@{_SERVED_URL[provider]}"
        )
    raise ConfigError(
        f"unknown model {spec!r}{closest(provider, list(MODEL_PREFIXES))}: use one of {model_forms()}"
    )
