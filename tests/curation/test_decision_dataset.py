"""Decision.dataset, the clip's dataset copied onto each decision for the adjudication
queue: right after every write path (first decision, a verdict moved, undone, a label
added, a curator's adjudication), the batched backfill of the migration gives the same
queue as the query before the column, and the queue's votes read decision_dataset_pair."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from pytest import approx

from curation import adjudication_queue as aq
from curation.adjudication_queue import adjudication_queue, clip_disputes, queue_filter_for
from relabel_app.models import Dataset
from review.decisions import decision_add_label, decision_record, decision_undo
from review.models import Decision, PairVotes
from tests.factories import UserFactory

from .conftest import adjudicate, label, make_clip, make_run
from .test_adjudication_queue import ids, qset  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

# The votes CTE before Decision.dataset and PairVotes (grouped first, the clip looked up
# after; the original label looked up per pair, as the old flags did): the reference the
# backfilled column and table must reproduce.
OLD_VOTES = """
    votes AS (
        SELECT v.*, EXISTS (SELECT 1 FROM relabel_app_cliplabel o
                            WHERE o.clip_id = v.clip_id AND o.label_id = v.label_id)
                        AS original
        FROM (
            SELECT d.clip_id, d.label_id,
                   count(*) FILTER (WHERE d.verdict = 'accept') AS n_accept,
                   count(*) FILTER (WHERE d.verdict = 'reject') AS n_reject,
                   count(*) FILTER (WHERE d.verdict = 'unsure') AS n_unsure
            FROM review_decision d
            WHERE true{excluded}
            GROUP BY d.clip_id, d.label_id
            HAVING (count(*) FILTER (WHERE d.verdict = 'accept') > 0
                    AND count(*) FILTER (WHERE d.verdict = 'reject') > 0)
                OR count(*) FILTER (WHERE d.verdict = 'unsure') > 0
                OR count(*) FILTER (WHERE d.verdict = 'reject')
                   > count(*) FILTER (WHERE d.verdict = 'accept')
        ) v JOIN relabel_app_clip c ON c.id = v.clip_id
        WHERE c.dataset_id = %(ds)s
    )"""


def old_votes_cte(f):
    excluded = (" AND d.reviewer_id <> ALL(%(excluded)s::int[])"
                if f.excluded_reviewer_ids else "")
    return OLD_VOTES.format(excluded=excluded)


def page_tuple(page):
    return ([(r.clip_id, r.counts, r.n_disputed, round(r.stake, 9)) for r in page.rows],
            page.counts, page.total)


def recount() -> set[tuple]:
    """PairVotes as the decisions and original labels say it should be."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT d.dataset_id, d.clip_id, d.label_id,
                   count(*) FILTER (WHERE d.verdict = 'accept'),
                   count(*) FILTER (WHERE d.verdict = 'reject'),
                   count(*) FILTER (WHERE d.verdict = 'unsure'),
                   EXISTS (SELECT 1 FROM relabel_app_cliplabel o
                           WHERE o.clip_id = d.clip_id AND o.label_id = d.label_id)
            FROM review_decision d GROUP BY d.dataset_id, d.clip_id, d.label_id""")
        return set(cur.fetchall())


def pairvotes() -> set[tuple]:
    return set(PairVotes.objects.values_list("dataset_id", "clip_id", "label_id", "n_accept",
                                              "n_reject", "n_unsure", "original"))


def assert_pairvotes_right() -> None:
    assert pairvotes() == recount()


def dataset_ids(**filters) -> set[int]:
    return set(Decision.objects.filter(**filters).values_list("dataset_id", flat=True))


@pytest.fixture
def two_datasets():
    a = Dataset.objects.create(name="dsa", required_reviews=2)
    b = Dataset.objects.create(name="dsb", required_reviews=2)
    ca = make_clip(a, "aaaaaaaaaaa", 0.0, 0, ["dog"])
    cb = make_clip(b, "bbbbbbbbbbb", 0.0, 0, ["dog"])
    r1, r2 = UserFactory(username="dr1"), UserFactory(username="dr2")
    return a, b, ca, cb, r1, r2


def test_first_decision_and_moved_verdict_carry_the_clips_dataset(two_datasets):
    a, b, ca, cb, r1, r2 = two_datasets
    d = decision_record(clip=ca, label=label("dog"), reviewer=r1, verdict="accept")
    assert d.dataset_id == a.pk
    decision_record(clip=cb, label=label("dog"), reviewer=r1, verdict="reject")
    assert dataset_ids(clip=ca) == {a.pk} and dataset_ids(clip=cb) == {b.pk}
    # Moved: accept -> reject on a, and the queue of a (only) sees the new majority.
    f = queue_filter_for(dataset=a, run=None)
    assert adjudication_queue(f=f).total == 0
    decision_record(clip=ca, label=label("dog"), reviewer=r1, verdict="reject")
    assert dataset_ids(clip=ca) == {a.pk}
    page = adjudication_queue(f=f)
    assert [r.clip_id for r in page.rows] == [ca.pk]
    assert page.counts["original_rejected"] == 1
    # b's reject is b's: a's queue lists only ca, b's lists only cb.
    assert [r.clip_id for r in adjudication_queue(
        f=queue_filter_for(dataset=b, run=None)).rows] == [cb.pk]
    assert_pairvotes_right()
    assert (a.pk, ca.pk, label("dog").pk, 0, 1, 0, True) in pairvotes()


def test_undo_keeps_the_dataset_and_the_queue_follows(two_datasets):
    a, _b, ca, _cb, r1, r2 = two_datasets
    f = queue_filter_for(dataset=a, run=None)
    decision_record(clip=ca, label=label("dog"), reviewer=r1, verdict="accept")
    decision_record(clip=ca, label=label("dog"), reviewer=r2, verdict="accept")
    decision_record(clip=ca, label=label("dog"), reviewer=r2, verdict="reject")
    assert adjudication_queue(f=f).counts["disagree"] == 1
    restored = decision_undo(clip=ca, label=label("dog"), reviewer=r2)  # back to accept
    assert restored.verdict == "accept" and restored.dataset_id == a.pk
    assert dataset_ids(clip=ca) == {a.pk}
    assert adjudication_queue(f=f).total == 0
    assert_pairvotes_right()
    decision_undo(clip=ca, label=label("dog"), reviewer=r2)  # r2's decision gone
    assert_pairvotes_right()
    decision_record(clip=ca, label=label("dog"), reviewer=r2, verdict="unsure")
    assert dataset_ids(clip=ca) == {a.pk}
    assert adjudication_queue(f=f).counts["unsure"] == 1
    assert_pairvotes_right()
    decision_undo(clip=ca, label=label("dog"), reviewer=r2)
    decision_undo(clip=ca, label=label("dog"), reviewer=r1)  # no decision left on the pair
    assert_pairvotes_right()
    assert not PairVotes.objects.filter(clip=ca).exists()


def test_added_label_and_plain_create_fill_the_dataset(two_datasets):
    a, b, ca, cb, r1, _r2 = two_datasets
    d = decision_add_label(clip=cb, label=label("bark"), reviewer=r1)
    assert Decision.objects.get(pk=d.pk).dataset_id == b.pk
    # Model save (factories, admin): filled from the clip when not given.
    d = Decision.objects.create(clip=ca, label=label("cat"), reviewer=r1, verdict="reject")
    assert Decision.objects.get(pk=d.pk).dataset_id == a.pk
    assert_pairvotes_right()


def test_original_labels_and_deleted_clips_keep_pairvotes_right(two_datasets):
    """An original label added or removed under a voted pair flips it (the queue's
    "original rejected" follows); a deleted clip takes its pairs with it."""
    from relabel_app.models import ClipLabel

    a, _b, ca, cb, r1, _r2 = two_datasets
    f = queue_filter_for(dataset=a, run=None)
    decision_record(clip=ca, label=label("cat"), reviewer=r1, verdict="reject")
    assert adjudication_queue(f=f).total == 0  # cat is no original of ca
    ClipLabel.objects.create(clip=ca, label=label("cat"))
    assert_pairvotes_right()
    assert adjudication_queue(f=f).counts["original_rejected"] == 1
    ClipLabel.objects.filter(clip=ca, label=label("cat")).delete()
    assert_pairvotes_right()
    assert adjudication_queue(f=f).total == 0
    # A bulk load skipping foreign-key checks (segment_import's label merge) still counts.
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("INSERT INTO relabel_app_cliplabel (clip_id, label_id) VALUES (%s, %s)",
                    [ca.pk, label("cat").pk])
        cur.execute("SET LOCAL session_replication_role = origin")
    assert_pairvotes_right()
    assert adjudication_queue(f=f).counts["original_rejected"] == 1
    decision_record(clip=cb, label=label("dog"), reviewer=r1, verdict="unsure")
    cb.delete()
    assert_pairvotes_right()
    assert not PairVotes.objects.filter(clip_id=cb.pk).exists()


def test_raw_insert_without_dataset_gets_the_clips(two_datasets):
    """SQL written before the column (bulk loads, benchmarks) still inserts: the trigger
    of the migration fills the clip's dataset."""
    _a, b, _ca, cb, r1, _r2 = two_datasets
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO review_decision (clip_id, label_id, reviewer_id, verdict, note, "
            "created_at, updated_at) VALUES (%s, %s, %s, 'reject', '', now(), now()) "
            "RETURNING dataset_id", [cb.pk, label("dog").pk, r1.pk])
        assert cur.fetchone()[0] == b.pk


def test_adjudicated_pair_leaves_and_cleared_pair_returns(two_datasets):
    from curation.adjudication import adjudication_clear

    a, _b, ca, _cb, r1, r2 = two_datasets
    curator = UserFactory(username="dcur", role="curator")
    decision_record(clip=ca, label=label("dog"), reviewer=r1, verdict="accept")
    decision_record(clip=ca, label=label("dog"), reviewer=r2, verdict="reject")
    f = queue_filter_for(dataset=a, run=None)
    assert adjudication_queue(f=f).total == 1
    adjudicate(ca, "dog", curator, "accept")
    assert adjudication_queue(f=f).total == 0
    assert dataset_ids(clip=ca) == {a.pk}
    assert_pairvotes_right()
    adjudication_clear(clip=ca, label=label("dog"), curator=curator)
    assert adjudication_queue(f=f).total == 1


class Editor:
    connection = connection


def test_backfill_gives_the_old_querys_queue(qset, monkeypatch):  # noqa: F811
    """The seeded queue dataset plus a second dataset's decisions on the same labels: every
    decision's dataset emptied and PairVotes emptied, the migrations' backfills run in
    small batches, and the queue (each filter, with and without reviewers left out: read
    from PairVotes, or aggregated from the decisions) equals the old query's."""
    other = Dataset.objects.create(name="adq2")
    oc = make_clip(other, "ooooooooooo", 0.0, 0, ["dog"])
    r1, r2, _r3 = qset["reviewers"]
    decision_record(clip=oc, label=label("dog"), reviewer=r1, verdict="reject")
    decision_record(clip=oc, label=label("speech"), reviewer=r2, verdict="unsure")
    make_run(other)
    with connection.cursor() as cur:
        # Transactional DDL, rolled back with the test (the deferred foreign-key checks
        # fired first: ALTER refuses a table with pending trigger events).
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE review_decision ALTER COLUMN dataset_id DROP NOT NULL")
        # As before the column: no PairVotes trigger sees these updates.
        cur.execute("ALTER TABLE review_decision DISABLE TRIGGER review_pairvotes_upd")
        cur.execute("UPDATE review_decision SET dataset_id = NULL")
    editor = Editor()
    migration = importlib.import_module("review.migrations.0010_decision_dataset")
    monkeypatch.setattr(migration, "BATCH", 2)
    migration.backfill(None, editor)
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE review_decision ENABLE ALWAYS TRIGGER review_pairvotes_upd")
    assert not Decision.objects.filter(dataset__isnull=True).exists()
    assert dataset_ids(clip=oc) == {other.pk}
    # PairVotes counted again from scratch by 0011's backfill.
    PairVotes.objects.all().delete()
    migration = importlib.import_module("review.migrations.0011_pair_votes")
    monkeypatch.setattr(migration, "BATCH", 3)
    migration.backfill(None, editor)
    assert_pairvotes_right()
    # A pair listed for its low score alone, with an accept vote: its whole vote (tally)
    # weighs its score, 0.3 - 0.1 = 0.2 against the accept (issue 21), stake 1.2.
    q6 = qset["clips"][6]
    from pipeline.models import OriginalLabelScore
    OriginalLabelScore.objects.filter(clip=q6).update(clap_score=0.1)
    decision_record(clip=q6, label=label("music"), reviewer=r1, verdict="accept")

    ds = qset["ds"]
    filters = [queue_filter_for(dataset=ds, run=qset["run"], reason=r)
               for r in ("", *aq.REASONS)]
    filters.append(queue_filter_for(dataset=ds, run=None))
    ds.gold_floor, ds.gold_exclude_flagged = 0.6, True
    ds.save()
    filters.append(queue_filter_for(dataset=ds, run=qset["run"]))
    assert filters[-1].excluded_reviewer_ids
    filters.append(queue_filter_for(dataset=other, run=None))
    new = [page_tuple(adjudication_queue(f=f)) for f in filters]
    monkeypatch.setattr(aq, "_votes_cte", old_votes_cte)
    old = [page_tuple(adjudication_queue(f=f)) for f in filters]
    for n, o in zip(new, old, strict=True):
        assert n == o
    page = adjudication_queue(f=filters[0])
    assert ids(page, qset) == [1, 5, 6, 0, 2, 3]
    assert page.rows[2].evidence == approx(0.2) and page.rows[2].stake == approx(1.2)


def plan(f) -> str:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + aq._per_clip_sql(f) + " SELECT * FROM per_clip", f.params())
        return "\n".join(r[0] for r in cur.fetchall())


def test_votes_read_the_disputed_pairs_index(qset):  # noqa: F811
    """With sequential scans priced out (a handful of rows would otherwise be scanned), the
    queue's votes come from PairVotes' partial index of disputed pairs; with reviewers
    left out, from the dataset's PairVotes less those reviewers' decisions."""
    ds = qset["ds"]
    text = plan(queue_filter_for(dataset=ds, run=qset["run"]))
    assert "review_pairvotes_disputed" in text
    ds.gold_floor, ds.gold_exclude_flagged = 0.6, True
    ds.save()
    assert "pairvotes_dataset" in plan(queue_filter_for(dataset=ds, run=qset["run"]))


def test_one_statement_for_any_page_with_the_totals(qset):  # noqa: F811
    """A page, an empty filter's page and a page past the end: one statement each, the
    totals always there (the empty cases ran the whole query a second time before)."""
    from django.test.utils import CaptureQueriesContext

    ds, run = qset["ds"], qset["run"]
    adjudicate(qset["clips"][2], "siren", qset["curator"], "accept")  # clap_low now empty
    cases = [(queue_filter_for(dataset=ds, run=run), 0, [1, 5, 0, 3]),
             (queue_filter_for(dataset=ds, run=run, reason="unsure"), 0, [1]),
             (queue_filter_for(dataset=ds, run=run), 50, []),
             (queue_filter_for(dataset=ds, run=run, reason="clap_low"), 0, [])]
    for f, offset, expected in cases:
        with CaptureQueriesContext(connection) as ctx:
            page = adjudication_queue(f=f, offset=offset)
        assert len([q for q in ctx.captured_queries if "per_clip" in q["sql"]]) == 1
        assert ids(page, qset) == expected
        assert page.total == 4
        assert page.counts == {"disagree": 2, "unsure": 1, "original_rejected": 1,
                               "gold_missed": 1, "clap_low": 0}


def test_left_out_reviewer_tally_and_clip_page_agree(qset):  # noqa: F811
    """A pair listed for its low score alone once a left-out reviewer's verdict is
    subtracted: its whole vote (PairVotes less that verdict) weighs the score, in the queue
    and on the clip's page (one_clip), with the same figures (issues 18 and 21)."""
    ds, run, q6 = qset["ds"], qset["run"], qset["clips"][6]
    r1, r2, _r3 = qset["reviewers"]
    from pipeline.models import OriginalLabelScore
    OriginalLabelScore.objects.filter(clip=q6).update(clap_score=0.1)  # margin 0.1 below
    decision_record(clip=q6, label=label("music"), reviewer=r1, verdict="reject")
    decision_record(clip=q6, label=label("music"), reviewer=r2, verdict="accept")
    # Everyone counted: 1:1, disputed, a tie weighs no score.
    f = queue_filter_for(dataset=ds, run=run)
    row = next(r for r in adjudication_queue(f=f).rows if r.clip_id == q6.pk)
    assert (row.counts["disagree"], row.counts["clap_low"], row.evidence) == (1, 1, 0.0)
    # r1 left out (gold misses on q3): accept 1:0, not disputed by the votes, the original
    # music at 0.1 accepted below the 0.3 threshold: evidence 0.2, stake 1.2.
    ds.gold_floor, ds.gold_exclude_flagged = 0.6, True
    ds.save()
    f = queue_filter_for(dataset=ds, run=run)
    assert set(f.excluded_reviewer_ids) == {r1.pk}
    row = next(r for r in adjudication_queue(f=f).rows if r.clip_id == q6.pk)
    assert (row.counts["disagree"], row.counts["clap_low"]) == (0, 1)
    assert (row.evidence, row.stake) == (approx(0.2), approx(1.2))
    d = clip_disputes(f=f, clip_id=q6.pk)
    music = d.pairs[label("music").pk]
    assert (music.reasons, music.evidence) == (["clap_low"], approx(0.2))
    assert d.evidence == approx(row.evidence) and d.counts == row.counts
    # The same for every listed clip: the page reads the queue's figures.
    for r in adjudication_queue(f=f).rows:
        one = clip_disputes(f=f, clip_id=r.clip_id)
        assert (one.counts, one.evidence) == (r.counts, approx(r.evidence))
