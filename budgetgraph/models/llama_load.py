"""How llama.cpp loads a model here: as upstream does, except on a CPU with AMX.

On CPUs that report AMX_INT8, llama.cpp puts the quantised weights in its AMX buffers, and its AMX matmul then
kills the process with a general-protection fault (``ggml_backend_amx_mul_mat``, ggml-org/llama.cpp#20824,
unfixed upstream). There a model loads without llama.cpp's extra weight buffers (``use_extra_bufts``), on the
plain CPU kernels. llama-cpp-python's ``Llama`` takes no argument for that flag, so its default model
parameters are wrapped while a model loads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["amx_in", "cpu_safe_loading", "patch_for_process"]

_LOCK = threading.Lock()


def amx_in(system_info: str) -> bool:
    """Whether llama.cpp's system-info line says it will use AMX (the weight buffers that crash)."""
    return "AMX_INT8 = 1" in system_info


def _needs_patch(low: Any) -> bool:
    info = low.llama_print_system_info()
    return amx_in(info.decode(errors="replace") if isinstance(info, bytes) else str(info))


def _without_extra_buffers(original: Any) -> Any:
    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    params.cpu_safe = True  # type: ignore[attr-defined]
    return params


@contextmanager
def cpu_safe_loading() -> Iterator[None]:
    """Within this block, a ``llama_cpp.Llama`` loads without AMX buffers when the CPU has AMX."""
    import llama_cpp.llama_cpp as low

    if not _needs_patch(low):
        yield
        return
    with _LOCK:
        original = low.llama_model_default_params
        low.llama_model_default_params = _without_extra_buffers(original)
        try:
            yield
        finally:
            low.llama_model_default_params = original


def patch_for_process() -> bool:
    """For a process that only serves llama.cpp (the OpenAI-compatible server): the same, for good.

    Returns whether the CPU needed it.
    """
    import llama_cpp.llama_cpp as low

    if not _needs_patch(low):
        return False
    if not getattr(low.llama_model_default_params, "cpu_safe", False):
        low.llama_model_default_params = _without_extra_buffers(low.llama_model_default_params)
    return True
