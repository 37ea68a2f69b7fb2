from __future__ import annotations

import pytest
import torch

from inference import Engine, GenerationRequest
from inference.sampling import sample

VOCAB = 6000  # more than every candidate size, so the full sort is reached too


def reference(logits: torch.Tensor, temperature: float, top_p: float, uniform: float) -> int:
    """The textbook nucleus: sort the whole distribution, keep tokens while the mass before
    them is below top_p, invert the CDF of what is kept. With top_p = 1 every token is
    kept and nothing needs sorting: the CDF runs in vocabulary order."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1:
        ordered, order = probs, torch.arange(len(probs))
    else:
        ordered, order = probs.sort(descending=True)
    kept = ordered * ((ordered.cumsum(-1) - ordered) < top_p) if top_p < 1 else ordered
    cdf = kept.cumsum(-1)
    index = int(torch.searchsorted(cdf, uniform * cdf[-1], right=True))
    return int(order[min(index, int((kept > 0).sum()) - 1)])


def test_every_row_gets_the_token_the_full_sort_gives() -> None:
    generator = torch.Generator().manual_seed(1)
    # peaked rows (nucleus among the first candidates), flat rows (a wider look, then a
    # full sort) and top_p = 1 rows (every token), mixed in one batch
    peaked = torch.randn(40, VOCAB, generator=generator) + torch.where(torch.arange(VOCAB) < 30, 9.0, 0.0)
    flat = torch.randn(40, VOCAB, generator=generator) * 0.3
    logits = torch.cat([peaked, flat])
    temperature = torch.rand(80, generator=generator) * 1.5 + 0.2
    top_p = torch.tensor([0.5, 0.9, 0.95, 1.0] * 20)
    uniform = torch.rand(80, generator=generator)
    chosen = sample(logits, temperature, top_p, uniform).tolist()
    expected = [
        reference(logits[row], float(temperature[row]), float(top_p[row]), float(uniform[row])) for row in range(80)
    ]
    assert chosen == expected


def test_draws_follow_the_nucleus_and_never_leave_it() -> None:
    probabilities = torch.tensor([0.5, 0.25, 0.15, 0.06, 0.04])  # top_p 0.85 keeps the first three
    logits = torch.full((VOCAB,), -30.0)
    logits[:5] = probabilities.log()
    draws = 20_000
    uniform = torch.rand(draws, generator=torch.Generator().manual_seed(2))
    chosen = sample(logits.expand(draws, VOCAB), torch.ones(draws), torch.full((draws,), 0.85), uniform)
    counts = torch.bincount(chosen, minlength=VOCAB)
    assert counts[3:].sum() == 0
    frequencies = counts[:3].float() / draws
    assert torch.allclose(frequencies, probabilities[:3] / 0.9, atol=0.015)


@pytest.mark.parametrize("top_p", [0.0, float("nan")])
def test_a_degenerate_top_p_still_gives_the_likeliest_token(top_p: float) -> None:
    # the engine refuses these; the sampler still never picks outside the vocabulary
    logits = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(3))
    chosen = sample(logits, torch.ones(3), torch.full((3,), top_p), torch.full((3,), 0.99))
    assert chosen.tolist() == logits.argmax(-1).tolist()


def sampled(content: str, seed: int, tokens: int = 30) -> GenerationRequest:
    return GenerationRequest.of(
        [{"role": "user", "content": content}], max_new_tokens=tokens, temperature=0.9, top_p=0.9, seed=seed
    )


def test_a_seeded_answer_is_the_same_alone_and_in_a_batch(tiny_engine: Engine) -> None:
    request = sampled("Tell me about rivers.", seed=7)
    alone = tiny_engine.generate(request).text
    crowd = [tiny_engine.submit(sampled("word " * n, seed=n, tokens=5 + n)) for n in (3, 20, 9)]
    target = tiny_engine.submit(request)
    greedy = GenerationRequest.of([{"role": "user", "content": "hi"}], max_new_tokens=10, temperature=0)
    crowd.append(tiny_engine.submit(greedy))
    assert target.result().text == alone
    for stream in crowd:
        stream.result()
    others = {tiny_engine.generate(sampled("Tell me about rivers.", seed=seed)).text for seed in (1, 2, 3)}
    assert len(others | {alone}) > 1  # the seed does matter
