"""The synthetic decided candidates of the threshold tests (test_thresholds.py,
test_threshold_views.py): the right per-class thresholds are known by construction."""

from __future__ import annotations

from tests.curation.conftest import add_candidates, adjudicate, decide, make_clip, make_run
from tests.factories import DatasetFactory, UserFactory

GRID = [i / 20 for i in range(1, 20)]  # 0.05 .. 0.95


def build_synthetic():
    """19 clips; on clip i speech and dog both score GRID[i]. Experts accept speech exactly
    when its score >= 0.5 and dog when >= 0.2, so the F1-best thresholds are 0.5 and 0.2
    (F1 = 1). music has 3 decided candidates (all accepted): too few for its own threshold
    at --min-decisions 10, so it gets the global one. siren (12 decided, none accepted)
    gets a threshold above its highest score. A tie (1 accept, 1 reject) on cat is
    unresolved and not a sample; an adjudication overrides the reviewers."""
    ds = DatasetFactory(name="thr")
    run = make_run(ds, threshold=0.3)
    r1, r2 = UserFactory(username="t1"), UserFactory(username="t2")
    cora = UserFactory(username="tcora", role="curator")
    clips = []
    for i, s in enumerate(GRID):
        c = make_clip(ds, f"thr{i:08d}", 0.0, i, ["speech"] if i % 3 == 0 else [])
        clips.append(c)
        scored = {"speech": s, "dog": s}
        if i < 3:
            scored["music"] = 0.1 + i / 100
        if i < 12:
            scored["siren"] = s
        if i == 0:
            scored["cat"] = 0.9
        add_candidates(run, c, scored)
        decide(c, "speech", r1, "accept" if s >= 0.5 else "reject")
        decide(c, "dog", r1, "accept" if s >= 0.2 else "reject")
        if i < 3:
            decide(c, "music", r1, "accept")
        if i < 12:
            decide(c, "siren", r1, "reject")
    decide(clips[0], "cat", r1, "accept")
    decide(clips[0], "cat", r2, "reject")
    # speech at 0.45 on clip 8: r1 rejects, r2 accepts (a tie); the curator's rejection
    # resolves it (consistent with the >= 0.5 rule).
    decide(clips[8], "speech", r2, "accept")   # 0.45: r1 reject, r2 accept -> tie
    adjudicate(clips[8], "speech", cora, "reject")
    return ds, run, clips, cora
