"""API tokens move from DRF's authtoken (keys stored in clear, never expiring) to
django-rest-knox (SHA-512 digests, expiring). Keys users already hold keep working: each is
hashed into a knox token that expires after the configured TTL, and the clear-text copy is
deleted. The old table is left empty (its app is no longer installed)."""

from django.db import migrations


def move_tokens(apps, schema_editor):
    from django.conf import settings
    from django.utils import timezone
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + settings.REST_KNOX["TOKEN_TTL"]
    with connection.cursor() as cur:
        cur.execute("SELECT key, user_id FROM authtoken_token")
        rows = cur.fetchall()
        AuthToken.objects.bulk_create([
            AuthToken(digest=hash_token(key), token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH],
                      user_id=user_id, expiry=expiry)
            for key, user_id in rows
        ], ignore_conflicts=True)
        cur.execute("DELETE FROM authtoken_token")
    if rows:
        print(f"\n  moved {len(rows)} API token(s) to hashed, expiring tokens")


class Migration(migrations.Migration):
    dependencies = [
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(move_tokens, migrations.RunPython.noop)]
