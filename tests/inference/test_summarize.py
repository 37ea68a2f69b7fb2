from __future__ import annotations

import itertools
from typing import Any

import pytest

from inference import EmptyTextError, Engine, InvalidRequestError
from inference.embeddings import Embedder
from inference.summarize import Summarizer, chunk_text, split_sentences

FILLER = (
    "The committee met on a grey morning to discuss the annual budget for the town library. "
    "Members reviewed the costs of heating, books and staff, and agreed that the roof needed repair. "
)


def test_chunks_cover_every_part_of_the_text_with_overlap(chat_tokenizer: Any) -> None:
    text = "".join(f"Sentence number {n} talks about item {n * 7}. " for n in range(1500))
    chunks = chunk_text(text, chat_tokenizer, chunk_tokens=300, overlap_tokens=30)
    assert len(chunks) > 5
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    for previous, current in itertools.pairwise(chunks):
        assert current.start < previous.end  # overlap, no gap
    for n in (0, 777, 1499):
        assert any(f"Sentence number {n} " in c.text for c in chunks)


def test_a_bad_overlap_is_refused(chat_tokenizer: Any) -> None:
    with pytest.raises(InvalidRequestError, match="overlap must be smaller"):
        chunk_text("text", chat_tokenizer, chunk_tokens=10, overlap_tokens=10)


def test_a_fact_near_the_end_reaches_a_chunk_summary(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, chunk_tokens=400)
    fact = (
        "The new library will be named after Captain Zebulon Marsh, the famous lighthouse keeper. "
        "Captain Zebulon Marsh saved forty sailors in the storm of 1911. "
    ) * 3
    text = FILLER * 60 + fact
    chunks = summarizer.chunks(text)
    assert len(chunks) >= 4
    progress: list[tuple[int, int]] = []
    result = summarizer.summarize(text, length="short", on_progress=lambda done, total: progress.append((done, total)))
    assert len(result.chunk_summaries) == len(chunks)
    assert "Marsh" in result.chunk_summaries[-1] or "Zebulon" in result.chunk_summaries[-1]
    assert progress[-1] == (len(chunks), len(chunks))
    assert [done for done, _ in progress] == list(range(len(chunks) + 1))
    assert result.summary


def test_resuming_with_finished_chunks_does_not_redo_them(real_engine: Engine, monkeypatch: Any) -> None:
    summarizer = Summarizer(real_engine, chunk_tokens=200)
    text = FILLER * 12
    total = len(summarizer.chunks(text))
    assert total >= 3
    done = {i: f"Saved summary of part {i + 1}." for i in range(total - 1)}
    prompts: list[str] = []
    original = real_engine.submit

    def spy(request: Any) -> Any:
        prompts.append(request.messages[-1].content)
        return original(request)

    monkeypatch.setattr(real_engine, "submit", spy)
    chunk_written: list[int] = []
    result = summarizer.summarize(text, done_chunks=done, on_chunk=lambda index, _: chunk_written.append(index))
    chunk_prompts = [p for p in prompts if p.startswith("Summarize this part")]
    assert len(chunk_prompts) == 1
    assert chunk_prompts[0].startswith(f"Summarize this part ({total} of {total})")
    assert chunk_written == [total - 1]
    assert result.chunk_summaries[: total - 1] == tuple(done.values())


def test_empty_text_and_bad_options_are_refused(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine)
    with pytest.raises(EmptyTextError):
        summarizer.summarize("  \n ")
    with pytest.raises(InvalidRequestError, match="length must be"):
        summarizer.summarize("Some text.", length="huge")
    with pytest.raises(InvalidRequestError, match="form must be"):
        summarizer.summarize("Some text.", form="poem")


def test_key_sentences_are_central_distinct_and_in_document_order(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    text = (
        "Solar panels turn sunlight into electricity. The weather was nice on Tuesday. "
        "Photovoltaic cells in solar panels generate power from light. My cat likes fish. "
        "Solar energy is a renewable source of electricity. Solar power installations grow every year. "
        "Batteries store solar electricity for the night."
    )
    picked = summarizer.key_sentences(text, count=3)
    sentences = split_sentences(text)
    assert len(picked) == 3
    assert [sentences.index(s) for s in picked] == sorted(sentences.index(s) for s in picked)
    assert "My cat likes fish." not in picked
    assert all("olar" in s or "lectricity" in s for s in picked)
