"""UpstreamEngine against a real OpenAI-compatible server (llama.cpp's) and a scripted one.

The worker's side (answers claimed, saved, stopped, failed) is in
tests/webapp/chat/test_upstream.py; here is the stream itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from inference.types import GenerationRequest
from inference.upstream import UpstreamEngine, fit_to_window
from tests.processes import free_port
from tests.upstream import LlamaServer, ScriptedServer, upstream_model

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture
def scripted() -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.stop()


def engine_for(base_url: str, **options: Any) -> UpstreamEngine:
    return UpstreamEngine(upstream_model(base_url, **options), retry_first_wait=0.05)


def test_a_whole_answer_is_the_servers_own_answer(llama_server: LlamaServer) -> None:
    upstream = UpstreamEngine(llama_server.model())
    try:
        stream = upstream.submit(GenerationRequest.of(QUESTION, max_new_tokens=40, temperature=0))
        deltas = list(stream)
    finally:
        upstream.close()
    assert len(deltas) > 3  # streamed in pieces, not in one lump at the end
    assert "".join(deltas) == llama_server.complete(QUESTION, max_tokens=40, temperature=0)
    assert stream.stats is not None
    assert stream.stats.finish_reason in ("stop", "length")
    assert stream.stats.completion_tokens > 3
    assert stream.stats.prompt_tokens > 5  # from the server's usage
    assert stream.stats.time_to_first_token is not None
    assert stream.stats.tokens_per_second > 0


def test_cancel_ends_the_stream_within_a_chunk_keeping_what_came(llama_server: LlamaServer) -> None:
    upstream = UpstreamEngine(llama_server.model())
    try:
        stream = upstream.submit(
            GenerationRequest.of([{"role": "user", "content": "Write a long story."}], max_new_tokens=900)
        )
        received = [next(iter(stream))]
        assert stream.cancel()
        received += list(stream)
    finally:
        upstream.close()
    assert stream.stats is not None
    assert stream.stats.finish_reason == "cancelled"
    assert len(received) <= 2  # at most the chunk that was on its way
    assert stream.stats.completion_tokens < 100


def test_a_server_that_is_not_running_fails_with_where_it_was_looked_for() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    upstream = engine_for(base_url, retries=2)
    try:
        stream = upstream.submit(GenerationRequest.of(QUESTION))
        assert list(stream) == []
    finally:
        upstream.close()
    assert stream.stats is not None
    assert stream.stats.finish_reason == "error"
    assert stream.stats.error is not None
    assert f"the model server at {base_url} could not be reached" in stream.stats.error


def test_a_silent_server_times_out(scripted: list[ScriptedServer]) -> None:
    server = ScriptedServer([])
    server.replies = [server.silent]
    scripted.append(server)
    upstream = engine_for(server.base_url, timeout=0.5, retries=2)
    try:
        began = time.monotonic()
        stream = upstream.submit(GenerationRequest.of(QUESTION))
        assert list(stream) == []
    finally:
        upstream.close()
    assert stream.stats is not None
    assert stream.stats.error == (
        f"the model server at {server.base_url} sent nothing for 0.5 s while Parley waited for the first token"
    )
    assert len(server.requests) == 1  # a slow model is not asked twice
    assert time.monotonic() - began < 10


def test_named_transient_errors_are_retried_before_the_first_token(scripted: list[ScriptedServer]) -> None:
    server = ScriptedServer(
        [
            ScriptedServer.status(503, "loading the model"),
            ScriptedServer.status(429, "too many requests", {"Retry-After": "0.1"}),
            ScriptedServer.stream(["Red, ", "orange ", "and yellow."]),
        ]
    )
    scripted.append(server)
    upstream = engine_for(server.base_url, retries=2)
    try:
        result = upstream.submit(GenerationRequest.of(QUESTION)).result()
    finally:
        upstream.close()
    assert result.text == "Red, orange and yellow."
    assert (result.stats.finish_reason, result.stats.prompt_tokens, result.stats.completion_tokens) == ("stop", 11, 3)
    assert len(server.requests) == 3
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["model"] == "smollm2"


def test_an_error_status_is_not_retried_and_gives_the_servers_message(scripted: list[ScriptedServer]) -> None:
    server = ScriptedServer([ScriptedServer.status(400, "max_tokens is too large for this model")])
    scripted.append(server)
    upstream = engine_for(server.base_url, retries=2)
    try:
        stats = upstream.submit(GenerationRequest.of(QUESTION)).result().stats
    finally:
        upstream.close()
    assert stats.finish_reason == "error"
    assert stats.error == (
        f"the model server at {server.base_url} answered 400 Bad Request: max_tokens is too large for this model"
    )
    assert len(server.requests) == 1


def test_a_stream_closed_before_its_end_keeps_its_text_and_says_so(scripted: list[ScriptedServer]) -> None:
    server = ScriptedServer([ScriptedServer.stream(["Once ", "upon "], end=False)])
    scripted.append(server)
    upstream = engine_for(server.base_url, retries=2)
    try:
        result = upstream.submit(GenerationRequest.of(QUESTION)).result()
    finally:
        upstream.close()
    assert result.text == "Once upon "
    assert result.stats.finish_reason == "error"
    assert (
        result.stats.error == f"the model server at {server.base_url} closed the stream before the answer was finished"
    )
    assert len(server.requests) == 1  # text had come: never asked again


def test_the_api_key_goes_as_a_bearer_token_from_its_variable(
    scripted: list[ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    reply = ScriptedServer.stream(["Hi."])

    def recording(handler: Any) -> None:
        seen.append(handler.headers.get("Authorization", ""))
        reply(handler)

    server = ScriptedServer([recording])
    scripted.append(server)
    monkeypatch.setenv("TEAM_LLAMA_KEY", "sk-team")
    upstream = engine_for(server.base_url, api_key_env="TEAM_LLAMA_KEY")
    try:
        assert upstream.submit(GenerationRequest.of(QUESTION)).result().text == "Hi."
    finally:
        upstream.close()
    assert seen == ["Bearer sk-team"]


def test_a_long_conversation_leaves_out_its_oldest_turns_to_fit_the_window() -> None:
    turns = []
    for index in range(40):
        turns += [{"role": "user", "content": f"question {index} " * 20}, {"role": "assistant", "content": "x " * 60}]
    request = GenerationRequest.of(
        [{"role": "system", "content": "Be brief."}, *turns, {"role": "user", "content": "last"}], max_new_tokens=256
    )
    messages, left_out = fit_to_window(request, context_length=2048)
    assert left_out > 0
    assert messages[0].content == "Be brief."
    assert messages[1].role == "user"
    assert messages[-1].content == "last"
    assert [m.content for m in messages[1:]] == [m.content for m in request.messages[1 + left_out :]]
    assert sum(len(m.content) for m in messages) // 3 < 2048 - 256


def test_a_document_is_cut_for_an_upstream_model_by_the_same_estimate_that_fits_its_window() -> None:
    from inference.summarize import chunk_text
    from inference.upstream import CHARS_PER_TOKEN, EstimatingTokenizer

    sentence = "The harbour of Veldmark was rebuilt in 1884 after the great storm. "
    text = sentence * 120  # about 8,000 characters
    chunks = chunk_text(text, EstimatingTokenizer(), chunk_tokens=900, overlap_tokens=60)
    assert len(chunks) == pytest.approx(len(text) / CHARS_PER_TOKEN / (900 - 60), abs=1.5)
    assert len(chunks) >= 3
    assert all(len(chunk.text) <= 900 * CHARS_PER_TOKEN for chunk in chunks)
    assert all(chunk.text.strip().endswith(".") for chunk in chunks)  # cut between sentences
    assert "".join(chunk.text for chunk in chunks).count("Veldmark") >= 120  # nothing left out
