import json
from dataclasses import asdict

import pytest

from pipeline.backends.base import BackendError
from pipeline.stages.predict import (
    NO_LABELS_ERROR,
    RETRY_PROMPT,
    PredictConfig,
    build_predict_messages,
    parse_labels,
    run_predict,
)

from .conftest import ScriptedTextChat

SUMMARY = "Primary content: A dog barks while a man speaks.\nVocal information: Calm male voice."


def test_prompt_has_summary_and_count_control():
    msgs = build_predict_messages(SUMMARY)
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    text = msgs[0]["content"]
    assert SUMMARY in text
    assert "between 2 and 4 labels" in text
    assert "never a label" in text and "transcribed words" in text
    assert "{" not in text  # every placeholder filled

    custom = PredictConfig(min_labels=1, max_labels=3, system_prompt="You are terse.")
    msgs = build_predict_messages("braces {x} stay", custom)
    assert msgs[0] == {"role": "system", "content": "You are terse."}
    assert "between 1 and 3 labels" in msgs[1]["content"]
    assert "braces {x} stay" in msgs[1]["content"]


def test_config_validation():
    with pytest.raises(ValueError):
        PredictConfig(min_labels=5, max_labels=4)
    with pytest.raises(ValueError):
        PredictConfig(max_attempts=0)
    assert PredictConfig().keep_limit == 8
    assert PredictConfig(keep_factor=0).keep_limit is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("dog barking, rain, Dog Barking", ["dog barking", "rain"]),
        ("<think>is it a dog? no</think>Labels: Rain, thunder", ["Rain", "thunder"]),
        ("<think>I ran out of tokens, dog, cat", []),
        ("Dog barking <think>second thoughts never closed", ["Dog barking"]),
        ("reasoning that started in the prompt</think> wind, birds", ["wind", "birds"]),
        (
            "- Dog barking\n- **Rain**\n* wind\n\u2022 siren\n1. thunder\n2) car horn",
            ["Dog barking", "Rain", "wind", "siren", "thunder", "car horn"],
        ),
        ('```json\n["dog", "cat"]\n```', ["dog", "cat"]),
        ("```\nspeech, piano\n```", ["speech", "piano"]),
        ('{"labels": ["speech", "music", "Speech"]}', ["speech", "music"]),
        ('Sure! {"labels": [{"label": "bell"}, "chime"]} Hope it helps.', ["bell", "chime"]),
        ('["a", 7, true, null, "b"]', ["a", "b"]),
        (
            "Here are the labels:\n1. \"Male speech\"\n2. 'Piano'\n"
            "Note: speech content is not a label.",
            ["Male speech", "Piano"],
        ),
        (
            "Based on the description, the sounds are a dog and rain.\ndog, rain",
            ["dog", "rain"],
        ),
        ("The sounds are: dog, rain", ["dog", "rain"]),
        ("Sure! Here you go: siren; engine idling.", ["siren", "engine idling"]),
        ("\u201cCrowd cheering\u201d, \u2018applause\u2019", ["Crowd cheering", "applause"]),
        ("Rock and roll, drum and bass", ["Rock and roll", "drum and bass"]),
        ("a b c d e f g, ok label, " + "x" * 70, ["ok label"]),
        ("The recording clearly contains a dog that barks at the mailman outside", []),
        ("Labels:\n- a\n- b", ["a", "b"]),
        ("", []),
        (None, []),
        ("123, 4.5, ---", []),
    ],
)
def test_parse_labels(answer, expected):
    assert parse_labels(answer) == expected


def test_script_tag_stays_plain_text():
    labels = parse_labels("<script>alert(1)</script>, dog barking")
    assert labels == ["<script>alert(1)</script>", "dog barking"]


def test_run_predict_first_answer_ok():
    chat = ScriptedTextChat(["Labels: dog barking, male speech"])
    res = run_predict(chat, SUMMARY)
    assert res.ok and res.error == ""
    assert res.labels == ["dog barking", "male speech"]
    assert res.raw_answers == ["Labels: dog barking, male speech"]
    assert res.attempts == 1
    assert chat.calls == [build_predict_messages(SUMMARY)]
    json.dumps(asdict(res))


def test_run_predict_retries_empty_answer_in_same_conversation():
    first = "<think>The dog... the man...</think>"
    chat = ScriptedTextChat([first, "dog barking, male speech"])
    res = run_predict(chat, SUMMARY, PredictConfig(max_attempts=3))
    assert res.ok and res.attempts == 2
    assert res.labels == ["dog barking", "male speech"]
    assert res.raw_answers == [first, "dog barking, male speech"]
    second_call = chat.calls[1]
    assert second_call[-2:] == [
        {"role": "assistant", "content": first},
        {"role": "user", "content": RETRY_PROMPT},
    ]


def test_run_predict_gives_up_after_max_attempts():
    chat = ScriptedTextChat(["I cannot determine any sounds from this description at all.", ""])
    res = run_predict(chat, SUMMARY, PredictConfig(max_attempts=2))
    assert res.ok is False
    assert res.error == NO_LABELS_ERROR == "answer parsed to no labels"
    assert res.labels == [] and res.attempts == 2 and len(res.raw_answers) == 2


def test_run_predict_truncates_runaway_lists():
    answer = ", ".join(f"sound {i}" for i in range(10))
    res = run_predict(ScriptedTextChat([answer]), SUMMARY, PredictConfig(max_labels=4))
    assert res.labels == [f"sound {i}" for i in range(8)]
    assert res.dropped == ["sound 8", "sound 9"]
    res = run_predict(ScriptedTextChat([answer]), SUMMARY, PredictConfig(keep_factor=0))
    assert len(res.labels) == 10 and res.dropped == []


def test_run_predict_backend_error_propagates():
    class Broken:
        def chat(self, messages):
            raise BackendError("timeout")

    with pytest.raises(BackendError):
        run_predict(Broken(), SUMMARY)
