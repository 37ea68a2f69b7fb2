"""Prometheus metrics for operators, served at ``/metrics``, in prometheus-client's
multi-process mode.

Every process (web, generation workers, Celery workers) counts into its own files under
``PROMETHEUS_MULTIPROC_DIR`` (settings puts it under ``var/`` when it is unset, before
anything imports prometheus-client; the launcher empties it at each start), and a scrape
adds up the files of every process, those that have exited included, so a count never
goes back when a worker restarts. What is true at the moment of a scrape (answers and jobs
waiting, workers alive) is read from Postgres then, by collectors the apps register with
``collect_at_scrape``: the database is the truth, and a gauge kept in files would outlive
the process that set it.

Metrics are counted when the transaction that changed the state commits, so a rolled-back
change is never counted.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.registry import Collector

# Seconds: first tokens come within a fraction of a second on a GPU and in tens of seconds
# behind a long queue on a small CPU.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Jobs: a one-page reading takes a second, a 200-page summary many minutes.
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600)
# Seconds between tokens: milliseconds on a GPU, up to a second for a big batch on a CPU.
TOKEN_GAP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

ANSWERS = Counter("parley_answers", "Answers that ended, by model and outcome.", ["model", "outcome"])
PROMPT_TOKENS = Counter("parley_prompt_tokens", "Prompt tokens read for answers that ended.", ["model"])
GENERATED_TOKENS = Counter("parley_generated_tokens", "Tokens generated for answers that ended.", ["model"])
TIME_TO_FIRST_TOKEN = Histogram(
    "parley_time_to_first_token_seconds",
    "From a worker starting an answer to its first token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
FINISHES = Counter(
    "parley_answer_finishes",
    "Answers that ended, by model and why: stop (the model ended it), length (it reached its "
    "token limit), cancelled (its user stopped it), failed.",
    ["model", "reason"],
)
PREFIX_CACHE_TOKENS = Counter(
    "parley_prefix_cache_prompt_tokens",
    "Prompt tokens of local models' answers, by whether the prefix cache held them (hit) or "
    "they were computed (miss): hit / (hit + miss) is the hit rate.",
    ["model", "result"],
)
QUEUE_TIME = Histogram(
    "parley_queue_time_seconds",
    "From an answer being queued to a worker starting it.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
INTER_TOKEN_LATENCY = Histogram(
    "parley_inter_token_latency_seconds",
    "Mean time between an answer's tokens after its first, (last token - first token) / "
    "(tokens - 1), observed once per answer of two tokens or more (not once per token, which "
    "would cost a write per token).",
    ["model"],
    buckets=TOKEN_GAP_BUCKETS,
)
ANSWER_DURATION = Histogram(
    "parley_answer_duration_seconds",
    "From an answer being queued to its end, the wait in the queue included.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
JOB_DURATION = Histogram(
    "parley_job_duration_seconds",
    "Background jobs from their start to their end, by kind and outcome.",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)

_scrape_collectors: list[Collector] = []


def collect_at_scrape(collector: Collector) -> None:
    """Ask ``collector`` at every scrape (an app's ``ready``: what only the database knows now)."""
    _scrape_collectors.append(collector)


def exposition() -> bytes:
    """Every process's counts added up, and what the apps' collectors read now, in
    Prometheus' text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _scrape_collectors:
        registry.register(collector)
    return generate_latest(registry)
