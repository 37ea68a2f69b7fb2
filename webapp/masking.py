"""Passwords out of what is printed: the one in a URL's user part, or in its ``password=``.

``DATABASE_URL`` and ``REDIS_URL`` carry their servers' passwords, and the launcher
prints URLs in its messages and relays every line its processes print; each of those
goes through ``masked``, which keeps the user, host and the rest, so a message still
says which server it means. It imports nothing of Django: the launcher runs first.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://netloc, the netloc ending where a path, query, fragment or space begins
_URL = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<netloc>[^/?#\s'\"]+)")
_PASSWORD_PARAMETER = re.compile(r"(?P<name>[?&;]password=)[^&#\s'\"]+", re.IGNORECASE)


def _mask_netloc(match: re.Match[str]) -> str:
    netloc = match["netloc"]
    if "@" not in netloc:
        return match[0]
    user_info, host = netloc.rsplit("@", 1)  # as urlsplit does: a password may hold an '@'
    if ":" not in user_info:
        return match[0]
    user = user_info.split(":", 1)[0]
    return f"{match['scheme']}{user}:{MASK}@{host}"


def masked(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    if "://" not in text and "password=" not in text.lower():
        return text
    return _PASSWORD_PARAMETER.sub(rf"\g<name>{MASK}", _URL.sub(_mask_netloc, text))
