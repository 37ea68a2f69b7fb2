"""Parley's user, who signs in with an e-mail address, and the invitations staff hand out."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone


class ParleyUserManager(UserManager["User"]):
    def _create_user_object(self, username: str | None, email: str | None, password: str | None, **extra: Any) -> User:
        # The e-mail is the login; the inherited username column is kept equal to it.
        email = self.normalize_email(email or username or "").lower()
        user = self.model(username=email, email=email, **extra)
        user.password = ""
        user.set_password(password)
        return user

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        user = self._create_user_object(None, email, password, **extra)
        user.save(using=self._db)
        return user

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    email = models.EmailField("e-mail address", unique=True)
    # Set on an account whose password someone else has seen (the first admin's one-time
    # password, printed in the terminal): every page asks for a new one until it is changed.
    must_change_password = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[ParleyUserManager] = ParleyUserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_unique_ci")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        self.username = self.email
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


def _invitation_expiry() -> Any:
    return timezone.now() + timedelta(days=settings.PARLEY_INVITATION_DAYS)


class Invitation(models.Model):
    """A sign-up link for one person: used once, before it expires.

    With an e-mail the link signs up that address only. ``used_at`` is set by a
    conditional UPDATE (``webapp.accounts.services``), so two people opening one link at
    the same moment cannot both get in.
    """

    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    email = models.EmailField(
        "e-mail address", blank=True, help_text="Leave empty to let anyone with the link sign up."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitation_used"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"invitation for {self.email or 'anyone'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def path(self) -> str:
        return f"{reverse('signup')}?invitation={self.token}"

    def refusal(self) -> str | None:
        """Why this link no longer signs anyone up, for the person holding it; None if it does."""
        if self.used_at is not None:
            return "This invitation has already been used. Ask whoever sent it for a new one."
        if self.expires_at <= timezone.now():
            return "This invitation has expired. Ask whoever sent it for a new one."
        return None


class TokenUsage(models.Model):
    """The tokens one user's answers took on one model on one day (``TIME_ZONE``'s day):
    the ledger that usage pages and the daily budget read.

    One row per (user, model, day), grown by ``usage.usage_record`` when an answer ends.
    Kept apart from the answers themselves, so that deleting a conversation does not give
    back the tokens it took.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_usage")
    # the model's name in the registry (settings.PARLEY_INFERENCE.models)
    model = models.CharField(max_length=100)
    day = models.DateField()
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "user", "model"]
        constraints = [models.UniqueConstraint(fields=["user", "model", "day"], name="accounts_usage_one_row_a_day")]
        indexes = [models.Index(fields=["day", "user"], name="accounts_usage_day_user")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.model}, {self.day}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
