from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from inference import Engine, GenerationRequest, InvalidRequestError, ModelNotFoundError
from inference.config import InferenceConfig
from inference.models import chat_model_dir, choose_device, load_causal_lm
from inference.types import ChatMessage, SamplingParams
from tests.models import build_tiny_model, on_each_pass
from tests.oracles import one_at_a_time
from tests.waiting import wait_for

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def greedy(messages: list[dict[str, str]], tokens: int = 24, **extra: Any) -> GenerationRequest:
    return GenerationRequest.of(messages, max_new_tokens=tokens, temperature=0, **extra)


class Pacer:
    """A forward hook that lets the model run only the passes a test allows, so that the
    test looks at the engine between two known steps, however fast or loaded the machine."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._allowed = 0
        self._done = 0
        self._holding = False  # the scheduler waits in the hook, its earlier passes' tokens sent

    def __call__(self, *args: Any) -> None:
        with self._condition:
            self._holding = True
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._done < self._allowed)
            self._holding = False
            self._done += 1

    def run(self, passes: int) -> None:
        """Let ``passes`` more forward passes run; returns once their tokens are out."""
        with self._condition:
            self._allowed += passes
            self._condition.notify_all()
            assert self._condition.wait_for(lambda: self._done == self._allowed and self._holding, timeout=60)

    def release(self) -> None:
        """Let the model run freely from now on."""
        with self._condition:
            self._allowed = sys.maxsize
            self._condition.notify_all()


def test_streamed_deltas_join_to_the_non_streaming_result(real_engine: Engine) -> None:
    request = greedy(QUESTION, 32)
    deltas = list(real_engine.stream(request))
    whole = real_engine.generate(request)
    assert len(deltas) > 1
    assert "".join(deltas) == whole.text
    assert "Paris" in whole.text
    stats = whole.stats
    assert stats.finish_reason in ("stop", "length")
    assert stats.prompt_tokens > 10
    assert 0 < stats.completion_tokens <= 32
    assert stats.time_to_first_token is not None
    assert stats.time_to_first_token > 0
    assert stats.tokens_per_second > 0


def test_greedy_output_does_not_depend_on_the_batch(tiny_engine: Engine) -> None:
    request = greedy([{"role": "user", "content": "Tell me about rivers."}], 40)
    alone = tiny_engine.generate(request).text
    others = [
        greedy([{"role": "user", "content": "word " * n}], 10 + n) for n in (1, 7, 30, 3, 60)
    ]  # different lengths, so the batch is padded and rows leave at different steps
    first = [tiny_engine.submit(r) for r in others[:3]]
    target = tiny_engine.submit(request)
    later = [tiny_engine.submit(r) for r in others[3:]]  # join while the target is decoding
    together = target.result().text
    for stream in first + later:
        stream.result()
    assert together == alone
    assert len(alone) > 0


def test_a_crowd_admitted_in_groups_under_a_prefill_budget_gets_the_same_answers(chat_tokenizer: Any) -> None:
    requests = [greedy([{"role": "user", "content": "word " * n}], 12) for n in (2, 40, 9, 25)]
    unlimited = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, max_batch_size=8)
    # a budget smaller than any prompt: one request per step, a decoding step between each
    budgeted = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, max_batch_size=8, prefill_tokens=1)
    try:
        alone = [unlimited.generate(r).text for r in requests]
        streams = [budgeted.submit(r) for r in requests]
        results = [s.result() for s in streams]
        assert [r.text for r in results] == alone
        assert all(r.stats.completion_tokens == 12 for r in results)
    finally:
        unlimited.close()
        budgeted.close()


def test_requests_submitted_together_wait_for_each_other_and_share_one_prefill(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    rows: list[int] = []  # the rows of each forward pass: a prefill takes the new ones
    on_each_pass(model, lambda module, args, output: rows.append(args[0].shape[0]))
    engine = Engine(model, chat_tokenizer, max_batch_size=8)
    try:
        running = engine.submit(greedy([{"role": "user", "content": "Already talking."}], 400))
        while not rows:
            time.sleep(0.001)
        with engine.together():
            streams = [engine.submit(greedy([{"role": "user", "content": "word " * n}], 8)) for n in (1, 5, 9)]
            passes_before = len(rows)
            wait_for(lambda: len(rows) >= passes_before + 3, 60, "the engine to get there", interval=0.001)
            assert len(rows) > passes_before  # the running answer goes on meanwhile...
            assert set(rows[passes_before:]) == {1}  # ...alone
            assert all(stream.drain() == ("", False) for stream in streams)  # the new ones wait
        results = [stream.result() for stream in streams]
        assert all(result.stats.completion_tokens == 8 for result in results)
        assert 3 in rows[passes_before:]  # the three were prefilled in one pass
        running.cancel()
    finally:
        engine.close()


def test_requests_arriving_during_a_prefill_are_prefilled_before_the_next_step_once(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    engine = Engine(model, chat_tokenizer, max_batch_size=8)
    passes: list[tuple[int, int]] = []  # (rows, tokens per row) of each forward pass
    late = [greedy([{"role": "user", "content": f"Late question {n}."}], 8) for n in range(2)]
    streams: list[Any] = []

    def record(module: Any, args: Any, output: Any) -> None:
        passes.append(tuple(args[0].shape))
        if len(passes) <= len(late):  # a request comes during each of the first two prefills
            streams.append(engine.submit(late[len(passes) - 1]))

    on_each_pass(model, record)
    try:
        first = engine.submit(greedy([{"role": "user", "content": "First question."}], 8))
        results = [stream.result() for stream in [first, *streams]]
        assert all(result.stats.completion_tokens == 8 for result in results)
        prefill_first, prefill_second, step, prefill_third = passes[:4]
        assert prefill_first[0] == prefill_second[0] == 1
        assert prefill_second[1] > 1  # the second request's prefill came before any decoding step
        assert step == (2, 1)  # then a step for both, before the third request's prefill
        assert prefill_third[0] == 1
        assert prefill_third[1] > 1
    finally:
        engine.close()


def test_the_whole_text_is_the_decoded_tokens_and_never_a_broken_character(tiny_engine: Engine) -> None:
    # A random model emits arbitrary byte tokens, the hard case for incremental decoding.
    stream = tiny_engine.submit(greedy([{"role": "user", "content": "Emoji: 😀🎉 and ünïcödé"}], 80))
    deltas = list(stream)
    text = "".join(deltas)
    assert stream.stats is not None
    assert stream.stats.completion_tokens == 80
    complete = [d for d in deltas if "\ufffd" in d]
    assert complete == [] or "\ufffd" in text


def test_cancel_stops_the_stream_and_keeps_the_text_shown(tiny_engine: Engine) -> None:
    pacer = Pacer()
    on_each_pass(tiny_engine.model, pacer)
    try:
        other = tiny_engine.submit(greedy([{"role": "user", "content": "keep going"}], 60))
        stream = tiny_engine.submit(greedy([{"role": "user", "content": "long story"}], 500))
        shown: list[str] = []
        while len(shown) < 3:  # a step at a time, so each piece is one step's delta
            pacer.run(1)
            piece, _ = stream.drain()
            if piece:
                shown.append(piece)
        assert stream.cancel() is True  # while the model is held in the middle of a step
    finally:
        pacer.release()
    rest = list(stream)
    assert stream.stats is not None
    assert stream.stats.finish_reason == "cancelled"
    # at most the one step already under way when cancel arrived
    assert len(rest) <= 1
    assert stream.stats.completion_tokens < 10
    assert "".join(shown)
    # the other request is not disturbed
    result = other.result()
    assert result.stats.finish_reason == "length"
    assert result.stats.completion_tokens == 60


def test_cancelling_twice_is_a_clear_error_and_the_engine_keeps_serving(tiny_engine: Engine) -> None:
    with tiny_engine.together():  # held back, so that it is still running at the second cancel
        stream = tiny_engine.submit(greedy(QUESTION, 300))
        stream.cancel()
        with pytest.raises(InvalidRequestError, match="already cancelled"):
            stream.cancel()
    list(stream)
    assert stream.cancel() is False  # finished: nothing left to cancel
    assert tiny_engine.generate(greedy(QUESTION, 5)).stats.completion_tokens == 5


def test_cancelling_a_finished_stream_does_nothing_and_says_so(tiny_engine: Engine) -> None:
    stream = tiny_engine.submit(greedy(QUESTION, 5))
    result = stream.result()
    assert stream.cancel() is False
    assert not stream.cancelled
    assert stream.stats == result.stats
    assert stream.stats.finish_reason == "length"
    assert stream.drain() == ("", True)
    with tiny_engine.together():  # not started yet, so surely still running when cancelled
        running = tiny_engine.submit(greedy(QUESTION, 300))
        assert running.cancel() is True
    assert running.result().stats.finish_reason == "cancelled"
    assert running.cancel() is False


def test_many_concurrent_requests_from_threads_all_complete(tiny_engine: Engine) -> None:
    results: dict[int, Any] = {}

    def ask(n: int) -> None:
        results[n] = tiny_engine.generate(greedy([{"role": "user", "content": f"question {n} " * (n + 1)}], 5 + n))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == list(range(24))
    for n, result in results.items():
        assert result.stats.finish_reason == "length"
        assert result.stats.completion_tokens == 5 + n
        assert result.stats.prompt_tokens == tiny_engine.count_tokens(
            GenerationRequest.of([{"role": "user", "content": f"question {n} " * (n + 1)}]).messages
        )
        assert result.stats.time_to_first_token is not None
    assert tiny_engine.queue_length == 0


def test_a_full_batch_reports_each_waiting_request_its_place(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, max_batch_size=2)
    try:
        running = [engine.submit(greedy(QUESTION, 400)) for _ in range(2)]
        for stream in running:
            next(iter(stream))  # both are in the batch now
        waiting = [engine.submit(greedy(QUESTION, 5)) for _ in range(2)]
        assert [w.queue_position for w in waiting] == [1, 2]
        assert engine.queue_length == 2
        for stream in running:
            stream.cancel()
        assert all(w.result().stats.completion_tokens == 5 for w in waiting)
        assert waiting[0].queue_position == 0
    finally:
        engine.close()


def test_stop_strings_end_the_answer_without_showing_them(real_engine: Engine) -> None:
    plain = real_engine.generate(greedy(QUESTION, 32)).text
    assert "Paris" in plain
    stopped = real_engine.submit(greedy(QUESTION, 32, stop=["Paris"]))
    deltas = list(stopped)
    assert "".join(deltas) == plain[: plain.index("Paris")]
    assert stopped.stats is not None
    assert stopped.stats.finish_reason == "stop"


def test_a_long_conversation_is_trimmed_from_the_oldest_turns(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer), max_positions=300), chat_tokenizer)
    try:
        history: list[dict[str, str]] = [{"role": "system", "content": "SYSTEM-RULES stay."}]
        for n in range(20):
            history += [
                {"role": "user", "content": f"turn {n} " + "blah " * 10},
                {"role": "assistant", "content": "ok " * 10},
            ]
        history.append({"role": "user", "content": "latest question"})
        request = greedy(history, 20)
        stream = engine.submit(request)
        stream.result()
        assert stream.stats is not None
        assert stream.stats.trimmed_messages > 0
        assert stream.stats.prompt_tokens <= 300 - 20
        prompt = chat_tokenizer.decode(engine._prompt(request)[0])
        assert "SYSTEM-RULES stay." in prompt
        assert "latest question" in prompt
        assert "turn 0 " not in prompt
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("messages", "params", "message"),
    [
        ([], {}, "no messages"),
        ([{"role": "user", "content": "   "}], {}, "message 0 \\(user\\) is empty"),
        ([{"role": "wizard", "content": "hi"}], {}, "role 'wizard'"),
        (QUESTION, {"max_new_tokens": 0}, "max_new_tokens must be between 1 and"),
        (QUESTION, {"max_new_tokens": 10**6}, "max_new_tokens must be between 1 and"),
        (QUESTION, {"temperature": -0.1}, "temperature must be 0 or more"),
        (QUESTION, {"top_p": 0}, "top_p must be in \\(0, 1\\]"),
        (QUESTION, {"top_p": 1.5}, "top_p must be in \\(0, 1\\]"),
        ([{"role": "user", "content": "x" * 200_000}], {}, "200,000 characters"),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_engine_keeps_serving(
    tiny_engine: Engine, messages: list[dict[str, str]], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        tiny_engine.submit(GenerationRequest.of(messages, **params))
    assert tiny_engine.generate(greedy(QUESTION, 3)).stats.completion_tokens == 3


def test_an_engine_failure_marks_the_live_requests_failed_and_serving_goes_on(tiny_engine: Engine) -> None:
    # the third pass fails, a decoding step: every pass starts by embedding its input ids
    embeddings = tiny_engine.model.get_input_embeddings()
    original = embeddings.forward
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated device failure")
        return original(*args, **kwargs)

    embeddings.forward = flaky
    broken = tiny_engine.submit(greedy(QUESTION, 50)).result()
    assert broken.stats.finish_reason == "error"
    assert broken.stats.error is not None
    assert "simulated device failure" in broken.stats.error
    assert tiny_engine.generate(greedy(QUESTION, 4)).stats.completion_tokens == 4


def test_a_missing_model_folder_names_the_path(tmp_path: Path) -> None:
    config = InferenceConfig.from_env()
    missing = tmp_path / "nope"
    with pytest.raises(ModelNotFoundError, match=f"model folder {missing} .*does not exist"):
        chat_model_dir(type(config)(**{**config.__dict__, "chat_model": str(missing)}))


def test_a_corrupt_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    config = InferenceConfig.from_env()
    with pytest.raises(ModelNotFoundError, match=f"cannot load a causal language model from {tmp_path}"):
        load_causal_lm(tmp_path, choose_device(config), __import__("torch").float32)


def test_importing_inference_does_not_import_torch() -> None:
    code = "import sys, inference, inference.summarize, inference.sentiment; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


OPENMP_IDLE_CPU = """
import os, time
import inference, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
idle = 0.0
for _ in range(20):
    torch.mm(a, a)  # a parallel region; its worker thread then waits for the next one
    started = time.process_time()
    time.sleep(0.05)
    idle += time.process_time() - started
print(os.environ.get("OMP_WAIT_POLICY", "-"), round(idle, 3))
"""


def openmp_idle(**settings: str) -> tuple[str, float]:
    """(OMP_WAIT_POLICY as a model process sees it, CPU seconds it used while sleeping 1 s)"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run(
        [sys.executable, "-c", OPENMP_IDLE_CPU], env={**env, **settings}, capture_output=True, text=True, check=True
    )
    policy, seconds = result.stdout.split()
    return policy, float(seconds)


def test_model_processes_sleep_between_parallel_regions_unless_the_operator_chose() -> None:
    policy, idle = openmp_idle()
    assert policy == "PASSIVE"
    assert idle < 0.1  # of 1 s asleep
    # an operator's choice is kept, and takes effect: active threads spin through the sleeps
    policy, idle = openmp_idle(OMP_WAIT_POLICY="ACTIVE")
    assert policy == "ACTIVE"
    assert idle > 0.5
    assert openmp_idle(GOMP_SPINCOUNT="300000")[0] == "-"


def test_drain_returns_what_is_ready_without_waiting_and_then_the_end(tiny_engine: Engine) -> None:
    request = GenerationRequest.of([{"role": "user", "content": "hi"}], max_new_tokens=30, temperature=0)
    reference = tiny_engine.generate(request)
    with tiny_engine.together():  # nothing can be ready at the first poll
        stream = tiny_engine.submit(request)
        text, ended = stream.drain()
        assert (text, ended) == ("", False)
    polls = 1
    while not ended:
        piece, ended = stream.drain()
        text += piece
        polls += 1
        time.sleep(0.001)
    assert text == reference.text
    assert stream.stats is not None
    assert stream.stats.completion_tokens == 30
    assert polls > 1
    assert stream.drain() == ("", True)  # nothing more after the end


def test_a_wake_event_is_set_at_the_first_text_and_at_the_end_only(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    pacer = Pacer()
    on_each_pass(model, pacer)
    engine = Engine(model, chat_tokenizer, model_name="tiny")
    wake = threading.Event()
    try:
        stream = engine.submit(greedy([{"role": "user", "content": "hi"}], 80), wake=wake)
        while not wake.is_set():
            pacer.run(1)
        first, ended = stream.drain()
        assert first
        assert not ended
        wake.clear()
        pacer.run(20)
        more, ended = stream.drain()
        assert more  # tokens came meanwhile, without waking anyone
        assert not ended
        assert not wake.is_set()
        pacer.release()
        assert wake.wait(10)
        _, ended = stream.drain()
        assert ended
        assert stream.stats is not None
        assert stream.stats.completion_tokens == 80
    finally:
        pacer.release()
        engine.close()


def test_trimming_keeps_the_most_turns_that_fit_however_the_chat_runs(chat_tokenizer: Any) -> None:
    """The search for where to start matches dropping the oldest turn one at a time."""
    engine = Engine(build_tiny_model(len(chat_tokenizer), max_positions=400), chat_tokenizer)

    try:
        for exchanges, system, words in ((3, True, 30), (25, True, 12), (40, False, 5), (9, False, 60)):
            history = [ChatMessage("system", "Be brief.")] if system else []
            for n in range(exchanges):
                history += [
                    ChatMessage("user", f"question {n} " + "why " * (n % 7 + words)),
                    ChatMessage("assistant", "ok " * (n % 5 + words)),
                ]
            history += [ChatMessage("assistant", "an earlier note"), ChatMessage("user", "latest question")]
            for new_tokens in (20, 100, 180):
                request = GenerationRequest(tuple(history), SamplingParams(max_new_tokens=new_tokens, temperature=0))
                assert engine._prompt(request) == one_at_a_time(engine, history, engine.max_context - new_tokens)
    finally:
        engine.close()


@pytest.mark.parametrize("earlier_turns", [0, 6])
def test_a_system_prompt_that_leaves_no_room_is_a_clear_error(chat_tokenizer: Any, earlier_turns: int) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer), max_positions=300), chat_tokenizer)
    try:
        history = [{"role": "system", "content": "rule " * 400}]
        history += [{"role": ("user", "assistant")[n % 2], "content": f"turn {n}"} for n in range(earlier_turns)]
        history.append({"role": "user", "content": "hi"})
        with pytest.raises(InvalidRequestError, match="with the system prompt and the last message alone"):
            engine.submit(greedy(history, 20))
        assert engine.generate(greedy(QUESTION, 5)).stats.completion_tokens == 5
    finally:
        engine.close()


def test_a_long_prompt_prefilled_in_chunks_gets_the_same_answer(chat_tokenizer: Any) -> None:
    request = greedy([{"role": "user", "content": "Tell me everything. " + "word " * 150}], 30)
    whole = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer)
    chunked = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=16)
    alongside = greedy([{"role": "user", "content": "hi"}], 300)  # streaming all the while: chunks
    try:
        expected = whole.generate(request)
        expected_alongside = whole.generate(alongside)
        other = chunked.submit(alongside)
        result = chunked.generate(request)
        assert not other.finished
        assert other.result().text == expected_alongside.text
        assert result.stats.prompt_tokens > 10 * 16
        assert result.text == expected.text
        assert result.stats.completion_tokens == 30
    finally:
        whole.close()
        chunked.close()


def test_answers_already_streaming_go_on_while_a_long_prompt_is_prefilled(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=8)
    try:
        short = engine.submit(greedy([{"role": "user", "content": "hi"}], 10))
        started = time.perf_counter()
        long = engine.submit(greedy([{"role": "user", "content": "word " * 400}], 5))  # 50 chunks
        short.result()
        short_done = time.perf_counter()
        assert long.prompt_tokens > 400
        assert not long.finished
        long.result()
        assert long.stats is not None
        assert long.stats.time_to_first_token is not None
        # the short answer (10 steps) ended while the long prompt was still being prefilled;
        # prefilled whole, it would have had its first token after the second step
        assert short_done < started + long.stats.time_to_first_token
        assert long.stats.completion_tokens == 5
    finally:
        engine.close()


def test_a_short_message_need_not_wait_for_a_long_prompt_being_prefilled(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=48)
    try:
        streaming = engine.submit(greedy([{"role": "user", "content": "hi"}], 200))
        long = engine.submit(greedy([{"role": "user", "content": "word " * 800}], 5))  # 17 chunks
        waiting_long = engine.submit(greedy([{"role": "user", "content": "more " * 800}], 5))
        short = engine.submit(greedy([{"role": "user", "content": "hello"}], 5))  # within the budget
        short.result()
        assert not long.finished
        assert [s.result().stats.completion_tokens for s in (long, waiting_long, streaming)] == [5, 5, 200]
        assert short.stats is not None
        assert long.stats is not None
        assert waiting_long.stats is not None
        assert short.stats.completion_tokens == 5
        # one long prompt is prefilled at a time, in arrival order
        assert long.stats.time_to_first_token is not None
        assert waiting_long.stats.time_to_first_token is not None
        assert long.stats.time_to_first_token < waiting_long.stats.time_to_first_token
    finally:
        engine.close()


def test_a_failure_in_the_middle_of_a_chunked_prefill_fails_every_live_request(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=16)
    original = engine.model.forward

    def failing_on_the_third_chunk(*args: Any, **kwargs: Any) -> Any:
        positions = kwargs.get("position_ids")
        if positions is not None and positions.shape[-1] == 16 and int(positions[0, 0]) == 32:
            raise RuntimeError("simulated failure in a chunk")
        return original(*args, **kwargs)

    try:
        streaming = engine.submit(greedy([{"role": "user", "content": "hi"}], 200))
        engine.model.forward = failing_on_the_third_chunk
        long = engine.submit(greedy([{"role": "user", "content": "word " * 200}], 5))
        deadline = time.monotonic() + 60  # a request the failure forgot would never end
        while not (long.finished and streaming.finished) and time.monotonic() < deadline:
            time.sleep(0.01)
        for stream in (long, streaming):
            assert stream.finished
            stats = stream.result().stats
            assert stats.finish_reason == "error"
            assert "simulated failure in a chunk" in (stats.error or "")
        engine.model.forward = original
        again = engine.generate(greedy([{"role": "user", "content": "word " * 200}], 5))
        assert again.stats.completion_tokens == 5
    finally:
        engine.close()


def test_a_long_prompt_cancelled_while_it_is_prefilled_ends_there(chat_tokenizer: Any) -> None:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, prefill_tokens=8)
    original = engine.model.forward
    chunks_after_cancel: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        if long.cancelled and kwargs["input_ids"].shape[-1] == 8:
            chunks_after_cancel.append(1)
        return original(*args, **kwargs)

    pacer = Pacer()
    on_each_pass(engine.model, pacer)
    try:
        streaming = engine.submit(greedy([{"role": "user", "content": "hi"}], 150))
        long = engine.submit(greedy([{"role": "user", "content": "word " * 400}], 5))  # 50 chunks
        while long.queue_position:  # a step at a time until its chunks have begun
            pacer.run(1)
        engine.model.forward = counting
        long.cancel()
        pacer.release()
        result = long.result()
        assert len(chunks_after_cancel) <= 1  # stopped within a step, not after all its chunks
        assert result.stats.finish_reason == "cancelled"
        assert result.stats.completion_tokens == 0
        assert result.text == ""
        assert streaming.result().stats.completion_tokens == 150
        assert long.cancel() is False  # it has finished
        assert engine.generate(greedy([{"role": "user", "content": "word " * 100}], 3)).stats.completion_tokens == 3
    finally:
        pacer.release()
        engine.close()


@pytest.mark.parametrize(
    ("dtype", "quantize", "how"),
    [("float32", "none", "float32"), ("bfloat16", "none", "bfloat16"), ("float32", "int8", "int8")],
)
def test_the_recorded_model_name_says_how_the_model_runs(
    chat_tokenizer: Any, tmp_path: Path, dtype: str, quantize: str, how: str
) -> None:
    folder = tmp_path / "tiny-chat"
    build_tiny_model(len(chat_tokenizer)).save_pretrained(folder)
    chat_tokenizer.save_pretrained(folder)
    config = dataclasses.replace(
        InferenceConfig.from_env(), chat_model=str(folder), device="cpu", dtype=dtype, chat_quantize=quantize
    )
    engine = Engine.from_config(config)
    try:
        assert engine.model_name == f"tiny-chat ({how})"
        assert engine.generate(greedy(QUESTION, 3)).stats.completion_tokens == 3
    finally:
        engine.close()
