"""Which OCR engine reads page images (PARLEY_OCR_ENGINE), as every process sees it at start:
auto takes Tesseract where its program is installed and RapidOCR elsewhere; an unknown
engine, or Tesseract asked for where it is not installed, stops the process saying how to
fix it. "Not installed" is a PATH without the real tesseract program on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SHOW_ENGINE = "from django.conf import settings; print(settings.PARLEY_OCR_ENGINE)"


def django_process(tmp_path: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), **environment}
    return subprocess.run([sys.executable, "manage.py", *arguments], env=env, capture_output=True, text=True)


def without_tesseract() -> str:
    """PATH with every folder that holds a tesseract program left out."""
    folders = os.environ["PATH"].split(os.pathsep)
    kept = [folder for folder in folders if not (Path(folder) / "tesseract").exists()]
    assert len(kept) < len(folders), "the tests need Tesseract installed (./parley test installs tesseract-ocr)"
    return os.pathsep.join(kept)


@pytest.mark.parametrize(("setting", "tesseract_on_path", "engine"), [
    ("", True, "tesseract"),
    ("auto", True, "tesseract"),
    ("auto", False, "rapidocr"),
    ("RapidOCR", True, "rapidocr"),
    ("tesseract", True, "tesseract"),
])  # fmt: skip
def test_the_engine_is_the_one_asked_for_or_the_better_one_installed(
    tmp_path: Path, setting: str, tesseract_on_path: bool, engine: str
) -> None:
    assert shutil.which("tesseract")
    path = os.environ["PATH"] if tesseract_on_path else without_tesseract()
    result = django_process(tmp_path, "shell", "-c", SHOW_ENGINE, PARLEY_OCR_ENGINE=setting, PATH=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == engine


def test_an_unknown_engine_stops_the_process_with_the_choices(tmp_path: Path) -> None:
    result = django_process(tmp_path, "check", PARLEY_OCR_ENGINE="easyocr")
    assert result.returncode != 0
    assert "configuration error" in result.stderr
    assert "PARLEY_OCR_ENGINE='easyocr' must be one of: auto, rapidocr, tesseract." in result.stderr


def test_tesseract_asked_for_where_it_is_not_installed_stops_the_process_naming_the_fix(tmp_path: Path) -> None:
    result = django_process(tmp_path, "check", PARLEY_OCR_ENGINE="tesseract", PATH=without_tesseract())
    assert result.returncode != 0
    assert "configuration error" in result.stderr
    assert "PARLEY_OCR_ENGINE=tesseract, but the tesseract program is not installed here" in result.stderr
    assert "apt install tesseract-ocr" in result.stderr
    assert "PARLEY_OCR_ENGINE=auto" in result.stderr
