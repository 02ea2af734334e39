"""A small world every security test can point URLs at: users of every role, a dataset with
real audio files, a finished run with results and candidates, decisions of two reviewers,
an adjudication, a finished export with its file, API tokens, and the queue built."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.factories import (
    UserFactory,
    add_result,
    label,
    make_dataset,
    make_run,
)

PASSWORD = "pw-secret-1"
ROLES = ("anonymous", "norole", "reviewer", "curator", "superuser")


@dataclass
class World:
    users: dict
    dataset: object
    clips: list
    run: object
    candidates: list
    d_rita: object
    d_rob: object
    adjudication: object
    export: object
    tokens: dict
    audio_root: object
    extra: dict = field(default_factory=dict)

    def ids(self) -> dict:
        """Symbolic names for URL kwargs and request bodies."""
        from django.contrib.contenttypes.models import ContentType

        return {
            "dataset": self.dataset.pk,
            "dataset_name": self.dataset.name,
            "clip": self.clips[0].pk,
            "clip1": self.clips[1].pk,
            "clip2": self.clips[2].pk,
            "run": self.run.pk,
            "candidate": self.candidates[0].pk,
            "original_score": self.extra["original_score"].pk,
            "study": self.extra["study"].pk,
            "study_question": self.extra["study_question"].pk,
            "mid_path": label("bark").mid.lstrip("/"),  # a class in a sweep's URL
            "label_bark": label("bark").pk,
            "label_dog": label("dog").pk,
            "label_speech": label("speech").pk,
            "label_music": label("music").pk,
            "label_siren": label("siren").pk,
            "d_rita": self.d_rita.pk,
            "d_rob": self.d_rob.pk,
            "adjudication": self.adjudication.pk,
            "export": self.export.pk,
            "user_ct": ContentType.objects.get_for_model(self.users["curator"]).pk,
            "curator_user": self.users["curator"].pk,
        }


def role_user(username: str, role: str | None, *, superuser: bool = False):
    return UserFactory(username=username, role=role or "", password=PASSWORD,
                       is_staff=superuser, is_superuser=superuser)


def _login_records(user) -> None:
    """One of each django-axes record (a failed attempt, its log, a login), so that the
    admin pages of every model have a row to show."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    where = {"ip_address": "10.9.9.9", "user_agent": "test", "path_info": "/accounts/login/"}
    AccessAttempt.objects.create(username="nobody", get_data="", post_data="",
                                 failures_since_start=1, **where)
    AccessFailureLog.objects.create(username="nobody", locked_out=False, **where)
    AccessLog.objects.create(username=user.username, **where)


@pytest.fixture
def world(db, tmp_path, settings) -> World:
    from knox.models import AuthToken

    from curation.adjudication import adjudication_record
    from curation.models import ExportJob
    from pipeline.models import Candidate, OriginalLabelScore
    from relabel_app.models import ClipLabel
    from review.decisions import decision_record
    from review.models import ClipReview
    from review.queue import queue_sync

    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_DIR.mkdir()
    users = {
        "norole": role_user("nora", None),
        "reviewer": role_user("rita", "reviewer"),
        "reviewer2": role_user("rob", "reviewer"),
        "curator": role_user("cora", "curator"),
        "superuser": role_user("sam", None, superuser=True),
    }
    audio_root = tmp_path / "audio"
    ds, clips = make_dataset("secds", audio_root, n_clips=3)
    ClipLabel.objects.create(clip=clips[0], label=label("dog"))
    ClipLabel.objects.create(clip=clips[0], label=label("speech"))
    ClipLabel.objects.create(clip=clips[1], label=label("siren"))
    run = make_run(ds)
    add_result(run, clips[0], candidates=[
        ("bark", 0.41, "exact", "dog barking"),
        ("speech", 0.30, "fuzzy", "man talking"),
        ("music", 0.12, "synonym", "background tune"),
    ])
    add_result(run, clips[1], candidates=[("siren", 0.5, "exact", "siren wailing")])
    candidates = list(Candidate.objects.filter(run=run).order_by("pk"))
    original_score = OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("dog"),
                                                       clap_score=0.08)
    d_rita = decision_record(clip=clips[0], label=label("bark"), reviewer=users["reviewer"],
                             verdict="accept", note="rita's private note")
    d_rob = decision_record(clip=clips[0], label=label("speech"), reviewer=users["reviewer2"],
                            verdict="reject", note="rob's private note")
    ClipReview.objects.create(dataset=ds, clip=clips[2], reviewer=users["reviewer2"])
    adj = adjudication_record(clip=clips[0], label=label("dog"), curator=users["curator"],
                              verdict="accept", note="curator says dog")
    export_file = settings.EXPORT_DIR / "secds-1.csv"
    export_file.write_text("# header\n")
    export = ExportJob.objects.create(dataset=ds, format="csv", status=ExportJob.Status.DONE,
                                      path=export_file.name, size_bytes=9, rows_total=0,
                                      created_by=users["curator"])
    tokens = {k: AuthToken.objects.create(user=u)[1] for k, u in users.items()}
    _login_records(users["reviewer"])
    queue_sync(dataset=ds)
    from curation.quality.models import QualityQuestion
    from curation.quality.sampling import quality_study_create

    # Every clip a recall clip: clip 0 is one, so its add / done URLs answer.
    study = quality_study_create(dataset=ds, name="secstudy", sources=["original", f"run:{run.pk}"],
                                 recall_clips=3)
    study_question = QualityQuestion.objects.filter(study=study, clip=clips[0]).first()
    return World(users=users, dataset=ds, clips=clips, run=run, candidates=candidates,
                 d_rita=d_rita, d_rob=d_rob, adjudication=adj, export=export, tokens=tokens,
                 audio_root=audio_root, extra={"original_score": original_score, "study": study,
                                                     "study_question": study_question})


@pytest.fixture
def server_errors():
    """Exceptions Django's handler turned into 500 responses, with their tracebacks (from
    any thread: the live server's too)."""
    import traceback

    from django.core import signals

    seen: list[str] = []

    def record(sender, request=None, **kwargs):
        seen.append(f"{request.method} {request.get_full_path()}\n{traceback.format_exc()}")

    signals.got_request_exception.connect(record)
    yield seen
    signals.got_request_exception.disconnect(record)
