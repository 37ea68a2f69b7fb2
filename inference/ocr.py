"""Text out of page images, with RapidOCR (PP-OCR models on onnxruntime, shipped in the
``rapidocr`` wheel, so nothing is downloaded): detection finds the lines, recognition reads
them. Loaded lazily, once per process; never imports Django."""

from __future__ import annotations

from typing import Any


class PageReader:
    def __init__(self) -> None:
        import logging

        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)  # it logs every model file it opens
        self._engine = RapidOCR()

    def read(self, image: Any) -> str:
        """The lines of text in a PIL image, top to bottom, one a line; "" when none is found.

        The line-orientation classifier is left out: scans come the right way up, and it
        costs a fifth of the time.
        """
        import numpy as np

        result = self._engine(np.asarray(image.convert("RGB")), use_cls=False)
        return "\n".join(getattr(result, "txts", None) or ())  # a whole run gives RapidOCROutput
