"""The engine: one model copy serving every live chat, batched continuously.

The contract: ``Engine.submit(request)`` returns a ``Stream`` (streams.py) that yields
text deltas; ``"".join(stream)`` is the whole answer and ``stream.stats`` its statistics.
``Engine.generate`` is exactly that join. Requests may be submitted from any number of
threads. One scheduler thread owns the model and, at every decoding step, admits
waiting requests into the batch (up to ``prefill_tokens`` prompt tokens a step, when
set: a longer prompt is prefilled that many tokens a step, so the answers already
streaming go on meanwhile) and retires finished or cancelled ones, so many chats share
one model copy. Requests that arrive while a group is prefilled are prefilled next,
before the decoding step (once in a row), so a crowd arriving over a few tens of
milliseconds waits one more prefill for its first tokens, not a prefill and a step.

The batch keeps one key/value cache per layer (grown in place, see kv_cache.py),
left-padded to the longest row (batch.py does the surgery). New requests are prefilled
together and then padded into the batch; a leaving row is dropped with an index select,
and columns that became padding for every row are cut away. Padding is masked, so a
request's greedy output does not depend on what else is in the batch. Prompts are
checked, rendered and trimmed to the window by prompts.py.

A leaving row's keys and values are kept (prefix_cache.py), and a new prompt that
begins the same way (the next message of a conversation, a regenerated answer, the
same system prompt) is prefilled from where that kept prefix ends.

Why the engine batches itself rather than using transformers' continuous batching
(``generate_batch`` over its paged cache): measured side by side in one process on a
2-core CPU, float32, greedy, 32 new tokens, taking turns, medians of 3
(``python -m bench.continuous_batching``), the engine gave 2.9x transformers' tokens per
second at 8 streams and 1.7x at 32 (transformers 5.24; figures in docs/decisions.md).
transformers' path would also still have to give what the chat needs: text deltas that
never split a character or show part of a stop string, Stop within one decoding step,
kept prefixes per user, a prefill budget per step, and ``together()``. Revisit when that
bench says otherwise, on a GPU too.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inference import batch, prompts
from inference.errors import InferenceError
from inference.prefix_cache import Prefix, PrefixCache
from inference.streams import Detokenizer, Stream
from inference.types import (
    ChatMessage,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    GenerationStats,
    SamplingParams,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# the prompt length of the step the compiled programs are first run on (Engine._compile_step)
WARM_UP_TOKENS = 17


@dataclass
class _Sequence:
    """A request's state inside the scheduler."""

    stream: Stream
    prompt_ids: list[int]
    params: SamplingParams
    submitted_at: float
    detokenizer: Detokenizer
    cache_scope: str = ""
    generator: torch.Generator | None = None
    token_ids: list[int] = field(default_factory=list)
    length: int = 0  # tokens in the cache for this row, prompt included
    first_token_at: float | None = None
    admitted_at: float = 0.0
    # the longest kept prefix of the prompt (prefix_cache.py), looked up when admission nears
    cached: int = 0
    prefix: Prefix | None = None
    # a prompt longer than the prefill budget is prefilled a chunk a step, in its own cache
    prefilled: int = 0
    cache: Any = None


class Engine:
    """One model copy, shared by every live request through continuous batching."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_name: str = "model",
        max_batch_size: int = 32,
        max_context: int | None = None,
        max_new_tokens_limit: int = 4096,
        prefill_tokens: int = 0,
        prefix_cache_mb: int = 256,
        chat_step: str = "fused",
    ) -> None:
        """``chat_step``: how a decoding step is taken (InferenceConfig.chat_step): "compiled"
        compiles the fused step's one-row programs here, before the engine serves (tens of
        seconds the first time, a second once inductor's cache directory holds them)."""
        import torch

        from inference import decoding_step

        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.device = next(model.parameters()).device
        self.max_batch_size = max_batch_size
        # Prompt tokens prefilled per step (0: no limit). Admitting a crowd in smaller groups,
        # and a long prompt a chunk at a time, with a decoding step between them, gives the
        # first arrivals their first token sooner and keeps the answers already streaming
        # from stalling behind one long prefill.
        self.prefill_tokens = prefill_tokens
        # keys and values of finished requests, for prompts that begin the same way (0: off)
        self._prefixes = PrefixCache(prefix_cache_mb * 2**20)
        window = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.max_context = min(max_context or window, window)
        self.max_new_tokens_limit = min(max_new_tokens_limit, self.max_context // 2)
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._torch = torch
        # the one-token step in few operations (decoding_step.py) where the model allows it
        self._step = None
        if chat_step != "transformers" and decoding_step.supports(model):
            started = time.perf_counter()
            self._step = decoding_step.FusedLlamaStep(model, compiled=chat_step == "compiled")
            logger.info("fused decoding step ready in %.0f ms", 1000 * (time.perf_counter() - started))
            if chat_step == "compiled" and not self._step.compiled:
                logger.info(
                    "the decoding step is compiled only for float32 or float64 weights on a CPU (not int8): "
                    "this model decodes uncompiled"
                )
            if self._step.compiled:
                self._compile_step()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._waiting: list[_Sequence] = []
        self._active: list[_Sequence] = []
        self._prefilling: _Sequence | None = None  # a long prompt, part way through its chunks
        self._cache: Any = None  # key/value cache of the active rows (kv_cache.roomy_cache)
        self._mask: torch.Tensor | None = None  # [rows, cache length], 1 for real tokens
        self._closed = False
        self._holding = 0  # open together() blocks: nothing new joins the batch meanwhile
        self._thread = threading.Thread(target=self._run, name="inference-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: Any = None, *, name: str = "", **options: Any) -> Engine:
        """The configured chat model; ``name`` (the registry's) is what answers record."""
        from inference.config import InferenceConfig
        from inference.models import chat_model_name, load_chat_model

        config = config or InferenceConfig.from_env()
        # before the model loads: inductor settles on its directory (the environment's, else
        # one under /tmp) the first time anything asks for it
        if config.chat_step == "compiled" and config.compile_cache_dir is not None:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(config.compile_cache_dir))
        model, tokenizer = load_chat_model(config)
        options = {"prefix_cache_mb": config.prefix_cache_mb, "chat_step": config.chat_step, **options}
        return cls(model, tokenizer, model_name=chat_model_name(config, model, name), **options)

    # ---- public API --------------------------------------------------------------

    def submit(self, request: GenerationRequest, *, wake: threading.Event | None = None) -> Stream:
        """Validate and queue a request; raises InvalidRequestError for a bad one.

        ``wake``, if given, is set when the stream has its first text and when it ends: a
        thread that serves many streams with ``drain()`` waits on it to pass a first token
        or an end on at once, and otherwise drains on its own clock.
        """
        prompts.validate(request, max_new_tokens_limit=self.max_new_tokens_limit)
        prompt_ids, trimmed = self._prompt(request)
        stream = Stream(
            next(self._ids), len(prompt_ids), trimmed, on_cancel=self._wake, place=self._position, wake=wake
        )
        sequence = _Sequence(
            stream=stream,
            prompt_ids=prompt_ids,
            params=request.params,
            submitted_at=time.perf_counter(),
            detokenizer=Detokenizer(self.tokenizer.decode, request.params.stop),
            cache_scope=request.cache_scope,
        )
        if request.params.temperature > 0:
            generator = self._torch.Generator(device="cpu")
            if request.params.seed is not None:
                generator.manual_seed(request.params.seed)
            else:
                generator.seed()
            sequence.generator = generator
        with self._wakeup:
            if self._closed:
                raise InferenceError("the engine is closed.")
            self._waiting.append(sequence)
            self._wakeup.notify()
        return sequence.stream

    @contextmanager
    def together(self) -> Iterator[None]:
        """Requests submitted inside this block join the batch together when it ends.

        A caller with several requests in hand uses it so that they share one prefill, and
        so that the first does not start the model (which takes every core) while the
        caller is still preparing the others. Answers already running go on meanwhile.
        """
        with self._wakeup:
            self._holding += 1
        try:
            yield
        finally:
            with self._wakeup:
                self._holding -= 1
                self._wakeup.notify()

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        return iter(self.submit(request))

    def generate(self, request: GenerationRequest) -> GenerationResult:
        return self.submit(request).result()

    @property
    def queue_length(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    def close(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join(timeout=30)

    def clear_prefix_cache(self) -> None:
        """Forget every kept prefix (benchmarks measure from a known state with it)."""
        with self._lock:
            self._prefixes.clear()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._encode(messages))

    def count_text_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ---- prompts -------------------------------------------------------------------

    def _encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        return prompts.encode(self.tokenizer, messages)

    def _prompt(self, request: GenerationRequest) -> tuple[list[int], int]:
        """The prompt's token ids and how many messages were left out to fit (prompts.py)."""
        return prompts.prompt_ids(self.tokenizer, request, max_context=self.max_context)

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for candidate in (config_eos, self.tokenizer.eos_token_id):
            if isinstance(candidate, int):
                ids.append(candidate)
            elif isinstance(candidate, list):
                ids.extend(candidate)
        if not ids:
            raise InferenceError("the tokenizer defines no end-of-sequence token.")
        return sorted(set(ids))

    # ---- scheduler -------------------------------------------------------------------

    def _wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    def _compile_step(self) -> None:
        """Give the step its one-row programs (compiled, or loaded from the cache) and take
        one step with them, so the first answer does not wait for them. If compiling fails
        (no C++ compiler, say), the step goes on uncompiled and the log says why."""
        from inference import ahead_of_time
        from inference.kv_cache import roomy_cache

        torch = self._torch
        assert self._step is not None
        logger.info("compiling the decoding step (up to a minute the first time, a second once cached)…")
        started = time.perf_counter()
        try:
            compiled = ahead_of_time.compile_one_row(self._step)
            with torch.inference_mode():
                cache = roomy_cache()
                ids = torch.full((1, WARM_UP_TOKENS), self.pad_id, device=self.device)
                mask = torch.ones_like(ids)
                self.model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1)
                positions = torch.full((1, 1), WARM_UP_TOKENS, device=self.device)
                self._step(ids[:, -1:], batch.grown(mask), positions, cache)
        except Exception as error:  # export and AOTInductor raise many kinds; any of them means uncompiled
            self._step.uncompiled()
            logger.warning(
                "compiling the decoding step failed, so it runs uncompiled (PARLEY_CHAT_STEP=fused skips trying): %s",
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
            )
            return
        logger.info(
            "decoding step %s in %.1f s",
            "compiled" if compiled else "loaded from the compile cache",
            time.perf_counter() - started,
        )

    def _position(self, stream: Stream) -> int:
        with self._lock:
            for index, sequence in enumerate(self._waiting):
                if sequence.stream is stream:
                    return index + 1
        return 0

    def _run(self) -> None:
        torch = self._torch
        deferred = False  # the last round admitted a group and left out its decoding step
        with torch.inference_mode():
            while True:
                with self._wakeup:
                    while not self._closed and not self._admissible() and not self._active and not self._prefilling:
                        self._wakeup.wait()
                    if self._closed:
                        break
                    admitted = self._next_admissions() if self._admissible() else []
                try:
                    self._retire_cancelled()
                    if self._prefilling:
                        self._prefill_chunk()
                    if admitted:
                        self._admit(admitted)
                    # Requests that came during a group's prefill are prefilled next, before the
                    # decoding step: a crowd arriving over a few tens of milliseconds (a burst
                    # of sends) then waits one prefill for its first tokens, not a prefill and
                    # a step per group. Only once in a row, so the answers streaming miss at
                    # most one step for it.
                    deferred = bool(admitted) and not deferred and self._admissible() and self._free_rows() > 0
                    if self._active and not deferred:
                        self._decode_step()
                except Exception as error:  # the engine must outlive any one failure
                    logger.exception("generation step failed")
                    self._fail_all(admitted, error)
            self._fail_all([], InferenceError("the engine was closed."))

    def _admissible(self) -> bool:
        return bool(self._waiting) and not self._holding

    def _free_rows(self) -> int:
        """Rows of the batch not taken by an active request or a prompt being prefilled."""
        return self.max_batch_size - len(self._active) - (self._prefilling is not None)

    def _next_admissions(self) -> list[_Sequence]:
        """Take waiting requests, oldest first, while there is room in the batch and in the
        prefill budget (always at least one: a prompt longer than the budget comes alone,
        and is prefilled a budget's worth at a time). While one such prompt is being
        prefilled, only prompts within the budget are taken, past any long one waiting: a
        short message need not wait for a long one's chunks."""
        chunking = self._prefilling is not None
        room = self._free_rows()
        admitted: list[_Sequence] = []
        tokens = 0
        for sequence in self._waiting:
            if len(admitted) >= room:
                break
            sequence.cached, sequence.prefix = self._prefixes.match(sequence.cache_scope, sequence.prompt_ids)
            length = len(sequence.prompt_ids) - sequence.cached  # what is left to prefill
            if chunking and length > self.prefill_tokens:
                continue
            if admitted and self.prefill_tokens and tokens + length > self.prefill_tokens:
                break
            admitted.append(sequence)
            tokens += length
        taken = {id(sequence) for sequence in admitted}
        self._waiting = [sequence for sequence in self._waiting if id(sequence) not in taken]
        return admitted

    def _fail_all(self, admitted: list[_Sequence], error: Exception) -> None:
        reason = f"{error.__class__.__name__}: {error}"
        prefilling = [self._prefilling] if self._prefilling else []
        for sequence in {id(s): s for s in self._active + admitted + prefilling}.values():
            if not sequence.stream.finished:
                self._finish(sequence, "error", error=reason)
        with self._lock:
            self._active = []
            self._prefilling = None
            self._cache = None
            self._mask = None

    def _admit(self, sequences: list[_Sequence]) -> None:
        """Prefill new requests together and pad them into the running batch."""
        # a request cancelled while it waited ends here, without a prefill
        for sequence in sequences:
            if sequence.stream.cancelled:
                sequence.cached, sequence.prefix = 0, None
                self._finish(sequence, "cancelled")
        sequences = [s for s in sequences if not s.stream.cancelled]
        if not sequences:
            return
        first = sequences[0]
        if self.prefill_tokens and len(first.prompt_ids) - first.cached > self.prefill_tokens:
            # taken alone (see _next_admissions): prefill it a chunk a step, after its kept prefix
            first.admitted_at, first.cache = time.perf_counter(), self._seeded_cache([first], first.cached)
            first.prefilled = first.cached
            with self._lock:
                self._prefilling = first
            self._prefill_chunk()
            return
        # Each row is [padding][kept prefix][padding][rest of the prompt]: the kept prefixes
        # right-aligned in the cache, the rest left-padded in the input; padding is masked.
        input_ids, mask, positions = batch.prefill_inputs(
            [(s.prompt_ids[s.cached :], s.cached) for s in sequences], self.pad_id
        )
        for sequence in sequences:
            sequence.length = len(sequence.prompt_ids)
            sequence.admitted_at = time.perf_counter()
        cache = self._seeded_cache(sequences, max(s.cached for s in sequences))
        output = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        next_tokens = self._sample(output.logits[:, -1, :], sequences)
        self._merge(cache, mask, sequences)
        self._advance(sequences, next_tokens)

    def _seeded_cache(self, sequences: list[_Sequence], width: int) -> Any:
        return batch.seeded_cache([(s.prefix, s.cached) for s in sequences], width)

    def _prefill_chunk(self) -> None:
        """The next ``prefill_tokens`` of the long prompt; after the last, it joins the batch."""
        torch = self._torch
        sequence = self._prefilling
        assert sequence is not None
        start = sequence.prefilled
        # with no answer streaming, there is nobody to keep waiting: the rest in one pass
        end = min(start + self.prefill_tokens, len(sequence.prompt_ids)) if self._active else len(sequence.prompt_ids)
        output = self.model(
            input_ids=torch.tensor([sequence.prompt_ids[start:end]], device=self.device),
            position_ids=torch.arange(start, end, device=self.device)[None],
            cache=sequence.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        sequence.prefilled = end
        if end < len(sequence.prompt_ids):
            return
        sequence.length = end
        next_tokens = self._sample(output.logits[:, -1, :], [sequence])
        cache, sequence.cache = sequence.cache, None
        with self._lock:
            self._prefilling = None
        self._merge(cache, torch.ones((1, end), dtype=torch.long), [sequence])
        self._advance([sequence], next_tokens)

    def _merge(self, cache: Any, mask: torch.Tensor, sequences: list[_Sequence]) -> None:
        """Pad newly prefilled rows into the running batch."""
        with self._lock:
            if self._cache is None or self._mask is None or not self._active:
                self._cache, self._mask = cache, mask.to(self.device)
                self._active = list(sequences)
                return
            self._mask = batch.merge(self._cache, self._mask, cache, mask.to(self.device))
            self._active = self._active + sequences

    def _decode_step(self) -> None:
        torch = self._torch
        sequences = self._active
        assert self._mask is not None
        last_tokens = torch.tensor([[s.token_ids[-1]] for s in sequences], device=self.device)
        positions = torch.tensor([[s.length] for s in sequences], device=self.device)
        self._mask = batch.grown(self._mask)
        if self._step is not None:
            logits = self._step(last_tokens, self._mask, positions, self._cache)
        else:
            output = self.model(
                input_ids=last_tokens,
                attention_mask=self._mask,
                position_ids=positions,
                cache=self._cache,
                use_cache=True,
            )
            logits = output.logits[:, -1, :]
        for sequence in sequences:
            sequence.length += 1
        next_tokens = self._sample(logits, sequences)
        self._advance(sequences, next_tokens)

    def _sample(self, logits: torch.Tensor, sequences: list[_Sequence]) -> list[int]:
        torch = self._torch
        logits = logits.float().cpu()
        chosen = logits.argmax(dim=-1)
        rows = [row for row, sequence in enumerate(sequences) if sequence.params.temperature > 0]
        if rows:
            from inference.sampling import sample

            params = [sequences[row].params for row in rows]
            uniform = torch.cat([torch.rand(1, generator=sequences[row].generator) for row in rows])
            index = torch.tensor(rows)
            chosen[index] = sample(
                logits[index],
                torch.tensor([p.temperature for p in params]),
                torch.tensor([p.top_p for p in params]),
                uniform,
            )
        return [int(token) for token in chosen.tolist()]

    def _advance(self, sequences: list[_Sequence], next_tokens: list[int]) -> None:
        """Record each row's new token, stream its text, and retire finished rows."""
        now = time.perf_counter()
        ended: list[tuple[_Sequence, FinishReason]] = []
        for sequence, token in zip(sequences, next_tokens, strict=True):
            if sequence.stream.cancelled:
                ended.append((sequence, "cancelled"))
                continue
            if sequence.first_token_at is None:
                sequence.first_token_at = now
            if token in self.eos_ids and not sequence.params.ignore_eos:
                ended.append((sequence, "stop"))
                continue
            sequence.token_ids.append(token)
            stopped = self._stream_text(sequence)
            if stopped:
                ended.append((sequence, "stop"))
            elif len(sequence.token_ids) >= sequence.params.max_new_tokens:
                self._flush(sequence)
                ended.append((sequence, "length"))
        if ended:
            self._retire(ended)

    def _retire(self, ended: list[tuple[_Sequence, FinishReason]]) -> None:
        """Keep the leaving rows' keys and values, end their streams, drop them from the batch
        (kept first, so a caller who sees the end can count on its prefix being there)."""
        leaving = [sequence for sequence, _ in ended]
        self._keep_prefixes(leaving)
        for sequence, reason in ended:
            self._finish(sequence, reason)
        self._drop(leaving)

    def _stream_text(self, sequence: _Sequence) -> bool:
        """Emit the new, complete characters; True when a stop string was reached."""
        delta, stopped = sequence.detokenizer.add(sequence.token_ids)
        sequence.stream._emit(delta)
        return stopped

    def _flush(self, sequence: _Sequence) -> None:
        """At the end, send held-back text that did not become a stop string."""
        sequence.stream._emit(sequence.detokenizer.flush())

    def _retire_cancelled(self) -> None:
        """End cancelled requests: the long prompt being prefilled, and rows of the batch."""
        if self._prefilling is not None and self._prefilling.stream.cancelled:
            self._finish(self._prefilling, "cancelled")
            with self._lock:
                self._prefilling = None
        cancelled = [s for s in self._active if s.stream.cancelled]
        if cancelled:
            self._retire([(sequence, "cancelled") for sequence in cancelled])

    def _drop(self, leaving: list[_Sequence]) -> None:
        with self._lock:
            keep = [i for i, s in enumerate(self._active) if s not in leaving]
            if not keep:
                self._active, self._cache, self._mask = [], None, None
                return
            assert self._mask is not None
            self._mask = batch.drop_rows(self._cache, self._mask, keep)
            self._active = [self._active[i] for i in keep]

    def _keep_prefixes(self, leaving: list[_Sequence]) -> None:
        """Copy the keys and values of leaving rows into the prefix cache: a conversation's
        next message, or a regenerated answer, starts with these tokens."""
        if not self._prefixes.budget_bytes or self._mask is None:
            return
        for row, sequence in enumerate(self._active):
            if sequence not in leaving:
                continue
            layers = batch.row_layers(self._cache, self._mask, row, sequence.length)
            if layers is None:
                continue
            ids = (sequence.prompt_ids + sequence.token_ids)[: sequence.length]
            with self._lock:
                self._prefixes.add(sequence.cache_scope, ids, layers)

    def _finish(self, sequence: _Sequence, reason: FinishReason, error: str | None = None) -> None:
        now = time.perf_counter()
        started = sequence.admitted_at or now
        completion = len(sequence.token_ids)
        elapsed = now - started
        sequence.stream._finish(
            GenerationStats(
                prompt_tokens=len(sequence.prompt_ids),
                completion_tokens=completion,
                time_to_first_token=(sequence.first_token_at - sequence.submitted_at)
                if sequence.first_token_at
                else None,
                tokens_per_second=completion / elapsed if elapsed > 0 else 0.0,
                finish_reason=reason,
                trimmed_messages=sequence.stream.trimmed_messages,
                error=error,
                cached_prompt_tokens=sequence.cached,
                decode_seconds=now - sequence.first_token_at if sequence.first_token_at else None,
            )
        )
