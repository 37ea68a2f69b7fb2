"""Key sentences from every sentence's embedding, or through the passages already embedded.

    python -m bench.key_sentences              # the 17 documents of bench/data/summaries
    python -m bench.key_sentences --docs 3     # a quick look

The page's key sentences (inference/summarize.py) embed every sentence of the document
and pick the five closest to their mean, by maximal marginal relevance. A document that
was read for asking already has its passages embedded (inference/passages.py,
128-token windows): ``key_sentences_from_passages`` picks the ten passages that say most
of the document from those vectors, then embeds only the sentences inside them. For each
document, taking turns (the order reversed every other document), both methods are
timed — the passages' vectors are made first and not timed, since reading has paid for
them — and scored with ROUGE-L F1 against the hand-written reference (rouge-score,
stemmed); also how many of the five sentences the two methods share.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bench.common import compared, median, parser, taking_turns, timed
from bench.summary_quality import documents


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--docs", type=int, help="only the first N documents (by name)")
    arguments.add_argument("--repeats", type=int, default=2, help="timed runs of each method per document")
    options = arguments.parse_args()

    from rouge_score import rouge_scorer

    from inference.config import InferenceConfig
    from inference.passages import split_passages
    from inference.summarize import Summarizer

    docs = documents(options.docs, None)
    summarizer = Summarizer.from_config(InferenceConfig.from_env())
    embedder = summarizer.embedder
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    summarizer.key_sentences("A warm-up sentence for the embedder. And a second one here.")
    print(f"{len(docs)} documents, {sum(d.pages for d in docs):.0f} pages\n")
    header = f"{'document':<36} {'pages':>5} {'passages':>8}  {'all s':>6} {'via p':>6}"
    print(f"{header}  {'R-L all':>7} {'R-L via':>7} {'same':>4}")
    seconds: dict[str, list[float]] = {"every sentence": [], "through passages": []}
    rouge: dict[str, list[float]] = {"every sentence": [], "through passages": []}
    shared: list[int] = []
    for position, doc in enumerate(docs):
        spans = split_passages(doc.text, embedder.tokenizer)
        vectors = embedder.embed([span.text for span in spans])
        passages = [(span.text, vector) for span, vector in zip(spans, vectors, strict=True)]
        picked: dict[str, list[str]] = {}

        def every_sentence(text: str = doc.text, into: dict[str, list[str]] = picked) -> None:
            into["every sentence"] = summarizer.key_sentences(text)

        def through_passages(
            text: str = doc.text, given: list[tuple[str, Any]] = passages, into: dict[str, list[str]] = picked
        ) -> None:
            into["through passages"] = summarizer.key_sentences_from_passages(text, given)

        runs: dict[str, Callable[[], None]] = {"every sentence": every_sentence, "through passages": through_passages}
        if position % 2:
            runs = dict(reversed(list(runs.items())))
        times = taking_turns(options.repeats, {name: partial(timed, run) for name, run in runs.items()})
        for name in seconds:
            seconds[name].append(median(times[name]))
            rouge[name].append(scorer.score(doc.reference, " ".join(picked[name]))["rougeL"].fmeasure)
        shared.append(len(set(picked["every sentence"]) & set(picked["through passages"])))
        print(f"{doc.name[:36]:<36} {doc.pages:>5.1f} {len(spans):>8}  {seconds['every sentence'][-1]:>6.2f} "
              f"{seconds['through passages'][-1]:>6.2f}  {rouge['every sentence'][-1]:>7.3f} "
              f"{rouge['through passages'][-1]:>7.3f} {shared[-1]:>4}", flush=True)  # fmt: skip
    fast, slow = median(seconds["through passages"]), median(seconds["every sentence"])
    speed = compared(fast, slow, "s", "every sentence", digits=3, lower_is_better=True)
    print(f"\nmedian seconds a document: through passages {speed}")
    totals = {name: sum(values) for name, values in seconds.items()}
    via, every = totals["through passages"], totals["every sentence"]
    print(f"total seconds: through passages {via:.1f}, every sentence {every:.1f}")
    rouge_l = {name: median(values) for name, values in rouge.items()}
    via, every = rouge_l["through passages"], rouge_l["every sentence"]
    print(f"median ROUGE-L: through passages {via:.3f}, every sentence {every:.3f}")
    print(f"sentences both pick: median {median(shared):.0f} of 5, {sum(shared)} of {5 * len(docs)} in all")


if __name__ == "__main__":
    main()
