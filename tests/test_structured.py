"""Structured output: Agent(output_type=...) validates the final answer as a pydantic model, with one metered
retry that shows the model its validation error; on the scripted model and on the real embedded model."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from budgetgraph import Agent, ConfigError, ScriptedModel, tool


class City(BaseModel):
    city: str
    country: str
    population_millions: float


@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Paris] Paris, capital of France, has 2.1 million inhabitants."


def scripted(*answers: str) -> ScriptedModel:
    queue = list(answers)

    def script(messages, tools):
        if tools and not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("search", {"query": "Paris"})])
        return ScriptedModel.text(f"<answer>{queue.pop(0)}</answer>")

    return ScriptedModel(script)


GOOD = json.dumps({"city": "Paris", "country": "France", "population_millions": 2.1})


def test_a_valid_answer_is_the_output_with_no_extra_call():
    model = scripted(GOOD)
    result = Agent(model, [search], "search=2", output_type=City).run("Which city?")
    assert result.output == City(city="Paris", country="France", population_millions=2.1)
    assert result.output_error is None and result.usage.llm_calls == 2
    assert "population_millions" in model.requests[0][0][0].content  # the schema is in the system prompt
    assert result.to_dict()["output"] == {"city": "Paris", "country": "France", "population_millions": 2.1}


def test_an_invalid_answer_gets_one_metered_retry_that_shows_the_error():
    model = scripted('{"city": "Paris"}', f"```json\n{GOOD}\n```")
    result = Agent(model, [search], "search=2", output_type=City).run("Which city?")
    assert result.output is not None and result.output.country == "France"
    assert result.usage.llm_calls == 3 and result.usage.by_role["output"]["llm_calls"] == 1
    retry_prompt = model.requests[-1][0][-1].content
    assert "country: Field required" in retry_prompt and "population_millions" in retry_prompt
    assert result.answer == f"```json\n{GOOD}\n```"


def test_two_invalid_answers_leave_no_output_and_say_why():
    result = Agent(scripted("Paris", "still Paris"), [search], "search=2", output_type=City).run("q")
    assert result.output is None and "does not match the schema" in result.output_error
    assert result.usage.llm_calls == 3


def test_no_budget_for_the_retry_is_said_and_nothing_overshoots():
    result = Agent(scripted("Paris", GOOD), [search], "search=2,llm_calls=2", output_type=City).run("q")
    assert result.output is None and "no budget was left" in result.output_error
    assert result.usage.llm_calls == 2


def test_output_type_must_be_a_pydantic_model():
    with pytest.raises(ConfigError, match="pydantic model"):
        Agent(scripted(GOOD), [search], output_type=dict)  # type: ignore[arg-type]


@pytest.mark.model
def test_the_embedded_model_returns_a_valid_structured_answer():
    pytest.importorskip("llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'")
    agent = Agent("local", [search], "search=1", planner="tracker", output_type=City, answer_max_tokens=128)
    result = agent.run(
        "What is the capital of France, which country is it in, and its population in millions?"
    )
    assert result.output is not None, (result.answer, result.output_error)
    assert result.output.city.lower() == "paris" and result.output.country.lower() == "france"
    print("embedded structured output:", result.output, "llm calls:", result.usage.llm_calls)


def test_json_data_in_a_reply_is_not_taken_for_a_tool_call():
    from budgetgraph.models.toolparse import parse_tool_calls

    data = '{"name": "Paris", "country": "France"}'
    for names in ((), ("search",)):
        parsed = parse_tool_calls(data, names)
        assert not parsed.calls and parsed.text == data
    call = parse_tool_calls('{"name": "search", "arguments": {"query": "x"}}', ("search",))
    assert call.calls[0].name == "search"  # a real untagged call still parses


def test_the_embedded_models_grammar_wraps_the_schema_in_answer_tags():
    pytest.importorskip("llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'")
    from budgetgraph.models.local import answer_json_grammar

    grammar = answer_json_grammar(City.model_json_schema())
    assert grammar.startswith('root ::= "<answer>" answer-json "</answer>"')
    assert "\nanswer-json ::=" in grammar and "\nroot ::=" not in grammar
