"""Create the first admin account if none exists (used by ``./parley run``)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from webapp.accounts.services import admin_ensure


class Command(BaseCommand):
    help = "Create the first admin from PARLEY_ADMIN_EMAIL / PARLEY_ADMIN_PASSWORD, or with a one-time password."

    def handle(self, *args: Any, **options: Any) -> None:
        email = os.environ.get("PARLEY_ADMIN_EMAIL") or "admin@localhost"
        user, generated = admin_ensure(email=email, password=os.environ.get("PARLEY_ADMIN_PASSWORD"))
        if user is None:
            return
        if generated:
            self.stdout.write(f"Created admin {email} with the one-time password: {generated}")
            self.stdout.write("Parley asks for a new password at the first log-in.")
        else:
            self.stdout.write(f"Created admin {email} with the password from PARLEY_ADMIN_PASSWORD.")
