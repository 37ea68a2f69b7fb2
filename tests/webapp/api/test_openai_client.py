"""/v1 driven by the official ``openai`` client against the real web server and a real
generation worker (a tiny random model: it never ends on its own, so an answer runs to
``max_tokens`` unless a stop sequence or a Stop ends it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import openai
import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.waiting import wait_for
from tests.webapp.api.conftest import WebServer
from webapp.accounts.models import TokenUsage, User
from webapp.api.models import ApiKey
from webapp.api.services import api_key_revoke
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.review.models import Kind, ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

StartWorker = Callable[..., GenerationWorker]
KeyOf = Callable[[User], str]


def ask(content: str = "Tell me about bread") -> list[Any]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]


def api_answers(user: User) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation__owner=user, conversation__origin=Conversation.Origin.API, role=Message.Role.ASSISTANT
        ).order_by("pk")
    )


def test_a_streamed_completion_arrives_in_chunks_and_ends_with_its_usage(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    stream = web.client(key_of(user)).chat.completions.create(
        model=model, messages=ask(), max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    pieces = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([piece for piece in pieces if piece]) >= 2  # it streamed, not one piece at the end
    assert finish == ["length"]  # the tiny model never ends by itself
    assert chunks[-1].choices == []
    assert len({chunk.id for chunk in chunks}) == 1
    [answer] = api_answers(user)
    assert answer.status == Message.Status.COMPLETE
    assert "".join(pieces) == answer.content
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == answer.completion_tokens == 24
    assert usage.prompt_tokens == answer.prompt_tokens
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_a_whole_completion_has_its_text_finish_reason_and_usage(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    completion = web.client(key_of(user)).chat.completions.create(
        model=model, messages=ask(), max_tokens=16, temperature=0.5, top_p=0.9
    )
    [answer] = api_answers(user)
    assert completion.id == f"chatcmpl-{answer.pk}"
    assert completion.object == "chat.completion"
    assert completion.model == model
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == answer.content
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 16
    assert completion.usage.prompt_tokens == answer.prompt_tokens
    assert answer.settings["temperature"] == 0.5
    assert answer.settings["top_p"] == 0.9
    assert answer.settings["system_prompt"] == "Be brief."


def test_a_stop_sequence_ends_the_answer_where_it_would_begin(
    web: WebServer, start_worker: StartWorker, make_user: Callable[..., User], key_of: KeyOf, model: str
) -> None:
    start_worker()
    # greedy, so the same question gets the same answer; each asked by another user, whose
    # kept prefixes (per user) cannot make the second prefill differ from the first
    free = web.client(key_of(make_user())).chat.completions.create(
        model=model, messages=ask(), max_tokens=40, temperature=0
    )
    text = free.choices[0].message.content
    assert text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    expected = text[: text.find(stop)]
    stopped = web.client(key_of(make_user())).chat.completions.create(
        model=model, messages=ask(), max_tokens=40, temperature=0, stop=[stop, "never-in-this-answer"]
    )
    assert stopped.choices[0].message.content == expected
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage is not None
    assert stopped.usage.completion_tokens < 40


def test_the_models_are_listed_for_a_key(web: WebServer, user: User, key_of: KeyOf, model: str) -> None:
    listed = [entry.id for entry in web.client(key_of(user)).models.list()]
    assert listed == [model, "all-MiniLM-L6-v2"]


def test_a_wrong_or_revoked_key_is_refused_with_401(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    secret = key_of(user)
    client = web.client(secret)
    client.chat.completions.create(model=model, messages=ask(), max_tokens=2)  # it works, then
    api_key_revoke(key=ApiKey.objects.get(owner=user))
    with pytest.raises(openai.AuthenticationError) as revoked:
        client.chat.completions.create(model=model, messages=ask(), max_tokens=2)
    assert revoked.value.code == "invalid_api_key"
    assert "revoked" in revoked.value.message
    with pytest.raises(openai.AuthenticationError):
        web.client(secret[:-2] + "xx").models.list()
    with pytest.raises(openai.AuthenticationError):
        web.client("not-a-parley-key").models.list()
    assert len(api_answers(user)) == 1  # nothing written for the refused ones


def test_a_signed_in_browsers_cookie_alone_opens_nothing(web: WebServer, user: User, model: str) -> None:
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    body = json.dumps({"model": model, "messages": ask()}).encode()
    for path, data in (("/v1/chat/completions", body), ("/v1/models", None)):
        request = urllib.request.Request(
            f"{web.url}{path}", data=data, headers={"Cookie": cookie, "Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401  # not 403: no CSRF check, as no cookie is ever read
        assert json.loads(refused.value.read())["error"]["code"] == "invalid_api_key"
    assert Conversation.objects.count() == 0


def test_an_unknown_model_is_404(web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf) -> None:
    start_worker()
    with pytest.raises(openai.NotFoundError) as unknown:
        web.client(key_of(user)).chat.completions.create(model="gpt-4o", messages=ask())
    assert unknown.value.code == "model_not_found"
    assert unknown.value.param == "model"
    assert "gpt-4o" in unknown.value.message
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_naming_the_parameter(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str, arguments: Any, param: str
) -> None:
    start_worker()
    with pytest.raises(openai.BadRequestError) as refused:
        web.client(key_of(user)).chat.completions.create(**{"model": model, "messages": ask(), **arguments})
    assert refused.value.param == param
    assert param.split("[")[0] in refused.value.message
    assert Conversation.objects.count() == 0


def test_more_answers_in_flight_than_the_limit_is_429_with_retry_after(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker(step_seconds=0.05)
    client = web.client(key_of(user))
    # the default limit: 3 answers being written at once per user
    streams = [
        client.chat.completions.create(model=model, messages=ask(), max_tokens=400, stream=True) for _ in range(3)
    ]
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model=model, messages=ask(), max_tokens=4)
        assert int(refused.value.response.headers["Retry-After"]) >= 1
        assert "limit is 3" in refused.value.message
        assert len(api_answers(user)) == 3
    finally:
        for stream in streams:
            stream.close()


def test_more_requests_than_the_rate_is_429_with_retry_after(
    start_web: Callable[..., WebServer], start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    web = start_web(PARLEY_CHAT_RATE="2/m")
    start_worker()
    client = web.client(key_of(user))
    for _ in range(2):
        client.chat.completions.create(model=model, messages=ask(), max_tokens=2)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=model, messages=ask(), max_tokens=2)
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 60
    assert "2/m" in refused.value.message
    assert len(api_answers(user)) == 2


def test_over_the_daily_token_budget_a_completion_is_429_and_nothing_is_written(
    start_web: Callable[..., WebServer],
    start_worker: StartWorker,
    make_user: Callable[..., User],
    key_of: KeyOf,
    model: str,
) -> None:
    web = start_web(PARLEY_USER_DAILY_TOKENS="30")
    start_worker()
    user, other = make_user(), make_user()
    client = web.client(key_of(user))
    first = client.chat.completions.create(model=model, messages=ask(), max_tokens=24)
    assert first.usage is not None
    assert first.usage.total_tokens >= 30  # the prompt and 24 tokens: past the budget now
    [row] = TokenUsage.objects.filter(user=user)
    assert (row.model, row.prompt_tokens, row.completion_tokens) == (
        django_settings.PARLEY_INFERENCE.models.default,
        first.usage.prompt_tokens,
        first.usage.completion_tokens,
    )
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=model, messages=ask(), max_tokens=4, stream=True)
    assert refused.value.code == "insufficient_quota"
    assert f"You have used {first.usage.total_tokens:,} tokens today; the daily limit is 30." in refused.value.message
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 24 * 3600
    assert len(api_answers(user)) == 1
    # the budget is each user's own
    assert web.client(key_of(other)).chat.completions.create(model=model, messages=ask(), max_tokens=2).choices


def test_with_no_generation_worker_alive_a_completion_is_503(
    web: WebServer, user: User, key_of: KeyOf, model: str
) -> None:
    with pytest.raises(openai.InternalServerError) as refused:
        web.client(key_of(user)).chat.completions.create(model=model, messages=ask())
    assert refused.value.status_code == 503
    assert "generation worker" in refused.value.message
    assert Conversation.objects.count() == 0


def test_a_model_without_a_worker_is_503_while_another_models_worker_runs(
    start_web: Callable[..., WebServer], start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    registry = {"default": model, "models": [{"name": model, "kind": "local"}, {"name": "second", "kind": "local"}]}
    web = start_web(PARLEY_MODELS=json.dumps(registry))
    start_worker()  # the default model's only
    client = web.client(key_of(user))
    assert [entry.id for entry in client.models.list()][:2] == [model, "second"]
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(model="second", messages=ask(), max_tokens=2)
    assert refused.value.status_code == 503
    assert "No generation worker is running for the model 'second'" in refused.value.message
    assert api_answers(user) == []
    assert client.chat.completions.create(model=model, messages=ask(), max_tokens=2).choices


def test_a_key_sees_only_its_owners_completions(
    web: WebServer, start_worker: StartWorker, make_user: Callable[..., User], key_of: KeyOf, model: str
) -> None:
    start_worker()
    alice, bob = make_user(), make_user()
    alices, bobs = web.client(key_of(alice)), web.client(key_of(bob))
    written = alices.chat.completions.create(model=model, messages=ask("Alice's secret recipe"), max_tokens=8)
    assert alices.chat.completions.retrieve(written.id).choices[0].message.content == written.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        bobs.chat.completions.retrieve(written.id)
    bobs.chat.completions.create(model=model, messages=ask("Bob's question"), max_tokens=8)
    [alices_answer], [bobs_answer] = api_answers(alice), api_answers(bob)
    assert alices_answer.conversation.owner == alice
    assert bobs_answer.conversation.owner == bob
    assert "Alice" not in json.dumps(ReviewItem.objects.get(message=bobs_answer).prompt)


def test_api_answers_are_reviewed_as_their_own_kind_and_stay_out_of_the_sidebar(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    web.client(key_of(user)).chat.completions.create(model=model, messages=ask("Sourdough starter?"), max_tokens=8)
    [answer] = api_answers(user)
    item = wait_for(lambda: ReviewItem.objects.filter(message=answer).first())
    assert item.kind == Kind.API
    assert item.owner == user
    assert item.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Sourdough starter?"},
    ]
    browser = Client()
    browser.force_login(user)
    sidebar = browser.get("/chat/").content.decode()
    assert "Sourdough starter?" not in sidebar


def test_a_client_that_leaves_mid_stream_stops_the_answer_and_keeps_its_text(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker(step_seconds=0.05)
    stream = web.client(key_of(user)).chat.completions.create(model=model, messages=ask(), max_tokens=500, stream=True)
    received = ""
    for chunk in stream:
        received += chunk.choices[0].delta.content or ""
        if len(received) >= 10:
            break
    stream.close()
    [answer] = api_answers(user)
    wait_for(lambda: not Message.objects.get(pk=answer.pk).in_flight, what="the answer to stop")
    answer.refresh_from_db()
    assert answer.status == Message.Status.INTERRUPTED
    assert answer.content.startswith(received)
    assert answer.completion_tokens is not None
    assert answer.completion_tokens < 500


def test_embeddings_are_unit_vectors_of_the_models_size_that_place_alike_texts_near(
    web: WebServer, user: User, key_of: KeyOf
) -> None:
    from inference.models import embedding_model_dir

    size = json.loads((embedding_model_dir(django_settings.PARLEY_INFERENCE) / "config.json").read_text())[
        "hidden_size"
    ]
    client = web.client(key_of(user))
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Interest rates rose again this quarter."]
    # left to itself the client asks for base64 and decodes it; floats are asked for by name
    asked: list[dict[str, Any]] = [{}, {"encoding_format": "float"}]
    for encoding in asked:
        result = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, **encoding)
        vectors = [item.embedding for item in sorted(result.data, key=lambda item: item.index)]
        assert [len(vector) for vector in vectors] == [size] * 3
        assert all(abs(sum(x * x for x in vector) - 1) < 1e-3 for vector in vectors)

        def similarity(a: list[float], b: list[float]) -> float:
            return sum(x * y for x, y in zip(a, b, strict=True))

        assert similarity(vectors[0], vectors[1]) > similarity(vectors[0], vectors[2]) + 0.3
        assert result.usage.prompt_tokens > 10
    with pytest.raises(openai.BadRequestError) as empty:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[])
    assert empty.value.param == "input"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="hello")
