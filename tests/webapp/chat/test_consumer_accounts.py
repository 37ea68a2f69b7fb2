"""A user's sockets close when what they were opened with ends: the session, the password, the account."""

from __future__ import annotations

import re
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.conftest import PASSWORD
from tests.webapp.chat.conftest import Converse
from tests.webapp.sockets import opened, session_cookie, session_of, signed_in, socket_to
from webapp.accounts.models import User
from webapp.core.sockets import CREDENTIALS_CHANGED, SIGNED_OUT
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_db")]

NEW_PASSWORD = "a-new-and-longer-passphrase-7"


async def close_code(socket: WebsocketCommunicator) -> int:
    closed = await socket.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    await socket.disconnect()
    return int(closed["code"])


async def handshake(client: Client, path: str) -> tuple[bool, Any]:
    socket = socket_to(path, session_of(client))
    result = await socket.connect()
    await socket.disconnect()
    return result


@pytest.fixture
async def paths(user: User, converse: Converse) -> tuple[str, str]:
    """The socket paths of one of the user's conversations and one of their jobs."""
    conversation, _ = await database_sync_to_async(converse)()
    job = await Job.objects.acreate(owner=user, kind=Job.Kind.SENTIMENT)
    return f"/ws/chat/{conversation.pk}/", f"/ws/jobs/{job.pk}/"


async def test_logging_out_closes_that_sessions_sockets_and_no_other(user: User, paths: tuple[str, str]) -> None:
    leaving, staying = await signed_in(user), await signed_in(user)
    chat, job = await opened(paths[0], session_of(leaving)), await opened(paths[1], session_of(leaving))
    other = await opened(paths[0], session_of(staying))
    await database_sync_to_async(leaving.post)("/accounts/logout/")
    assert await close_code(chat) == SIGNED_OUT
    assert await close_code(job) == SIGNED_OUT
    assert await other.receive_nothing(timeout=0.5)
    await other.disconnect()


async def test_changing_the_password_closes_every_socket_and_only_the_changer_gets_back_in(
    user: User, paths: tuple[str, str]
) -> None:
    changer, elsewhere = await signed_in(user), await signed_in(user)
    sockets = [await opened(path, session_of(client)) for client in (changer, elsewhere) for path in paths]
    response = await database_sync_to_async(changer.post)(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    for socket in sockets:
        assert await close_code(socket) == CREDENTIALS_CHANGED
    # The page reconnects on that code: the browser that changed it is still signed in, the other is not.
    for path in paths:
        assert (await handshake(changer, path))[0]
        assert await handshake(elsewhere, path) == (False, 4401)


async def test_resetting_the_password_closes_every_socket(user: User, paths: tuple[str, str]) -> None:
    browser = await signed_in(user)
    sockets = [await opened(path, session_of(browser)) for path in paths]
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = await database_sync_to_async(default_token_generator.make_token)(user)
    resetter = Client()
    form = await database_sync_to_async(resetter.get)(f"/accounts/password/reset/{uid}/{token}/", follow=True)
    set_password_url = form.redirect_chain[-1][0]
    assert re.search(r"/set-password/$", set_password_url)
    response = await database_sync_to_async(resetter.post)(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    for socket in sockets:
        assert await close_code(socket) == CREDENTIALS_CHANGED
    assert await handshake(browser, paths[0]) == (False, 4401)


async def test_deactivating_the_account_closes_every_socket_for_good(user: User, paths: tuple[str, str]) -> None:
    browsers = [await signed_in(user), await signed_in(user)]
    sockets = [await opened(path, session_of(browser)) for browser in browsers for path in paths]

    def deactivate() -> None:
        stored = User.objects.get(pk=user.pk)
        stored.is_active = False
        stored.save()

    await database_sync_to_async(deactivate)()
    for socket in sockets:
        assert await close_code(socket) == SIGNED_OUT
    for browser in browsers:
        assert await handshake(browser, paths[0]) == (False, 4401)


async def test_deleting_the_account_closes_its_sockets(user: User, paths: tuple[str, str]) -> None:
    socket = await opened(paths[0], await session_cookie(user))
    await database_sync_to_async(lambda: User.objects.get(pk=user.pk).delete())()
    assert await close_code(socket) == SIGNED_OUT


async def test_other_saves_and_a_rolled_back_change_leave_the_sockets_open(
    user: User, make_user: Any, paths: tuple[str, str]
) -> None:
    socket = await opened(paths[0], await session_cookie(user))
    another = await database_sync_to_async(make_user)()

    def unrelated_changes() -> None:
        stored = User.objects.get(pk=user.pk)
        stored.first_name = "Alice"
        stored.save()
        with transaction.atomic():
            stored.set_password(NEW_PASSWORD)
            stored.is_active = False
            stored.save()
            transaction.set_rollback(True)
        stored.refresh_from_db()
        another.set_password(NEW_PASSWORD)  # someone else's password
        another.save()
        User.objects.only("email").get(pk=user.pk).save(update_fields=["email"])

    await database_sync_to_async(unrelated_changes)()
    signing_in = await database_sync_to_async(Client().post)(
        "/accounts/login/", {"username": user.email, "password": PASSWORD}
    )  # saves the user's last_login, and shows the password was kept
    assert signing_in.status_code == 302
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
