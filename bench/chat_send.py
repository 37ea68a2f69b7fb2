"""A send in a short and in a long conversation: the server's time when it answers with the
whole thread (and the page, as it used to, fetched the thread once more when the new
answer was announced) next to answering with only the new messages, in the same run.

    python -m bench.chat_send [--exchanges 2 10 40] [--sends 15]

It starts its own embedded Postgres and Redis under var/bench, like bench.review.
Requests go through Django's test client in this process: server time, without a network.
Sends take turns between the two ways, each undone before the next; figures are medians.
"""

from __future__ import annotations

import argparse

from bench.common import compared, embedded_django, median, parser, taking_turns, timed

ANSWER = (
    "Here is how it works:\n\n1. **First**, the water heats up and *evaporates*.\n2. Then it condenses.\n\n"
    "```python\ndef cycle(water):\n    return condense(evaporate(water))\n```\n\n"
) + "The cycle repeats, moving heat around the planet. " * 10


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--exchanges", type=int, nargs="+", default=[2, 10, 40], help="conversation lengths")
    arguments.add_argument("--sends", type=int, default=15, help="sends each way per length")
    args = arguments.parse_args()

    # DEBUG off, as `./parley run` serves: templates are parsed once, not at every request
    with embedded_django(DEBUG="0", SECRET_KEY="bench-" + "x" * 50, PARLEY_HTTPS="0", PARLEY_CHAT_RATE="100000/m"):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.test import Client

    from webapp.accounts.models import User
    from webapp.chat.models import Conversation, Message

    call_command("migrate", verbosity=0)
    User.objects.filter(email__endswith="@chat-bench.invalid").delete()
    user = User.objects.create_user(email="sender@chat-bench.invalid", password="x")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    hx = {"HX-Request": "true"}

    for exchanges in args.exchanges:
        conversation = Conversation.objects.create(owner=user, title="bench")
        parent = None
        for i in range(exchanges):
            question = Message.objects.create(
                conversation=conversation, role="user", content=f"Question {i}?", parent=parent
            )
            parent = Message.objects.create(
                conversation=conversation, role="assistant", content=ANSWER, status="complete", parent=question
            )
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=parent)
        assert parent is not None, "a conversation of at least one exchange"

        def send(only_new: bool, conversation: Conversation = conversation, leaf: Message = parent) -> float:
            """Server time of one send; the conversation is put back as it was afterwards."""
            data = {"content": "And then?"} | ({"shown": str(leaf.pk)} if only_new else {})
            url = f"/chat/{conversation.pk}/"

            def requests() -> None:
                response = client.post(f"{url}send", data, headers=hx)
                assert response.status_code == 200
                assert (response.get("HX-Reswap") == "beforeend") == only_new
                if not only_new:  # the page fetched the thread again when the answer was announced
                    assert client.get(f"{url}thread", headers=hx).status_code == 200

            elapsed = timed(requests)
            Message.objects.filter(conversation=conversation, pk__gt=leaf.pk).delete()
            Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)
            return elapsed

        send(True), send(False)  # warm up
        times = taking_turns(args.sends, {"before": lambda: send(False), "now": lambda: send(True)})
        before, now = median(times["before"]) * 1000, median(times["now"]) * 1000
        print(
            f"{exchanges:3d} exchanges: only the new messages "
            + compared(now, before, "ms", "with the whole thread + refetch", lower_is_better=True)
        )


if __name__ == "__main__":
    main()
