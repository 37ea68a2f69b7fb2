"""``/v1``: OpenAI's chat completions, embeddings and models, for the team's own tools;
and the page where a user makes and revokes the keys those tools use.

``/v1`` reads ``Authorization: Bearer <key>`` and nothing else: no session, no cookie, so
a page elsewhere cannot make a signed-in browser call it, and it needs no CSRF token
(hence ``csrf_exempt``). Every refusal is OpenAI's JSON error (``errors.py``).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.core import get_usage

from webapp.accounts.http import AuthedRequest
from webapp.accounts.models import User
from webapp.api import catalog, completions, embeddings, services
from webapp.api.errors import ApiError, over_limit, unauthorized
from webapp.api.models import ApiKey
from webapp.api.parameters import completion_parameters, embedding_parameters, json_body
from webapp.chat.models import Conversation, Message

# ---- /v1 ---------------------------------------------------------------------------------------


def _key_owner(request: HttpRequest) -> User:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise unauthorized("No API key: send it as 'Authorization: Bearer <key>' (make one on the API keys page).")
    user = services.api_key_user(secret=secret.strip())
    if user is None:
        raise unauthorized("That API key is not valid: it was revoked, or never existed.")
    request.user = user  # the per-user rate limit below counts by it
    return user


def _check_rate(request: HttpRequest) -> None:
    """The same count of messages a minute as the chat page's (one group), so a user's
    API and browser sends share one limit."""
    usage = get_usage(request, group="chat-generate", key="user", rate=settings.PARLEY_CHAT_RATE, increment=True)
    if usage is not None and usage["should_limit"]:
        raise over_limit(
            f"Too many requests: the limit is {settings.PARLEY_CHAT_RATE} messages, chat and API together.",
            retry_after=max(1, int(usage["time_left"])),
        )


@csrf_exempt
@login_not_required
@require_GET
def models(request: HttpRequest) -> JsonResponse:
    try:
        _key_owner(request)
    except ApiError as error:
        return error.response()
    offered = [*catalog.chat_models(), *catalog.embedding_models()]
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": catalog.MODELS_CREATED, "owned_by": "parley"}
                for name in offered
            ],
        }
    )


@csrf_exempt
@login_not_required
@require_POST
def chat_completions(request: HttpRequest) -> HttpResponseBase:
    try:
        user = _key_owner(request)
        parameters = completion_parameters(json_body(request.body))
        _check_rate(request)
        answer = completions.completion_start(user=user, parameters=parameters)
    except ApiError as error:
        return error.response()
    if parameters.stream:
        response = StreamingHttpResponse(
            completions.completion_events(answer=answer, parameters=parameters), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # a proxy in front should pass each event on as it comes
        return response
    connection.close()  # the wait below holds no pooled connection
    try:
        body = async_to_sync(completions.completion_whole)(answer=answer, model=parameters.model)
    except ApiError as error:
        return error.response()
    return JsonResponse(body)


@csrf_exempt
@login_not_required
@require_GET
def chat_completion(request: HttpRequest, completion_id: str) -> JsonResponse:
    """One of the key owner's own completions (``chatcmpl-<id>``); anyone else's is not found."""
    try:
        user = _key_owner(request)
        number = completion_id.removeprefix("chatcmpl-")
        answer = (
            Message.objects.filter(
                pk=int(number) if number.isdigit() else 0,
                role=Message.Role.ASSISTANT,
                conversation__owner=user,
                conversation__origin=Conversation.Origin.API,
            )
            .exclude(status__in=Message.IN_FLIGHT)
            .first()
        )
        if answer is None:
            raise ApiError(404, f"No chat completion '{completion_id}' of yours has ended.", code="not_found")
        state = completions.saved_state(answer_id=answer.pk)
        assert state is not None
    except ApiError as error:
        return error.response()
    return JsonResponse(completions.completion_body(answer=answer, model=answer.asked_model, state=state))


@csrf_exempt
@login_not_required
@require_POST
def embeddings_create(request: HttpRequest) -> JsonResponse:
    try:
        _key_owner(request)
        parameters = embedding_parameters(json_body(request.body))
    except ApiError as error:
        return error.response()
    embedded = embeddings.embed(parameters.texts)
    return JsonResponse(
        embeddings.embeddings_body(model=parameters.model, embedded=embedded, base64_encoded=parameters.base64)
    )


# ---- the API keys page --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def keys(request: AuthedRequest) -> HttpResponse:
    shown_secret = None
    if request.method == "POST":
        try:
            created = services.api_key_create(owner=request.user, name=request.POST.get("name", ""))
        except services.ApiKeyError as error:
            messages.error(request, str(error))
            return redirect("api:keys")
        # shown in this response only: the page that answers this POST is the one time it is seen
        shown_secret = created.secret
    context = {
        "keys": ApiKey.objects.filter(owner=request.user),
        "shown_secret": shown_secret,
        "base_url": request.build_absolute_uri("/v1"),
        "model": catalog.chat_models()[0],
    }
    return render(request, "api/keys.html", context)


@require_POST
def key_revoke(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id, owner=request.user)
    if services.api_key_revoke(key=key):
        messages.success(request, f"The key “{key.name}” is revoked: requests with it are refused from now on.")
    return redirect("api:keys")
