import json
from dataclasses import asdict

import numpy as np
import pytest

from pipeline.backends.base import BackendError
from pipeline.stages.caption import (
    MUSIC_WHAT,
    PRESENCE_QUESTION,
    ROUND1_PROMPT,
    ROUND2_PROMPT,
    ROUND3_PROMPT,
    SPEECH_WHAT,
    CaptionConfig,
    build_summary,
    is_denial,
    parse_yes_no,
    read_presence,
    run_caption,
)

from .conftest import ScriptedAudioChat

AUDIO = np.zeros(16000, dtype=np.float32)
SR = 16000
SPEECH_Q = PRESENCE_QUESTION.format(what=SPEECH_WHAT)
MUSIC_Q = PRESENCE_QUESTION.format(what=MUSIC_WHAT)

R1 = "A dog barks repeatedly in a backyard while wind blows and a car passes by in the distance."
R2 = "An adult man speaks calmly in English; he sounds relaxed and friendly."
R3 = "Upbeat pop music with acoustic guitar, drums and a bass line."


def test_speech_denied_round2_skipped_music_present_history_grows():
    chat = ScriptedAudioChat([R1, "No.", "Yes, there is music.", R3])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=10))

    att = res.attempts[0]
    assert [r.name for r in att.rounds] == ["round1", "round2", "round3"]
    r1, r2, r3 = att.rounds
    assert (r1.prompt, r1.answer, r1.skipped) == (ROUND1_PROMPT, R1, False)
    assert r2.skipped is True and r2.answer is None and r2.text == ""
    assert r3.skipped is False and r3.answer == R3 and r3.prompt == ROUND3_PROMPT
    assert asdict(att.presence["speech"]) == {
        "present": False,
        "method": "ask",
        "evidence": "No.",
        "question": SPEECH_Q,
    }
    assert asdict(att.presence["music"])["present"] is True
    assert att.presence["music"].method == "ask"

    # the model saw the history grow, one question at a time
    assert len(chat.calls) == 4
    assert chat.calls[0] == [{"role": "user", "content": ROUND1_PROMPT}]
    assert chat.calls[1] == [
        {"role": "user", "content": ROUND1_PROMPT},
        {"role": "assistant", "content": R1},
        {"role": "user", "content": SPEECH_Q},
    ]
    assert chat.calls[2][-2:] == [
        {"role": "assistant", "content": "No."},
        {"role": "user", "content": MUSIC_Q},
    ]
    assert len(chat.calls[3]) == 7 and chat.calls[3][-1] == {
        "role": "user",
        "content": ROUND3_PROMPT,
    }
    assert ROUND2_PROMPT not in [m["content"] for m in chat.calls[3]]
    assert chat.audio_seen == [(16000, 16000)] * 4
    # the attempt keeps the full history, answers included
    assert len(att.messages) == 8 and att.messages[-1] == {"role": "assistant", "content": R3}

    assert res.summary == f"Primary content: {R1}\nMusical content: {R3}"
    assert "Vocal information" not in res.summary
    assert res.summary_ok is True and res.reason == "" and res.chosen_attempt == 0


def test_all_three_rounds_summary_format():
    chat = ScriptedAudioChat([R1, "Yes", R2, "yes", R3])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=10, max_chars=1000))
    assert res.summary == (f"Primary content: {R1}\nVocal information: {R2}\nMusical content: {R3}")
    assert [r.skipped for r in res.attempts[0].rounds] == [False, False, False]
    assert chat.calls[2][-1] == {"role": "user", "content": ROUND2_PROMPT}


def test_answer_denying_presence_contributes_nothing():
    # the presence question said yes, but the round-2 answer denies any voice
    chat = ScriptedAudioChat([R1, "Yes.", "I don't hear any vocals in this clip.", "No", "unused"])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=10))
    r2 = res.attempts[0].rounds[1]
    assert r2.skipped is False and r2.denied is True and r2.text == ""
    assert r2.answer == "I don't hear any vocals in this clip."
    assert res.summary == f"Primary content: {R1}"
    assert len(chat.calls) == 4  # round 3 never asked


def test_read_method_uses_round1_keywords():
    r1 = "A man talks loudly over traffic noise; there is no music at all in the recording."
    chat = ScriptedAudioChat([r1, R2])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(presence_method="read", min_chars=10))
    att = res.attempts[0]
    assert len(chat.calls) == 2  # no presence questions asked
    assert chat.calls[1][-1]["content"] == ROUND2_PROMPT
    assert att.presence["speech"].present is True
    assert att.presence["speech"].method == "read"
    assert att.presence["speech"].evidence == "keyword: talks"
    assert att.presence["music"].present is False
    assert att.presence["music"].evidence == "negated: music"
    assert att.rounds[2].skipped is True
    assert res.summary == f"Primary content: {r1}\nVocal information: {R2}"


def test_unclear_presence_answer_falls_back_to_reading_round1():
    chat = ScriptedAudioChat(["Rain falls on a tin roof.", "Hard to say.", "Hmm, maybe?"])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=10))
    p = res.attempts[0].presence["speech"]
    assert p.present is False and p.method == "ask>read"
    assert "Hard to say." in p.evidence and "no keyword" in p.evidence


def test_retry_until_summary_fits_keeps_every_attempt():
    short = "Dog."
    answers = [short, "No", "No", R1, "No", "No"]
    chat = ScriptedAudioChat(answers)
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=50, max_chars=500, max_attempts=3))
    assert len(res.attempts) == 2  # stopped at the first fit
    first, second = res.attempts
    assert first.ok is False and first.summary == "Primary content: Dog."
    assert first.reason == "summary too short (21 < 50 chars)"
    assert first.summary_chars == 21
    assert second.ok is True and second.number == 2
    assert res.chosen_attempt == 1 and res.summary == second.summary and res.summary_ok
    # each attempt is a fresh chat: the second starts again from round 1
    assert chat.calls[3] == [{"role": "user", "content": ROUND1_PROMPT}]


def test_no_attempt_fits_keeps_last_and_says_why():
    long1 = "x" * 600
    long2 = "y" * 700
    chat = ScriptedAudioChat([long1, "No", "No", long2, "No", "No"])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(max_attempts=2))
    assert len(res.attempts) == 2 and not any(a.ok for a in res.attempts)
    assert res.summary_ok is False
    assert res.chosen_attempt == 1
    assert res.summary == "Primary content: " + long2
    assert res.reason == (
        "no attempt met the length rule in 2 attempt(s); last: summary too long (717 > 500 chars)"
    )
    assert res.attempts[0].summary == "Primary content: " + long1


def test_length_bounds_are_inclusive():
    body = "z" * (100 - len("Primary content: "))
    res = run_caption(ScriptedAudioChat([body, "no", "no"]), AUDIO, SR, CaptionConfig())
    assert len(res.summary) == 100 and res.summary_ok


def test_backend_error_propagates():
    class Broken:
        def chat(self, audio, sample_rate, messages):
            raise BackendError("model down")

    with pytest.raises(BackendError, match="model down"):
        run_caption(Broken(), AUDIO, SR)


def test_result_is_json_serialisable_and_think_blocks_dropped():
    chat = ScriptedAudioChat(["<think>let me listen</think>  A  bell rings\n twice.", "No", "No"])
    res = run_caption(chat, AUDIO, SR, CaptionConfig(min_chars=1))
    data = json.loads(json.dumps(asdict(res)))
    assert data["summary"] == "Primary content: A bell rings twice."
    assert data["attempts"][0]["presence"]["speech"] == {
        "present": False,
        "method": "ask",
        "evidence": "No",
        "question": SPEECH_Q,
    }
    assert data["attempts"][0]["rounds"][0]["answer"].startswith("<think>")


def test_config_validation():
    with pytest.raises(ValueError):
        CaptionConfig(presence_method="guess")
    with pytest.raises(ValueError):
        CaptionConfig(max_attempts=0)


@pytest.mark.parametrize(
    ("answer", "modality", "expected"),
    [
        ("There is no speech in this clip, only wind.", "speech", True),
        ("I don't hear any vocals.", "speech", True),
        ("I don\u2019t hear any vocals.", "speech", True),
        ("No one is speaking.", "speech", True),
        ("Speech is absent.", "speech", True),
        ("Instrumental rock music without vocals.", "speech", True),
        ("N/A", "speech", True),
        ("Not applicable.", "music", True),
        ("There is no music.", "music", True),
        ("The clip does not contain any music; a man talks.", "music", True),
        ("The speaker is a calm adult male speaking English. There is no music.", "speech", False),
        ("There is no background noise, and the man speaks calmly.", "speech", False),
        ("I cannot determine the spoken language.", "speech", False),
        ("He speaks without emotion.", "speech", False),
        ("Rock music with electric guitar and drums.", "music", False),
    ],
)
def test_is_denial(answer, modality, expected):
    assert is_denial(answer, modality) is expected


def test_parse_yes_no_and_read_presence():
    assert parse_yes_no("Yes.", "speech") is True
    assert parse_yes_no("No, there is no music.", "music") is False
    assert parse_yes_no("I do not hear any music.", "music") is False
    assert parse_yes_no("There is a man speaking.", "speech") is True
    assert parse_yes_no("Hard to say.", "speech") is None
    assert read_presence("Wind blowing; there is no speech.", "speech") == (
        False,
        "negated: speech",
    )
    assert read_presence("A piano melody.", "music") == (True, "keyword: piano")


def test_build_summary_omits_empty_parts():
    from pipeline.stages.caption import CaptionRound

    rounds = [
        CaptionRound("round1", "p", "", text=""),
        CaptionRound("round2", "p", "Calm male voice.", text="Calm male voice."),
        CaptionRound("round3", "p", None, skipped=True),
    ]
    assert build_summary(rounds) == "Vocal information: Calm male voice."
    assert build_summary([]) == ""
