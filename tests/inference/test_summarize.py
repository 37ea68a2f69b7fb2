from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from inference import EmptyTextError, Engine, InvalidRequestError
from inference.embeddings import Embedder
from inference.summarize import (
    Summarizer,
    chunk_text,
    drop_unsupported_figures,
    figures,
    readable_text,
    split_sentences,
    text_units,
    whole_sentences,
    without_loop,
    without_repeats,
)
from inference.types import GenerationResult, GenerationStats

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


# ---- reading a text as sentences and headings -------------------------------------------

MEETING = (Path(__file__).resolve().parents[2] / "bench/data/summaries/bridge-committee-report.md").read_text()


def test_headings_and_fragments_stand_alone_and_are_not_sentences() -> None:
    text = (
        "# Annual report\n\nSection 47.\n\nThe Director introduced the report on the bridge.\n"
        "4.1 Phosphorus\nThe mean phosphorus was 58 micrograms per litre this year.\n\nDecision.\n\n"
        "The committee decided to approve the bridge with a budget of 42 million."
    )
    units = text_units(text)
    headings = [u.text for u in units if u.heading]
    assert headings == ["Annual report", "Section 47.", "4.1 Phosphorus", "Decision."]
    assert [u.text for u in units if u.is_sentence] == [
        "The Director introduced the report on the bridge.",
        "The mean phosphorus was 58 micrograms per litre this year.",
        "The committee decided to approve the bridge with a budget of 42 million.",
    ]


def test_a_sentence_broken_over_lines_stays_one_sentence() -> None:
    text = "The committee decided to approve the\nbridge with a budget of 42 million. The chair\nthanked everyone."
    assert split_sentences(text) == [
        "The committee decided to approve the bridge with a budget of 42 million.",
        "The chair thanked everyone.",
    ]


def test_list_items_are_sentences_of_their_own() -> None:
    assert split_sentences("- Revenue rose by 8 per cent\n- Profit rose by 26 per cent") == [
        "Revenue rose by 8 per cent",
        "Profit rose by 26 per cent",
    ]


def test_numbered_list_items_are_units_of_their_own() -> None:
    """A list of recommendations ending on semicolons is not one sentence of 300 words."""
    text = (
        "The Board is asked to agree:\n"
        "1. that the scheme covers the whole of the area;\n"
        "2. that franchised services start on 3 September 2028;\n"
        "3) that a fare of 2.50 pounds is introduced.\n"
        "(a) whether the building needed a licence;\n"
        "(b) the amount of any repayment."
    )
    assert split_sentences(text) == [
        "The Board is asked to agree:",
        "1. that the scheme covers the whole of the area;",
        "2. that franchised services start on 3 September 2028;",
        "3) that a fare of 2.50 pounds is introduced.",
        "(a) whether the building needed a licence;",
        "(b) the amount of any repayment.",
    ]


def test_html_left_in_a_text_is_taken_out() -> None:
    text = readable_text("<div><p>Budget&amp; plan approved</p><script>x()</script><p>Next</p></div>")
    assert text.split() == ["Budget&", "plan", "approved", "Next"]


# ---- chunks ----------------------------------------------------------------------------


def test_chunks_end_between_sentences_and_cover_the_whole_text(chat_tokenizer: Any) -> None:
    chunks = chunk_text(MEETING, chat_tokenizer, chunk_tokens=300, overlap_tokens=40)
    assert len(chunks) >= 5
    assert chunks[0].start == 0
    assert chunks[-1].end == len(MEETING)
    sentence_ends = {u.end for u in text_units(MEETING)}
    units_at = {u.end: u for u in text_units(MEETING)}
    sentence_starts = {u.start for u in text_units(MEETING)}
    for previous, current in itertools.pairwise(chunks):
        assert previous.end in sentence_ends, previous.text[-60:]
        assert current.start in sentence_starts, current.text[:60]
        assert not MEETING[previous.end : current.start].strip()  # no gap: at most the space between sentences
        assert not units_at[previous.end].heading  # a heading goes with the text it heads
        # counted in the whole text's tokens; on its own a chunk may start with a token more
        assert len(chat_tokenizer(previous.text, add_special_tokens=False)["input_ids"]) <= 302
    assert any(current.start < previous.end for previous, current in itertools.pairwise(chunks))  # some overlap


def test_a_chunk_ends_with_its_paragraph_when_one_ends_past_its_middle(chat_tokenizer: Any) -> None:
    paragraph = " ".join(f"In year {n} the harbour handled {n * 3} boats and {n * 7} tonnes of fish." for n in range(8))
    text = "\n\n".join([paragraph] * 6)
    for chunk in chunk_text(text, chat_tokenizer, chunk_tokens=300, overlap_tokens=20)[:-1]:
        assert text[chunk.end : chunk.end + 2] == "\n\n", text[chunk.end - 40 : chunk.end + 5]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words(chat_tokenizer: Any) -> None:
    text = "The list went on: " + ", ".join(f"item {n}" for n in range(400)) + "."
    chunks = chunk_text(text, chat_tokenizer, chunk_tokens=100, overlap_tokens=10)
    assert len(chunks) > 3
    for chunk in chunks[:-1]:
        assert text[chunk.end] == " "
    assert chunks[-1].end == len(text)


# ---- tidying the model's text -------------------------------------------------------------

# What the packaged model wrote as the final summary of the 30-page bus network review
# (bench/data/summaries/) until it ran out of tokens, shortened.
LOOP = (
    "The document summarizes the details of a review of a proposed expansion of the Combined Authority in London, "
    + "including the proposed expansion of the Combined Authority in London, " * 12
    + "including the proposed"
)


def test_a_loop_is_cut_to_one_round() -> None:
    assert without_loop(LOOP) == (
        "The document summarizes the details of a review of a proposed expansion of the Combined Authority in London, "
        "including the"
    )
    # a phrase said again further on, or a word said three times, is no loop
    twice = "The fee is 10 per cent of the Annual Fixed Charge and the cap 125 per cent of the Annual Fixed Charge."
    assert without_loop(twice) == twice
    assert without_loop("It was very very very good.") == "It was very very very good."
    assert without_loop("Councillor Ash, Councillor Ash, Councillor Ash, Councillor Ash,") == "Councillor Ash,"
    assert without_loop("A heat pump, " + "high-capacity, " * 8 + "and quiet.") == "A heat pump, high-capacity,"


class _Finished:
    def __init__(self, result: GenerationResult) -> None:
        self._result = result

    def result(self) -> GenerationResult:
        return self._result

    def cancel(self) -> None:
        pass


def test_a_final_summary_that_goes_round_in_a_loop_ends_on_one_round(real_engine: Engine, monkeypatch: Any) -> None:
    """The real model on the chunks; the combination answers with a loop cut off by the token limit."""
    summarizer = Summarizer(real_engine, Embedder.from_config(), chunk_tokens=400)
    text = FILLER * 20
    final = {"text": ""}
    real_submit = real_engine.submit

    def submit(request: Any) -> Any:
        if request.messages[-1].content.startswith("These are summaries"):
            stats = GenerationStats(
                prompt_tokens=900, completion_tokens=250, time_to_first_token=0.1, tokens_per_second=10.0,
                finish_reason="length",
            )  # fmt: skip
            return _Finished(GenerationResult(final["text"], stats))
        return real_submit(request)

    monkeypatch.setattr(real_engine, "submit", submit)
    final["text"] = (
        "The committee reviewed the library budget, "
        + "including the repair of the roof of the town library, " * 10
        + "including the"
    )
    result = summarizer.summarize(text, length="medium")
    assert len(result.chunk_summaries) >= 2
    assert result.summary == (
        "The committee reviewed the library budget, including the repair of the roof of the town library."
    )

    # a loop with no sentence in it at all: the summary says what the parts said instead
    final["text"] = "Councillor Ash, " * 60
    done = dict(enumerate(result.chunk_summaries))
    looped = summarizer.summarize(text, length="medium", done_chunks=done)
    assert looped.chunk_summaries == result.chunk_summaries  # no chunk summarized again
    assert "Councillor Ash" not in looped.summary
    assert looped.summary == " ".join(without_repeats(result.chunk_summaries))


def test_an_unfinished_last_sentence_is_dropped() -> None:
    assert whole_sentences("The bridge was approved with a budget of 42 million. The chair") == (
        "The bridge was approved with a budget of 42 million."
    )
    assert whole_sentences("- The bridge was approved.\n- The chair tha") == "- The bridge was approved."
    assert whole_sentences("The chair") == "The chair"  # nothing whole to keep


def test_a_sentence_said_twice_across_chunk_summaries_is_kept_once() -> None:
    kept = without_repeats([
        "The committee met on 3 March. It approved the plan. It approved the plan.",
        "On 3 March the committee met. The roof costs 86,500 dollars.",
    ])  # fmt: skip
    assert kept == ["The committee met on 3 March. It approved the plan.", "The roof costs 86,500 dollars."]


def test_a_sentence_with_a_figure_absent_from_the_source_is_dropped() -> None:
    source = figures("The committee approved a budget of 42 million pounds, 1,200 homes and 35 per cent.")
    assert 42e6 in source
    assert 1200 in source
    summary = (
        "The budget is 42 million pounds. It builds 1200 homes. It will cost 55 million. 35 per cent are affordable."
    )
    assert drop_unsupported_figures(summary, source) == (
        "The budget is 42 million pounds. It builds 1200 homes. 35 per cent are affordable."
    )


def test_the_final_summary_drops_invented_figures_and_keeps_the_draft(real_engine: Engine, monkeypatch: Any) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config(), chunk_tokens=400)
    text = FILLER * 20 + "The committee decided to approve the bridge with a budget of 42 million."
    invented = "The committee approved the bridge for 42 million. The bridge opens in 2031."
    real_run_all = summarizer._run_all

    def final_with_an_invented_year(requests: Any, **options: Any) -> list[str]:
        answers = real_run_all(requests, **options)
        return [invented] if requests[0].messages[-1].content.startswith("These are summaries") else answers

    monkeypatch.setattr(summarizer, "_run_all", final_with_an_invented_year)
    result = summarizer.summarize(text, length="short")
    assert result.draft == invented
    assert result.summary == "The committee approved the bridge for 42 million."


def test_the_summary_keeps_the_documents_order(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    parts = [
        "The harbour board reviewed the fishing fleet and its moorings.",
        "The school governors discussed the new science laboratory.",
        "The hospital trust reported on waiting times for surgery.",
    ]
    shuffled = "The hospital had long waits for surgery. The fleet's moorings were reviewed. A laboratory is planned."
    assert summarizer._in_document_order(shuffled, parts) == (
        "The fleet's moorings were reviewed. A laboratory is planned. The hospital had long waits for surgery."
    )


def test_the_final_prompt_asks_to_keep_the_names_and_numbers(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine)
    parts = [
        "Harwick County Council met on 14 October 2026 about the Ouse Crossing. Dr Fiona Lyle found corrosion.",
        "The committee approved Option C with a budget of 42 million pounds. Option C opens in 2029.",
    ]
    prompt = summarizer._combine_prompt(parts, "short", "paragraph").messages[-1].content
    kept = prompt.split("Keep these names and numbers exactly as written: ", 1)[1].split("\n\n")[0]
    for name in ("Harwick County Council", "Ouse Crossing", "Fiona Lyle", "Option C", "42 million pounds", "2029"):
        assert name in kept, kept
    assert prompt.index(parts[0]) < prompt.index(parts[1])  # the parts in the document's order


def test_a_meeting_report_summary_is_whole_says_nothing_twice_and_invents_no_figure(real_engine: Engine) -> None:
    """The real model on the 4-page meeting report whose decision is in its last paragraph."""
    summarizer = Summarizer(real_engine, Embedder.from_config())
    result = summarizer.summarize(MEETING, length="medium")
    assert len(result.chunk_summaries) >= 2
    assert result.summary.endswith((".", "!", "?")), result.summary[-80:]
    sentences = split_sentences(result.summary)
    assert len(set(sentences)) == len(sentences)
    assert figures(result.summary) <= figures(MEETING), result.summary


# ---- key sentences ---------------------------------------------------------------------------


def test_headings_and_fragments_are_never_key_sentences(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    picked = summarizer.key_sentences(MEETING, count=40)
    headings = [u.text for u in text_units(MEETING) if u.heading]
    assert "Section 47." in headings
    assert "Decision." in headings
    assert len(picked) == 40
    assert not set(picked) & set(headings)
    assert all(len(sentence.split()) >= 5 for sentence in picked)


# ---- bad input ---------------------------------------------------------------------------------


def test_a_text_without_words_has_nothing_to_summarise(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    with pytest.raises(EmptyTextError, match="nothing to summarise"):
        summarizer.summarize("🎉🎉 👍 🔥🔥🔥")
    assert summarizer.key_sentences("🎉🎉 👍 🔥🔥🔥") == []


def test_a_single_word_is_its_own_summary(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    result = summarizer.summarize("Budget")
    assert result.summary == "Budget"
    assert summarizer.key_sentences("Budget") == []


def test_a_text_in_another_language_is_summarized(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    german = (
        "Der Gemeinderat von Kleinfeld hat am Montag über den Bau einer neuen Brücke beraten. "
        "Die alte Brücke aus dem Jahr 1938 ist baufällig und darf nur noch von leichten Fahrzeugen befahren werden. "
        "Der Ingenieur schlug drei Varianten vor, von einer Reparatur bis zu einem Neubau flussabwärts. "
        "Die Bürger sprachen sich in der Versammlung mehrheitlich für den Neubau aus. "
    ) * 12
    result = summarizer.summarize(german, length="short")
    assert result.summary.strip()
    assert 1 <= len(summarizer.key_sentences(german)) <= 5


def test_html_remains_are_not_summarized_as_markup(real_engine: Engine) -> None:
    summarizer = Summarizer(real_engine, Embedder.from_config())
    page = "<html><body>" + "".join(f"<p>{FILLER}</p>" for _ in range(6)) + "<script>alert(1)</script></body></html>"
    result = summarizer.summarize(page, length="short")
    assert result.summary.strip()
    assert "<" not in result.summary
    assert "alert" not in result.summary
    assert all("<" not in s for s in summarizer.key_sentences(page))
