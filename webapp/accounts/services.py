"""Writes to accounts: sign-up under the installation's policy, invitations, the first admin."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from webapp.accounts.models import Invitation, User

UNKNOWN_INVITATION = "This invitation link is not valid. Check that it was copied whole, or ask for a new one."
OTHER_ADDRESS = "This invitation is for another e-mail address; sign up with the address it was sent to."
SIGNUP_CLOSED = "Sign-up is closed on this Parley. Ask its administrator for an account."
INVITATION_NEEDED = "Sign-up on this Parley is by invitation: ask a member of staff for a link."


class SignupRefused(Exception):
    """A sign-up that the policy or the invitation does not allow; the message is for the user."""


@transaction.atomic
def user_create(*, email: str, password: str) -> User:
    return User.objects.create_user(email=email, password=password)


def invitation_refusal(*, token: str) -> str | None:
    """Why a sign-up through this token would be refused; None when it would be let in."""
    invitation = Invitation.objects.filter(token=token).first() if token else None
    return UNKNOWN_INVITATION if invitation is None else invitation.refusal()


@transaction.atomic
def invitation_create(*, created_by: User, email: str = "") -> Invitation:
    return Invitation.objects.create(created_by=created_by, email=email)


def _invitation_use(*, token: str, email: str) -> Invitation:
    """Mark the invitation used, or refuse: one conditional UPDATE, so of two sign-ups through
    one link at the same moment exactly one gets in."""
    now = timezone.now()
    usable = Invitation.objects.filter(token=token, used_at=None, expires_at__gt=now)
    if usable.filter(Q(email="") | Q(email=email)).update(used_at=now):
        return Invitation.objects.get(token=token)
    refusal = invitation_refusal(token=token)
    raise SignupRefused(refusal or OTHER_ADDRESS)


@transaction.atomic
def user_sign_up(*, email: str, password: str, invitation_token: str = "") -> User | None:
    """Create an account under ``PARLEY_SIGNUP``; None when the address already has one.

    The caller shows the same page either way, so the form never tells a stranger which
    addresses have accounts; the owner of an existing one is told by e-mail instead. An
    invitation is used up in both cases, for the same reason.
    """
    if settings.PARLEY_SIGNUP == "closed":
        raise SignupRefused(SIGNUP_CLOSED)
    invitation = None
    if settings.PARLEY_SIGNUP == "invite":
        if not invitation_token:
            raise SignupRefused(INVITATION_NEEDED)
        invitation = _invitation_use(token=invitation_token, email=email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
    except IntegrityError:  # the address has an account (perhaps made a moment ago)
        transaction.on_commit(lambda: _tell_the_owner(email))
        return None
    if invitation is not None:
        Invitation.objects.filter(pk=invitation.pk).update(used_by=user)
    return user


def _tell_the_owner(email: str) -> None:
    send_mail(
        "Someone tried to sign up to Parley with your address",
        "Someone, perhaps you, tried to make a Parley account with this e-mail address, which already "
        "has one. Nothing was changed. If it was you, log in, or reset your password from the log-in page.",
        None,
        [email],
    )


@transaction.atomic
def admin_ensure(*, email: str, password: str | None) -> tuple[User | None, str | None]:
    """Create the first admin if there is none.

    Returns the new admin and, when no password was given, the one-time password made
    for it; ``(None, None)`` when an admin already exists.
    """
    if User.objects.filter(is_superuser=True).exists():
        return None, None
    generated = None
    if not password:
        generated = secrets.token_urlsafe(12)
        password = generated
    admin = User.objects.create_superuser(email=email, password=password, must_change_password=bool(generated))
    return admin, generated


def password_changed(*, user: User) -> None:
    """The account's owner chose a password of their own: nothing asks for one any more."""
    if user.must_change_password:
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        user.must_change_password = False
