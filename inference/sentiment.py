"""Sentiment: each text's label among the classifier's own, with a confidence.

A classifier's labels (``SentimentClassifier.labels``) are its model's, in the model's
order: ``id2label`` of a Hugging Face checkpoint, the ``labels`` of the trained head's
``head.json``. Callers read them from the classifier and store them beside the results;
nothing else lists them.

The default model is the packaged all-MiniLM-L6-v2 encoder whose top layers were
fine-tuned by ``scripts/train_sentiment.py``, with a linear head that reads two
mean-pooled sentence embeddings: the packaged encoder's own and the tuned one (see
``build_classifier``). Only what training changed is committed
(``inference/sentiment_head/``): the tuned layers and the head, in float16, applied over
the packaged encoder at load time.
Any Hugging Face sequence-classification folder can replace it (PARLEY_SENTIMENT_MODEL).

``classify`` sorts texts by length and pads per batch, so a batch of short texts does
not pay for one long one. The model runs in the dtype ``choose_dtype`` picks for an
encoder: bfloat16 on a CPU that multiplies it in hardware (AMX or AVX-512 BF16), where it
classifies a batch about twice as fast.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.config import InferenceConfig
from inference.embeddings import mean_pool
from inference.errors import ModelNotFoundError
from inference.models import SENTIMENT_HEAD_DIR, choose_device, choose_dtype, embedding_model_dir

if TYPE_CHECKING:
    import torch

# The labels scripts/train_sentiment.py trains the default head with (it writes them to
# head.json, where loading reads them): a classifier's labels are its ``labels``.
LABELS = ("negative", "neutral", "positive")
EMPTY = "empty"  # the label of a text with nothing to classify, which is never given to the model
HEAD_WEIGHTS = "tuned.safetensors"
HEAD_CONFIG = "head.json"
# Markup left in pasted or exported text: tags such as <p> or </div>, and comments.
MARKUP = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.DOTALL)


def has_content(text: str | None) -> bool:
    """Whether anything is left to classify once whitespace and HTML markup are set aside
    ("<p>&nbsp;</p>" has nothing). The model still reads the text as it was given."""
    return bool(text) and bool(html.unescape(MARKUP.sub(" ", text or "")).strip())


@dataclass(frozen=True)
class SentimentResult:
    label: str  # one of the classifier's labels, or EMPTY for a text with nothing to classify
    score: float  # the probability of that label; 0 for "empty"
    probabilities: dict[str, float]


def build_classifier(encoder: Any, num_labels: int, *, packaged_from_layer: int | None = None) -> Any:
    """MiniLM encoder + mean pooling + linear head, as trained by the script.

    With ``packaged_from_layer``, the head also reads the packaged encoder's own sentence
    embedding: a copy of the encoder's layers from that index on is kept as they are now
    (before any tuned tensors are loaded) and run on the same input as the tuned ones, and
    the head sees both mean-pooled outputs, packaged first. The layers below that index
    must be the packaged ones (frozen in training), so both paths share them and the
    copy adds only the top layers' work.
    """
    import copy
    import threading

    from torch import nn

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = nn.Dropout(0.1)
            features = encoder.config.hidden_size
            self.packaged_layers: nn.ModuleList | None = None
            # The packaged layers' output, from the hook to ``features`` in the same call;
            # per thread, so that two threads sharing the model cannot swap outputs.
            self._packaged = threading.local()
            if packaged_from_layer is not None:
                layers = encoder.encoder.layer
                self.packaged_layers = nn.ModuleList(copy.deepcopy(layers[packaged_from_layer:]))
                for parameter in self.packaged_layers.parameters():
                    parameter.requires_grad = False
                # The first tuned layer is called with the shared layers' output and the
                # attention mask as the encoder prepared it; the packaged copy runs on the
                # very same arguments, whatever form this transformers version gives them.
                layers[packaged_from_layer].register_forward_pre_hook(self._run_packaged_layers, with_kwargs=True)
                features *= 2
            self.head = nn.Linear(features, num_labels)

        def _run_packaged_layers(self, _: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            assert self.packaged_layers is not None
            hidden, rest = args[0], args[1:]
            for layer in self.packaged_layers:
                output = layer(hidden, *rest, **kwargs)
                hidden = output[0] if isinstance(output, tuple) else output
            self._packaged.hidden = hidden

        def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """What the head reads: the mean-pooled sentence embedding(s), in float32."""
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            pooled = mean_pool(hidden, attention_mask)
            if self.packaged_layers is None:
                return pooled
            import torch

            packaged, self._packaged.hidden = mean_pool(self._packaged.hidden, attention_mask), None
            return torch.cat([packaged, pooled], dim=-1)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            pooled = self.features(input_ids, attention_mask).to(self.head.weight.dtype)
            logits: torch.Tensor = self.head(self.dropout(pooled))
            return logits

    return Classifier()


class SentimentClassifier:
    def __init__(
        self, model: Any, tokenizer: Any, labels: Sequence[str], device: torch.device, dtype: torch.dtype, name: str
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.device = device
        self.dtype = dtype
        self.name = name

    @classmethod
    def from_config(cls, config: InferenceConfig | None = None) -> SentimentClassifier:
        config = config or InferenceConfig.from_env()
        device = choose_device(config)
        dtype = choose_dtype(config, device, encoder=True)
        if config.sentiment_model:
            return cls._from_checkpoint(Path(config.sentiment_model), device, dtype)
        return cls._from_head(SENTIMENT_HEAD_DIR, embedding_model_dir(config), device, dtype)

    @classmethod
    def _from_head(
        cls, head_dir: Path, encoder_dir: Path, device: torch.device, dtype: torch.dtype
    ) -> SentimentClassifier:
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        if not (head_dir / HEAD_WEIGHTS).exists():
            raise ModelNotFoundError(
                f"the sentiment head is missing from {head_dir}; rebuild it with: python scripts/train_sentiment.py"
            )
        meta = json.loads((head_dir / HEAD_CONFIG).read_text())
        tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
        model = build_classifier(
            AutoModel.from_pretrained(encoder_dir),
            len(meta["labels"]),
            packaged_from_layer=meta.get("packaged_features_from_layer"),
        )
        tuned = {name: tensor.float() for name, tensor in load_file(head_dir / HEAD_WEIGHTS).items()}
        missing = set(tuned) - set(model.state_dict())
        if missing:
            raise ModelNotFoundError(f"the sentiment head in {head_dir} does not fit the encoder in {encoder_dir}.")
        model.load_state_dict(tuned, strict=False)
        model.to(device, dtype).eval()
        return cls(model, tokenizer, meta["labels"], device, dtype, meta.get("name", "minilm-sentiment"))

    @classmethod
    def _from_checkpoint(cls, folder: Path, device: torch.device, dtype: torch.dtype) -> SentimentClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (folder / "config.json").exists():
            raise ModelNotFoundError(
                f"PARLEY_SENTIMENT_MODEL={folder} is not a Hugging Face model folder (no config.json)."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            checkpoint = AutoModelForSequenceClassification.from_pretrained(folder, dtype=dtype)
        except (OSError, ValueError) as error:
            raise ModelNotFoundError(f"cannot load a sentiment classifier from {folder}: {error}") from None
        id2label = checkpoint.config.id2label
        labels = [str(id2label[i]).lower() for i in range(len(id2label))]

        class Wrapped:
            def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
                return checkpoint(input_ids=input_ids, attention_mask=attention_mask).logits

        checkpoint.to(device).eval()
        return cls(Wrapped(), tokenizer, labels, device, dtype, folder.name)

    def classify(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        max_length: int = 256,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[SentimentResult]:
        """Classify every text; a text with nothing to classify (empty, blank, or only HTML
        markup) gets the explicit label "empty"."""
        import torch

        results: list[SentimentResult | None] = [None] * len(texts)
        order = sorted((i for i, t in enumerate(texts) if has_content(t)), key=lambda i: len(texts[i]))
        for i, text in enumerate(texts):
            if not has_content(text):
                results[i] = SentimentResult(EMPTY, 0.0, {})
        done = len(texts) - len(order)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
                )
                logits = self.model(
                    input_ids=encoded["input_ids"].to(self.device),
                    attention_mask=encoded["attention_mask"].to(self.device),
                )
                probabilities = torch.softmax(logits.float(), dim=-1).cpu()
                for row, index in enumerate(batch):
                    probs = probabilities[row].tolist()
                    best = max(range(len(probs)), key=probs.__getitem__)
                    results[index] = SentimentResult(
                        self.labels[best], float(probs[best]), dict(zip(self.labels, probs, strict=True))
                    )
                done += len(batch)
                if on_progress is not None:
                    on_progress(done, len(texts))
        return [r for r in results if r is not None]
