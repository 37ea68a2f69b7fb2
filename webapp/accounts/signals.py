"""Websockets close when what they were opened with ends (codes in ``webapp/core/sockets.py``).

- Logging out closes the sockets of that browser session.
- A new password (changed, reset, set by staff, or upgraded to a new hash) closes every
  socket of the user: Django signs out the other sessions with it, and a socket would
  otherwise keep listening as the user until it closed of itself.
- Deactivating or deleting the account closes every socket of the user.

A change is told once it is committed, so a change that is rolled back closes nothing,
and a page that reconnects at once is checked against the saved account. A write that
bypasses ``save()`` (``QuerySet.update``) is not seen: Parley changes passwords and
``is_active`` only through ``save()``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from webapp.accounts.models import User
from webapp.core.events import publish
from webapp.core.sockets import CREDENTIALS_CHANGED, SIGNED_OUT, session_closed, session_group, user_group


def _close_user_sockets(user_id: int, code: int) -> None:
    transaction.on_commit(partial(publish, user_group(user_id=user_id), session_closed(code=code)))


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        publish(session_group(session_key=session_key), session_closed(code=SIGNED_OUT))


def _credentials(user: User) -> tuple[str | None, bool | None]:
    # Read from the instance's own fields: a field left out of the query (``only()``)
    # is None here rather than loaded with a query of its own.
    return user.__dict__.get("password"), user.__dict__.get("is_active")


@receiver(post_init, sender=User)
def remember_credentials(sender: type[User], instance: User, **kwargs: Any) -> None:
    # What the row held when loaded, to tell after a save whether either changed.
    instance._saved_credentials = _credentials(instance)  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def close_sockets_on_credentials_change(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    password_before, active_before = getattr(instance, "_saved_credentials", (None, None))
    password, active = instance._saved_credentials = _credentials(instance)  # type: ignore[attr-defined]
    if created:
        return
    if active_before and active is False:
        _close_user_sockets(instance.pk, SIGNED_OUT)
    elif password_before is not None and password is not None and password != password_before:
        _close_user_sockets(instance.pk, CREDENTIALS_CHANGED)


@receiver(post_delete, sender=User)
def close_sockets_on_delete(sender: type[User], instance: User, **kwargs: Any) -> None:
    _close_user_sockets(instance.pk, SIGNED_OUT)
