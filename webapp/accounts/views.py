"""Sign-up under the installation's policy, and the staff page that hands out invitations."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited

from webapp.accounts import services
from webapp.accounts.forms import InvitationForm, SignUpForm
from webapp.accounts.http import AuthedRequest
from webapp.accounts.models import Invitation

INVITATIONS_SHOWN = 50


def too_many_requests(request: HttpRequest, text: str) -> HttpResponse:
    return render(request, "accounts/too_many_requests.html", {"text": text}, status=429)


def _refused(request: HttpRequest, text: str) -> HttpResponse:
    return render(request, "accounts/signup_refused.html", {"text": text}, status=403)


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    policy = settings.PARLEY_SIGNUP
    if policy == "closed":
        return _refused(request, services.SIGNUP_CLOSED)
    token = (request.POST.get("invitation") or request.GET.get("invitation") or "").strip()
    invitation = None
    if policy == "invite":
        refusal = services.invitation_refusal(token=token) if token else services.INVITATION_NEEDED
        if refusal:
            return _refused(request, refusal)
        invitation = Invitation.objects.get(token=token)
    if request.method == "POST" and is_ratelimited(
        request, group="signup", key="ip", rate=settings.PARLEY_SIGNUP_RATE, method="POST", increment=True
    ):
        return too_many_requests(request, "Too many sign-ups from your address. Wait an hour, then try again.")
    initial = {"email": invitation.email} if invitation is not None and invitation.email else None
    form = SignUpForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            services.user_sign_up(email=email, password=form.cleaned_data["password1"], invitation_token=token)
        except services.SignupRefused as error:
            return _refused(request, str(error))
        request.session["signed_up_email"] = email
        return redirect("signup_done")
    context = {"form": form, "invitation": invitation}
    return render(request, "accounts/signup.html", context, status=400 if form.errors else 200)


@login_not_required
@require_GET
def signup_done(request: HttpRequest) -> HttpResponse:
    # The same page whether or not the address already had an account.
    email = request.session.get("signed_up_email", "")
    return render(request, "accounts/signup_done.html", {"email": email, "login_url": reverse("login")})


@require_http_methods(["GET", "POST"])
def invitations(request: AuthedRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff hand out invitations.")
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation = services.invitation_create(created_by=request.user, email=form.cleaned_data["email"])
        messages.success(request, f"Invitation made: {request.build_absolute_uri(invitation.path)}")
        return redirect("invitations")
    shown = Invitation.objects.select_related("created_by", "used_by")[:INVITATIONS_SHOWN]
    context = {
        "form": form,
        "invitations": [(invitation, request.build_absolute_uri(invitation.path)) for invitation in shown],
        "policy": settings.PARLEY_SIGNUP,
        "days": settings.PARLEY_INVITATION_DAYS,
    }
    return render(request, "accounts/invitations.html", context, status=400 if form.errors else 200)
