"""How good the summaries are: each method against reference summaries written by hand.

    python -m bench.summary_quality                  # the whole set (about 50 minutes on 2 busy cores)
    python -m bench.summary_quality --docs 3 --max-pages 3   # a quick look
    python -m bench.summary_quality --min-pages 18           # the long documents only (30 minutes)
    python -m bench.summary_quality --only heat-pump-manual  # named documents

The documents and their references are in bench/data/summaries/ (see its README). For
each document, in turns (the order reversed every other document), three methods:

- map-reduce: the chat model's summary (inference/summarize.py, "medium", a paragraph),
  also scored as its draft, before sentences with figures absent from the document were
  dropped, to show what that check gives;
- key sentences: the embedding-based extractive summary the page shows (5 sentences);
- lead-3: the document's first three sentences, the baseline any summary must beat.

For each: ROUGE-1, ROUGE-2 and ROUGE-L F1 against the reference (rouge-score, stemmed);
faithfulness, the share of the summary's sentences whose best-matching sentence of the
document has an embedding cosine similarity (all-MiniLM-L6-v2) of at least --threshold;
figures kept, the share of the reference's numbers that the summary states; figures
made up, the numbers the summary states that the document does not; and seconds per
page of 500 words. Per document, then the medians and the comparison.

The threshold is checked on the set itself before the run: the reference summaries are
faithful by construction, so their sentences matched against their own document show
what "supported" scores, and matched against another document what "unsupported" does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from bench.common import PROJECT_DIR, compared, median, parser, percentile

if TYPE_CHECKING:
    from inference.summarize import Summarizer

DATA_DIR = PROJECT_DIR / "bench" / "data" / "summaries"
WORDS_PER_PAGE = 500
METHODS = ("map-reduce", "map-reduce, no figure check", "key sentences", "lead-3")


@dataclass(frozen=True)
class Document:
    name: str
    text: str
    reference: str

    @property
    def pages(self) -> float:
        return len(self.text.split()) / WORDS_PER_PAGE


@dataclass
class Scores:
    rouge1: float
    rouge2: float
    rougeL: float
    faithful: float
    figures_kept: float
    figures_made_up: int
    seconds_per_page: float
    summary: str = field(repr=False)


def documents(limit: int | None, max_pages: float | None, min_pages: float | None = None) -> list[Document]:
    found = []
    for path in sorted(DATA_DIR.iterdir()):
        if path.suffix not in (".md", ".txt") or path.name.endswith(".summary.txt") or path.name == "README.md":
            continue
        reference = path.with_name(path.stem + ".summary.txt")
        found.append(Document(path.stem, path.read_text(encoding="utf-8"), reference.read_text(encoding="utf-8")))
    if max_pages is not None:
        found = [d for d in found if d.pages <= max_pages]
    if min_pages is not None:
        found = [d for d in found if d.pages >= min_pages]
    return found[:limit] if limit else found


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--docs", type=int, help="only the first N documents (by name)")
    arguments.add_argument("--max-pages", type=float, help="only documents of at most this many pages")
    arguments.add_argument("--min-pages", type=float, help="only documents of at least this many pages")
    arguments.add_argument("--only", nargs="+", metavar="NAME", help="only these documents (names without suffix)")
    arguments.add_argument("--threshold", type=float, default=0.6, help="cosine for a supported sentence")
    arguments.add_argument("--show", action="store_true", help="print every summary")
    options = arguments.parse_args()

    from rouge_score import rouge_scorer

    from inference.config import InferenceConfig
    from inference.summarize import Summarizer, figures, split_sentences, text_units

    docs = documents(options.docs, options.max_pages, options.min_pages)
    if options.only:
        docs = [d for d in docs if d.name in options.only]
    print(f"{len(docs)} documents, {sum(d.pages for d in docs):.0f} pages; loading the models…", flush=True)
    summarizer = Summarizer.from_config(InferenceConfig.from_env())
    embedder = summarizer.embedder
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    source_vectors = {d.name: embedder.embed(split_sentences(d.text)) for d in documents(None, None)}

    def best_matches(sentences: Sequence[str], source: str) -> list[float]:
        if not sentences:
            return []
        return (embedder.embed(sentences) @ source_vectors[source].T).max(dim=1).values.tolist()

    check_threshold(documents(None, None), best_matches, options.threshold)

    def lead_3(text: str) -> tuple[str, str]:
        return " ".join([u.text for u in text_units(text) if u.is_sentence][:3]), ""

    def score(doc: Document, summary: str, seconds: float) -> Scores:
        rouge = scorer.score(doc.reference, summary)
        sentences = split_sentences(summary)
        matches = best_matches(sentences, doc.name)
        source, said, wanted = figures(doc.text), figures(summary), figures(doc.reference)
        return Scores(
            rouge1=rouge["rouge1"].fmeasure,
            rouge2=rouge["rouge2"].fmeasure,
            rougeL=rouge["rougeL"].fmeasure,
            faithful=sum(m >= options.threshold for m in matches) / len(matches) if matches else 0.0,
            figures_kept=len(wanted & said) / len(wanted) if wanted else 1.0,
            figures_made_up=len(said - source),
            seconds_per_page=seconds / doc.pages,
            summary=summary,
        )

    summarizer.key_sentences("A warm-up sentence for the embedder. And a second one here.")  # loads it before timing
    results: dict[str, dict[str, Scores]] = {method: {} for method in METHODS}
    print(f"\n{'document':<36} {'pages':>5}  {'method':<28} {'R-1':>5} {'R-2':>5} {'R-L':>5} "
          f"{'faith':>5} {'figs':>5} {'made':>4} {'s/page':>7}")  # fmt: skip
    for position, doc in enumerate(docs):
        runs: dict[str, Callable[[], tuple[str, str]]] = {
            "map-reduce": partial(_map_reduce, summarizer, doc.text),
            "key sentences": partial(_key_sentences, summarizer, doc.text),
            "lead-3": partial(lead_3, doc.text),
        }
        order = list(runs) if position % 2 == 0 else list(runs)[::-1]
        for method in order:
            started = time.perf_counter()
            summary, draft = runs[method]()
            seconds = time.perf_counter() - started
            results[method][doc.name] = score(doc, summary, seconds)
            if method == "map-reduce":
                results["map-reduce, no figure check"][doc.name] = score(doc, draft, seconds)
        for method in METHODS:
            s = results[method][doc.name]
            print(f"{doc.name[:36]:<36} {doc.pages:>5.1f}  {method:<28} {s.rouge1:>5.3f} {s.rouge2:>5.3f} "
                  f"{s.rougeL:>5.3f} {s.faithful:>5.2f} {s.figures_kept:>5.2f} {s.figures_made_up:>4} "
                  f"{s.seconds_per_page:>7.2f}", flush=True)  # fmt: skip
            if options.show:
                print(f"    {s.summary}")
    report(results)


def _map_reduce(summarizer: Summarizer, text: str) -> tuple[str, str]:
    result = summarizer.summarize(text, "medium", "paragraph")
    return result.summary, result.draft


def _key_sentences(summarizer: Summarizer, text: str) -> tuple[str, str]:
    return " ".join(summarizer.key_sentences(text)), ""


def check_threshold(docs: Sequence[Document], best_matches: Callable[..., list[float]], threshold: float) -> None:
    """Reference sentences against their own document (supported) and the next one (not)."""
    from inference.summarize import split_sentences

    own: list[float] = []
    other: list[float] = []
    for position, doc in enumerate(docs):
        sentences = split_sentences(doc.reference)
        own += best_matches(sentences, doc.name)
        other += best_matches(sentences, docs[(position + 1) % len(docs)].name)
    own_above = sum(m >= threshold for m in own) / len(own)
    other_above = sum(m >= threshold for m in other) / len(other)
    print(
        f"threshold {threshold}: reference sentences against their own document score median "
        f"{median(own):.2f} (10th percentile {percentile(own, 0.1):.2f}), {own_above:.0%} at or above it; "
        f"against another document median {median(other):.2f} (90th percentile {percentile(other, 0.9):.2f}), "
        f"{other_above:.0%} at or above it"
    )


def report(results: dict[str, dict[str, Scores]]) -> None:
    print(f"\nmedians over {len(results['lead-3'])} documents")
    print(f"{'method':<28} {'R-1':>5} {'R-2':>5} {'R-L':>5} {'faith':>5} {'figs':>5} {'made':>4} {'s/page':>7}")
    medians: dict[str, dict[str, float]] = {}
    for method, by_doc in results.items():
        rows = list(by_doc.values())
        medians[method] = {
            name: median(getattr(s, name) for s in rows)
            for name in ("rouge1", "rouge2", "rougeL", "faithful", "figures_kept", "seconds_per_page")
        }
        made_up = sum(s.figures_made_up for s in rows)
        m = medians[method]
        print(f"{method:<28} {m['rouge1']:>5.3f} {m['rouge2']:>5.3f} {m['rougeL']:>5.3f} {m['faithful']:>5.2f} "
              f"{m['figures_kept']:>5.2f} {made_up:>4} {m['seconds_per_page']:>7.2f}")  # fmt: skip
    abstractive, extractive, lead = medians["map-reduce"], medians["key sentences"], medians["lead-3"]
    print()
    for name, label in (("rougeL", "ROUGE-L F1"), ("rouge2", "ROUGE-2 F1"), ("faithful", "faithful share")):
        print(f"{label}: key sentences {compared(extractive[name], abstractive[name], '', 'map-reduce', digits=3)}")
        print(f"{label}: key sentences {compared(extractive[name], lead[name], '', 'lead-3', digits=3)}")
    speed = compared(
        extractive["seconds_per_page"],
        abstractive["seconds_per_page"],
        "s",
        "map-reduce",
        digits=2,
        lower_is_better=True,
    )
    print(f"seconds a page: key sentences {speed}")
    check = medians["map-reduce, no figure check"]
    print(f"figure check: map-reduce ROUGE-L {abstractive['rougeL']:.3f} with it, {check['rougeL']:.3f} without; "
          f"faithful {abstractive['faithful']:.2f} with, {check['faithful']:.2f} without; figures made up "
          f"{sum(s.figures_made_up for s in results['map-reduce'].values())} with, "
          f"{sum(s.figures_made_up for s in results['map-reduce, no figure check'].values())} without")  # fmt: skip
    winner = max(("map-reduce", "key sentences"), key=lambda method: medians[method]["rougeL"])
    print(f"best by median ROUGE-L: {winner}")


if __name__ == "__main__":
    main()
