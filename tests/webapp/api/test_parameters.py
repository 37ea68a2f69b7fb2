"""What a chat completion's body becomes: system messages joined into the system prompt,
text parts joined, OpenAI's defaults, and its newer name for the answer's length."""

from __future__ import annotations

from typing import Any

import pytest

from webapp.api import catalog
from webapp.api.errors import ApiError
from webapp.api.parameters import completion_parameters, embedding_parameters
from webapp.chat.services import Turn


def body(**fields: Any) -> dict[str, Any]:
    return {"model": catalog.chat_models()[0], "messages": [{"role": "user", "content": "Hi"}], **fields}


def test_system_and_developer_messages_become_the_system_prompt_and_text_parts_are_joined() -> None:
    parameters = completion_parameters(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is rye?"},
                {"role": "assistant", "content": "A grain."},
                {"role": "developer", "content": "Answer in English."},
                {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "spelt?"}]},
            ]
        )
    )
    assert parameters.system_prompt == "Be brief.\n\nAnswer in English."
    assert parameters.turns == [
        Turn(role="user", content="What is rye?"),
        Turn(role="assistant", content="A grain."),
        Turn(role="user", content="And spelt?"),
    ]


def test_openais_defaults_apply_when_a_parameter_is_left_out() -> None:
    parameters = completion_parameters(body())
    assert (parameters.temperature, parameters.top_p, parameters.stream, parameters.stop) == (1.0, 1.0, False, ())
    assert parameters.max_tokens == 512


def test_max_completion_tokens_and_a_single_stop_string_are_taken() -> None:
    parameters = completion_parameters(body(max_completion_tokens=7, stop="\n\n"))
    assert parameters.max_tokens == 7
    assert parameters.stop == ("\n\n",)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages"),
        ({"model": ""}, "model"),
    ],
)
def test_each_bad_value_is_named(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as refused:
        completion_parameters(body(**fields))
    assert refused.value.status == 400
    assert refused.value.param == param


def test_embeddings_take_one_text_or_a_list_and_refuse_token_ids() -> None:
    model = catalog.embedding_models()[0]
    assert embedding_parameters({"model": model, "input": "one"}).texts == ["one"]
    with pytest.raises(ApiError) as refused:
        embedding_parameters({"model": model, "input": [[1, 2, 3]]})
    assert refused.value.param == "input"
