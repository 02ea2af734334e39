"""factory-boy factories shared by every test folder."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from relabel_app.models import Clip, Dataset


class UserFactory(factory.django.DjangoModelFactory):
    """A user in a role group: ``UserFactory(role="curator")``; ``role=""`` for no role.
    The default role is reviewer, the default password ``pw``."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        name = "reviewer" if extracted is None else extracted
        if create and name:
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"dataset-{n}")


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clip

    dataset = factory.SubFactory(DatasetFactory)
    ytid = factory.Sequence(lambda n: f"clip{n:07d}")
    start_s = 0.0
    end_s = 10.0
    position = factory.Sequence(lambda n: n)
