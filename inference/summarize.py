"""Whole-document summaries: map-reduce with the chat model, and key sentences.

Abstractive: the text is cut into token chunks with a small overlap; every chunk is
summarized (all chunks go to the engine at once, so they are decoded as one batch);
the chunk summaries are combined in rounds until they fit one prompt, then written as
the final summary. Callers get a callback per finished chunk and may pass the chunk
summaries they already have, so a retried job does not redo them.

Extractive: key sentences are the ones closest to the document's mean embedding,
picked with maximal marginal relevance so they do not repeat each other, and returned
in document order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inference.config import InferenceConfig
from inference.embeddings import Embedder
from inference.engine import Engine
from inference.errors import CancelledError, EmptyTextError, InvalidRequestError
from inference.types import GenerationRequest

Length = Literal["short", "medium", "long"]
Form = Literal["paragraph", "bullets"]

# (words asked for, max new tokens)
LENGTHS: dict[str, tuple[int, int]] = {"short": (50, 120), "medium": (120, 250), "long": (250, 450)}
MAX_ROUNDS = 6  # each round shrinks the text several times over; this only guards a model that rambles
SYSTEM_PROMPT = "You are a careful assistant who summarizes documents faithfully, without adding facts."


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # character offsets into the text
    end: int
    text: str


@dataclass(frozen=True)
class SummaryResult:
    summary: str
    chunk_summaries: tuple[str, ...]
    rounds: int  # combine rounds after the chunk summaries


def chunk_text(text: str, tokenizer: Any, chunk_tokens: int = 900, overlap_tokens: int = 60) -> list[Chunk]:
    """Cut text into windows of chunk_tokens tokens, each overlapping the previous one."""
    if overlap_tokens >= chunk_tokens:
        raise InvalidRequestError("the chunk overlap must be smaller than the chunk.")
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if not offsets:
        return []
    chunks: list[Chunk] = []
    step = chunk_tokens - overlap_tokens
    for first in range(0, len(offsets), step):
        last = min(first + chunk_tokens, len(offsets)) - 1
        start = 0 if first == 0 else offsets[first][0]
        end = len(text) if last == len(offsets) - 1 else offsets[last][1]
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=text[start:end]))
        if last == len(offsets) - 1:
            break
    return chunks


class Summarizer:
    def __init__(self, engine: Engine, embedder: Embedder | None = None, *, chunk_tokens: int = 900) -> None:
        self.engine = engine
        self._embedder = embedder
        self.chunk_tokens = chunk_tokens

    @classmethod
    def from_config(cls, config: InferenceConfig | None = None, **engine_options: Any) -> Summarizer:
        config = config or InferenceConfig.from_env()
        # No prefix cache: a document's chunks share only a short instruction, so keeping each
        # chunk's keys and values would hold memory for prompts that never come again.
        engine = Engine.from_config(config, prefix_cache_mb=0, **engine_options)
        return cls(engine, Embedder.from_config(config))

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder.from_config()
        return self._embedder

    def chunks(self, text: str) -> list[Chunk]:
        return chunk_text(text, self.engine.tokenizer, self.chunk_tokens)

    def summarize(
        self,
        text: str,
        length: str = "medium",
        form: str = "paragraph",
        on_progress: Callable[[int, int], None] | None = None,
        done_chunks: Mapping[int, str] | None = None,
        on_chunk: Callable[[int, str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SummaryResult:
        """The whole text, summarized chunk by chunk and then combined.

        ``done_chunks`` are chunk summaries from an earlier, interrupted run (by index);
        ``on_chunk`` hears each new one as it is finished; ``should_stop`` is asked after
        each chunk, and when it says yes the work in flight is cancelled and
        CancelledError raised.
        """
        if not text.strip():
            raise EmptyTextError("the text to summarize is empty.")
        if length not in LENGTHS:
            raise InvalidRequestError(f"length must be short, medium or long; got {length!r}.")
        if form not in ("paragraph", "bullets"):
            raise InvalidRequestError(f"form must be paragraph or bullets; got {form!r}.")
        chunks = self.chunks(text)
        done = dict(done_chunks or {})
        summaries = self._summarize_chunks(chunks, done, on_progress, on_chunk, should_stop or (lambda: False))
        rounds = 0
        pieces = summaries
        # Combine in rounds until all partial summaries fit in one prompt.
        while len(pieces) > 1 and self._tokens("\n\n".join(pieces)) > self.chunk_tokens and rounds < MAX_ROUNDS:
            groups = self._group(pieces)
            pieces = self._run_all([self._combine_prompt(group, "medium", "paragraph") for group in groups])
            rounds += 1
        final = self._run_all([self._combine_prompt(pieces, length, form)])[0]
        return SummaryResult(summary=final.strip(), chunk_summaries=tuple(summaries), rounds=rounds)

    def key_sentences(self, text: str, count: int = 5, diversity: float = 0.3) -> list[str]:
        import torch

        sentences = split_sentences(text)
        if len(sentences) <= count:
            return sentences
        vectors = self.embedder.embed(sentences)
        centre = torch.nn.functional.normalize(vectors.mean(0), dim=0)
        relevance = vectors @ centre
        chosen: list[int] = []
        while len(chosen) < count:
            if chosen:
                redundancy = (vectors @ vectors[chosen].T).max(dim=1).values
                score = (1 - diversity) * relevance - diversity * redundancy
                score[chosen] = float("-inf")
            else:
                score = relevance.clone()
            chosen.append(int(score.argmax()))
        return [sentences[i] for i in sorted(chosen)]

    # ---- internals -----------------------------------------------------------------

    def _summarize_chunks(
        self,
        chunks: Sequence[Chunk],
        done: dict[int, str],
        on_progress: Callable[[int, int], None] | None,
        on_chunk: Callable[[int, str], None] | None,
        should_stop: Callable[[], bool],
    ) -> list[str]:
        total = len(chunks)
        pending = [c for c in chunks if c.index not in done]
        finished = total - len(pending)
        if on_progress is not None:
            on_progress(finished, total)
        streams = [(c, self.engine.submit(self._chunk_request(c, total))) for c in pending]
        for position, (chunk, stream) in enumerate(streams):
            if should_stop():
                for _, waiting in streams[position:]:
                    waiting.cancel()  # a no-op for one that has finished
                raise CancelledError("the summary was cancelled.")
            summary = stream.result().text.strip()
            done[chunk.index] = summary
            finished += 1
            if on_chunk is not None:
                on_chunk(chunk.index, summary)
            if on_progress is not None:
                on_progress(finished, total)
        return [done[c.index] for c in chunks]

    def _chunk_request(self, chunk: Chunk, total: int) -> GenerationRequest:
        prompt = (
            f"Summarize this part ({chunk.index + 1} of {total}) of a document in a few sentences. "
            "Keep names, numbers and specific facts.\n\n" + chunk.text
        )
        return self._request(prompt, max_new_tokens=160)

    def _combine_prompt(self, pieces: Sequence[str], length: str, form: str) -> GenerationRequest:
        words, max_tokens = LENGTHS[length]
        shape = (
            f"as a list of bullet points starting with '- ', about {words} words in all"
            if form == "bullets"
            else f"as one paragraph of about {words} words"
        )
        prompt = (
            "These are summaries of consecutive parts of one document. "
            f"Write a summary of the whole document {shape}.\n\n"
        )
        prompt += "\n\n".join(pieces)
        return self._request(prompt, max_new_tokens=max_tokens)

    def _request(self, prompt: str, max_new_tokens: int) -> GenerationRequest:
        return GenerationRequest.of(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_new_tokens=max_new_tokens,
            temperature=0,
        )

    def _run_all(self, requests: Sequence[GenerationRequest]) -> list[str]:
        streams = [self.engine.submit(r) for r in requests]
        return [s.result().text.strip() for s in streams]

    def _tokens(self, text: str) -> int:
        return len(self.engine.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _group(self, pieces: Sequence[str]) -> list[list[str]]:
        groups: list[list[str]] = [[]]
        size = 0
        for piece in pieces:
            tokens = self._tokens(piece)
            if groups[-1] and size + tokens > self.chunk_tokens:
                groups.append([])
                size = 0
            groups[-1].append(piece)
            size += tokens
        # a group of one cannot shrink by combining; pair it with its neighbour
        if len(groups) > 1 and len(groups[-1]) == 1:
            last = groups.pop()
            groups[-1].extend(last)
        return groups


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        sentences += [s.strip() for s in _SENTENCE_END.split(flat) if len(s.strip()) > 1]
    return sentences
