"""What the benchmarks share: their argument parser, medians and percentiles, taking turns
side by side, a figure printed with the one it is compared against, and Django on
embedded servers of their own.

Benchmarks run from the project's root as modules (``python -m bench.generation --help``)
and print their figures; they are not part of the tests. Figures that settled a choice
are kept, with the command that measured them, in docs/decisions.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROJECT_DIR = Path(__file__).resolve().parent.parent


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows the benchmark's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0.95: the p95)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def taking_turns(repeats: int, runs: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Every run once per repeat, in turns, the order reversed every other repeat so that
    the machine's drift and noise fall on all of them alike; each run's results in order."""
    results: dict[str, list[T]] = {name: [] for name in runs}
    order = list(runs)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            results[name].append(runs[name]())
    return results


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compared(
    value: float, baseline: float, unit: str, against: str, *, digits: int = 1, lower_is_better: bool = False
) -> str:
    """``value`` with the figure it stands on, and how many times better it is:
    ``compared(12.3, 45.6, "ms", "one at a time", lower_is_better=True)`` is
    ``"12.3 ms against 45.6 ms one at a time (3.71x)"``."""
    over, under = (baseline, value) if lower_is_better else (value, baseline)
    better = f"{over / under:.2f}x" if under else "no ratio to a 0"
    return f"{value:.{digits}f} {unit} against {baseline:.{digits}f} {unit} {against} ({better})"


@contextmanager
def embedded_django(**environment: str) -> Iterator[None]:
    """Django set up on fresh embedded Postgres and Redis under var/bench, never the
    servers of DATABASE_URL / REDIS_URL (benchmarks fill and empty tables);
    ``environment`` holds defaults for settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    from webapp.launcher import services

    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    with services(PROJECT_DIR / "var" / "bench", "parley_bench") as env:
        os.environ.update(env)
        import django

        django.setup()
        yield
