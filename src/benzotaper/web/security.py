"""Security headers (a CSP that allows no inline script), the user's language, and login throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

UserModel = get_user_model()

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Plotly sets element styles from its script; style attributes and its generated <style> need this.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and Permissions-Policy headers to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # /api/docs too: ninja's Swagger UI loads its scripts from files and reads its settings from JSON.
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class UserLanguageMiddleware:
    """Uses the language saved in the user's profile, else the browser's choice (LocaleMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        profile = getattr(user, "profile", None) if user is not None and user.is_authenticated else None
        if profile is not None and profile.language:
            translation.activate(profile.language)
            request.LANGUAGE_CODE = profile.language
        response = self.get_response(request)
        return response


def client_address(request: HttpRequest | None) -> str:
    """The client's address: REMOTE_ADDR, or the address a proxy on this machine appended to X-Forwarded-For."""
    if request is None:
        return ""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if forwarded and remote in settings.LOGIN_TRUSTED_PROXIES:
        return forwarded.split(",")[-1].strip()[:45]
    return remote[:45]


def _recent_failures(**match: str) -> int:
    from benzotaper.web.models import LoginFailure

    since = timezone.now() - timedelta(seconds=settings.LOGIN_LOCK_SECONDS)
    return LoginFailure.objects.filter(at__gte=since, **match).count()


class ThrottledAuthenticationForm(AuthenticationForm):
    """Refuses an address or a user name after too many recent failures, before the password is even checked."""

    def clean(self) -> dict[str, object]:
        from benzotaper.web.models import LoginFailure

        username = (self.cleaned_data.get("username") or "").strip()
        address = client_address(self.request)
        minutes = settings.LOGIN_LOCK_SECONDS // 60
        if address and _recent_failures(address=address) >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            raise ValidationError(
                _("Too many failed logins from this address. Try again in %(minutes)d minutes.") % {"minutes": minutes},
                code="throttled",
            )
        if username and _recent_failures(username=username.lower()) >= settings.LOGIN_MAX_FAILURES:
            raise ValidationError(
                _("Too many failed logins for this account. Try again in %(minutes)d minutes.") % {"minutes": minutes},
                code="throttled",
            )
        try:
            return super().clean()
        except ValidationError:
            if username:
                LoginFailure.objects.create(username=username.lower(), address=address)
            raise


class ThrottledLoginView(LoginView):
    """Django's login view with the throttled form."""

    authentication_form = ThrottledAuthenticationForm
    template_name = "web/login.html"
    redirect_authenticated_user = True


class ProfileBackend(ModelBackend):
    """Django's model backend, loading the user's clinic profile with the user (one query per request, not two)."""

    def get_user(self, user_id: Any) -> Any:
        """The active user with their profile, or None."""
        user = UserModel._default_manager.select_related("profile").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None


class ClinicArgon2Hasher(Argon2PasswordHasher):
    """Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane) instead of Django's 100 MiB x 8 lanes.

    Source: OWASP Password Storage Cheat Sheet (Argon2id: m=19456 KiB, t=2, p=1). Twenty clinicians
    logging in at once then need ~0.4 GB of memory, not ~2 GB; older hashes are upgraded at next login.
    """

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19_456
    parallelism = 1
