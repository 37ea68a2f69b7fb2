"""Chat pages and htmx partials. Each view looks its objects up scoped to the user, except
a share link's page, which its token opens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget
from django_ratelimit.core import is_ratelimited

from webapp.accounts.http import AuthedRequest
from webapp.chat import documents, exports, imports, search, selectors, services
from webapp.chat.forms import (
    FeedbackForm,
    ImportForm,
    MessageForm,
    ProjectDeleteForm,
    ProjectForm,
    RenameForm,
    SettingsForm,
)
from webapp.chat.models import Conversation, Message, Project
from webapp.chat.selectors import ThreadEntry
from webapp.core.redirects import safe_redirect_url
from webapp.documents import quotas

MAX_CHARS = settings.PARLEY_CHAT_MAX_MESSAGE_CHARS
# The latest conversations a project's page lists (the sidebar lists its first few).
PROJECT_PAGE_CONVERSATIONS = 200
RATE_MESSAGE = "You are sending messages faster than this server allows ({rate}). Wait a minute and try again."


def _sidebar(request: AuthedRequest) -> dict[str, Any]:
    """The sidebar: grouped (pinned, projects, dates), or a flat list of the archive
    (searching is ``search``'s view)."""
    archived = request.GET.get("archived") == "1"
    if archived:
        groups = []
        conversations = selectors.conversations_for(user=request.user, archived=archived)[:200]
        projects = list(selectors.projects_for(user=request.user))
    else:
        groups = selectors.sidebar_groups(user=request.user)
        conversations = Conversation.objects.none()
        projects = [group.project for group in groups if group.project]
    return {
        "conversations": conversations,
        "groups": groups,
        "projects": projects,  # for the menu's Move
        "archived": archived,
        "current_id": _int_or_none(request.GET.get("current") or request.POST.get("current")),
    }


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _page(request: AuthedRequest, conversation: Conversation | None, **extra: Any) -> HttpResponse:
    context = {
        **_sidebar(request),
        "current_id": conversation.pk if conversation else None,
        "conversation": conversation,
        "thread": selectors.thread(conversation=conversation) if conversation else [],
        "form": extra.pop("form", None) or MessageForm(),
        "settings_form": extra.pop("settings_form", None)
        or (SettingsForm(instance=conversation) if conversation else None),
        "max_chars": MAX_CHARS,
        "search_orders": search.ORDERS,
        "attached": documents.attached_documents(conversation=conversation) if conversation else [],
        "attachable": documents.attachable_documents(conversation=conversation, owner=request.user),
        "attached_collections": documents.attached_collections(conversation=conversation) if conversation else [],
        "attachable_collections": documents.attachable_collections(conversation=conversation, owner=request.user),
        **extra,
    }
    return render(request, "chat/conversation.html", context, status=extra.get("status", 200))


def _thread(
    request: AuthedRequest,
    conversation: Conversation,
    entries: list[ThreadEntry] | None = None,
    partial: str = "thread",
) -> HttpResponse:
    """The thread; with ``partial="messages"``, just ``entries``, to go into the page as they are."""
    thread = selectors.thread(conversation=conversation) if entries is None else entries
    context = {"conversation": conversation, "thread": thread, "max_chars": MAX_CHARS}
    return render(request, f"chat/conversation.html#{partial}", context)


def _shown(request: AuthedRequest) -> int | None:
    """The last message the page shows, as its script tells (``shown``); None if unknown."""
    try:
        return int(request.POST["shown"])
    except (KeyError, ValueError):
        return None


def _refused(request: AuthedRequest, text: str, conversation: Conversation | None = None) -> HttpResponse:
    """Say what is wrong next to the composer (htmx) or as a flash message."""
    if request.htmx:
        response = render(request, "chat/_error.html", {"error": text}, status=422)
        return reswap(retarget(response, "#chat-error"), "innerHTML")
    messages.error(request, text)
    return redirect(reverse("chat:conversation", args=[conversation.pk]) if conversation else reverse("chat:index"))


def chosen_ids(request: AuthedRequest, name: str, refusal: str) -> list[int]:
    """The ids ticked in the form's ``name`` boxes; ``ChatError(refusal)`` for anything else."""
    values = request.POST.getlist(name)
    if not all(value.isdigit() for value in values):
        raise services.ChatError(refusal)
    return [int(value) for value in values]


def first_error(form: Form) -> str:
    return str(next(iter(form.errors.values()))[0])


def _rate_limited(request: AuthedRequest) -> bool:
    return is_ratelimited(
        request, group="chat-generate", key="user", rate=settings.PARLEY_CHAT_RATE, method="POST", increment=True
    )


@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    """A new chat; with ``?project=``, one to be made in that project of the user's."""
    project_id = request.GET.get("project")
    project = selectors.project_get(user=request.user, project_id=project_id) if project_id else None
    inheritance = services.conversation_inheritance(project=project)
    return _page(
        request,
        None,
        new_in_project=project,
        inheritance=inheritance,
        inherited_documents=documents.owned_documents(owner=request.user, document_ids=inheritance.document_ids),
        inherited_collections=documents.owned_collections(
            owner=request.user, collection_ids=inheritance.collection_ids
        ),
    )


@require_GET
def conversation_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "chat/conversation.html#conversation_list", _sidebar(request))


@require_POST
def start(request: AuthedRequest) -> HttpResponse:
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _refused(request, first_error(form))
    if _rate_limited(request):
        return _refused(request, RATE_MESSAGE.format(rate=settings.PARLEY_CHAT_RATE))
    project_id = request.POST.get("project")
    project = selectors.project_get(user=request.user, project_id=project_id) if project_id else None
    try:
        conversation, _ = services.conversation_start(
            owner=request.user,
            content=form.cleaned_data["content"],
            project=project,
            document_ids=chosen_ids(request, "documents", "Choose among your own documents."),
            collection_ids=chosen_ids(request, "collections", "Choose among your own collections."),
        )
    except services.ChatError as error:
        return _refused(request, str(error))
    for notice in services.conversation_inheritance(project=project).notices:
        messages.warning(request, notice)
    url = reverse("chat:conversation", args=[conversation.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def conversation(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The conversation; with ``?message=<id>`` (a search result), on the branch that holds
    that message, which the page scrolls to and highlights."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    found_id = None
    if "message" in request.GET:
        try:
            found = selectors.message_get(
                user=request.user, message_id=request.GET["message"], conversation=conversation
            )
        except Http404:
            found = None  # a message since deleted, or never this conversation's: the conversation as it is
        if found is not None:
            found_id = found.pk
            if not selectors.branch_holds(conversation=conversation, message_id=found.pk):
                # shown from now on, as the version arrows would: a send continues what is on screen
                services.branch_switch(message=found)
    return _page(request, conversation, found_id=found_id)


@require_GET
def search_results(request: AuthedRequest) -> HttpResponse:
    """Messages matching ``q``, in place of the sidebar's list (htmx) or on the chat page;
    a query that cannot be run says why, and lists nothing."""
    raw = request.GET.get("q", "")
    if not raw.strip():
        if request.htmx:
            return render(request, "chat/conversation.html#conversation_list", _sidebar(request))
        return redirect("chat:index")
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    order = request.GET.get("order") or search.NEWEST
    context: dict[str, Any] = {"query": raw, "order": order}
    try:
        context["results"] = search.search_messages(
            user=request.user, query=search.parse_query(raw), page=page, order=order
        )
    except search.SearchRefused as refusal:
        context["search_error"] = str(refusal)
    status = 422 if "search_error" in context else 200
    if not request.htmx:
        return _page(request, None, **context, status=status)
    partial = "search_hits" if page > 1 and "results" in context else "search_results"
    return render(request, f"chat/conversation.html#{partial}", context, status=status)


@require_GET
def export(request: AuthedRequest, conversation_id: int, extension: str) -> HttpResponse:
    """The conversation as a download: ``md`` the branch shown, ``json`` every branch."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    if extension not in exports.CONTENT_TYPES:
        raise Http404("No such export format.")
    if extension == "md":
        body = exports.conversation_markdown(conversation=conversation)
    else:
        body = exports.conversation_json(conversation=conversation)
    filename = exports.export_filename(conversation=conversation, extension=extension)
    return HttpResponse(
        body,
        content_type=exports.CONTENT_TYPES[extension],
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


@require_GET
def thread(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    return _thread(request, selectors.conversation_get(user=request.user, conversation_id=conversation_id))


@require_GET
def message(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    entries = selectors.thread(conversation=conversation)
    entry = next((e for e in entries if e.message.pk == message_id), None)
    if entry is None:
        # not on the branch being shown (another tab switched): show the whole thread instead
        return reswap(retarget(_thread(request, conversation, entries), "#thread"), "outerHTML")
    context = {"conversation": conversation, "entry": entry, "max_chars": MAX_CHARS}
    return render(request, "chat/conversation.html#message", context)


# Draws only what a new answer changed on a page that shows the branch as it was; None when
# the page shows something else (another tab moved on).
Update = Callable[[Message], HttpResponse | None]


def _answering(
    request: AuthedRequest,
    conversation: Conversation,
    queue_answer: Callable[[], Message],
    update: Update | None = None,
) -> HttpResponse:
    """Rate-limit, queue an answer, and show it; or say why not, changing nothing."""
    if _rate_limited(request):
        return _refused(request, RATE_MESSAGE.format(rate=settings.PARLEY_CHAT_RATE), conversation)
    try:
        answer = queue_answer()
    except services.ChatError as error:
        return _refused(request, str(error), conversation)
    conversation = answer.conversation  # as locked and updated by the service: no second read
    if not request.htmx:
        return redirect(conversation_url(conversation))
    # Drawing only the change keeps a send as quick in a long conversation as in a short one.
    changed = update(answer) if update else None
    return changed if changed is not None else _thread(request, conversation)


def conversation_url(conversation: Conversation) -> str:
    return reverse("chat:conversation", args=[conversation.pk])


@require_POST
def send(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _refused(request, first_error(form), conversation)

    def appended(answer: Message) -> HttpResponse | None:
        # the question and its answer go below the message they follow, if that is the page's last
        question = answer.parent
        assert question is not None
        if _shown(request) != question.parent_id:
            return None
        new = selectors.thread_entries(conversation=answer.conversation, messages=[question, answer])
        return reswap(_thread(request, answer.conversation, new, partial="messages"), "beforeend")

    return _answering(
        request,
        conversation,
        lambda: services.message_send(conversation=conversation, content=form.cleaned_data["content"]),
        appended,
    )


@require_POST
def regenerate(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    answer = selectors.message_get(user=request.user, message_id=message_id, conversation=conversation)

    def replaced(new: Message) -> HttpResponse | None:
        # the new version takes the old one's place, if that is the page's last message
        if _shown(request) != answer.pk:
            return None
        entries = selectors.thread_entries(conversation=new.conversation, messages=[new])
        new_version = _thread(request, new.conversation, entries, partial="messages")
        return reswap(retarget(new_version, f"#message-{answer.pk}"), "outerHTML")

    return _answering(request, conversation, lambda: services.message_regenerate(answer=answer), replaced)


@require_POST
def edit(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    question = selectors.message_get(user=request.user, message_id=message_id, conversation=conversation)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _refused(request, first_error(form), conversation)
    return _answering(
        request, conversation, lambda: services.message_edit(question=question, content=form.cleaned_data["content"])
    )


@require_POST
def switch(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    services.branch_switch(
        message=selectors.message_get(user=request.user, message_id=message_id, conversation=conversation)
    )
    conversation.refresh_from_db()
    return _thread(request, conversation) if request.htmx else redirect(conversation_url(conversation))


@require_POST
def stop(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    answer = selectors.message_get(user=request.user, message_id=message_id, conversation=conversation)
    try:
        services.message_stop(answer=answer)
    except services.ChatError as error:
        return _refused(request, str(error), conversation)
    return HttpResponse(status=204) if request.htmx else redirect(conversation_url(conversation))


@require_POST
def feedback(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    answer = selectors.message_get(user=request.user, message_id=message_id, conversation=conversation)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _refused(request, f"Feedback not saved: {first_error(form)}", conversation)
    try:
        services.feedback_set(
            answer=answer, user=request.user, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"]
        )
    except services.ChatError as error:
        return _refused(request, str(error), conversation)
    answer.refresh_from_db()
    if not request.htmx:
        return redirect(conversation_url(conversation))
    return render(request, "chat/conversation.html#feedback", {"conversation": conversation, "m": answer})


@require_POST
def update_settings(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    # A copy for the form: a refused form must not leave its values on the page's conversation.
    form = SettingsForm(request.POST, instance=Conversation.objects.get(pk=conversation.pk))
    if not form.is_valid():
        return _page(request, conversation, settings_form=form, settings_open=True, status=422)
    values = form.cleaned_data
    services.conversation_update_settings(
        conversation=conversation,
        model=values["model"],
        system_prompt=values["system_prompt"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        max_tokens=values["max_tokens"],
    )
    messages.success(request, "Settings saved; they apply to the next answer.")
    return redirect(conversation_url(conversation))


@require_POST
def rename(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    form = RenameForm(request.POST)
    try:
        if not form.is_valid():
            raise services.ChatError(first_error(form))
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    except services.ChatError as error:
        messages.error(request, str(error))
    return redirect(safe_redirect_url(request, request.POST.get("next"), fallback=conversation_url(conversation)))


@require_POST
def archive(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    archived = request.POST.get("archived") != "0"
    services.conversation_set_archived(conversation=conversation, archived=archived)
    messages.success(request, f"“{conversation}” {'archived' if archived else 'restored'}.")
    return redirect("chat:index")


@require_POST
def delete(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    title = str(conversation)
    services.conversation_delete(conversation=conversation)
    messages.success(request, f"“{title}” deleted.")
    return redirect("chat:index")


@require_POST
def move(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """Into the user's project ``project``, or out of any when it is empty; from the
    conversation's menu (a redirect) or a drop in the sidebar (htmx: the sidebar redrawn)."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    project_id = request.POST.get("project", "")
    project = selectors.project_get(user=request.user, project_id=project_id) if project_id else None
    services.conversation_move(conversation=conversation, project=project)
    if request.htmx:
        return render(request, "chat/conversation.html#conversation_list", _sidebar(request))
    if project:
        messages.success(request, f"“{conversation}” moved into “{project}”.")
    else:
        messages.success(request, f"“{conversation}” is in no project now.")
    return redirect(safe_redirect_url(request, request.POST.get("next"), fallback=conversation_url(conversation)))


@require_POST
def pin(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    services.conversation_set_pinned(conversation=conversation, pinned=request.POST.get("pinned") != "0")
    return redirect(safe_redirect_url(request, request.POST.get("next"), fallback=conversation_url(conversation)))


# ---- projects ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def projects(request: AuthedRequest) -> HttpResponse:
    """The user's projects, and a new one made."""
    form = ProjectForm(request.POST or None, owner=request.user)
    error = ""
    if request.method == "POST":
        try:
            if not form.is_valid():
                raise services.ChatError(first_error(form))
            project = services.project_create(owner=request.user, **_project_values(form))
        except services.ChatError as refused:
            error = str(refused)
        else:
            messages.success(request, f"Project “{project}” made. Start a chat in it, or move conversations into it.")
            return redirect("chat:project", project.pk)
    context = {"projects": selectors.projects_with_counts(user=request.user), "form": form, "error": error}
    return render(request, "chat/projects.html", context, status=422 if error else 200)


@require_http_methods(["GET", "POST"])
def project(request: AuthedRequest, project_id: int) -> HttpResponse:
    """One project: renamed, what new chats in it start with set, or (from here) deleted."""
    project = selectors.project_get(user=request.user, project_id=project_id)
    if request.method == "POST":
        form = ProjectForm(request.POST, owner=request.user, held_model=project.model)
        try:
            if not form.is_valid():
                raise services.ChatError(first_error(form))
            services.project_update(project=project, **_project_values(form))
        except services.ChatError as refused:
            return _project_page(request, project, form=form, error=str(refused))
        messages.success(request, f"Project “{project}” saved.")
        return redirect("chat:project", project.pk)
    return _project_page(request, project)


def _project_values(form: ProjectForm) -> dict[str, Any]:
    values = form.cleaned_data
    return {
        "name": values["name"],
        "system_prompt": values["system_prompt"],
        "model": values["model"],
        "document_ids": values["documents"],
        "collection_ids": values["collections"],
    }


def _project_page(
    request: AuthedRequest,
    project: Project,
    *,
    form: ProjectForm | None = None,
    delete_form: ProjectDeleteForm | None = None,
    error: str = "",
) -> HttpResponse:
    context = {
        "project": project,
        "form": form
        or ProjectForm(
            owner=request.user,
            held_model=project.model,
            initial={
                "name": project.name,
                "system_prompt": project.system_prompt,
                "model": project.model,
                "documents": list(project.documents.values_list("pk", flat=True)),
                "collections": list(project.collections.values_list("pk", flat=True)),
            },
        ),
        "delete_form": delete_form or ProjectDeleteForm(initial={"conversations": ProjectDeleteForm.KEEP}),
        "other_projects": selectors.projects_for(user=request.user).exclude(pk=project.pk),
        "conversations": selectors.project_conversations(project=project)[:PROJECT_PAGE_CONVERSATIONS],
        "error": error,
    }
    return render(request, "chat/project.html", context, status=422 if error else 200)


@require_POST
def project_delete(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get(user=request.user, project_id=project_id)
    form = ProjectDeleteForm(request.POST)
    if not form.is_valid():
        return _project_page(request, project, delete_form=form, error=first_error(form))
    move_to = None
    if form.cleaned_data["conversations"] == ProjectDeleteForm.MOVE:
        move_to = selectors.project_get(user=request.user, project_id=form.cleaned_data["into"])
    try:
        moved = services.project_delete(project=project, move_to=move_to)
    except services.ChatError as refused:
        return _project_page(request, project, delete_form=form, error=str(refused))
    held = f"{moved} conversation{'' if moved == 1 else 's'}"
    if move_to:
        messages.success(request, f"Project “{project}” deleted; its {held} moved into “{move_to}”.")
    else:
        messages.success(
            request,
            f"Project “{project}” deleted; its {held} {'is' if moved == 1 else 'are'} kept outside any project.",
        )
    return redirect("chat:projects")


# ---- importing -----------------------------------------------------------------------------


@csrf_exempt  # only until the upload handler is set: _import_page checks the token
@require_http_methods(["GET", "POST"])
def import_conversations(request: AuthedRequest) -> HttpResponse:
    """The import page, and a file sent to it: taken whole, or refused with the reason."""
    # Set before the body is read: the file is dropped as soon as it passes the import's
    # own limit (the documents' smaller one does not apply here).
    request.upload_handlers = [imports.ImportUploadHandler(request)]
    return _import_page(request)


@csrf_protect
def _import_page(request: AuthedRequest) -> HttpResponse:
    if request.method != "POST":
        return _import_render(request, ImportForm())
    form = ImportForm(request.POST, request.FILES)
    if getattr(request, "import_too_large", False):
        return _import_render(request, form, error=imports.too_large_message())
    if not form.is_valid():
        return _import_render(request, form, error=first_error(form))
    upload = form.cleaned_data["file"]
    try:
        plan = imports.read_import(upload.read())
    except imports.ImportRefused as error:
        return _import_render(request, form, error=str(error))
    finally:
        upload.close()
    try:
        result = services.conversations_import(owner=request.user, plan=plan)
    except imports.ImportRefused as error:  # past the storage quota
        return _import_render(request, form, error=str(error))
    return _import_render(request, ImportForm(), result=result)


def _import_render(
    request: AuthedRequest, form: ImportForm, *, error: str = "", result: services.ImportResult | None = None
) -> HttpResponse:
    context = {
        "form": form,
        "error": error,
        "result": result,
        "skipped": imports.skipped_lines(result.skipped.most_common()) if result else [],
        "max_mb": settings.PARLEY_IMPORT_MAX_BYTES // (1024 * 1024),
        "usage": quotas.storage_usage(owner_id=request.user.pk),
    }
    return render(request, "chat/import.html", context, status=422 if error else 200)


# ---- share links ---------------------------------------------------------------------------


@require_POST
def share(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    shared = services.conversation_share(conversation=conversation)
    messages.success(request, f"Share link for “{shared}” created. It shows the conversation as it is now.")
    return redirect(f"{reverse('chat:shared_list')}#share-{shared.pk}")


@require_GET
def shared_list(request: AuthedRequest) -> HttpResponse:
    shares = [
        (share, request.build_absolute_uri(reverse("chat:shared", args=[share.token])))
        for share in selectors.shares_for(user=request.user)
    ]
    context = {"shares": shares, "public": settings.PARLEY_PUBLIC_SHARE_LINKS}
    return render(request, "chat/shared_list.html", context)


@login_not_required
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    # Signed-in users only, unless the operator opened links to anyone; the login page
    # comes before the token is looked at, so it tells nothing about the token either.
    if not request.user.is_authenticated and not settings.PARLEY_PUBLIC_SHARE_LINKS:
        return redirect_to_login(request.get_full_path())
    share = selectors.share_get(token=token)
    response = render(request, "chat/shared.html", {"share": share})
    # a revoked link must stop working at once, not live on in a cache
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_POST
def shared_revoke(request: AuthedRequest, token: str) -> HttpResponse:
    share = selectors.share_get_owned(user=request.user, token=token)
    if services.share_revoke(share=share):
        messages.success(request, f"The link to “{share}” no longer works.")
    return redirect("chat:shared_list")


@require_GET
def models_list(request: AuthedRequest) -> HttpResponse:
    """The chat models this installation offers, as the operator configured them (staff only)."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff see how the models are configured.")
    registry = settings.PARLEY_INFERENCE.models
    waiting = selectors.queued_per_model()
    rows = [{"model": model, "waiting": waiting.get(model.name, 0)} for model in registry.models]
    return render(request, "chat/models.html", {"registry": registry, "rows": rows})
