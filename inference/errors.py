"""Errors the engine raises; each message names the problem and how to fix it."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class for every error raised by ``inference``."""


class ModelNotFoundError(InferenceError):
    """A configured model folder is missing or is not a usable model."""


class InvalidRequestError(InferenceError, ValueError):
    """A request the engine refuses: bad messages or sampling parameters."""


class EmptyTextError(InvalidRequestError):
    """A text to classify or summarize is empty or only whitespace."""


class CancelledError(InferenceError):
    """The caller asked to stop; work in flight was cancelled."""
