"""Seed the error categories of DESIGN.md. Editable in the admin afterwards; re-running
(or a category renamed in the admin) never overwrites an existing row."""

from django.db import migrations

CATEGORIES = [
    # (slug, name, kind, description)
    ("fine-grained-confusion", "Fine-grained confusion within a branch", "source",
     "Two close classes of one branch confused, e.g. within Human sounds "
     "(Speech vs. Conversation, Male vs. Female speech)."),
    ("environmental-confusion", "Environmental sound read as a semantically close class", "source",
     "An environmental sound taken for a related but different class, e.g. ambient noise "
     "read as Animal."),
    ("acoustically-ambiguous", "Acoustically ambiguous or indistinct audio", "source",
     "The audio itself does not let a listener tell (faint, masked, very short, distorted)."),
    ("original-label-wrong", "Original label wrong", "label",
     "The dataset's own label does not describe the clip."),
    ("original-label-missing", "Original label missing", "label",
     "A sound in the clip has no original label."),
    ("candidate-wrong", "Candidate wrong", "label",
     "The model chain proposed a label that is not in the clip."),
    ("too-generic", "Too generic / wrong hierarchy level", "label",
     "The class is right in spirit but at the wrong level of the ontology."),
    ("no-fitting-class", "No fitting class", "label",
     "The sound has no suitable class in the ontology."),
]


def seed(apps, schema_editor):
    ErrorCategory = apps.get_model("review", "ErrorCategory")
    for position, (slug, name, kind, description) in enumerate(CATEGORIES, start=1):
        ErrorCategory.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "kind": kind, "description": description,
                      "position": position},
        )


def unseed(apps, schema_editor):
    ErrorCategory = apps.get_model("review", "ErrorCategory")
    ErrorCategory.objects.filter(slug__in=[c[0] for c in CATEGORIES], decisions=None).delete()


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
