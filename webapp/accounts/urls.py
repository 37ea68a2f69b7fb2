from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import path, reverse_lazy

from webapp.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("signup/done/", views.signup_done, name="signup_done"),
    path("invitations/", views.invitations, name="invitations"),
    path("usage/", views.usage_page, name="usage"),
    path("usage/everyone/", views.usage_everyone, name="usage_everyone"),
    path(
        "login/",
        views.LoginView.as_view(),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        views.PasswordChangeView.as_view(success_url=reverse_lazy("password_change_done")),
        name="password_change",
    ),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        login_not_required(views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        login_not_required(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        login_not_required(views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        login_not_required(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]
