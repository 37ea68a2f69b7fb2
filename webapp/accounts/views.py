"""Sign-up under the installation's policy, the staff page that hands out invitations, the
usage pages (one's own, and everyone's for staff), and Django's log-in and password views
with their throttles."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import get_usage, is_ratelimited

from webapp.accounts import services, usage
from webapp.accounts.forms import EmailAuthenticationForm, InvitationForm, SignUpForm
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


@require_GET
def usage_page(request: AuthedRequest) -> HttpResponse:
    """The user's tokens today and this month, per model, against the daily budget."""
    today = timezone.localdate()
    budget = settings.PARLEY_USER_DAILY_TOKENS
    used_today = usage.usage_total(user_id=request.user.pk, since=today)
    context = {
        "today": today,
        "time_zone": settings.TIME_ZONE,
        "budget": budget,
        "used_today": used_today,
        "left_today": max(0, budget - used_today.total_tokens) if budget else None,
        "used_month": usage.usage_total(user_id=request.user.pk, since=usage.month_start(today)),
        "today_by_model": usage.usage_by_model(since=today, user_id=request.user.pk),
        "month_by_model": usage.usage_by_model(since=usage.month_start(today), user_id=request.user.pk),
    }
    return render(request, "accounts/usage.html", context)


USAGE_PERIODS = {"today": "today", "month": "this month"}


@require_GET
def usage_everyone(request: AuthedRequest) -> HttpResponse:
    """Staff: every user's tokens per model, today or this month."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff see everyone's usage.")
    period = request.GET.get("period", "today")
    if period not in USAGE_PERIODS:
        period = "today"
    today = timezone.localdate()
    since = today if period == "today" else usage.month_start(today)
    context = {
        "rows": usage.usage_by_model(since=since),
        "period": period,
        "periods": USAGE_PERIODS,
        "budget": settings.PARLEY_USER_DAILY_TOKENS,
    }
    return render(request, "accounts/usage_everyone.html", context)


def _login_failures_rate() -> str:
    return f"{settings.PARLEY_LOGIN_IP_FAILURE_LIMIT}/{settings.PARLEY_LOGIN_COOLOFF_MINUTES}m"


class LoginView(auth_views.LoginView):
    """Django's log-in, refusing an address after PARLEY_LOGIN_IP_FAILURE_LIMIT failures
    across accounts (django-axes counts failures per account, across addresses)."""

    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        usage = get_usage(request, group="login-failures", key="ip", rate=_login_failures_rate(), increment=False)
        if usage is not None and usage["count"] >= usage["limit"]:
            minutes = settings.PARLEY_LOGIN_COOLOFF_MINUTES
            return too_many_requests(
                request, f"Too many failed log-ins from your address. Try again in {minutes} minutes."
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        get_usage(self.request, group="login-failures", key="ip", rate=_login_failures_rate(), increment=True)
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Reset e-mails, at most PARLEY_PASSWORD_RESET_RATE per client address and per address asked
    for, so the form cannot be used to flood someone's inbox. Without a configured mail
    backend there is no safe way to deliver a link, so the page says so instead."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.PARLEY_MAIL_CONFIGURED:
            return render(request, "registration/password_reset_unavailable.html", status=503)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        rate = settings.PARLEY_PASSWORD_RESET_RATE
        limited = [
            is_ratelimited(request, group=f"password-reset-{key}", key=key, rate=rate, method="POST", increment=True)
            for key in ("ip", "post:email")
        ]
        if any(limited):
            return too_many_requests(request, "Too many password resets asked for. Wait an hour, then try again.")
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Password changes, at most PARLEY_PASSWORD_CHANGE_RATE per user: a borrowed session cannot
    be used to guess the old password."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        rate = settings.PARLEY_PASSWORD_CHANGE_RATE
        if is_ratelimited(request, group="password-change", key="user", rate=rate, method="POST", increment=True):
            return too_many_requests(request, "Too many password changes tried. Wait an hour, then try again.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.password_changed(user=form.user)
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.password_changed(user=form.user)
        return response
