"""The sentiment and job pages, sockets and tasks import without loading the models' libraries."""

from __future__ import annotations

import subprocess
import sys


def test_the_sentiment_and_job_modules_do_not_load_torch() -> None:
    code = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings');"
        "import django, sys; django.setup();"
        "import webapp.sentiment.views, webapp.sentiment.tasks, webapp.sentiment.exports;"
        "import webapp.jobs.consumers, webapp.jobs.tasks, webapp.documents.reading, webapp.documents.summaries;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"
