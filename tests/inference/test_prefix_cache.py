"""Prompts that begin like an earlier request are prefilled from its kept keys and values,
and get the answer a fresh prefill gives (tiny float64 model, so the comparison is exact)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inference import Engine, GenerationRequest, GenerationResult
from inference.config import InferenceConfig
from inference.errors import InferenceError
from inference.prefix_cache import PrefixCache
from tests.models import build_tiny_model

SYSTEM = {"role": "system", "content": "You are a patient tutor who answers in plain words."}


def greedy(messages: list[dict[str, str]], tokens: int = 16) -> GenerationRequest:
    return GenerationRequest.of(messages, max_new_tokens=tokens, temperature=0)


@pytest.fixture
def engines(chat_tokenizer: Any) -> Iterator[tuple[Engine, Engine]]:
    """The same weights twice: keeping prefixes, and prefilling every prompt whole."""
    keeping = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, max_batch_size=8)
    fresh = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, max_batch_size=8, prefix_cache_mb=0)
    yield keeping, fresh
    keeping.close()
    fresh.close()


def test_a_conversation_s_next_message_starts_from_the_kept_prefix_with_the_same_answer(
    engines: tuple[Engine, Engine],
) -> None:
    keeping, fresh = engines
    turn = [SYSTEM, {"role": "user", "content": "How do rivers form?"}]
    first = keeping.generate(greedy(turn))
    assert first.stats.cached_prompt_tokens == 0  # nothing kept yet
    assert fresh.generate(greedy(turn)).text == first.text

    turn += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And lakes?"}]
    second = keeping.generate(greedy(turn))
    # at least the whole first prompt was reused; the new tokens were prefilled
    assert first.stats.prompt_tokens <= second.stats.cached_prompt_tokens < second.stats.prompt_tokens
    baseline = fresh.generate(greedy(turn))
    assert baseline.stats.cached_prompt_tokens == 0
    assert second.text == baseline.text
    assert second.stats.completion_tokens == baseline.stats.completion_tokens


def test_a_regenerated_answer_prefills_only_the_last_prompt_token(engines: tuple[Engine, Engine]) -> None:
    keeping, _ = engines
    request = greedy([SYSTEM, {"role": "user", "content": "Name three birds."}])
    first = keeping.generate(request)
    again = keeping.generate(request)
    assert again.stats.cached_prompt_tokens == again.stats.prompt_tokens - 1
    assert again.text == first.text


def test_prompts_admitted_together_with_different_kept_prefixes_get_their_own_answers(
    engines: tuple[Engine, Engine],
) -> None:
    keeping, fresh = engines
    for question in ("What is rain?", "Why is snow white?"):
        keeping.generate(greedy([SYSTEM, {"role": "user", "content": question}]))
    crowd = [
        greedy([SYSTEM, {"role": "user", "content": "What is rain? Say more."}], 20),  # a long kept prefix
        greedy([SYSTEM, {"role": "user", "content": "Tell me about hail."}], 12),  # the system prompt kept
        greedy([{"role": "user", "content": "hi"}], 24),  # nothing kept, and shorter than the rest
        greedy([SYSTEM, {"role": "user", "content": "Why is snow white?"}], 8),  # all but one token kept
    ]
    streams = [keeping.submit(r) for r in crowd]  # submitted together: one prefill for all
    results = [s.result() for s in streams]
    cached = [r.stats.cached_prompt_tokens for r in results]
    assert cached[0] > cached[1] > 0
    assert cached[2] == 0
    assert cached[3] == results[3].stats.prompt_tokens - 1
    assert [r.text for r in results] == [fresh.generate(r).text for r in crowd]


def test_a_long_new_part_is_prefilled_in_chunks_after_the_kept_prefix(chat_tokenizer: Any) -> None:
    chunked = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=16)
    fresh = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefix_cache_mb=0)
    try:
        turn = [SYSTEM, {"role": "user", "content": "Describe the sea."}]
        first = chunked.generate(greedy(turn))
        turn += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "waves " * 60}]
        second = chunked.generate(greedy(turn))
        assert second.stats.prompt_tokens - second.stats.cached_prompt_tokens > 16  # more than one chunk
        assert second.stats.cached_prompt_tokens >= first.stats.prompt_tokens
        assert second.text == fresh.generate(greedy(turn)).text
    finally:
        chunked.close()
        fresh.close()


def first_token_logits(engine: Engine, request: GenerationRequest) -> tuple[Any, GenerationResult]:
    """The logits the engine picked the answer's first token from (it samples from them once
    a step; this records the first step's), in float64 for comparing, and the answer."""
    seen: list[Any] = []
    sample = engine._sample

    def recording(logits: Any, sequences: Any) -> Any:
        if not seen:
            seen.append(logits[0].detach().double().clone())
        return sample(logits, sequences)

    engine._sample = recording  # type: ignore[method-assign]
    try:
        result = engine.generate(request)
    finally:
        engine._sample = sample  # type: ignore[method-assign]
    return seen[0], result


@pytest.fixture(scope="module")
def default_weights(real_engine: Engine) -> dict[str, Any]:
    """The default model's weights in float64, bfloat16 and float32 (the loaded ones)."""
    import copy

    import torch

    return {
        "float64": copy.deepcopy(real_engine.model).to(torch.float64),
        "bfloat16": copy.deepcopy(real_engine.model).to(torch.bfloat16),
        "float32": real_engine.model,
    }


RIVERS = [{"role": "user", "content": "How do rivers form?"}]


def and_floods(first_answer: str) -> list[dict[str, str]]:
    return [*RIVERS, {"role": "assistant", "content": first_answer}, {"role": "user", "content": "Why do some flood?"}]


def test_the_default_model_answers_the_next_message_the_same_from_the_kept_prefix(
    real_engine: Engine, default_weights: dict[str, Any]
) -> None:
    # In float64 the kept keys and values and a whole prefill agree to the last bit (measured:
    # the largest logit difference over 48 steps is 0), so the answers must be equal token for
    # token; float32 differs by about 3e-5 and bfloat16 by about 0.4, enough to flip a near tie.
    keeping = Engine(default_weights["float64"], real_engine.tokenizer)
    whole = Engine(default_weights["float64"], real_engine.tokenizer, prefix_cache_mb=0)
    try:
        first = keeping.generate(greedy(RIVERS, 48))
        turn = and_floods(first.text)
        second = keeping.generate(greedy(turn, 48))
        assert second.stats.cached_prompt_tokens >= first.stats.prompt_tokens
        assert second.text == whole.generate(greedy(turn, 48)).text
        assert "flood" in second.text.lower()
    finally:
        keeping.close()
        whole.close()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_kept_prefix_is_as_close_to_exact_arithmetic_as_a_whole_prefill(
    real_engine: Engine, default_weights: dict[str, Any], dtype: str
) -> None:
    """Rounding makes the two paths differ in float32 and bfloat16; a fault in how a kept
    prefix is reused (positions, masks, the cached keys) would put the kept path's first
    logits far from exact arithmetic's, while rounding leaves them as near as a whole
    prefill's (bfloat16, four conversations: 0.27-0.46 from exact, against 0.32-0.45)."""
    exact = Engine(default_weights["float64"], real_engine.tokenizer, prefix_cache_mb=0)
    keeping = Engine(default_weights[dtype], real_engine.tokenizer)
    whole = Engine(default_weights[dtype], real_engine.tokenizer, prefix_cache_mb=0)
    try:
        first = keeping.generate(greedy(RIVERS, 48))
        turn = and_floods(first.text)
        kept, second = first_token_logits(keeping, greedy(turn, 1))
        assert second.stats.cached_prompt_tokens >= first.stats.prompt_tokens
        fresh, _ = first_token_logits(whole, greedy(turn, 1))
        reference, _ = first_token_logits(exact, greedy(turn, 1))
        kept_error = float((kept - reference).abs().max())
        whole_error = float((fresh - reference).abs().max())
        assert kept_error <= 2 * whole_error + 1e-6, f"kept prefix {kept_error:.3g} from exact, whole {whole_error:.3g}"
    finally:
        exact.close()
        keeping.close()
        whole.close()


def tensors(tokens: int) -> list[tuple[Any, Any]]:
    """Keys and values of two layers for ``tokens`` tokens: 2 x 2 x 4 x 8 bytes a token."""
    import torch

    return [(torch.ones(1, 1, tokens, 4), torch.ones(1, 1, tokens, 4)) for _ in range(2)]


def test_the_cache_keeps_the_longest_match_within_its_budget_least_recently_used_out() -> None:
    cache = PrefixCache(budget_bytes=64 * 100, min_tokens=4)  # 100 tokens
    conversation = list(range(40))
    cache.add("", conversation[:20], tensors(20))
    cache.add("", conversation, tensors(40))  # the same chat, longer: replaces its prefix
    assert len(cache) == 1
    assert cache.match("", [*conversation, 99, 98])[0] == 40
    assert cache.match("", conversation)[0] == 39  # the last token is always prefilled
    assert cache.match("", [*conversation[:3], 77, 78])[0] == 0  # 3 shared tokens: under the minimum
    other = [500 + i for i in range(50)]
    cache.add("", other, tensors(50))
    cache.match("", [*conversation, 1])  # the conversation is now the most recently used
    cache.add("", [900 + i for i in range(30)], tensors(30))  # 120 tokens > 100: the least recent goes
    assert cache.match("", [*other, 1])[0] == 0
    assert cache.match("", [*conversation, 1])[0] == 40
    assert cache.nbytes <= cache.budget_bytes
    cache.add("", list(range(1000, 1200)), tensors(200))  # more than the whole budget: not kept
    assert cache.match("", [*range(1000, 1200), 1])[0] == 0
    assert cache.match("", [*conversation, 1])[0] == 40


def test_prefixes_are_shared_within_a_scope_only(engines: tuple[Engine, Engine]) -> None:
    keeping, fresh = engines
    messages = [SYSTEM, {"role": "user", "content": "Name three birds."}]
    first = keeping.generate(GenerationRequest.of(messages, max_new_tokens=8, temperature=0, cache_scope="user:1"))
    other = keeping.generate(GenerationRequest.of(messages, max_new_tokens=8, temperature=0, cache_scope="user:2"))
    again = keeping.generate(GenerationRequest.of(messages, max_new_tokens=8, temperature=0, cache_scope="user:1"))
    assert other.stats.cached_prompt_tokens == 0  # another user's identical prompt is prefilled whole
    assert again.stats.cached_prompt_tokens == again.stats.prompt_tokens - 1
    assert first.text == other.text == again.text == fresh.generate(greedy(messages, 8)).text


def test_a_cache_of_no_bytes_keeps_nothing(engines: tuple[Engine, Engine]) -> None:
    _, fresh = engines
    request = greedy([SYSTEM, {"role": "user", "content": "Name three birds."}])
    fresh.generate(request)
    assert fresh.generate(request).stats.cached_prompt_tokens == 0


@pytest.mark.parametrize("value", ["lots", "-5", "1.5"])
def test_a_bad_prefix_cache_size_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PARLEY_PREFIX_CACHE_MB", value)
    with pytest.raises(InferenceError, match="PARLEY_PREFIX_CACHE_MB"):
        InferenceConfig.from_env()
