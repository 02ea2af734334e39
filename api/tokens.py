"""API tokens (django-rest-knox): hashed at rest (SHA-512 of a 256-bit random key; only the
first 15 characters are kept in clear to find the row), expiring after
``settings.REST_KNOX["TOKEN_TTL"]`` (``RELABEL_API_TOKEN_TTL_HOURS``), revoked by
``DELETE /api/auth/token/``, by logging out of the site, and by a password change.

Clients keep what their scripts rely on: ``POST /api/auth/token/`` with username and
password answers JSON with a ``token`` field, and requests carry
``Authorization: Token <key>``."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import AuthToken

# Characters of the clear-text key prefix shown to its owner, to tell tokens apart.
SHOWN_PREFIX = 8


class ExpiringTokenAuthentication(TokenAuthentication):
    """knox's TokenAuthentication, except that a request does not also read (and purge) the
    user's other tokens: one query per request, as before. Expired tokens are refused (and
    deleted) here; the user's other expired tokens go when a new token is issued."""

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


def token_issue(user) -> tuple[AuthToken, str]:
    """A new token for ``user``: the row (digest only) and the key, shown once. A user keeps
    at most ``RELABEL_API_TOKENS_PER_USER`` tokens: the oldest go, so a leaked password
    cannot mint tokens without bound."""
    tokens_purge_expired(user)
    instance, key = AuthToken.objects.create(user=user)
    keep = max(1, settings.RELABEL_API_TOKENS_PER_USER)
    surplus = AuthToken.objects.filter(user=user).order_by("-created", "-pk")[keep:]
    AuthToken.objects.filter(pk__in=list(surplus.values_list("pk", flat=True))).delete()
    return instance, key


def tokens_purge_expired(user) -> int:
    return AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()[0]


def token_revoke(token: AuthToken) -> None:
    token.delete()


def tokens_revoke_all(user) -> int:
    """Revoke every API token of ``user``; how many there were."""
    return AuthToken.objects.filter(user=user).delete()[0]


def tokens_of(user):
    """The user's live tokens, newest first."""
    return AuthToken.objects.filter(user=user, expiry__gte=timezone.now()).order_by("-created")


def token_id(token: AuthToken) -> str:
    """A token's public id: its digest (a SHA-512 hash of the key, not the key)."""
    return token.digest


def token_revoke_by_id(user, digest: str) -> bool:
    """Revoke ``user``'s token with this id; False when the user has no such token."""
    return AuthToken.objects.filter(user=user, digest=digest).delete()[0] > 0


class RevokeTokensOnPasswordChange:
    """Listed in AUTH_PASSWORD_VALIDATORS for Django's ``password_changed`` hook, which
    ``User.save()`` calls after ``set_password()`` (the admin, ``changepassword``, any
    password form), and not when a login merely re-hashes the same password. It validates
    nothing; it revokes the user's API tokens."""

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            tokens_revoke_all(user)

    def get_help_text(self) -> str:
        return "A new password revokes your API tokens."
