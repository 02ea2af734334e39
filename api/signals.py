"""API tokens die with the session: logging out of the site (or the admin) revokes every
API token of the user. (A new password revokes them too: api.tokens.RevokeTokensOnPasswordChange,
Django's password_changed hook.)"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .tokens import tokens_revoke_all


@receiver(user_logged_out)
def revoke_tokens_on_logout(sender, request, user, **kwargs):
    if user is not None:
        tokens_revoke_all(user)
