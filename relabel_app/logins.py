"""Failed-login lockout (django-axes): what a locked-out client is told, and which address
a request comes from.

The login page answers 429 with a page that says why and for how long; the API (the token
endpoint) answers 429 in JSON with ``Retry-After``. The lockout ends by itself after
``AXES_COOLOFF_TIME``."""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from .roles import ADMIN, CURATOR, REVIEWER, user_roles

LOCKOUT_STATUS = 429
log = logging.getLogger(__name__)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' standalone backend for every login over HTTP (the login page, the
    admin's, the token endpoint: each passes its request). A call without a request comes
    from code, not from a client (a management command, the test client's ``login()``):
    there is no address to count, so it is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def cooloff_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = cooloff_minutes()
    return (
        f"Too many failed logins for this account from this address, or for many accounts "
        f"from this address. "
        f"Logging in from here is blocked for {minutes} minute{'s' if minutes != 1 else ''} "
        f"after the last counted failure; then it works again by itself. Tries while blocked "
        f"are not counted and do not make it longer."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    seconds = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": lockout_message()}, status=LOCKOUT_STATUS
        )
    else:
        response = render(
            request, "registration/lockout.html",
            {"message": lockout_message(), "cooloff_minutes": cooloff_minutes()},
            status=LOCKOUT_STATUS,
        )
    response["Retry-After"] = str(seconds)
    return response


_logged_bad_forwarded = False


def _address_of(entry: str) -> str | None:
    """An X-Forwarded-For entry as a plain address: without a port (``1.2.3.4:5678``) or
    brackets (``[::1]:80``); None when what is left is not an IP address."""
    entry = entry.strip()
    if entry.startswith("["):  # [v6] or [v6]:port
        end = entry.find("]")
        if end < 0:
            return None
        entry = entry[1:end]
    elif entry.count(":") == 1:  # v4:port (a bare v6 address has at least two colons)
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or, behind trusted proxies
    (``RELABEL_TRUSTED_PROXY``), the entry of X-Forwarded-For that the outermost trusted
    proxy added: ``RELABEL_TRUSTED_PROXY_HOPS`` from the right (earlier entries are the
    client's own claims). An entry that is not an address (a load balancer's ``ip:port`` is
    read as the ip) falls back to REMOTE_ADDR, logged once per process: a malformed header
    must not break logins (django-axes stores the address in an inet column)."""
    global _logged_bad_forwarded
    remote = request.META.get("REMOTE_ADDR")
    if not settings.TRUSTED_PROXY:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [e.strip() for e in forwarded.split(",") if e.strip()]
    hops = max(1, settings.TRUSTED_PROXY_HOPS)
    if len(entries) < hops:
        return remote
    address = _address_of(entries[-hops])
    if address is None:
        if not _logged_bad_forwarded:
            _logged_bad_forwarded = True
            log.warning(
                "X-Forwarded-For entry %r (%d hop(s) from the right) is not an IP address; "
                "using REMOTE_ADDR %s. Check RELABEL_TRUSTED_PROXY_HOPS and the proxy's "
                "header (logged once).", entries[-hops][:100], hops, remote,
            )
        return remote
    return address


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username django-axes records, read as axes does, cut to its column (varchar 255):
    Django's login form does not enforce the username's length on the server, and a longer
    name failed the failure's INSERT (a 500). No account's name is longer than 150."""
    field = settings.AXES_USERNAME_FORM_FIELD
    name = credentials.get(field) if credentials else \
        getattr(request, "data", request.POST).get(field)
    return name[:150] if isinstance(name, str) else name


def _failure_sum(attempts) -> int:
    return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0


class PairAndAddressHandler(AxesDatabaseHandler):
    """django-axes' database handler with two limits (its own has one): a (username,
    address) pair locks after ``AXES_FAILURE_LIMIT`` failures (RELABEL_LOGIN_FAILURE_LIMIT),
    an address for every username after ``RELABEL_LOGIN_ADDRESS_LIMIT`` (spraying). A
    username alone is never locked: failures from one address must not lock an account for
    everyone. Lockout parameters are ``[["username", "ip_address"], "ip_address"]``, so
    ``get_user_attempts`` gives the pair's attempts, then the address's."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        pair, address = self.get_user_attempts(request, credentials)
        failures = _failure_sum(pair)
        if _failure_sum(address) >= settings.RELABEL_LOGIN_ADDRESS_LIMIT:
            # Reported as the pair limit so that axes' one comparison locks.
            return max(failures, settings.AXES_FAILURE_LIMIT)
        return failures


# Lockouts as the app shows them (admins; curators for reviewers): which pairs and which
# addresses are locked now, and lifting one.

@dataclass(frozen=True)
class Lockout:
    kind: str  # "pair" (a username from one address) or "address" (every username)
    username: str | None
    ip_address: str
    failures: int
    last_failure: datetime
    until: datetime


def lockouts_current() -> list[Lockout]:
    """Every lockout in force, newest first (at most a few: one row per pair or address)."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    recent = AccessAttempt.objects.filter(attempt_time__gte=since)
    out: list[Lockout] = []
    pairs = (recent.values("username", "ip_address")
             .annotate(n=Sum("failures_since_start"), last=Max("attempt_time"))
             .filter(n__gte=settings.AXES_FAILURE_LIMIT))
    for row in pairs:
        out.append(Lockout("pair", row["username"], row["ip_address"], row["n"], row["last"],
                           row["last"] + settings.AXES_COOLOFF_TIME))
    addresses = (recent.values("ip_address")
                 .annotate(n=Sum("failures_since_start"), last=Max("attempt_time"))
                 .filter(n__gte=settings.RELABEL_LOGIN_ADDRESS_LIMIT))
    for row in addresses:
        out.append(Lockout("address", None, row["ip_address"], row["n"], row["last"],
                           row["last"] + settings.AXES_COOLOFF_TIME))
    out.sort(key=lambda lk: lk.last_failure, reverse=True)
    return out


def lockout_lift(*, ip_address: str, username: str | None = None) -> int:
    """Forget the failures of a pair (username given) or of an address (every username);
    how many attempt rows went."""
    attempts = AccessAttempt.objects.filter(ip_address=ip_address)
    if username is not None:
        attempts = attempts.filter(username=username)
    return attempts.delete()[0]


def lockouts_clear_user(username: str) -> int:
    """Forget every failure recorded for ``username`` (a new password makes them moot)."""
    return AccessAttempt.objects.filter(username=username).delete()[0]


class ClearLockoutsOnPasswordChange:
    """Listed in AUTH_PASSWORD_VALIDATORS for Django's ``password_changed`` hook (called by
    ``User.save()`` after ``set_password()``: the user's own form, the admin,
    ``changepassword``). It validates nothing; it lifts the user's lockouts, since the
    guesses counted against the old password."""

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            lockouts_clear_user(user.get_username())

    def get_help_text(self) -> str:
        return "A new password lifts any login lockout of your account."


def lockout_liftable_by(user, lockouts: list[Lockout]) -> list[Lockout]:
    """The lockouts ``user`` may see and lift: an admin every one; a curator the pair
    lockouts of reviewers (users with no curator or admin role; curators review every
    dataset, so these are the reviewers of their datasets). Address lockouts and unknown
    usernames (spraying) are the admins'."""
    roles = user_roles(user)
    if ADMIN in roles:
        return lockouts
    if CURATOR not in roles:
        return []
    names = {lk.username for lk in lockouts if lk.kind == "pair" and lk.username}
    reviewers = set(
        get_user_model().objects.filter(username__in=names, is_superuser=False)
        .exclude(groups__name__in=[CURATOR, ADMIN])
        .filter(groups__name=REVIEWER).values_list("username", flat=True)
    )
    return [lk for lk in lockouts if lk.kind == "pair" and lk.username in reviewers]


def lockout_lift_as(user, *, ip_address: str, username: str | None) -> int:
    """Lift one lockout in ``user``'s name; PermissionDenied when it is not theirs to lift
    (or no longer in force). How many attempt rows went."""
    wanted = [lk for lk in lockout_liftable_by(user, lockouts_current())
              if lk.ip_address == ip_address and lk.username == username]
    if not wanted:
        raise PermissionDenied("No such lockout in force that you may lift.")
    n = lockout_lift(ip_address=ip_address, username=username)
    log.warning("Lockout lifted by %s: username=%r address=%s", user.get_username(),
                username, ip_address)
    return n
