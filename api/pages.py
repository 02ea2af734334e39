"""The "API tokens" page (/accounts/tokens/): a user's live tokens, each revocable, and a
button that revokes them all. New tokens come from POST /api/auth/token/ (the key is shown
only there, once)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .tokens import SHOWN_PREFIX, token_id, token_revoke_by_id, tokens_of, tokens_revoke_all


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request):
    if request.method == "POST":
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
    return render(request, "api/tokens.html", {"tokens": tokens})
