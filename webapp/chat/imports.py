"""A file of conversations to import, read and checked into plain values: nothing here writes.

Two formats are read: Parley's own JSON (``parley.conversation`` version 1, as
``webapp/chat/exports.py`` writes it: one conversation, or a list of them) and ChatGPT's
``conversations.json`` (a list of conversations, each a ``mapping`` of node id to
``{"message", "parent", "children"}`` and its ``current_node``). A Parley conversation's
project is carried by name, and its pin by the time it was pinned.

Everything is checked before anything is written, so a file is taken whole or not at
all. What cannot be read at all (too large, not UTF-8, not JSON, nested too deep, more
conversations or messages than the limits, neither format) is an ``ImportRefused`` whose
message is shown as it is. What Parley has no place for is left out and counted under a
reason the page shows: roles other than user and assistant (a system message's text
becomes the conversation's system prompt), parts that are not text, empty messages, and
messages cut off from their conversation's start (a parent that is not in the file, or
parents that loop). Text is kept as written, HTML and scripts included: the page renders
it through the sanitizer like any other message.

The messages come out in one list for the whole file, each pointing at its conversation
and its parent by position; a parent always comes before its children, and versions of
one message (siblings) in the order they were written, which is the order their rows are
created in and so the order Parley shows them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import HttpRequest

from webapp.chat.exports import FORMAT_NAME, FORMAT_VERSION
from webapp.chat.models import PROJECT_NAME_MAX_LENGTH, Conversation, Message

MAX_CONVERSATIONS = 10_000
MAX_MESSAGES = 200_000
IMPORTED_MODEL = "imported"
TITLE_MAX_LENGTH = 200
MODEL_NAME_MAX_LENGTH = 200

# Why something was left out, as the page says it (each with its count).
SKIPPED_ROLE = "messages of another role than user or assistant (tools, plug-ins…)"
SKIPPED_NOT_TEXT = "messages with no text (pictures, code runs, files…)"
SKIPPED_PARTS = "parts of messages that are not text (pictures, files…)"
SKIPPED_EMPTY = "empty messages"
SKIPPED_HIDDEN = "messages ChatGPT did not show (context it added itself)"
SKIPPED_MALFORMED = "entries that are not messages Parley can read"
SKIPPED_DUPLICATE = "messages whose id appears twice (the first was kept)"
SKIPPED_CUT_OFF = "messages cut off from their conversation (a parent missing from the file, or parents in a loop)"
SKIPPED_SETTINGS = "conversation settings out of range (the defaults were used)"
CLEANED_TEXT = "texts with characters that cannot be stored (NUL or half a surrogate pair), removed"

PARLEY_ENDED = frozenset({Message.Status.COMPLETE, Message.Status.INTERRUPTED, Message.Status.FAILED})


class ImportRefused(Exception):
    """A file that cannot be imported; the message says why, for the user."""


@dataclass(frozen=True)
class ImportedMessage:
    conversation: int  # position in ``ImportPlan.conversations``
    parent: int | None  # position in ``ImportPlan.messages``, always before this one
    role: str
    content: str
    status: str
    model_name: str


@dataclass(frozen=True)
class ImportedConversation:
    title: str
    system_prompt: str
    temperature: float
    top_p: float
    max_tokens: int
    created: datetime | None
    updated: datetime | None
    current_leaf: int | None  # position in ``ImportPlan.messages``
    project: str = ""  # the name of the importer's project to put it in; "" for none
    pinned_at: datetime | None = None


@dataclass
class ImportPlan:
    source: str  # "Parley" or "ChatGPT"
    conversations: list[ImportedConversation] = field(default_factory=list)
    messages: list[ImportedMessage] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def text_bytes(self) -> int:
        """What the import adds to its owner's storage, counted as the quota counts a
        conversation: the UTF-8 bytes of every message and system prompt."""
        return sum(len(message.content.encode()) for message in self.messages) + sum(
            len(conversation.system_prompt.encode()) for conversation in self.conversations
        )


class ImportUploadHandler(TemporaryFileUploadHandler):
    """Stops reading the file as soon as it passes ``PARLEY_IMPORT_MAX_BYTES``, so an
    oversized one is never kept whole; the view then says it was too large."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.PARLEY_IMPORT_MAX_BYTES:
            self.request.import_too_large = True  # type: ignore[union-attr]
            raise SkipFile
        return super().receive_data_chunk(raw_data, start)


def too_large_message() -> str:
    return f"That file is larger than {settings.PARLEY_IMPORT_MAX_BYTES // (1024 * 1024)} MB, the most Parley imports."


# ---- the file --------------------------------------------------------------------------


def read_import(data: bytes) -> ImportPlan:
    """The conversations in ``data``, checked; ``ImportRefused`` when it cannot be taken."""
    if len(data) > settings.PARLEY_IMPORT_MAX_BYTES:
        raise ImportRefused(too_large_message())
    if not data.strip():
        raise ImportRefused("That file is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(f"That file is not UTF-8 text (byte {error.start + 1:,} cannot be read).") from None
    try:
        document = json.loads(text)
    except RecursionError:
        # The decoder recurses once per level: refused here, not a crashed request.
        raise ImportRefused("That file's JSON is nested too deeply to be an export of conversations.") from None
    except ValueError as error:
        line = f" (line {error.lineno:,}, column {error.colno:,})" if isinstance(error, json.JSONDecodeError) else ""
        raise ImportRefused(f"That file is not valid JSON{line}.") from None
    return plan_from(document)


def plan_from(document: Any) -> ImportPlan:
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ImportRefused("That file holds no conversations.")
    if len(items) > MAX_CONVERSATIONS:
        raise ImportRefused(
            f"That file holds {len(items):,} conversations; at most {MAX_CONVERSATIONS:,} can be imported at once."
        )
    kinds = {_kind(item) for item in items}
    reader: Callable[[ImportPlan, dict[str, Any]], None]
    if kinds == {"parley"}:
        plan = ImportPlan(source="Parley")
        reader = _read_parley
    elif kinds == {"chatgpt"}:
        plan = ImportPlan(source="ChatGPT")
        reader = _read_chatgpt
    elif None in kinds and len(items) > 1:
        position = next(index for index, item in enumerate(items, start=1) if _kind(item) is None)
        raise ImportRefused(f"Item {position:,} of that file is not a conversation Parley can read.")
    elif None in kinds:
        raise ImportRefused(_unknown_format(items[0]))
    else:
        raise ImportRefused("That file mixes Parley's and ChatGPT's formats; import each on its own.")
    total = sum(_entry_count(item) for item in items)
    if total > MAX_MESSAGES:
        raise ImportRefused(f"That file holds {total:,} messages; at most {MAX_MESSAGES:,} can be imported at once.")
    for item in items:
        reader(plan, item)
    return plan


def _kind(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    if item.get("format") == FORMAT_NAME and isinstance(item.get("messages"), list):
        return "parley"
    if isinstance(item.get("mapping"), dict):
        return "chatgpt"
    return None


def _unknown_format(item: Any) -> str:
    if isinstance(item, dict) and item.get("format") == FORMAT_NAME and item.get("version") != FORMAT_VERSION:
        return f"That file is version {str(item.get('version'))[:20]} of Parley's format; this Parley reads version 1."
    return "That file is neither a Parley export (JSON) nor ChatGPT's conversations.json."


def _entry_count(item: dict[str, Any]) -> int:
    entries = item.get("messages") if "messages" in item else item.get("mapping")
    return len(entries) if isinstance(entries, list | dict) else 0


# ---- one tree of messages, either format ----------------------------------------------------


@dataclass
class _Node:
    key: Any
    parent: Any
    order: tuple[float, int]  # when it was written (unknown: last), then its place in the file
    # None: left out (``reason`` says why, unless the node is no message at all, as ChatGPT's root)
    role: str | None = None
    content: str = ""
    status: str = Message.Status.COMPLETE
    model_name: str = ""
    reason: str | None = None


def _add_tree(plan: ImportPlan, conversation: int, nodes: list[_Node], current: Any) -> int | None:
    """Add the kept messages of ``nodes`` to the plan, each under its nearest kept ancestor;
    returns the position of the one ``current`` is, or is under (None if neither)."""
    by_key: dict[Any, _Node] = {}
    for node in nodes:
        if node.key in by_key:
            plan.skipped[SKIPPED_DUPLICATE] += 1
        else:
            by_key[node.key] = node
    children: dict[Any, list[_Node]] = {}
    roots: list[_Node] = []
    for node in by_key.values():
        if node.parent is None:
            roots.append(node)
        elif node.parent in by_key and node.parent != node.key:
            children.setdefault(node.parent, []).append(node)
    # Walked with a stack, never recursion: a chain of 200,000 messages is as fine as 2.
    # A node that a walk from the roots never reaches has a missing parent or is in a loop.
    anchor: dict[Any, int | None] = {}  # each reached node's position, or its nearest kept ancestor's
    stack: list[tuple[_Node, int | None]] = [(root, None) for root in sorted(roots, key=_order, reverse=True)]
    while stack:
        node, above = stack.pop()
        if node.role is not None:
            plan.messages.append(
                ImportedMessage(
                    conversation=conversation,
                    parent=above,
                    role=node.role,
                    content=node.content,
                    status=node.status,
                    model_name=node.model_name,
                )
            )
            above = len(plan.messages) - 1
        elif node.reason:
            plan.skipped[node.reason] += 1
        anchor[node.key] = above
        stack.extend((child, above) for child in sorted(children.get(node.key, []), key=_order, reverse=True))
    cut_off = sum(1 for node in by_key.values() if node.key not in anchor and (node.role or node.reason))
    if cut_off:
        plan.skipped[SKIPPED_CUT_OFF] += cut_off
    return anchor.get(current) if _is_key(current) else None


def _order(node: _Node) -> tuple[float, int]:
    return node.order


def _is_key(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _clean(plan: ImportPlan, text: str) -> str:
    """``text`` without what PostgreSQL cannot store: NUL and unpaired surrogates."""
    if "\x00" in text:
        plan.skipped[CLEANED_TEXT] += 1
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        plan.skipped[CLEANED_TEXT] += 1
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _title(plan: ImportPlan, value: Any) -> str:
    title = " ".join(value.split()) if isinstance(value, str) else ""
    return _clean(plan, title)[:TITLE_MAX_LENGTH]


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 string (Parley) or seconds since 1970 (ChatGPT), as an aware datetime."""
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _sort_key(moment: datetime | None) -> float:
    return moment.timestamp() if moment else -math.inf


def _sort_time(moment: datetime | None) -> float:
    return moment.timestamp() if moment else math.inf


# ---- Parley's own format ---------------------------------------------------------------------


def _read_parley(plan: ImportPlan, document: dict[str, Any]) -> None:
    if document.get("version") != FORMAT_VERSION:
        raise ImportRefused(_unknown_format(document))
    index = len(plan.conversations)
    nodes = list(_parley_nodes(plan, document["messages"]))
    current = _add_tree(plan, index, nodes, document.get("current_leaf_id"))
    temperature, top_p, max_tokens = _parley_settings(plan, document.get("settings"))
    system_prompt = document.get("system_prompt")
    plan.conversations.append(
        ImportedConversation(
            title=_title(plan, document.get("title")),
            system_prompt=_clean(plan, system_prompt) if isinstance(system_prompt, str) else "",
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            created=_moment(document.get("created")),
            # when its last message was written
            updated=max(
                (_moment(m.get("created")) for m in document["messages"] if isinstance(m, dict)),
                key=_sort_key,
                default=None,
            ),
            current_leaf=current,
            project=_title(plan, document.get("project"))[:PROJECT_NAME_MAX_LENGTH].strip(),
            pinned_at=_moment(document.get("pinned_at")),
        )
    )


def _parley_nodes(plan: ImportPlan, messages: list[Any]) -> Iterator[_Node]:
    for position, entry in enumerate(messages):
        if not isinstance(entry, dict) or not _is_key(entry.get("id")):
            plan.skipped[SKIPPED_MALFORMED] += 1
            continue
        parent = entry.get("parent_id")
        if parent is not None and not _is_key(parent):
            plan.skipped[SKIPPED_MALFORMED] += 1
            continue
        node = _Node(key=entry["id"], parent=parent, order=(_sort_time(_moment(entry.get("created"))), position))
        role, content = entry.get("role"), entry.get("content")
        if role not in (Message.Role.USER, Message.Role.ASSISTANT):
            node.reason = SKIPPED_ROLE
        elif not isinstance(content, str):
            node.reason = SKIPPED_MALFORMED
        else:
            node.role, node.content = role, _clean(plan, content)
            if role == Message.Role.ASSISTANT:
                status = entry.get("status")
                # an answer still queued or being written when exported is never queued here
                node.status = status if status in PARLEY_ENDED else Message.Status.INTERRUPTED
                model_name = entry.get("model_name")
                model_name = _clean(plan, model_name)[:MODEL_NAME_MAX_LENGTH] if isinstance(model_name, str) else ""
                node.model_name = model_name or IMPORTED_MODEL
        yield node


def _parley_settings(plan: ImportPlan, values: Any) -> tuple[float, float, int]:
    """The conversation's settings where they are within what the settings form allows."""
    defaults = Conversation()
    fallback = (defaults.temperature, defaults.top_p, defaults.max_tokens)
    if not isinstance(values, dict):
        return fallback
    temperature, top_p, max_tokens = values.get("temperature"), values.get("top_p"), values.get("max_tokens")
    if (
        _is_number(temperature)
        and _is_number(top_p)
        and _is_number(max_tokens)
        and isinstance(max_tokens, int)
        and 0.0 <= temperature <= 2.0
        and 0.05 <= top_p <= 1.0
        and 16 <= max_tokens <= settings.PARLEY_CHAT_MAX_ANSWER_TOKENS
    ):
        return float(temperature), float(top_p), max_tokens
    plan.skipped[SKIPPED_SETTINGS] += 1
    return fallback


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ---- ChatGPT's conversations.json ----------------------------------------------------------


def _read_chatgpt(plan: ImportPlan, document: dict[str, Any]) -> None:
    conversation = document
    index = len(plan.conversations)
    system_prompts: list[str] = []
    nodes = list(_chatgpt_nodes(plan, conversation["mapping"], system_prompts))
    current = _add_tree(plan, index, nodes, conversation.get("current_node"))
    defaults = Conversation()
    plan.conversations.append(
        ImportedConversation(
            title=_title(plan, conversation.get("title")),
            system_prompt="\n\n".join(dict.fromkeys(system_prompts)),
            temperature=defaults.temperature,
            top_p=defaults.top_p,
            max_tokens=defaults.max_tokens,
            created=_moment(conversation.get("create_time")),
            updated=_moment(conversation.get("update_time")),
            current_leaf=current,
        )
    )


def _chatgpt_nodes(plan: ImportPlan, mapping: dict[str, Any], system_prompts: list[str]) -> Iterator[_Node]:
    for position, (key, entry) in enumerate(mapping.items()):
        if not isinstance(entry, dict):
            plan.skipped[SKIPPED_MALFORMED] += 1
            continue
        parent = entry.get("parent")
        if parent is not None and not _is_key(parent):
            plan.skipped[SKIPPED_MALFORMED] += 1
            continue
        message = entry.get("message")
        created = _moment(message.get("create_time")) if isinstance(message, dict) else None
        node = _Node(key=key, parent=parent, order=(_sort_time(created), position))
        if message is None:
            yield node  # the conversation's root, which holds no message
            continue
        if not isinstance(message, dict):
            node.reason = SKIPPED_MALFORMED
            yield node
            continue
        author, metadata = message.get("author"), message.get("metadata")
        role = author.get("role") if isinstance(author, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        text = _chatgpt_text(plan, message.get("content"))
        if role not in ("user", "assistant", "system"):
            node.reason = SKIPPED_ROLE
        elif role != "system" and metadata.get("is_visually_hidden_from_conversation") is True:
            node.reason = SKIPPED_HIDDEN
        elif text is None:
            node.reason = SKIPPED_NOT_TEXT
        elif role == "system":
            if text.strip():
                system_prompts.append(text)
        elif not text.strip():
            node.reason = SKIPPED_EMPTY
        else:
            node.role, node.content = role, text
            if role == Message.Role.ASSISTANT:
                slug = metadata.get("model_slug")
                slug = _clean(plan, slug)[:MODEL_NAME_MAX_LENGTH] if isinstance(slug, str) else ""
                node.model_name = slug or IMPORTED_MODEL
        yield node


def _chatgpt_text(plan: ImportPlan, content: Any) -> str | None:
    """The text of a message's content; None when it has none (a picture, a code run)."""
    if not isinstance(content, dict) or content.get("content_type") not in ("text", "multimodal_text"):
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        return None
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) < len(parts):
        plan.skipped[SKIPPED_PARTS] += len(parts) - len(texts)
    if not texts:
        return None
    return _clean(plan, "\n\n".join(part for part in texts if part))


def skipped_lines(skipped: Iterable[tuple[str, int]]) -> list[str]:
    """``"3 empty messages"``, for the page."""
    return [f"{count:,} {reason}" for reason, count in skipped]
