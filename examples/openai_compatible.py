"""Shows: an agent on an OpenAI-compatible server (llama.cpp's, standing in for vLLM, Ollama or a hosted
API) under a dollar cap, priced from a prices file, since a self-hosted model has no public price. (No tools
here: llama-cpp-python's server drops the tools when the request has a system prompt, so its model answers
without them; vLLM and hosted APIs do not.)

    pip install 'budgetgraph[local,openai]' 'llama-cpp-python[server]'
    python examples/openai_compatible.py     # starts llama.cpp's server with the embedded model on 127.0.0.1
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from budgetgraph import Agent, PriceTable
from budgetgraph.models.local_assets import default_model_path


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [
        "--model",
        str(default_model_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "budgetgraph.models.llama_server", *args, "--model_alias", "handbook-qwen"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(360):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if server.poll() is not None:
                raise SystemExit("llama_cpp.server exited during start-up") from None
            time.sleep(0.5)
    server.kill()
    raise SystemExit("llama_cpp.server did not start in 180 s")


def main() -> None:
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prices = Path(tmp) / "prices.json"  # dollars per million tokens
            prices.write_text(json.dumps({"models": {"handbook-qwen": {"input": 0.5, "output": 1.5}}}))
            agent = Agent(
                f"openai:handbook-qwen@{url}",
                [],
                "usd=0.002,llm_calls=2",
                prices=PriceTable.from_file(prices),
                max_tokens=128,
            )
            result = agent.run("In one sentence: why cap an agent's spending?")
        print("answer:", result.answer, f"({result.stop_reason})")
        print(f"spent ${result.usage.usd:.6f} of $0.002 on {result.usage.total_tokens} tokens (prices file)")
        assert result.answer and result.usage.usd <= Decimal("0.002")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
