"""Shows: a budget per conversation (budget_scope="thread", a cap on the whole thread) against the default
budget per run (each arun on a thread starts a fresh one), with a checkpointer.

    python examples/conversation_budget.py
"""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import Agent, Corpus, ScriptedModel


def one_search_per_question(messages, tools):
    """Search once for each new question, then answer with the first title found."""
    last = messages[-1]
    if last.role == "user" and tools:
        return ScriptedModel.tool_calls([("search", {"queries": [last.content]})])
    found = next((m.content for m in reversed(messages) if m.role == "tool"), "")
    title = found.split("[", 1)[-1].split("]", 1)[0] if "[" in found else "nothing found"
    return ScriptedModel.text(f"<answer>{title}</answer>")


def ask(scope: str) -> list[str]:
    agent = Agent(
        ScriptedModel(one_search_per_question),
        Corpus.from_folder("docs").tools(),
        "search=2",
        planner="tracker",
        checkpointer=InMemorySaver(),
        budget_scope=scope,
    )
    out = []
    for question in (
        "How are batched search calls counted?",
        "What is the final-answer reserve?",
        "And resume?",
    ):
        result = agent.run(question, thread_id="user-42")
        searches = result.usage.tool_calls.get("search", 0)
        refused = sum(1 for e in result.timeline if e["event"] == "refused")
        out.append(f"{question!r}: searches so far in this budget {searches}, refused {refused}")
    return out


if __name__ == "__main__":
    for scope in ("run", "thread"):
        print(f"budget_scope={scope!r}")
        for line in ask(scope):
            print("  " + line)
