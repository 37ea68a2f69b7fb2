"""Sentiment throughput: batched ``classify`` against one text at a time, same run.

python bench/sentiment.py [--texts 2000] [--repeats 3]

Both loops use the model as Parley loads it (bfloat16 on a CPU with AMX or AVX-512 BF16, else float32;
PARLEY_DTYPE=float32 measures float32 anywhere).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from inference.sentiment import SentimentClassifier  # noqa: E402

DATA = PROJECT_DIR.parent / "shared" / "data" / "sentiment" / "tweeteval" / "test_text.txt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--naive-texts", type=int, default=300, help="the one-at-a-time loop runs on this many")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = DATA.read_text(encoding="utf-8").splitlines()[: args.texts]
    classifier = SentimentClassifier.from_config()
    classifier.classify(texts[:64])  # warm up
    print(f"model in {str(classifier.dtype).removeprefix('torch.')} on {classifier.device}")
    batched, naive = [], []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        classifier.classify(texts)
        batched.append(len(texts) / (time.perf_counter() - started))
        sample = texts[: args.naive_texts]
        started = time.perf_counter()
        for text in sample:
            classifier.classify([text])
        naive.append(len(sample) / (time.perf_counter() - started))
        print(f"repeat {repeat + 1}: batched {batched[-1]:.0f} texts/s, one at a time {naive[-1]:.0f} texts/s")
    x, y = statistics.median(batched), statistics.median(naive)
    print(f"sentiment_tps={x:.1f} naive_tps={y:.1f} speedup={x / y:.2f}")


if __name__ == "__main__":
    main()
