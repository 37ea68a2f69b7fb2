"""Time to first token as a conversation grows: prefix cache on against every prompt whole.

    python -m bench.prefix_cache [--turns 8] [--answer-tokens 120]

One conversation grows turn by turn as a chat does, each answer going back into the next
prompt. At every turn the same prompt goes to two engines on the same model, one keeping
prefixes (the default) and one prefilling every prompt whole, alternating which goes
first; then the last answer is regenerated on both. Greedy, one process, one request at a
time. Prints a line per turn and ends with
``ttft_ms_cached=<a> ttft_ms_whole=<b> speedup=<b/a> regenerate_ms_cached=<c> regenerate_ms_whole=<d>``,
the first three over the turns after the first (medians).
"""

from __future__ import annotations

from bench.common import median, parser
from inference import Engine, GenerationRequest, GenerationResult
from inference.config import InferenceConfig
from inference.models import load_chat_model

QUESTIONS = [
    "How do rivers form?", "Why do some rivers flood every spring?", "What lives at the bottom of a river?",
    "How do people measure how much water a river carries?", "Why are river deltas so fertile?",
    "How do dams change a river?", "What makes a river change its course?", "Summarize what we discussed.",
    "Which of these matters most for farmers?", "What should a student read next?",
]  # fmt: skip


def ask(engine: Engine, messages: list[dict[str, str]], tokens: int) -> GenerationResult:
    return engine.generate(GenerationRequest.of(messages, max_new_tokens=tokens, temperature=0))


def ms(result: GenerationResult) -> float:
    return (result.stats.time_to_first_token or 0.0) * 1000


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--turns", type=int, default=8)
    arguments.add_argument("--answer-tokens", type=int, default=120)
    args = arguments.parse_args()
    model, tokenizer = load_chat_model(InferenceConfig.from_env())
    cached = Engine(model, tokenizer)
    whole = Engine(model, tokenizer, prefix_cache_mb=0)
    for engine in (cached, whole):  # warm up; then nothing kept from it
        ask(engine, [{"role": "user", "content": "Hello"}], 4)
        engine.clear_prefix_cache()

    messages: list[dict[str, str]] = []
    cached_ms: list[float] = []
    whole_ms: list[float] = []
    for turn in range(args.turns):
        messages.append({"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]})
        order = [(cached, cached_ms), (whole, whole_ms)]
        results = {}
        for engine, figures in order if turn % 2 == 0 else order[::-1]:
            results[id(engine)] = result = ask(engine, messages, args.answer_tokens)
            figures.append(ms(result))
        answer = results[id(cached)]
        print(
            f"turn {turn + 1}: prompt {answer.stats.prompt_tokens} tokens, {answer.stats.cached_prompt_tokens} kept; "
            f"first token {cached_ms[-1]:.0f} ms kept, {whole_ms[-1]:.0f} ms whole",
            flush=True,
        )
        messages.append({"role": "assistant", "content": answer.text})

    messages.pop()  # regenerate the last answer: the same prompt again
    regenerate_cached = ms(ask(cached, messages, args.answer_tokens))
    regenerate_whole = ms(ask(whole, messages, args.answer_tokens))
    cached.close()
    whole.close()
    a, b = median(cached_ms[1:]), median(whole_ms[1:])
    print(
        f"ttft_ms_cached={a:.0f} ttft_ms_whole={b:.0f} speedup={b / a:.2f} "
        f"regenerate_ms_cached={regenerate_cached:.0f} regenerate_ms_whole={regenerate_whole:.0f}"
    )


if __name__ == "__main__":
    main()
