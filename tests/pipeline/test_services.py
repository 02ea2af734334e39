import pytest
from django.core.management import call_command

from pipeline import tasks
from pipeline.models import ClipResult, PipelineRun
from pipeline.profiles import ProfileError, resolve_profile
from pipeline.services import run_cancel, run_dispatch, run_get_or_create
from relabel_app.models import Clip, Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset():
    ds = Dataset.objects.create(name="svc")
    for i in range(4):
        Clip.objects.create(dataset=ds, ytid=f"svc{i:08d}", start_s=0, end_s=10, position=i)
    return ds


def test_resolved_profile_holds_every_prompt_and_threshold(settings, tmp_path):
    cfg = resolve_profile("tiny", model_dir=tmp_path)
    assert cfg["backends"]["clap"]["model"] == f"{tmp_path}/tiny/clap"
    assert "{summary}" in cfg["predict"]["template"]
    assert cfg["predict"]["min_labels"] == 2 and cfg["predict"]["max_labels"] == 4
    assert cfg["caption"]["max_attempts"] == 2 and cfg["caption"]["min_chars"] == 100
    assert cfg["match"]["fuzzy_threshold"] == 90
    assert "match_llm" not in cfg["backends"]  # the LLM tier is off in tiny
    with pytest.raises(ProfileError, match="environment variable AUDIO_LLM_BASE_URL"):
        resolve_profile("api", model_dir=tmp_path)
    with pytest.raises(ProfileError, match="no profile 'nope'"):
        resolve_profile("nope", model_dir=tmp_path)


def test_api_profile_resolves_from_the_environment(monkeypatch, tmp_path):
    for k, v in {"AUDIO_LLM_BASE_URL": "http://127.0.0.1:9/v1", "AUDIO_LLM_MODEL": "qa",
                 "TEXT_LLM_BASE_URL": "http://127.0.0.1:9/v1", "TEXT_LLM_MODEL": "m"}.items():
        monkeypatch.setenv(k, v)
    cfg = resolve_profile("api", model_dir=tmp_path)
    assert cfg["backends"]["text_chat"] == {
        "adapter": "openai-chat", "base_url": "http://127.0.0.1:9/v1", "model": "m",
        "api_key_env": "TEXT_LLM_API_KEY", "timeout": 60, "max_concurrency": 8}
    # The key itself is never in the stored profile, only the name of its variable.
    assert "sk-" not in str(cfg)


def test_cancelled_run_tasks_do_nothing(dataset, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(tasks.stage_task_for("caption"), "delay", lambda *a: None)
    run, _ = run_get_or_create(dataset=dataset, profile="tiny")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_dispatch(run=run) == 1
    run_cancel(run=run)
    ids = list(dataset.clips.values_list("id", flat=True))
    assert tasks.stage_task_for("caption").run(run.pk, ids) == 0
    assert not ClipResult.objects.filter(run=run, caption_status="done").exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_dispatch(run=run) == 0  # a cancelled run is not re-queued by accident


def test_cli_cancel_and_continue(dataset, capsys, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(tasks.stage_task_for("caption"), "delay", lambda *a: None)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_pipeline", "--dataset", "svc", "--profile", "tiny")
    run = PipelineRun.objects.get()
    call_command("run_pipeline", "--dataset", "svc", "--profile", "tiny", "--cancel")
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.CANCELLED
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_pipeline", "--dataset", "svc", "--profile", "tiny")
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.RUNNING
    assert PipelineRun.objects.count() == 1
    out = capsys.readouterr().out
    assert "continued" in out and "random-weight" in out
    call_command("run_pipeline", "--dataset", "svc", "--profile", "tiny", "--new")
    assert PipelineRun.objects.count() == 2


def test_model_placement_comes_from_settings_unless_the_profile_says(settings):
    from pipeline.stage_io import backend_spec_with_placement

    settings.MODEL_DEVICE, settings.MODEL_DTYPE = "cuda", "bfloat16"
    clap = backend_spec_with_placement({"adapter": "transformers-clap", "model": "m"})
    assert (clap["device"], clap["dtype"]) == ("cuda", "bfloat16")
    minilm = backend_spec_with_placement({"adapter": "sentence-transformers", "model": "minilm"})
    assert minilm["device"] == "cuda" and "dtype" not in minilm
    pinned = backend_spec_with_placement(
        {"adapter": "transformers-causal-lm", "model": "m", "device": "cpu"})
    assert pinned["device"] == "cpu"
    http = backend_spec_with_placement({"adapter": "openai-chat", "model": "m", "base_url": "u"})
    assert "device" not in http and "dtype" not in http
