"""Create the role groups (relabel_app.roles.ROLE_GROUPS) so a fresh database has them."""

from django.db import migrations

# Copied, not imported: a migration must not depend on code that may change later.
ROLE_GROUPS = ("reviewer", "curator", "admin")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0002_seed_error_categories"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
