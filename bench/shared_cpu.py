"""Two model processes on one CPU: chat answers streaming while a document is summarized.

    python -m bench.shared_cpu [--streams 8] [--repeats 2] [--spin-count 300000]

Parley runs the chat model in the generation worker and again in the Celery worker
(document summaries), on the same cores. This starts both as separate processes, as
Parley does: one summarizes the held-out text once while the other writes ``--streams``
chat answers at a time, round after round, until the summary is done. It does so twice
per repeat (taking turns), once with spinning OpenMP threads (``GOMP_SPINCOUNT``,
``--spin-count`` turns: by default 300,000, the library's own default) and once with
Parley's default, waiting threads that sleep (``OMP_WAIT_POLICY=PASSIVE``, see ``inference/__init__.py``),
and reports the medians: the summary's seconds and the chat rounds' tokens per second.
Each process alone, under both settings, comes first: what a process pays for sleeping
threads when it has the CPU to itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PROJECT_DIR, median, parser, taking_turns

LIBGOMP_SPIN_COUNT = 300000  # what libgomp does when nothing is set
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}  # what Parley sets when nothing is set


def chat_role(streams: int, done: Path) -> dict[str, Any]:
    """Chat rounds of ``streams`` answers until ``done`` exists (at least one round)."""
    from bench.generation import TOPICS, engine_run, topic_requests
    from inference import Engine

    engine = Engine.from_config()
    engine_run(engine, topic_requests(TOPICS[:1], 4))  # warm up
    ready_and_wait()
    rates: list[float] = []
    while not rates or not done.exists():
        rate, _ = engine_run(engine, topic_requests(TOPICS[:streams], 48))
        rates.append(rate)
    engine.close()
    return {"chat_tps": median(rates), "rounds": len(rates)}


def summary_role(done: Path) -> dict[str, Any]:
    from inference.summarize import Summarizer
    from tests.oracles import HELD_OUT_TEXT

    summarizer = Summarizer.from_config()
    text = HELD_OUT_TEXT.read_text()
    summarizer.key_sentences(text[:200])  # loads the embedder, as a warm-up
    ready_and_wait()
    started = time.perf_counter()
    summarizer.summarize(text)
    elapsed = time.perf_counter() - started
    done.touch()
    summarizer.engine.close()
    return {"summary_s": elapsed}


def sleep_role(seconds: float, done: Path) -> dict[str, Any]:
    """Stands in for the summary when the chat runs alone: done after ``seconds``."""
    ready_and_wait()
    time.sleep(seconds)
    done.touch()
    return {}


def ready_and_wait() -> None:
    """Tell the parent this process has loaded its models, then wait for its go."""
    print("ready", flush=True)
    sys.stdin.readline()


def run_together(roles: list[list[str]], policy: dict[str, str]) -> dict[str, Any]:
    """Start the roles as processes with ``policy``, let them go at once, merge their figures."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    with tempfile.TemporaryDirectory() as folder:
        done = Path(folder) / "done"
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.shared_cpu", "--role", *role, "--done", str(done)],
                cwd=PROJECT_DIR,
                env={**env, **policy},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for role in roles
        ]
        for role, process in zip(roles, processes, strict=True):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise SystemExit(f"a {role[0]} process failed to start")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        figures: dict[str, Any] = {}
        for role, process in zip(roles, processes, strict=True):
            output, _ = process.communicate()
            if process.returncode:
                raise SystemExit(f"a {role[0]} process failed")
            figures.update(json.loads(output.strip().splitlines()[-1]))
        return figures


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--streams", type=int, default=8)
    arguments.add_argument("--repeats", type=int, default=2)
    arguments.add_argument("--spin-count", type=int, default=LIBGOMP_SPIN_COUNT, help="GOMP_SPINCOUNT when spinning")
    arguments.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    arguments.add_argument("--done", type=Path, help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.role:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        role, *values = args.role
        if role == "summary":
            figures = summary_role(args.done)
        elif role == "chat":
            figures = chat_role(int(values[0]), args.done)
        else:
            figures = sleep_role(float(values[0]), args.done)
        print(json.dumps(figures), flush=True)
        return

    chat, summary = ["chat", str(args.streams)], ["summary"]
    spinning = {"GOMP_SPINCOUNT": str(args.spin_count)}
    for name, policy in (("spinning", spinning), ("passive", PASSIVE)):
        alone_summary = run_together([summary], policy)["summary_s"]
        # the chat alone, for as long as the summary took alone
        alone_chat = run_together([chat, ["sleep", str(alone_summary)]], policy)["chat_tps"]
        print(f"alone,    {name:8}: summary {alone_summary:.1f} s; chat {alone_chat:.1f} tokens/s", flush=True)

    def together(name: str, policy: dict[str, str]) -> dict[str, Any]:
        figures = run_together([chat, summary], policy)
        print(
            f"together, {name:8}: summary {figures['summary_s']:.1f} s; "
            f"chat {figures['chat_tps']:.1f} tokens/s over {figures['rounds']} rounds",
            flush=True,
        )
        return figures

    results = taking_turns(
        args.repeats,
        {"spinning": lambda: together("spinning", spinning), "passive": lambda: together("passive", PASSIVE)},
    )

    def middle(name: str, key: str) -> float:
        return median(figures[key] for figures in results[name])

    summary_spin, summary_passive = middle("spinning", "summary_s"), middle("passive", "summary_s")
    chat_spin, chat_passive = middle("spinning", "chat_tps"), middle("passive", "chat_tps")
    print(
        f"summary_s_spinning={summary_spin:.1f} summary_s_passive={summary_passive:.1f} "
        f"chat_tps_spinning={chat_spin:.1f} chat_tps_passive={chat_passive:.1f} "
        f"summary_speedup={summary_spin / summary_passive:.2f} chat_speedup={chat_passive / chat_spin:.2f}"
    )


if __name__ == "__main__":
    main()
