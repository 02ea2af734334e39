"""20 reviewers' browsers deciding at once over real HTTP (the live server, a thread per
request, PostgreSQL): each logs in through the login form (session cookie + CSRF token)
and decides on the same clips and labels as everyone else; pairs of threads share an
account (one person, two tabs), half send htmx requests and half plain form posts.

Nothing is lost (the final Decision rows are exactly each account's last verdicts), nothing
is doubled (one row per clip, label and reviewer), no request fails, and each decision's
DecisionLog is an unbroken chain from "no decision" to the row as it stands."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, defaultdict

import pytest
import requests
from django.contrib.auth.models import Group, User
from django.db.models import Count

from relabel_app.models import Clip, Dataset, Label
from relabel_app.roles import ensure_role_groups
from review.models import Decision, DecisionLog

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS = 20
ACCOUNTS = THREADS // 2  # two tabs per reviewer
MIDS = ["/m/09x0r", "/m/0bt9lr", "/m/05tny_", "/m/04rlf"]  # speech, dog, bark, music
N_CLIPS = 3
VERDICTS = ("accept", "reject", "unsure")
PASSWORD = "pw-concurrent-1"


def final_verdict(account: int, clip_pos: int, label_pos: int) -> str:
    return VERDICTS[(account + 2 * clip_pos + label_pos) % 3]


def login(base: str, username: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    page = s.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    resp = s.post(f"{base}/accounts/login/", data={
        "csrfmiddlewaretoken": token, "username": username, "password": PASSWORD,
    }, headers={"Referer": f"{base}/accounts/login/"}, allow_redirects=False, timeout=30)
    assert resp.status_code == 302, resp.text[:500]
    return s, s.cookies["csrftoken"]


def test_twenty_reviewers_deciding_at_once(live_server):
    ensure_role_groups()
    group = Group.objects.get(name="reviewer")
    users = []
    for i in range(ACCOUNTS):
        u = User.objects.create_user(f"conc{i:02d}", password=PASSWORD)
        u.groups.add(group)
        users.append(u)
    ds = Dataset.objects.create(name="concurrent")
    clips = [Clip.objects.create(dataset=ds, ytid=f"conc{i:07d}", start_s=0, end_s=10,
                                 position=i) for i in range(N_CLIPS)]
    labels = [Label.objects.get(mid=m) for m in MIDS]
    base = live_server.url
    barrier = threading.Barrier(THREADS)
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        account = t // 2
        htmx = t % 2 == 1
        try:
            session, token = login(base, users[account].username)
            headers = {"X-CSRFToken": token, "Referer": base + "/"}
            if htmx:
                headers["HX-Request"] = "true"
            pairs = [(c, lab) for c in range(N_CLIPS) for lab in range(len(labels))]
            random.Random(t).shuffle(pairs)
            barrier.wait(timeout=60)
            for c, lab in pairs:
                url = f"{base}/clips/{clips[c].pk}/labels/{labels[lab].pk}/decide/"
                for verdict in ("unsure", final_verdict(account, c, lab)):
                    resp = session.post(url, data={"verdict": verdict}, headers=headers,
                                        allow_redirects=False, timeout=60)
                    with lock:
                        statuses[resp.status_code] += 1
                    if resp.status_code != (200 if htmx else 302):
                        with lock:
                            errors.append(f"thread {t} {url} {verdict}: {resp.status_code} "
                                          f"{resp.text[:300]}")
        except Exception as e:  # reported below
            with lock:
                errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a reviewer thread hung"
    assert not errors, "\n".join(errors[:10])
    per_thread = N_CLIPS * len(labels) * 2
    assert statuses == {200: THREADS // 2 * per_thread, 302: THREADS // 2 * per_thread}

    # No lost decision: exactly each account's last verdict on every clip and label.
    got = set(Decision.objects.values_list("reviewer__username", "clip_id", "label_id",
                                           "verdict"))
    expected = {
        (users[a].username, clips[c].pk, labels[lab].pk, final_verdict(a, c, lab))
        for a in range(ACCOUNTS) for c in range(N_CLIPS) for lab in range(len(labels))
    }
    assert got == expected
    # No duplicate row.
    assert Decision.objects.count() == len(expected)
    assert not (Decision.objects.values("clip", "label", "reviewer")
                .annotate(n=Count("id")).filter(n__gt=1).exists())

    # The log: per decision an unbroken chain of changes ending at the row.
    chains = defaultdict(list)
    for e in DecisionLog.objects.order_by("id"):
        chains[(e.reviewer_id, e.clip_id, e.label_id)].append(e)
    rows = {(d.reviewer_id, d.clip_id, d.label_id): d for d in Decision.objects.all()}
    assert set(chains) == set(rows)
    for key, entries in chains.items():
        assert entries[0].before_verdict == "", key
        for prev, nxt in zip(entries, entries[1:], strict=False):
            assert nxt.before_verdict == prev.after_verdict, (key, prev.pk, nxt.pk)
            assert nxt.before_verdict != nxt.after_verdict or \
                nxt.before_note != nxt.after_note, "a logged no-op"
        assert entries[-1].after_verdict == rows[key].verdict, key
        # At most the two tabs' four requests each changed something.
        assert 1 <= len(entries) <= 4, (key, len(entries))
