"""Command line: ``python -m inference prepare | chat | summarize | sentiment``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inference.config import InferenceConfig
from inference.errors import InferenceError


def _prepare(args: argparse.Namespace, config: InferenceConfig) -> int:
    from inference.models import prepare_chat_model

    prepare_chat_model(config)
    return 0


def _chat(args: argparse.Namespace, config: InferenceConfig) -> int:
    from inference.engine import Engine
    from inference.types import GenerationRequest

    engine = Engine.from_config(config)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.message})
    request = GenerationRequest.of(
        messages, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    stream = engine.submit(request)
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    stats = stream.stats
    if stats is not None:
        print(
            f"[{stats.completion_tokens} tokens, {stats.tokens_per_second:.1f} tokens/s, {stats.finish_reason}]",
            file=sys.stderr,
        )
    engine.close()
    return 0 if stats is None or stats.finish_reason != "error" else 1


def _summarize(args: argparse.Namespace, config: InferenceConfig) -> int:
    from tqdm import tqdm

    from inference.summarize import Summarizer

    text = Path(args.file).read_text(encoding="utf-8", errors="replace")
    summarizer = Summarizer.from_config(config)
    if args.key_sentences:
        for sentence in summarizer.key_sentences(text, count=args.key_sentences):
            print(f"- {sentence}")
        return 0
    bar = tqdm(total=None, desc="chunks", unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    result = summarizer.summarize(text, length=args.length, form=args.form, on_progress=progress)
    bar.close()
    print(result.summary)
    return 0


def _sentiment(args: argparse.Namespace, config: InferenceConfig) -> int:
    from tqdm import tqdm

    from inference.sentiment import SentimentClassifier

    lines = Path(args.file).read_text(encoding="utf-8", errors="replace").splitlines()
    classifier = SentimentClassifier.from_config(config)
    bar = tqdm(total=len(lines), desc="texts", unit="text", file=sys.stderr)
    results = classifier.classify(lines, on_progress=lambda done, total: bar.update(done - bar.n))
    bar.close()
    for text, result in zip(lines, results, strict=True):
        print(json.dumps({"text": text, "label": result.label, "score": round(result.score, 4)}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description="Parley's models from the command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="convert the packaged chat model once, so later starts are fast")
    chat = commands.add_parser("chat", help="stream an answer to one message")
    chat.add_argument("message")
    chat.add_argument("--system", default="")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--top-p", type=float, default=0.95)
    chat.add_argument("--seed", type=int, default=None)
    summarize = commands.add_parser("summarize", help="summarize a text file")
    summarize.add_argument("file")
    summarize.add_argument("--length", choices=("short", "medium", "long"), default="medium")
    summarize.add_argument("--form", choices=("paragraph", "bullets"), default="paragraph")
    summarize.add_argument("--key-sentences", type=int, default=0, help="print this many key sentences instead")
    sentiment = commands.add_parser("sentiment", help="classify each line of a file; one JSON object a line")
    sentiment.add_argument("file")
    args = parser.parse_args(argv)
    handlers = {"prepare": _prepare, "chat": _chat, "summarize": _summarize, "sentiment": _sentiment}
    try:
        return handlers[args.command](args, InferenceConfig.from_env())
    except (InferenceError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
