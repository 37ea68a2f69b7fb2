"""The two OCR engines side by side on the same page images: pages a minute and word accuracy.

    python -m bench.ocr                        # the figures in docs/decisions.md
    python -m bench.ocr --pages 1 --repeats 1  # a quick look

Pages are A4 at 150 dpi, rendered by Pillow with its own font (so every machine renders
the same), each holding a different stretch of the prose of bench/data/summaries, with
its figures and names. Three kinds:

- ``clean``: 12-point text, black on white;
- ``small``: 9-point text;
- ``scanned``: 11-point text as a cheap scanner gives it back: turned by 0.6 degrees,
  blurred, greyed and speckled with noise.

Each engine (``inference.ocr``) reads every page of a kind in a timed run; the runs take
turns, --repeats of each, and the median run gives the pages a minute. Word accuracy is
the share of the page's words (runs of letters and digits) that the engine read, in their
order (the longest matching runs of the two word lists, ``difflib``), so a word split in
two, run into its neighbour or misread counts as missed. Tesseract runs as Parley runs it,
with one OpenMP thread, and also with as many as OpenMP gives it, to show what the limit
brings on this machine.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.common import PROJECT_DIR, compared, median, parser, taking_turns, timed

PROSE = sorted((PROJECT_DIR / "bench" / "data" / "summaries").glob("*.[mt][dx]*"))
PAGE = (1240, 1754)  # A4 at 150 dpi
MARGIN = 100
KINDS = {"clean": 25, "small": 19, "scanned": 23}  # the font's size in pixels at 150 dpi


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--pages", type=int, default=3, help="pages of each kind")
    arguments.add_argument("--repeats", type=int, default=3, help="timed runs of each engine on each kind")
    arguments.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    options = arguments.parse_args()

    from inference.ocr import RapidOcrReader, TesseractReader

    rapid, tesseract = RapidOcrReader(), TesseractReader()
    threaded = f"{tesseract.label}, OpenMP's threads"
    readers: dict[str, Callable[[Any], str]] = {
        rapid.label: rapid.read,
        tesseract.label: tesseract.read,
        threaded: TesseractReader(omp_thread_limit=None).read,
    }
    print(f"pages of {', '.join(options.kinds)}: {options.pages} each; {options.repeats} timed runs of each engine")
    words = prose_words()
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for kind_number, kind in enumerate(options.kinds):
        pages = [render_page(kind, words, seed=kind_number * 100 + number) for number in range(options.pages)]
        images = [image for image, _ in pages]
        # this first pass also warms each engine up
        accuracy = {
            name: median(word_accuracy(words_of_page, read(image)) for image, words_of_page in pages)
            for name, read in readers.items()
        }
        runs = taking_turns(options.repeats, {name: partial(read_all, read, images) for name, read in readers.items()})
        summary[kind] = {name: (len(pages) / median(seconds) * 60, accuracy[name]) for name, seconds in runs.items()}
        for name, (pace, share) in summary[kind].items():
            print(f"{kind:8} {name:34} {pace:6.1f} pages a minute   word accuracy {share:.3f}")
    print()
    for kind, figures in summary.items():
        pace, share = figures[tesseract.label]
        rapid_pace, rapid_share = figures[rapid.label]
        against_rapid = compared(pace, rapid_pace, "pages a minute", "RapidOCR")
        against_threads = compared(pace, figures[threaded][0], "pages a minute", "with OpenMP's threads")
        print(
            f"{kind}: {tesseract.label} {against_rapid}; word accuracy {share:.3f} against {rapid_share:.3f}; "
            f"with one OpenMP thread {against_threads}"
        )


def read_all(read: Callable[[Any], str], images: list[Any]) -> float:
    """Seconds ``read`` took to read every image."""
    return timed(lambda: [read(image) for image in images])


def prose_words() -> list[str]:
    text = " ".join(path.read_text() for path in PROSE)
    return re.sub(r"[#*|_`>\-]{2,}|[#*|_`>]", " ", text).split()


def render_page(kind: str, words: list[str], *, seed: int) -> tuple[Any, list[str]]:
    """A page image of ``kind`` and the words written on it, in order."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(seed)
    font = ImageFont.load_default(size=KINDS[kind])
    image = Image.new("L", PAGE, 255)
    draw = ImageDraw.Draw(image)
    line_height = int(KINDS[kind] * 1.5)
    start = rng.randrange(len(words) - 1000)
    cursor, written, y = start, [], MARGIN
    while y + line_height < PAGE[1] - MARGIN:
        line: list[str] = []
        while draw.textlength(" ".join([*line, words[cursor]]), font=font) < PAGE[0] - 2 * MARGIN:
            line.append(words[cursor])
            cursor += 1
        draw.text((MARGIN, y), " ".join(line), fill=0, font=font)
        written.extend(line)
        y += line_height
    if kind == "scanned":
        image = image.rotate(0.6, resample=Image.Resampling.BICUBIC, fillcolor=255)
        image = image.filter(ImageFilter.GaussianBlur(0.8))
        noise = Image.effect_noise(PAGE, 40)
        image = Image.blend(image, noise, 0.15).point(lambda value: 40 + value * 0.8)
    return image.convert("RGB"), words_in(" ".join(written))


def words_in(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def word_accuracy(expected: list[str], read: str) -> float:
    matcher = difflib.SequenceMatcher(None, expected, words_in(read), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected)


if __name__ == "__main__":
    main()
