"""The "API tokens" page (/accounts/tokens/): a user's live tokens, each revocable, a
button that revokes them all, and one that creates a token (its key shown in that answer
only, once; never stored, never in a redirect). Scripts also get tokens from
POST /api/auth/token/."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from .tokens import (
    SHOWN_PREFIX,
    token_id,
    token_issue,
    token_revoke_by_id,
    tokens_of,
    tokens_revoke_all,
)


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request):
    new_key = None
    if request.method == "POST" and "create" in request.POST:
        _token, new_key = token_issue(request.user)
    elif request.method == "POST":
        if "revoke_all" in request.POST:
            n = tokens_revoke_all(request.user)
            messages.success(request, f"Revoked {n} API token{'s' if n != 1 else ''}.")
        elif token_revoke_by_id(request.user, request.POST.get("token", "")):
            messages.success(request, "Token revoked.")
        else:
            messages.error(request, "You have no such token (already revoked or expired?).")
        return redirect("tokens")
    tokens = [
        {"id": token_id(t), "prefix": t.token_key[:SHOWN_PREFIX], "created": t.created,
         "expiry": t.expiry}
        for t in tokens_of(request.user)
    ]
    response = render(request, "api/tokens.html", {"tokens": tokens, "new_key": new_key})
    if new_key:
        add_never_cache_headers(response)  # the key must not outlive this page
    return response
