"""Home page (issue 12 quirk): reviewers saw every other reviewer's name and count. Now a
reviewer sees the totals and their own progress; curators still see everyone's."""

from __future__ import annotations

import pytest

from review.models import ClipReview
from tests.factories import ClipFactory, DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed():
    ds = DatasetFactory(name="privacyds", required_reviews=1)
    clips = [ClipFactory(dataset=ds) for _ in range(4)]
    alice = UserFactory(username="alice_rev")
    bob = UserFactory(username="bob_rev")
    for c in clips[:3]:
        ClipReview.objects.create(dataset=ds, clip=c, reviewer=bob)
    ClipReview.objects.create(dataset=ds, clip=clips[3], reviewer=alice)
    return {"alice": alice, "bob": bob}


def test_reviewer_sees_totals_and_own_progress_not_others(client, reviewed):
    client.force_login(reviewed["alice"])
    html = client.get("/").content.decode()
    assert "bob_rev" not in html  # the attack: another reviewer's name...
    assert "Clips finished by bob_rev" not in html and "3 / 4" not in html  # ...and count
    assert "Your progress" in html and "Per reviewer" not in html
    assert 'aria-label="Clips finished by alice_rev"' in html and "1 / 4" in html
    assert 'aria-label="Clips done in privacyds"' in html and "4 / 4" in html  # totals


def test_reviewer_with_no_reviews_sees_no_names(client, reviewed):
    carol = UserFactory(username="carol_rev")
    client.force_login(carol)
    html = client.get("/").content.decode()
    assert "bob_rev" not in html and "alice_rev" not in html
    assert "4 / 4" in html


def test_curator_sees_every_reviewer(client, reviewed):
    client.force_login(UserFactory(username="cur", role="curator"))
    html = client.get("/").content.decode()
    assert "Per reviewer" in html
    assert 'aria-label="Clips finished by bob_rev"' in html and "3 / 4" in html
    assert 'aria-label="Clips finished by alice_rev"' in html and "1 / 4" in html
