"""API keys: a user's secrets for ``/v1``, kept only as their SHA-256.

A key is 32 random bytes, so a fast hash is enough to make a stolen table useless (there
is nothing to guess, unlike a password); the first characters (``prefix``) are kept in
the clear so that the owner can tell their keys apart on the page. A revoked key stays,
marked, so its page keeps what it was used for and when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)  # sha256 of the whole key, hex
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "revoked_at"], name="api_key_owner_open")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
