"""The layers' import and write rules, read from the source with ``ast`` (nothing is imported).

- ``webapp/core/`` is plumbing every app stands on: it imports no feature app (it reaches
  the user model through ``settings.AUTH_USER_MODEL`` or ``get_user_model``).
- ``inference/`` knows nothing of the web: no Django, Channels, Celery or ``webapp``.
- An answer's status changes in one place, ``webapp/chat/answers.py``: no other module
  under ``webapp/`` writes ``Message.status``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = ROOT / "webapp"
# Every app under webapp/ but core is a feature app, those still to come included.
FEATURE_APPS = frozenset({path.parent.name for path in WEBAPP.glob("*/apps.py")} - {"core"}) | {
    "accounts",
    "api",
    "chat",
    "documents",
    "jobs",
    "review",
    "sentiment",
}
WEB_PACKAGES = ("django", "channels", "celery")
STATUS_WRITER = WEBAPP / "chat" / "answers.py"
# Query methods that write the keyword arguments they are given.
WRITING_METHODS = frozenset({"update", "create", "get_or_create", "update_or_create", "bulk_update"})
# The names a message goes by in this code base: message, answer, reply, new_message, …
MESSAGE_NAME = re.compile(r"(^|_)(message|answer|reply|question)s?$")


def module_name(path: Path) -> str:
    """``webapp.core.navigation``; a package's ``__init__`` keeps its name, so that a
    relative import in it resolves from the package itself."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imports(source: str, module: str = "") -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``source``, at any depth, relative ones resolved
    against ``module``; ``from a import b`` yields ``a.b``, as ``b`` may be a module."""
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{origin}.{alias.name}"


def feature_app_imports(source: str, module: str = "") -> list[tuple[int, str]]:
    """The imports of a feature app (``webapp.<app>``) in ``source``."""
    found = []
    for line, name in imports(source, module):
        parts = name.split(".")
        if parts[0] == "webapp" and len(parts) > 1 and parts[1] in FEATURE_APPS:
            found.append((line, name))
    return found


def web_imports(source: str, module: str = "") -> list[tuple[int, str]]:
    """The imports of Django, Channels, Celery (or their plug-ins) or ``webapp`` in ``source``."""
    found = []
    for line, name in imports(source, module):
        top = name.split(".")[0]
        if top == "webapp" or any(top == package or top.startswith(f"{package}_") for package in WEB_PACKAGES):
            found.append((line, name))
    return found


def _message_names(tree: ast.AST) -> set[str]:
    """The local names ``Message`` is imported as."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == "Message"
    }


def _receiver_names(node: ast.expr) -> Iterator[str]:
    """The names along a call's receiver: ``Message.objects.filter(...)`` gives
    filter, objects, Message."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            yield node.attr
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            if isinstance(node, ast.Name):
                yield node.id
            return


def _writes_status(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "status":
            return True
        if keyword.arg == "defaults" and isinstance(keyword.value, ast.Dict) and _names_status(keyword.value):
            return True
        if keyword.arg == "fields" and _names_status(keyword.value):
            return True
    # bulk_update(objects, ["status", ...])
    return len(call.args) > 1 and _names_status(call.args[1])


def _names_status(node: ast.expr) -> bool:
    """A literal list of field names, or a dict's keys, that holds "status"."""
    if isinstance(node, ast.Dict):
        names: list[ast.expr | None] = list(node.keys)
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        names = list(node.elts)
    else:
        return False
    return any(isinstance(name, ast.Constant) and name.value == "status" for name in names)


def _is_message(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return bool(MESSAGE_NAME.search(name.lower()))


def message_status_writes(source: str) -> list[tuple[int, str]]:
    """(line, code) of each write of a message's status in ``source``:

    - in a module that imports ``Message``, a call of ``update``, ``create``,
      ``get_or_create``, ``update_or_create`` or ``bulk_update`` that sets ``status``, and
      ``Message(status=…)``;
    - anywhere, a query through a conversation's ``messages`` that sets ``status``;
    - anywhere, ``X.status = …`` where X is named as a message (``message``, ``answer``, …).
    """
    tree = ast.parse(source)
    message_names = _message_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in message_names and _writes_status(node):
                found.append((node.lineno, ast.unparse(node)))
            elif isinstance(node.func, ast.Attribute) and node.func.attr in WRITING_METHODS and _writes_status(node):
                receiver = list(_receiver_names(node.func.value))
                # Job.objects.create(status=…) is another model's, even next to Message
                other_model = bool(receiver) and receiver[-1][:1].isupper() and receiver[-1] not in message_names
                through_messages = bool({"messages", "message_set"} & set(receiver))
                if through_messages or (message_names and not other_model):
                    found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if isinstance(part, ast.Attribute) and part.attr == "status" and _is_message(part.value):
                        found.append((node.lineno, ast.unparse(part)))
    return found


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "migrations" not in path.parts)


def report(findings: list[tuple[Path, int, str]], rule: str) -> str:
    lines = [f"{path.relative_to(ROOT)}:{line}: {code}" for path, line, code in findings]
    return f"{rule}:\n  " + "\n  ".join(lines)


# The checks on whole folders


def test_core_imports_no_feature_app() -> None:
    findings = [
        (path, line, f"imports {name}")
        for path in python_files(WEBAPP / "core")
        for line, name in feature_app_imports(path.read_text(), module_name(path))
    ]
    assert not findings, report(findings, "webapp/core/ must not import a feature app; let the app declare or ask")


def test_inference_imports_no_django() -> None:
    findings = [
        (path, line, f"imports {name}")
        for path in python_files(ROOT / "inference")
        for line, name in web_imports(path.read_text(), module_name(path))
    ]
    assert not findings, report(findings, "inference/ must not import Django, Channels, Celery or webapp")


def test_only_the_answer_lifecycle_writes_a_message_status() -> None:
    findings = [
        (path, line, code)
        for path in python_files(WEBAPP)
        if path != STATUS_WRITER
        for line, code in message_status_writes(path.read_text())
    ]
    assert not findings, report(findings, "only webapp/chat/answers.py may write Message.status")
    assert len(message_status_writes(STATUS_WRITER.read_text())) >= 5, "the check should see the lifecycle's writes"


# The checkers themselves, on snippets


@pytest.mark.parametrize(
    "source",
    [
        "from webapp.chat.models import Message",
        "import webapp.review.services",
        "from webapp import chat",
        "from webapp.accounts.models import User",
        "def f():\n    from webapp.documents import services",
        "from ..chat import models",
    ],
)
def test_a_feature_app_import_is_found(source: str) -> None:
    assert feature_app_imports(source, "webapp.core.navigation")


def test_a_relative_import_in_a_package_resolves_from_the_package() -> None:
    source = "from .chat import models"
    assert feature_app_imports(source, module_name(WEBAPP / "__init__.py")) == [(1, "webapp.chat.models")]
    assert not feature_app_imports(source, module_name(WEBAPP / "core" / "__init__.py"))


@pytest.mark.parametrize(
    "source",
    [
        "from webapp.core.events import publish",
        "from . import locks",
        "from webapp import settings",
        "from django.conf import settings",
        "from django.contrib.auth import get_user_model",
        "import chatty",
    ],
)
def test_core_and_library_imports_are_allowed(source: str) -> None:
    assert not feature_app_imports(source, "webapp.core.navigation")


@pytest.mark.parametrize(
    "source",
    [
        "import django",
        "from django.db import models",
        "def later():\n    import channels.layers",
        "from celery import shared_task",
        "import channels_redis",
        "from webapp.core.events import publish",
        "import django_htmx",
    ],
)
def test_a_web_import_is_found(source: str) -> None:
    assert web_imports(source, "inference.engine")


@pytest.mark.parametrize(
    "source",
    ["import torch", "from inference.config import InferenceConfig", "from . import sampling", "import djangoish"],
)
def test_inference_may_import_the_rest(source: str) -> None:
    assert not web_imports(source, "inference.engine")


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("from webapp.chat.models import Message\nMessage.objects.filter(pk=1).update(status='complete')", 2),
        ("from webapp.chat.models import Message\n\nMessage.objects.create(role='assistant', status='queued')", 3),
        ("from webapp.chat.models import Message\nqs = Message.objects.all()\nqs.update(status='failed')", 3),
        ("from webapp.chat.models import Message as M\nM.objects.bulk_update(rows, ['status', 'content'])", 2),
        ("from webapp.chat.models import Message\nMessage.objects.bulk_update(rows, fields=('status',))", 2),
        ("from webapp.chat.models import Message\nMessage.objects.update_or_create(pk=1, defaults={'status': 'x'})", 2),
        ("from webapp.chat.models import Message\nMessage(role='assistant', status='queued').save()", 2),
        ("conversation.messages.create(role='assistant', status='queued')", 1),
        ("def stop(answer):\n    answer.status = 'interrupted'\n    answer.save()", 2),
        ("message.status = Message.Status.COMPLETE", 1),
        ("self.message.status = 'failed'", 1),
        ("new_answer.status: str = 'queued'", 1),
    ],
)
def test_a_message_status_write_is_found(source: str, line: int) -> None:
    assert [found for found, _ in message_status_writes(source)] == [line]


@pytest.mark.parametrize(
    "source",
    [
        # other models' status, in a module without Message
        "from webapp.jobs.models import Job\nJob.objects.filter(pk=1).update(status='done')",
        "job.status = 'running'",
        "from webapp.chat.models import Message\nJob.objects.create(owner=user, status='queued')",
        "batch.status = 'done'",
        # reading a status, or filtering by it, is no write
        "from webapp.chat.models import Message\nMessage.objects.filter(status='generating').update(content='x')",
        "from webapp.chat.models import Message\nif answer.status == 'complete':\n    pass",
        "from webapp.chat.models import Message\nstatus = answer.status",
        "from webapp.chat.models import Message\nMessage.objects.bulk_update(rows, ['content'])",
    ],
)
def test_other_code_is_no_message_status_write(source: str) -> None:
    assert message_status_writes(source) == []
