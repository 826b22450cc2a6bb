"""Shows: a tool-using agent on an OpenAI-compatible server, offline, under a dollar cap priced from a prices
file (a self-hosted model has no public price). The server is `budgetgraph serve`: the embedded model behind
an OpenAI-compatible endpoint that keeps tool calls. (llama-cpp-python's own server drops the tools under the
model's chat template, and its function-calling format refuses tool_choice="required"; vLLM, llama.cpp's C++
llama-server with --jinja and hosted APIs take tools, and the agent below works on them unchanged.)

    pip install 'budgetgraph[local,openai]'
    python examples/openai_compatible.py     # starts `budgetgraph serve` on 127.0.0.1, then runs the agent
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

from budgetgraph import Agent, Budget, Corpus, PriceTable


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """`budgetgraph serve --port P` on a free port; its URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "budgetgraph.cli", "serve", "--port", str(port), "--name", "handbook-qwen"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(360):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if server.poll() is not None:
                raise SystemExit("budgetgraph serve exited during start-up") from None
            time.sleep(0.5)
    server.kill()
    raise SystemExit("budgetgraph serve did not start in 180 s")


def main() -> None:
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prices = Path(tmp) / "prices.json"  # dollars per million tokens
            prices.write_text(json.dumps({"models": {"handbook-qwen": {"input": 0.5, "output": 1.5}}}))
            tools = Corpus.from_folder(Path(__file__).resolve().parents[1] / "docs").tools(
                k=3, max_chars=1500
            )
            agent = Agent(
                f"openai:handbook-qwen@{url}",
                tools,
                Budget(tool_calls={"search": 1, "open": 1}, usd=0.01),
                prices=PriceTable.from_file(prices),
                max_tokens=192,
            )
            result = agent.run(
                "Which SQLite extension does budgetgraph's local corpus use for full-text search?"
            )
        print("answer:", result.answer, f"({result.stop_reason})")
        print(f"tool calls over the endpoint: {dict(result.usage.tool_calls)}")
        print(f"spent ${result.usage.usd:.6f} of $0.01 on {result.usage.total_tokens} tokens (prices file)")
        assert result.answer and result.usage.tool_calls and result.usage.usd <= Decimal("0.01")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
