"""Parley's user: people sign in with their e-mail address."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


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
