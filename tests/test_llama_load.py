"""Model loading on CPUs with AMX: llama.cpp's AMX weight buffers crash the process, so they are left off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from budgetgraph.models.llama_load import amx_in, cpu_safe_loading, patch_for_process

low = pytest.importorskip(
    "llama_cpp.llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'"
)

AMX_INFO = b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 | "
PLAIN_INFO = b"CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 | REPACK = 1 | "


def test_amx_is_read_from_the_system_info_line():
    assert amx_in(AMX_INFO.decode())
    assert not amx_in(PLAIN_INFO.decode())
    assert not amx_in("CPU : AMX_INT8 = 0 | ")


def test_on_an_amx_cpu_loading_leaves_the_extra_buffers_off_and_then_restores_the_default(monkeypatch):
    monkeypatch.setattr(low, "llama_print_system_info", lambda: AMX_INFO)
    original = low.llama_model_default_params
    assert low.llama_model_default_params().use_extra_bufts is True
    with cpu_safe_loading():
        assert low.llama_model_default_params().use_extra_bufts is False
    assert low.llama_model_default_params is original
    assert low.llama_model_default_params().use_extra_bufts is True


def test_on_other_cpus_nothing_changes(monkeypatch):
    monkeypatch.setattr(low, "llama_print_system_info", lambda: PLAIN_INFO)
    original = low.llama_model_default_params
    with cpu_safe_loading():
        assert low.llama_model_default_params is original
    assert patch_for_process() is False
    assert low.llama_model_default_params is original


def test_the_server_patch_applies_once(monkeypatch):
    monkeypatch.setattr(low, "llama_print_system_info", lambda: AMX_INFO)
    monkeypatch.setattr(low, "llama_model_default_params", low.llama_model_default_params)
    assert patch_for_process() is True
    patched = low.llama_model_default_params
    assert patch_for_process() is True
    assert low.llama_model_default_params is patched
    assert patched().use_extra_bufts is False


@pytest.mark.model
def test_the_embedded_model_answers_on_this_cpu_in_a_child_process():
    # A child process, so that a crash in llama.cpp (as AMX's buffers cause) fails this test by name
    # instead of ending the whole run.
    code = (
        "import asyncio, llama_cpp\n"
        "from budgetgraph.models.local import LocalModel\n"
        "from budgetgraph.models.messages import Message\n"
        "print(llama_cpp.llama_print_system_info().decode())\n"
        "r = asyncio.run(LocalModel().request([Message.user('Say OK.')], [], {'max_tokens': 4}))\n"
        "print('REPLY', r.usage.output_tokens)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert "REPLY" in proc.stdout
