"""Names people give what they make (a project, a collection of documents): tidied and
checked the same way everywhere, and refused with the same words."""

from __future__ import annotations

import re


def tidied_name(name: str, *, noun: str, max_length: int, error: type[Exception]) -> str:
    """``name`` with each run of spaces, tabs or line breaks made one space and its ends
    trimmed; ``error``, whose message is for the user, when that leaves nothing or more than
    ``max_length`` characters (``noun`` says what is named: "project")."""
    name = re.sub(r"\s+", " ", name).strip()
    if not name:
        raise error(f"A {noun} needs a name.")
    if len(name) > max_length:
        raise error(f"A {noun}'s name can be at most {max_length} characters long; that one is {len(name):,}.")
    return name
