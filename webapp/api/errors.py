"""Refusals of ``/v1``, in OpenAI's JSON shape, so that its clients show them as they would
OpenAI's own: ``{"error": {"message", "type", "param", "code"}}`` with the matching status."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    """A request ``/v1`` refuses; ``message`` says what is wrong as a caller can act on it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="parley"'
        return response


def bad_parameter(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key")


def over_limit(message: str, *, retry_after: int) -> ApiError:
    return ApiError(429, message, type="rate_limit_exceeded", code="rate_limit_exceeded", retry_after=retry_after)


def out_of_budget(message: str, *, retry_after: int) -> ApiError:
    # OpenAI's own type and code for a spent quota; its clients raise RateLimitError on the 429
    return ApiError(429, message, type="insufficient_quota", code="insufficient_quota", retry_after=retry_after)


def no_worker(*, model: str) -> ApiError:
    return ApiError(
        503,
        f"No generation worker is running for the model '{model}', so nothing can be written "
        f"now; start one (manage.py generation_worker --model {model}) or try again later.",
        type="server_error",
        code="no_worker",
        retry_after=10,
    )
