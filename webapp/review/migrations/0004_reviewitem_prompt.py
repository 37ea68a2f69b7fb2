"""A chat item keeps the prompt its answer was given; items made before are filled here.

The fill rebuilds each prompt as the export did until now (the system prompt recorded
with the answer, then the branch above it, less failed and empty answers), with the
models as they were at this migration, so an upgraded installation exports the same.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

BATCH = 500


def _prompt(answer: Any, by_id: dict[int, Any]) -> list[dict[str, str]]:
    system = str((answer.settings or {}).get("system_prompt", "")).strip()
    prompt = [{"role": "system", "content": system}] if system else []
    path = []
    node = by_id.get(answer.parent_id) if answer.parent_id else None
    while node is not None:
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    for message in reversed(path):
        if message.role == "assistant" and (message.status == "failed" or not message.content):
            continue  # a failed or empty answer said nothing to the model
        prompt.append({"role": message.role, "content": message.content})
    return prompt


def fill_prompts(apps: Any, schema_editor: Any) -> None:
    ReviewItem = apps.get_model("review", "ReviewItem")
    Message = apps.get_model("chat", "Message")
    items = (
        ReviewItem.objects.filter(kind="chat", message__isnull=False)
        .select_related("message")
        .order_by("message__conversation_id", "pk")
    )
    conversation_id = None
    by_id: dict[int, Any] = {}
    filled: list[Any] = []
    # ordered by conversation: each conversation's messages are read once
    for item in items.iterator(chunk_size=BATCH):
        answer = item.message
        if answer.conversation_id != conversation_id:
            conversation_id = answer.conversation_id
            by_id = {
                message.pk: message
                for message in Message.objects.filter(conversation_id=conversation_id).only(
                    "pk", "parent_id", "role", "content", "status"
                )
            }
        item.prompt = _prompt(answer, by_id)
        filled.append(item)
        if len(filled) >= BATCH:
            ReviewItem.objects.bulk_update(filled, ["prompt"])
            filled = []
    ReviewItem.objects.bulk_update(filled, ["prompt"])


class Migration(migrations.Migration):
    dependencies = [("review", "0003_sentiment_item_in_sentiment_app"), ("chat", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="reviewitem",
            name="prompt",
            field=models.JSONField(blank=True, db_default=[], default=list),
        ),
        migrations.RunPython(fill_prompts, migrations.RunPython.noop),
    ]
