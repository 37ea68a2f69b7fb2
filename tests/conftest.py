"""Shared fixtures. The test command points DATABASE_URL and REDIS_URL at real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

if TYPE_CHECKING:
    from webapp.accounts.models import User

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="session")
def chat_tokenizer() -> Any:
    from tests.models import load_chat_tokenizer

    return load_chat_tokenizer()


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    from webapp.accounts.models import User

    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = PASSWORD, **extra: Any) -> User:
        return User.objects.create_user(email=email or f"user{next(counter)}@example.com", password=password, **extra)

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user("alice@example.com")


@pytest.fixture
def staff_user(make_user: Callable[..., User]) -> User:
    return make_user("staff@example.com", is_staff=True)


@pytest.fixture
def logged_in_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def llama_server() -> Any:
    """llama.cpp's OpenAI-compatible server on the packaged SmolLM2 GGUF, for the session."""
    from tests.upstream import LlamaServer

    server = LlamaServer()
    yield server
    server.stop()
