"""Streaming chat generation with continuous batching.

The contract: ``Engine.submit(request)`` returns a ``Stream`` that yields text deltas;
``"".join(stream)`` is the whole answer and ``stream.stats`` its statistics.
``Engine.generate`` is exactly that join. Requests may be submitted from any number of
threads. One scheduler thread owns the model and, at every decoding step, admits
waiting requests into the batch (up to ``prefill_tokens`` prompt tokens a step, when
set: a longer prompt is prefilled that many tokens a step, so the answers already
streaming go on meanwhile) and retires finished or cancelled ones, so many chats share
one model copy. Requests that arrive while a group is prefilled are prefilled next,
before the decoding step (once in a row), so a crowd arriving over a few tens of
milliseconds waits one more prefill for its first tokens, not a prefill and a step.

The batch keeps one key/value cache per layer (grown in place, see kv_cache.py),
left-padded to the longest row. New requests are prefilled together and then padded
into the batch; a leaving row is dropped with an index select, and columns that became
padding for every row are cut away. Padding is masked, so a request's greedy output
does not depend on what else is in the batch.

A leaving row's keys and values are kept (prefix_cache.py), and a new prompt that
begins the same way (the next message of a conversation, a regenerated answer, the
same system prompt) is prefilled from where that kept prefix ends.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from inference.errors import InferenceError, InvalidRequestError
from inference.prefix_cache import Prefix, PrefixCache

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 512
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks: always produce max_new_tokens


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    params: SamplingParams = SamplingParams()
    # Requests share kept prefixes (prefix_cache.py) only within one scope: a chat server
    # gives each user their own, so how soon a first token comes says nothing of other users.
    cache_scope: str = ""

    @classmethod
    def of(
        cls, messages: Sequence[dict[str, str] | ChatMessage], *, cache_scope: str = "", **params: Any
    ) -> GenerationRequest:
        converted = tuple(m if isinstance(m, ChatMessage) else ChatMessage(m["role"], m["content"]) for m in messages)
        if "stop" in params:
            params["stop"] = tuple(params["stop"])
        return cls(messages=converted, params=SamplingParams(**params), cache_scope=cache_scope)


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None  # seconds from submit to the first token
    tokens_per_second: float
    finish_reason: FinishReason
    trimmed_messages: int = 0  # oldest turns left out to fit the model's window
    error: str | None = None
    cached_prompt_tokens: int = 0  # leading prompt tokens taken from an earlier request (prefix_cache.py)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    stats: GenerationStats


_END = object()


class Stream:
    """The deltas of one request, in order; iterate it from any one thread."""

    def __init__(
        self,
        request_id: int,
        engine: Engine,
        prompt_tokens: int,
        trimmed: int,
        wake: threading.Event | None = None,
    ) -> None:
        self.request_id = request_id
        self.prompt_tokens = prompt_tokens
        self.trimmed_messages = trimmed
        self._engine = engine
        self._events: queue.Queue[object] = queue.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._wake = wake  # set at the first text and at the end (see Engine.submit)
        self._has_text = False
        self.stats: GenerationStats | None = None

    def __iter__(self) -> Iterator[str]:
        while True:
            event = self._events.get()
            if event is _END:
                return
            assert isinstance(event, str)
            yield event

    def drain(self) -> tuple[str, bool]:
        """Without waiting: every delta produced since the last call, joined, and whether
        the request has ended (after which ``stats`` is set and nothing more comes).

        One thread can serve many streams this way, polling them together, instead of
        one waiting thread per stream.
        """
        parts: list[str] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                # every delta is queued before the request is marked finished
                return "".join(parts), self._finished.is_set()
            if event is _END:
                return "".join(parts), True
            assert isinstance(event, str)
            parts.append(event)

    def cancel(self) -> None:
        """Stop generating within one decoding step; the text already yielded stands."""
        if self._finished.is_set():
            raise InvalidRequestError(f"request {self.request_id} has already finished; there is nothing to cancel.")
        if self._cancelled.is_set():
            raise InvalidRequestError(f"request {self.request_id} was already cancelled.")
        self._cancelled.set()
        self._engine._wake()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def queue_position(self) -> int:
        """1-based place among requests waiting for a batch slot; 0 once generating."""
        return self._engine._position(self)

    def result(self) -> GenerationResult:
        text = "".join(self)
        assert self.stats is not None
        return GenerationResult(text=text, stats=self.stats)

    # called by the scheduler thread
    def _emit(self, delta: str) -> None:
        if delta:
            self._events.put(delta)
            if not self._has_text:
                self._has_text = True
                if self._wake is not None:
                    self._wake.set()

    def _finish(self, stats: GenerationStats) -> None:
        self.stats = stats
        self._finished.set()
        self._events.put(_END)
        if self._wake is not None:
            self._wake.set()


class _StopMatcher:
    """Finds stop strings in growing text without ever emitting part of one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)

    def cut(self, text: str, emitted: int) -> tuple[int, bool]:
        """Return how far text may be emitted, and whether a stop string was reached."""
        if not self.stops:
            return len(text), False
        search_from = max(0, emitted - max(len(s) for s in self.stops))
        found = [i for i in (text.find(s, search_from) for s in self.stops) if i >= 0]
        if found:
            return min(found), True
        # hold back a tail that could still grow into a stop string
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        return len(text) - hold, False


@dataclass
class _Sequence:
    """A request's state inside the scheduler."""

    stream: Stream
    prompt_ids: list[int]
    params: SamplingParams
    submitted_at: float
    stop_matcher: _StopMatcher
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
    # incremental detokenization: text is decoded from token_ids[prefix_offset:]
    prefix_offset: int = 0
    read_offset: int = 0
    text: str = ""
    emitted: int = 0  # characters of text already sent


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
    ) -> None:
        import torch

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
    def from_config(cls, config: Any = None, **options: Any) -> Engine:
        from inference.config import InferenceConfig
        from inference.models import chat_model_name, load_chat_model

        config = config or InferenceConfig.from_env()
        model, tokenizer = load_chat_model(config)
        options = {"prefix_cache_mb": config.prefix_cache_mb, **options}
        return cls(model, tokenizer, model_name=chat_model_name(config), **options)

    # ---- public API --------------------------------------------------------------

    def submit(self, request: GenerationRequest, *, wake: threading.Event | None = None) -> Stream:
        """Validate and queue a request; raises InvalidRequestError for a bad one.

        ``wake``, if given, is set when the stream has its first text and when it ends: a
        thread that serves many streams with ``drain()`` waits on it to pass a first token
        or an end on at once, and otherwise drains on its own clock.
        """
        self._validate(request)
        prompt_ids, trimmed = self._prompt(request)
        sequence = _Sequence(
            stream=Stream(next(self._ids), self, len(prompt_ids), trimmed, wake),
            prompt_ids=prompt_ids,
            params=request.params,
            submitted_at=time.perf_counter(),
            stop_matcher=_StopMatcher(request.params.stop),
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

    # ---- validation and prompts ----------------------------------------------------

    def _validate(self, request: GenerationRequest) -> None:
        params = request.params
        if not request.messages:
            raise InvalidRequestError("the request has no messages.")
        for index, message in enumerate(request.messages):
            if message.role not in ROLES:
                raise InvalidRequestError(
                    f"message {index} has role {message.role!r}; the roles are system, user and assistant."
                )
            if not isinstance(message.content, str) or not message.content.strip():
                raise InvalidRequestError(f"message {index} ({message.role}) is empty.")
        if request.messages[-1].role != "user":
            raise InvalidRequestError("the last message must be the user's.")
        if not 0 < params.max_new_tokens <= self.max_new_tokens_limit:
            raise InvalidRequestError(
                f"max_new_tokens must be between 1 and {self.max_new_tokens_limit}; got {params.max_new_tokens}."
            )
        if params.temperature < 0:
            raise InvalidRequestError(f"temperature must be 0 or more; got {params.temperature}.")
        if not 0 < params.top_p <= 1:
            raise InvalidRequestError(f"top_p must be in (0, 1]; got {params.top_p}.")

    def _encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=True
        )
        if hasattr(encoded, "keys"):  # a BatchEncoding
            encoded = encoded["input_ids"]
        return list(encoded)

    def _prompt(self, request: GenerationRequest) -> tuple[list[int], int]:
        """Token ids of the prompt, leaving out the oldest turns if it does not fit."""
        budget = self.max_context - request.params.max_new_tokens
        messages = list(request.messages)
        system = [m for m in messages[:1] if m.role == "system"]
        turns = messages[len(system) :]
        # A 200,000-character message cannot fit: refuse it before tokenizing the whole chat.
        last = turns[-1]
        if len(last.content) > budget * 8:
            raise InvalidRequestError(
                f"the message is {len(last.content):,} characters, far more than the model's window of "
                f"{self.max_context:,} tokens; shorten it."
            )
        ids = self._encode(system + turns)
        if len(ids) <= budget:
            return ids, 0
        return self._trimmed(system, turns, budget, request.params.max_new_tokens)

    def _trimmed(
        self, system: list[ChatMessage], turns: list[ChatMessage], budget: int, max_new_tokens: int
    ) -> tuple[list[int], int]:
        """The prompt without the fewest oldest turns that makes it fit, starting at a user
        message; returns its ids and how many turns were left out.

        Every try renders the chat template over what is kept (a sixth of a second for a
        150-exchange chat), so instead of dropping one turn at a time the search starts from
        the newest turns, doubling how many it keeps until they no longer fit, then halves
        the gap: a few short encodings however long the conversation.
        """
        starts = [index for index, message in enumerate(turns) if index > 0 and message.role == "user"]

        def kept(position: int) -> list[int] | None:
            ids = self._encode(system + turns[starts[position] :])
            return ids if len(ids) <= budget else None

        # invariant: starts[fits] fits; everything from starts[too_long] back (-1: all turns) does not
        too_long, fits = -1, len(starts) - 1
        best = kept(fits) if starts else None
        if best is None:
            alone = len(self._encode(system + turns[-1:]))
            raise InvalidRequestError(
                f"the prompt is {alone:,} tokens with the system prompt and the last message alone; "
                f"the model's window leaves {budget:,} for it with max_new_tokens={max_new_tokens}."
            )
        step = 1
        while fits - step > too_long:
            ids = kept(fits - step)
            if ids is None:
                too_long = fits - step
                break
            fits, best, step = fits - step, ids, step * 2
        while fits - too_long > 1:
            middle = (fits + too_long) // 2
            ids = kept(middle)
            if ids is None:
                too_long = middle
            else:
                fits, best = middle, ids
        return best, starts[fits]

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
        torch = self._torch
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
        kept = max(s.cached for s in sequences)
        longest = max(len(s.prompt_ids) - s.cached for s in sequences)
        input_ids = torch.full((len(sequences), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), kept + longest), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids = sequence.prompt_ids[sequence.cached :]
            input_ids[row, longest - len(ids) :] = torch.tensor(ids)
            mask[row, kept - sequence.cached : kept] = 1
            mask[row, kept + longest - len(ids) :] = 1
            sequence.length = len(sequence.prompt_ids)
            sequence.admitted_at = time.perf_counter()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, kept:]
        cache = self._seeded_cache(sequences, kept)
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
        """A new cache holding each row's kept prefix, right-aligned in ``width`` columns;
        empty when no row has one."""
        from inference.kv_cache import roomy_cache

        cache = roomy_cache()
        if not any(s.prefix for s in sequences):
            return cache
        some = next(s.prefix for s in sequences if s.prefix)
        for index, (keys, values) in enumerate(some.layers):
            shape = (len(sequences), keys.shape[1], width, keys.shape[3])
            layer_keys, layer_values = keys.new_zeros(shape), values.new_zeros(shape)
            for row, sequence in enumerate(sequences):
                if sequence.prefix:
                    row_keys, row_values = sequence.prefix.layers[index]
                    layer_keys[row, :, width - sequence.cached :] = row_keys[0, :, : sequence.cached]
                    layer_values[row, :, width - sequence.cached :] = row_values[0, :, : sequence.cached]
            cache.update(layer_keys, layer_values, index)
        return cache

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
        torch = self._torch
        with self._lock:
            if self._cache is None or self._mask is None or not self._active:
                self._cache, self._mask = cache, mask.to(self.device)
                self._active = list(sequences)
                return
            width = max(self._mask.shape[1], mask.shape[1])
            for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
                old_layer.keys = torch.cat(
                    [_left_pad(old_layer.keys, width, dim=2), _left_pad(new_layer.keys, width, dim=2)]
                )
                old_layer.values = torch.cat(
                    [_left_pad(old_layer.values, width, dim=2), _left_pad(new_layer.values, width, dim=2)]
                )
            self._mask = torch.cat([_left_pad(self._mask, width, dim=1), _left_pad(mask.to(self.device), width, dim=1)])
            self._active = self._active + sequences

    def _decode_step(self) -> None:
        torch = self._torch
        sequences = self._active
        assert self._mask is not None
        last_tokens = torch.tensor([[s.token_ids[-1]] for s in sequences], device=self.device)
        positions = torch.tensor([[s.length] for s in sequences], device=self.device)
        self._mask = torch.cat(
            [self._mask, torch.ones((len(sequences), 1), dtype=self._mask.dtype, device=self.device)], 1
        )
        output = self.model(
            input_ids=last_tokens,
            attention_mask=self._mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
        )
        for sequence in sequences:
            sequence.length += 1
        next_tokens = self._sample(output.logits[:, -1, :], sequences)
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
        decode = self.tokenizer.decode
        ids = sequence.token_ids
        before = decode(ids[sequence.prefix_offset : sequence.read_offset], skip_special_tokens=True)
        after = decode(ids[sequence.prefix_offset :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            sequence.text += after[len(before) :]
            sequence.prefix_offset = sequence.read_offset
            sequence.read_offset = len(ids)
        upto, stopped = sequence.stop_matcher.cut(sequence.text, sequence.emitted)
        if upto > sequence.emitted:
            sequence.stream._emit(sequence.text[sequence.emitted : upto])
            sequence.emitted = upto
        if stopped:
            sequence.text = sequence.text[:upto]
        return stopped

    def _flush(self, sequence: _Sequence) -> None:
        """At the end, send held-back text that did not become a stop string."""
        if sequence.emitted < len(sequence.text):
            sequence.stream._emit(sequence.text[sequence.emitted :])
            sequence.emitted = len(sequence.text)

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
        torch = self._torch
        with self._lock:
            keep = [i for i, s in enumerate(self._active) if s not in leaving]
            if not keep:
                self._active, self._cache, self._mask = [], None, None
                return
            index = torch.tensor(keep, device=self.device)
            assert self._mask is not None
            mask = self._mask.index_select(0, index)
            # columns that are padding for every remaining row can go
            first_used = int(mask.any(dim=0).nonzero()[0])
            mask = mask[:, first_used:]
            for layer in self._cache.layers:
                layer.keys = layer.keys.index_select(0, index)[:, :, first_used:]
                layer.values = layer.values.index_select(0, index)[:, :, first_used:]
            self._mask = mask
            self._active = [self._active[i] for i in keep]

    def _keep_prefixes(self, leaving: list[_Sequence]) -> None:
        """Copy the keys and values of leaving rows into the prefix cache: a conversation's
        next message, or a regenerated answer, starts with these tokens."""
        if not self._prefixes.budget_bytes or self._mask is None:
            return
        for row, sequence in enumerate(self._active):
            if sequence not in leaving:
                continue
            columns = self._mask[row].nonzero().squeeze(1)
            if len(columns) != sequence.length:  # not expected; keeping it would be wrong
                continue
            layers = [
                (layer.keys[row : row + 1, :, columns], layer.values[row : row + 1, :, columns])
                for layer in self._cache.layers
            ]
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
            )
        )


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    import torch

    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim)
