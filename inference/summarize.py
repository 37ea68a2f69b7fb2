"""Whole-document summaries: map-reduce with the chat model, and key sentences.

The text is first read as units: sentences, and headings or fragments ("Section 47.",
"Decisions", "4.1 Phosphorus") that stand on a line of their own; list items ("- …",
"1. …", "(a) …") and table rows stand alone. HTML left in a text
(tags, entities) is taken out before anything else.

Abstractive: the units are packed into chunks of at most ``chunk_tokens`` tokens, cut
only between sentences (between paragraphs where one ends past half the chunk), each
overlapping the previous one by a sentence or two; every chunk is summarized (all
chunks go to the engine at once, so they are decoded as one batch); the chunk summaries,
without a sentence one of them has already said, are combined in rounds until they fit
one prompt, then written as the final summary. The final text keeps the document's
order (each sentence placed by the part of the document it comes from), ends on a
whole sentence, says nothing twice, is cut where the model starts to go round in a loop
(a phrase said over and over until the tokens run out), and drops any sentence that
states a figure the document does not contain; a final text with no sentence left gives
way to what the parts combined into it said. Callers get a callback per finished chunk and may pass the
chunk summaries they already have, so a retried job does not redo them.

Extractive: key sentences are the ones closest to the document's mean embedding,
picked with maximal marginal relevance so they do not repeat each other, and returned
in document order; headings and fragments are never picked.

A text with no words at all is refused (EmptyTextError: nothing to summarise); one no
longer than the summary asked for is its own summary.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inference.backends import Backend
from inference.config import InferenceConfig
from inference.embeddings import Embedder
from inference.engine import Engine
from inference.errors import CancelledError, EmptyTextError, InvalidRequestError
from inference.types import GenerationRequest, GenerationResult

Length = Literal["short", "medium", "long"]
Form = Literal["paragraph", "bullets"]

# (words asked for, max new tokens)
LENGTHS: dict[str, tuple[int, int]] = {"short": (50, 120), "medium": (120, 250), "long": (250, 450)}
MAX_ROUNDS = 6  # each round shrinks the text several times over; this only guards a model that rambles
SYSTEM_PROMPT = "You are a careful assistant who summarizes documents faithfully, without adding facts."
NOTHING_TO_SUMMARISE = "there is nothing to summarise: the text has no words."
# Shorter than this, a unit is a fragment ("Section 47.", "Declarations of interest.")
# and never a key sentence: a sentence that tells a reader something has a few words.
KEY_SENTENCE_MIN_WORDS = 5
# Two sentences are one said twice when this share of their words is common to both
# (Jaccard): rewordings by the small model ("The committee met on 3 March." / "On 3 March
# the committee met.") score above it, different facts about one subject score below.
REPEAT_OVERLAP = 0.8
MAX_NAMES_IN_PROMPT = 20  # names and numbers the final prompt asks to keep; more would crowd out the text


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
    # The final text before sentences stating a figure absent from the document were
    # dropped: kept so that bench/summary_quality.py measures what that check gives.
    draft: str = ""
    # what this run's generations read and wrote (chunks done by an earlier run not included)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TokenCount:
    """Tokens read and written by the generations of one summary, added up as they end."""

    prompt: int = 0
    completion: int = 0

    def text_of(self, result: GenerationResult) -> str:
        self.prompt += result.stats.prompt_tokens
        self.completion += result.stats.completion_tokens
        return _finished_text(result)


@dataclass(frozen=True)
class Unit:
    """A sentence, or a heading or fragment on a line of its own, of a text."""

    start: int  # character offsets into the text
    end: int
    text: str  # whitespace made single spaces
    paragraph: int
    heading: bool

    @property
    def is_sentence(self) -> bool:
        return (
            not self.heading
            and len(self.text.split()) >= KEY_SENTENCE_MIN_WORDS
            and not self.text.startswith("|")  # a table row
            and any(c.islower() for c in self.text)
        )


# ---- reading a text ------------------------------------------------------------------

_TAG = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<!--.*?-->|</?[a-zA-Z][^<>]*>", re.S | re.I)
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|section|article|blockquote)\b[^<>]*>", re.I)


def readable_text(text: str) -> str:
    """The text without HTML left in it: tags out (block tags as line breaks), entities decoded."""
    if "<" in text:
        text = _BLOCK_TAG.sub("\n\n", text)
        text = _TAG.sub(" ", text)
    return html.unescape(text) if "&" in text else text


_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
_NAMED_HEADING = re.compile(
    r"^(?:section|chapter|part|article|clause|appendix|annex|schedule|item)\s+[\w.-]+[.:]?$", re.I
)
# a line broken inside a sentence (text from a PDF) often ends on one of these
_CONTINUING_WORDS = frozenset(
    ["a", "an", "the", "of", "and", "or", "to", "in", "on", "at", "by", "for", "with", "from", "as", "that", "which"]
)


def _is_heading(line: str, previous: str | None, following: str | None) -> bool:
    """A line that is a heading, not part of a sentence broken over lines.

    Only a line that starts afresh (the first of its paragraph, or after one that ends a
    sentence or is itself a heading) can be one; then it is a heading when it is marked
    (``# …``, "Section 47."), very short ("Decision."), or short without a sentence's end
    and followed by a line that starts afresh.
    """
    words = line.split()
    if line.startswith(_ITEM_MARKERS):
        return False
    if previous is not None and not previous.rstrip().endswith((".", "!", "?", ":")):
        return False
    if line.startswith("#") or _NAMED_HEADING.match(line):
        return True
    if previous is None and following is None and len(words) <= 20 and not line.endswith((".", "!", "?", ",", ";")):
        return True  # a title: a paragraph of one line that is not a sentence
    if len(words) <= 4 and not line.endswith((",", ";")):
        return following is None or not following[:1].islower()
    return (
        len(words) <= 12
        and not line.endswith((".", "!", "?", ",", ";", ":"))
        and words[-1].lower() not in _CONTINUING_WORDS
        and (following is None or not following[:1].islower())
    )


def text_units(text: str) -> list[Unit]:
    """The text's sentences and headings, in order, with their places in the text."""
    units: list[Unit] = []
    paragraph_start = 0
    paragraphs = [*_PARAGRAPH_BREAK.finditer(text), None]
    for number, paragraph_break in enumerate(paragraphs):
        paragraph_end = paragraph_break.start() if paragraph_break else len(text)
        _read_paragraph(text, paragraph_start, paragraph_end, number, units)
        if paragraph_break:
            paragraph_start = paragraph_break.end()
    return units


def _read_paragraph(text: str, start: int, end: int, number: int, units: list[Unit]) -> None:
    lines = [(m.start() + start, m.end() + start) for m in re.finditer(r"[^\n]+", text[start:end])]
    lines = [(a, b) for a, b in lines if text[a:b].strip()]
    run_start: int | None = None  # where the lines not yet read as sentences begin

    def flush(until: int) -> None:
        if run_start is not None:
            _add_sentences(text, run_start, until, number, units)

    for position, (a, b) in enumerate(lines):
        line = text[a:b].strip()
        previous = text[slice(*lines[position - 1])].strip() if position else None
        following = text[slice(*lines[position + 1])].strip() if position + 1 < len(lines) else None
        if _is_heading(line, previous, following):
            flush(a)
            run_start = None
            offset = a + (len(text[a:b]) - len(text[a:b].lstrip()))
            units.append(Unit(offset, offset + len(line), " ".join(line.lstrip("#").split()), number, True))
        elif run_start is None or line.startswith(_ITEM_MARKERS) or _NUMBERED_LINE.match(line):
            flush(a)  # a list item or table row stands alone
            run_start = a
    flush(lines[-1][1] if lines else end)


_ITEM_MARKERS = ("- ", "* ", "• ", "|")
# "1. that the scheme is made;" "2) …" "(a) …": items of a numbered list, each its own unit
# even where it ends on a semicolon, or a list of recommendations reads as one long sentence
_NUMBERED_LINE = re.compile(r"^(?:\d{1,2}[.)]|\([a-z]{1,4}\))\s+")


def _add_sentences(text: str, start: int, end: int, number: int, units: list[Unit]) -> None:
    piece = text[start:end]
    cut = 0
    for boundary in [*_SENTENCE_END.finditer(piece), None]:
        stop = boundary.start() if boundary else len(piece)
        sentence = piece[cut:stop]
        flat = " ".join(sentence.split())
        if flat.startswith(("- ", "* ", "• ")):
            flat = flat[2:]
        if len(flat) > 1:
            lead = len(sentence) - len(sentence.lstrip())
            first = start + cut + lead
            units.append(Unit(first, first + len(sentence.strip()), flat, number, False))
        if boundary:
            cut = boundary.end()


def split_sentences(text: str) -> list[str]:
    """The text's sentences and headings, in order, each on one line."""
    return [unit.text for unit in text_units(text)]


# ---- chunks ---------------------------------------------------------------------------


def chunk_text(text: str, tokenizer: Any, chunk_tokens: int = 900, overlap_tokens: int = 60) -> list[Chunk]:
    """Cut text into chunks of at most chunk_tokens tokens, between sentences, each starting
    with the previous one's last sentences up to overlap_tokens (context for the model).

    A chunk ends at a paragraph's end when one falls past half of it, else at a sentence's
    end; only a single sentence longer than a chunk is cut inside, between words.
    """
    if overlap_tokens >= chunk_tokens:
        raise InvalidRequestError("the chunk overlap must be smaller than the chunk.")
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if not offsets:
        return []
    token_starts = [start for start, _ in offsets]
    pieces = _pieces(text, text_units(text), token_starts, chunk_tokens)
    chunks: list[Chunk] = []

    def tokens_between(first: int, last: int) -> int:  # the spaces and line breaks between pieces count too
        return bisect_left(token_starts, pieces[last][1]) - bisect_left(token_starts, pieces[first][0])

    first = 0
    while first < len(pieces):
        last = first
        best_paragraph_end = None
        while last + 1 < len(pieces) and tokens_between(first, last + 1) <= chunk_tokens:
            if pieces[last][3] != pieces[last + 1][3] and tokens_between(first, last) > chunk_tokens // 2:
                best_paragraph_end = last
            last += 1
        if last + 1 < len(pieces) and best_paragraph_end is not None and pieces[last][3] == pieces[last + 1][3]:
            last = best_paragraph_end
        while last + 1 < len(pieces) and last > first and pieces[last][4]:
            last -= 1  # a heading begins the chunk of the text it heads
        start = 0 if not chunks else pieces[first][0]
        end = len(text) if last == len(pieces) - 1 else pieces[last][1]
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=text[start:end]))
        if last == len(pieces) - 1:
            break
        # the next chunk repeats the last sentences that fit in overlap_tokens, never all of this one
        following = last + 1
        while following - 1 > first and tokens_between(following - 1, last) <= overlap_tokens:
            following -= 1
        first = following
    return chunks


def _pieces(
    text: str, units: Sequence[Unit], token_starts: Sequence[int], chunk_tokens: int
) -> list[tuple[int, int, int, int, bool]]:
    """(start, end, tokens, paragraph, heading) for each unit; a unit longer than a chunk is cut
    between words into pieces that fit."""
    pieces: list[tuple[int, int, int, int, bool]] = []
    for unit in units:
        tokens = max(1, bisect_left(token_starts, unit.end) - bisect_left(token_starts, unit.start))
        if tokens <= chunk_tokens:
            pieces.append((unit.start, unit.end, tokens, unit.paragraph, unit.heading))
            continue
        start = unit.start
        while start < unit.end:
            limit_index = bisect_left(token_starts, start) + chunk_tokens
            limit = token_starts[limit_index] if limit_index < len(token_starts) else unit.end
            end = min(unit.end, limit)
            if end < unit.end:
                space = text.rfind(" ", start + 1, end)
                end = space if space > start else end
            count = bisect_left(token_starts, end) - bisect_left(token_starts, start)
            pieces.append((start, end, max(1, count), unit.paragraph, False))
            start = end
    return pieces


# ---- tidying the model's text ---------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "m": 1e6, "bn": 1e9, "k": 1e3}
_SCALED_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion|bn|m|k)\b", re.I)


def _number_value(written: str) -> float | None:
    try:
        return float(written.replace(",", ""))
    except ValueError:
        return None


def figures(text: str) -> set[float]:
    """The numbers a text states, as values ("1,200" and "1200" alike; "42 million" is also 42e6)."""
    values = {value for m in _NUMBER.finditer(text) if (value := _number_value(m.group().rstrip(","))) is not None}
    for m in _SCALED_NUMBER.finditer(text):
        value = _number_value(m.group(1))
        if value is not None:
            values.add(value * _SCALES[m.group(2).lower()])
    return values


def drop_unsupported_figures(summary: str, source_figures: set[float]) -> str:
    """The summary without the sentences (or bullet points) that state a number the source
    does not: a small model often writes a plausible figure that was never there."""
    kept = [s for s in _summary_sentences(summary) if figures(s) <= source_figures]
    return _joined(kept, summary)


_NUMBERED_ITEM = re.compile(r"^\d{1,2}[.)]\s+")


def _summary_sentences(text: str) -> list[str]:
    """A model's text as sentences, a bullet point being one."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        numbered = _NUMBERED_ITEM.match(line)
        if numbered:  # "1. The organiser …": the number is no sentence of its own
            line = "- " + line[numbered.end() :]
        if line.startswith(("- ", "* ", "• ")):
            line = line[2:].strip()
            if any(c.isalpha() for c in line):
                sentences.append("- " + line)
        else:
            sentences += [s.strip() for s in _SENTENCE_END.split(line) if any(c.isalpha() for c in s)]
    return sentences


def _joined(sentences: Sequence[str], like: str) -> str:
    bullets = [s for s in sentences if s.startswith("- ")]
    if bullets and len(bullets) >= len(sentences) / 2 and "\n" in like.strip():
        return "\n".join(s if s.startswith("- ") else "- " + s for s in sentences)
    return " ".join(s[2:] if s.startswith("- ") else s for s in sentences)


def _words(sentence: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", sentence.lower()))


def _is_repeat(words: frozenset[str], said: Iterable[frozenset[str]]) -> bool:
    return any(words and len(words & other) / len(words | other) >= REPEAT_OVERLAP for other in said)


def without_repeats(texts: Sequence[str]) -> list[str]:
    """Each text without the sentences that it, or a text before it, has already said
    (the chunks overlap, and a small model says one thing in several parts, or twice)."""
    said: list[frozenset[str]] = []
    kept_texts: list[str] = []
    for text in texts:
        kept: list[str] = []
        for sentence in _summary_sentences(text):
            words = _words(sentence)
            if not words or _is_repeat(words, said):
                continue
            said.append(words)
            kept.append(sentence)
        kept_texts.append(_joined(kept, text))
    return kept_texts


def without_loop(text: str, repeats: int = 3) -> str:
    """The text cut where it starts to go round in a loop: a run of two or more words said
    ``repeats`` times in a row, or one word said five times ("… in London, including the
    proposed expansion of the Combined Authority in London, including the proposed …",
    "high-capacity, high-capacity, …"), which a small model can keep up until it runs out
    of tokens; the run is kept once. "It was very very very good" is no loop."""
    words = list(re.finditer(r"\S+", text))
    lowered = [w.group().lower() for w in words]
    for start in range(len(words)):
        for period in range(1, (len(words) - start) // repeats + 1):
            times = 5 if period == 1 else repeats
            if start + times * period > len(words) or lowered[start + period] != lowered[start]:
                continue
            run = lowered[start : start + period]
            if all(lowered[start + k * period : start + (k + 1) * period] == run for k in range(1, times)):
                return text[: words[start + period].start()].rstrip()
    return text


def whole_sentences(text: str) -> str:
    """The text without an unfinished last sentence ("… The chair"), as a model leaves it
    when it runs out of tokens; kept as it is if it is all one unfinished sentence."""
    text = text.rstrip()
    if not text or text.endswith((".", "!", "?", '."', ".'", ".)", "!)", "?)")):
        return text
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1].lstrip().startswith(("- ", "* ", "• ")):
        return "\n".join(lines[:-1]).rstrip()  # an unfinished bullet point
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    if ends:
        return text[: ends[-1]].rstrip()
    return text


_FIGURE_WITH_UNIT = re.compile(
    r"\d[\d,.]*(?:\s+(?:thousand|million|billion))?(?:\s*(?:per cent|%|pounds|euros|dollars|tonnes|votes|days|weeks))?"
)
_NAME = re.compile(r"[A-Z][\w'-]*(?:\s+(?:of\s+|de\s+)?(?:[A-Z][\w'-]*|\d+\b))*")


def names_and_figures(texts: Iterable[str], limit: int = MAX_NAMES_IN_PROMPT) -> list[str]:
    """Names (runs of capitalized words, "Option C" and "Section 47" included; a single
    word starting a sentence is only its first word) and figures with their unit, most
    frequent first."""
    counts: dict[str, int] = {}
    for text in texts:
        for sentence in _summary_sentences(text):
            sentence = sentence.removeprefix("- ")
            found = [m.group().strip() for m in _NAME.finditer(sentence) if m.start() or " " in m.group().strip()]
            found += [m.group().strip().rstrip(".,") for m in _FIGURE_WITH_UNIT.finditer(sentence)]
            for name in found:
                if len(name) > 1:
                    counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: -counts[name])[:limit]


class Summarizer:
    def __init__(
        self, engine: Backend, embedder: Embedder | None = None, *, chunk_tokens: int = 900, tokenizer: Any = None
    ) -> None:
        """``engine``: any backend, the local engine or an upstream's; ``tokenizer`` cuts the
        text into chunks (the local engine's own when not given)."""
        if tokenizer is None:
            if not isinstance(engine, Engine):
                raise InvalidRequestError("an upstream model's summarizer needs a tokenizer to cut documents with.")
            tokenizer = engine.tokenizer
        self.engine = engine
        self.tokenizer = tokenizer
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
        return chunk_text(readable_text(text), self.tokenizer, self.chunk_tokens)

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
        if length not in LENGTHS:
            raise InvalidRequestError(f"length must be short, medium or long; got {length!r}.")
        if form not in ("paragraph", "bullets"):
            raise InvalidRequestError(f"form must be paragraph or bullets; got {form!r}.")
        text = readable_text(text)
        if not re.search(r"\w", text):
            raise EmptyTextError(NOTHING_TO_SUMMARISE)
        if len(text.split()) <= LENGTHS[length][0]:
            own = " ".join(text.split())  # already no longer than the summary asked for
            return SummaryResult(summary=own, chunk_summaries=(), rounds=0, draft=own)
        chunks = chunk_text(text, self.tokenizer, self.chunk_tokens)
        done = dict(done_chunks or {})
        tokens = TokenCount()
        summaries = self._summarize_chunks(
            chunks, done, on_progress, on_chunk, should_stop or (lambda: False), tokens=tokens
        )
        rounds = 0
        pieces = without_repeats(summaries)
        # Combine in rounds until all partial summaries fit in one prompt.
        while len(pieces) > 1 and self._tokens("\n\n".join(pieces)) > self.chunk_tokens and rounds < MAX_ROUNDS:
            groups = self._group(pieces)
            pieces = without_repeats(
                self._run_all([self._combine_prompt(group, "medium", "paragraph") for group in groups], tokens=tokens)
            )
            rounds += 1
        final = self._run_all([self._combine_prompt(pieces, length, form)], tokens=tokens)[0]
        draft = self._in_document_order(without_repeats([final])[0], summaries)
        summary = drop_unsupported_figures(draft, figures(text))
        if not any(unit.is_sentence for unit in text_units(summary)):
            # every sentence stated a figure the text lacks, or the model only went round in a
            # loop ("Councillor Ash, Councillor Ash, …"): say what the parts it was given said
            summary = drop_unsupported_figures(" ".join(pieces), figures(text))
        return SummaryResult(
            summary=summary,
            chunk_summaries=tuple(summaries),
            rounds=rounds,
            draft=draft,
            prompt_tokens=tokens.prompt,
            completion_tokens=tokens.completion,
        )

    def key_sentences(self, text: str, count: int = 5, diversity: float = 0.3) -> list[str]:
        """Up to ``count`` of the text's sentences that say most of what it says, in order;
        never a heading or a fragment, so none at all for a text without a sentence."""
        sentences = [unit.text for unit in text_units(readable_text(text)) if unit.is_sentence]
        if len(sentences) <= count:
            return sentences
        vectors = self.embedder.embed(sentences)
        chosen = most_relevant_distinct(vectors, vectors.mean(0), count, diversity)
        return [sentences[i] for i in sorted(chosen)]

    def key_sentences_from_passages(
        self, text: str, passages: Sequence[tuple[str, Any]], count: int = 5, diversity: float = 0.3
    ) -> list[str]:
        """Key sentences found through the document's passages and their vectors (already
        embedded when it was read): the ``2 * count`` passages that say most of it, then
        the sentences among theirs, so only those are embedded. Candidates are the text's
        own sentences (one a passage cuts through is not one of them)."""
        import torch

        sentences = [unit.text for unit in text_units(readable_text(text)) if unit.is_sentence]
        if len(sentences) <= count or not passages:
            return sentences if len(sentences) <= count else self.key_sentences(text, count, diversity)
        position = {sentence: i for i, sentence in reversed(list(enumerate(sentences)))}
        passage_vectors = torch.nn.functional.normalize(
            torch.stack([torch.as_tensor(vector, dtype=torch.float32) for _, vector in passages]), dim=-1
        )
        centre = passage_vectors.mean(0)
        picked = most_relevant_distinct(passage_vectors, centre, min(2 * count, len(passages)), diversity)
        candidates = sorted(
            {
                position[unit.text]
                for i in picked
                for unit in text_units(readable_text(passages[i][0]))
                if unit.is_sentence and unit.text in position
            }
        )
        if len(candidates) <= count:
            return self.key_sentences(text, count, diversity)
        vectors = self.embedder.embed([sentences[i] for i in candidates])
        chosen = most_relevant_distinct(vectors, centre, count, diversity)
        return [sentences[candidates[i]] for i in sorted(chosen)]

    # ---- internals -----------------------------------------------------------------

    def _summarize_chunks(
        self,
        chunks: Sequence[Chunk],
        done: dict[int, str],
        on_progress: Callable[[int, int], None] | None,
        on_chunk: Callable[[int, str], None] | None,
        should_stop: Callable[[], bool],
        *,
        tokens: TokenCount,
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
            summary = tokens.text_of(stream.result())
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
            "Keep names, numbers, decisions and specific facts.\n\n" + chunk.text
        )
        return self._request(prompt, max_new_tokens=160)

    def _combine_prompt(self, pieces: Sequence[str], length: str, form: str) -> GenerationRequest:
        words, max_tokens = LENGTHS[length]
        shape = (
            f"as a list of bullet points starting with '- ', about {words} words in all"
            if form == "bullets"
            else f"as one paragraph of about {words} words"
        )
        keep = names_and_figures(pieces)
        prompt = (
            "These are summaries of consecutive parts of one document, in order. "
            f"Write a summary of the whole document {shape}, in the document's order, "
            "ending with its decision or conclusion if it has one."
        )
        if keep:
            prompt += " Keep these names and numbers exactly as written: " + "; ".join(keep) + "."
        prompt += "\n\n" + "\n\n".join(pieces)
        return self._request(prompt, max_new_tokens=max_tokens)

    def _request(self, prompt: str, max_new_tokens: int) -> GenerationRequest:
        return GenerationRequest.of(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_new_tokens=max_new_tokens,
            temperature=0,
        )

    def _run_all(self, requests: Sequence[GenerationRequest], *, tokens: TokenCount) -> list[str]:
        streams = [self.engine.submit(r) for r in requests]
        return [tokens.text_of(s.result()) for s in streams]

    def _in_document_order(self, summary: str, chunk_summaries: Sequence[str]) -> str:
        """The summary's sentences ordered by the part of the document each comes from
        (the chunk summary it is most like); ties keep the model's order."""
        sentences = _summary_sentences(summary)
        if len(sentences) < 2 or len(chunk_summaries) < 2:
            return summary
        vectors = self.embedder.embed([*sentences, *chunk_summaries])
        similarity = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        part = similarity.argmax(dim=1).tolist()
        ordered = [s for _, s in sorted(zip(part, sentences, strict=True), key=lambda pair: pair[0])]
        return _joined(ordered, summary)

    def _tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

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


def most_relevant_distinct(vectors: Any, centre: Any, count: int, diversity: float) -> list[int]:
    """Rows of ``vectors`` (unit length) picked by maximal marginal relevance: each the
    closest to ``centre`` less ``diversity`` times its likeness to those already picked."""
    import torch

    relevance = vectors @ torch.nn.functional.normalize(centre, dim=0)
    chosen: list[int] = []
    while len(chosen) < count:
        if chosen:
            redundancy = (vectors @ vectors[chosen].T).max(dim=1).values
            score = (1 - diversity) * relevance - diversity * redundancy
            score[chosen] = float("-inf")
        else:
            score = relevance.clone()
        chosen.append(int(score.argmax()))
    return chosen


def _finished_text(result: GenerationResult) -> str:
    """The model's text without a loop, and without the unfinished sentence it was writing
    when it ran out of tokens or fell into the loop."""
    text = result.text.strip()
    looped = without_loop(text)
    if looped == text and result.stats.finish_reason != "length":
        return text
    finished = whole_sentences(looped)
    if looped == text or finished.endswith((".", "!", "?", '."', ".'", ".)", "!)", "?)")):
        return finished
    # all one unfinished sentence: end it at its last clause rather than mid-phrase
    clause = max(finished.rfind(","), finished.rfind(";"))
    return finished[:clause].rstrip() + "." if clause > 0 else finished
