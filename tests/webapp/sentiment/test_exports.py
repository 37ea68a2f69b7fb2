"""Exports of a batch: a CSV never hands a spreadsheet a formula; JSONL keeps every text exact.

The batch comes from a CSV upload whose header, texts and other columns start with what a
spreadsheet runs as a formula; it is classified by the real task function on the real
database and exported through the export page.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.responses import streamed
from webapp.sentiment import services
from webapp.sentiment.tasks import classify_batch

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


def upload(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def exported(client: Client, batch_id: int, fmt: str) -> str:
    response = client.get(reverse("sentiment:export", args=[batch_id, fmt]))
    return b"".join(streamed(response)).decode()


def test_a_csv_export_quotes_every_cell_a_spreadsheet_would_run(logged_in_client: Client, user: Any) -> None:
    header = ["=id", "review", "-note", "@who"]
    rows = [[f"=ID{i}", text, "plain note", "+alice"] for i, text in enumerate(FORMULAS)]
    rows.append(["7", "A calm review, nothing to run.", "2-3", "bob"])
    batch = services.batch_create(user, name="reviews.csv", data=upload([header, *rows]))
    services.batch_choose_column(batch, "review")
    batch.refresh_from_db()
    classify_batch.run(batch.job_id)

    lines = list(csv.reader(io.StringIO(exported(logged_in_client, batch.pk, "csv"), newline="")))
    assert lines[0][:4] == ["row", "'=id", "'-note", "'@who"]
    assert lines[0][4] == "review"
    records = [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]
    assert [r["review"] for r in records] == ["'" + text for text in FORMULAS] + ["A calm review, nothing to run."]
    assert [r["'=id"] for r in records] == [f"'=ID{i}" for i in range(len(FORMULAS))] + ["7"]
    assert {r["'@who"] for r in records} == {"'+alice", "bob"}
    assert records[-1]["'-note"] == "2-3"  # only a first character counts
    every_cell = [cell for line in lines for cell in line]
    assert not [cell for cell in every_cell if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_a_jsonl_export_keeps_the_texts_exact(logged_in_client: Client, user: Any) -> None:
    rows = [["review", "=note"], *[[text, "-1"] for text in FORMULAS]]
    batch = services.batch_create(user, name="reviews.csv", data=upload(rows))
    services.batch_choose_column(batch, "review")
    batch.refresh_from_db()
    classify_batch.run(batch.job_id)

    records = [json.loads(line) for line in exported(logged_in_client, batch.pk, "jsonl").splitlines()]
    assert [r["text"] for r in records] == FORMULAS
    assert all(r["columns"] == {"=note": "-1"} for r in records)
