"""Text out of page images, by one of two OCR engines; loaded lazily, once per process;
never imports Django.

- ``rapidocr``: RapidOCR, PP-OCR models on onnxruntime shipped in the ``rapidocr`` wheel,
  so it works wherever Parley installs: detection finds the lines, recognition reads them.
- ``tesseract``: Tesseract, through ``pytesseract``, where the operator has installed the
  ``tesseract`` program (Debian/Ubuntu: ``apt install tesseract-ocr``).

``PARLEY_OCR_ENGINE=auto`` (the default) takes Tesseract when its program is installed and
RapidOCR otherwise: on the same rendered pages Tesseract read 2.9 to 6 times as many pages a
minute, and missed 0.3 to 1.3% of the words where RapidOCR missed at most 0.1%
(``python -m bench.ocr``; figures in docs/decisions.md). A long scan must be read within
``PARLEY_OCR_TIME_LIMIT_SECONDS``, so speed is chosen over the last point of accuracy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from inference.errors import InferenceError

ENGINE_SETTINGS = ("auto", "rapidocr", "tesseract")
TESSERACT_PROGRAM = "tesseract"
TESSERACT_MISSING = (
    "PARLEY_OCR_ENGINE=tesseract, but the tesseract program is not installed here (none on PATH). "
    "Install it (Debian/Ubuntu: apt install tesseract-ocr; macOS: brew install tesseract), "
    "or set PARLEY_OCR_ENGINE=auto to read with RapidOCR, which ships with Parley."
)


class PageReader(Protocol):
    # What the document page names as the engine that read its scanned pages.
    label: str

    def read(self, image: Any) -> str:
        """The lines of text in a PIL image, top to bottom, one a line; "" when none is found."""
        ...


def tesseract_installed() -> bool:
    return shutil.which(TESSERACT_PROGRAM) is not None


def chosen_engine(setting: str) -> str:
    """The engine that ``PARLEY_OCR_ENGINE=setting`` reads with: ``rapidocr`` or ``tesseract``."""
    if setting not in ENGINE_SETTINGS:
        raise InferenceError(f"PARLEY_OCR_ENGINE={setting!r} must be one of: {', '.join(ENGINE_SETTINGS)}.")
    if setting == "auto":
        return "tesseract" if tesseract_installed() else "rapidocr"
    if setting == "tesseract" and not tesseract_installed():
        raise InferenceError(TESSERACT_MISSING)
    return setting


def load_reader(engine: str) -> PageReader:
    """A reader of ``engine`` (``rapidocr`` or ``tesseract``), its models loaded."""
    return TesseractReader() if engine == "tesseract" else RapidOcrReader()


class RapidOcrReader:
    def __init__(self) -> None:
        import logging

        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)  # it logs every model file it opens
        self._engine = RapidOCR()
        self.label = "RapidOCR"

    def read(self, image: Any) -> str:
        # The line-orientation classifier is left out: scans come the right way up, and it
        # costs a fifth of the time.
        import numpy as np

        result = self._engine(np.asarray(image.convert("RGB")), use_cls=False)
        return "\n".join(getattr(result, "txts", None) or ())  # a whole run gives RapidOCROutput


class TesseractReader:
    """Tesseract's ``tesseract`` program, run by pytesseract once a page.

    It runs with one OpenMP thread (``OMP_THREAD_LIMIT=1``, the limit Tesseract's own
    documentation suggests): with OpenMP's threads, on a 2-core machine shared with other
    work, it read 1.4 to 2.8 times fewer pages a minute (``python -m bench.ocr``);
    ``omp_thread_limit=None`` leaves them to OpenMP.
    """

    def __init__(self, *, omp_thread_limit: int | None = 1) -> None:
        import pytesseract

        self._pytesseract = pytesseract
        self._omp_thread_limit = omp_thread_limit
        try:
            version = pytesseract.get_tesseract_version()
        except pytesseract.TesseractNotFoundError:
            raise InferenceError(TESSERACT_MISSING) from None
        self.label = f"Tesseract {version}"

    def read(self, image: Any) -> str:
        # Tesseract's automatic page segmentation finds the blocks and lines itself; its
        # blank lines between blocks are kept, as a paragraph break.
        with _environment("OMP_THREAD_LIMIT", self._omp_thread_limit):
            text: str = self._pytesseract.image_to_string(image.convert("RGB"))
        return text.strip()


@contextmanager
def _environment(name: str, value: int | None) -> Iterator[None]:
    """``name=value`` in the environment of the programs started meanwhile (pytesseract
    takes no environment of its own); unchanged when ``value`` is None. Set only around
    the program's start, so the process's own OpenMP (torch's, loaded later) never reads it."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = str(value)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
