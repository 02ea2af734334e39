import json
from dataclasses import asdict

import numpy as np
import pytest

from pipeline.stages.match import (
    Candidate,
    LabelIndex,
    MatchConfig,
    build_llm_match_messages,
    dedupe,
    match_labels,
    name_texts,
    normalize,
    parse_llm_matches,
    singular,
)
from relabel_app.ontology_source import OntologyClass

NO_SYN = MatchConfig(use_synonym=False)


def one(phrase, index, cfg=None):
    found = match_labels([phrase], index, cfg)
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("dogs", "dog"),
        ("barks", "bark"),
        ("sirens", "siren"),
        ("dishes", "dish"),
        ("flies", "fly"),
        ("glasses", "glass"),
        ("mice", "mouse"),
        ("buses", "bus"),
        ("bass", "bass"),
        ("glass", "glass"),
        ("chorus", "chorus"),
        ("bus", "bus"),
        ("hiss", "hiss"),
        ("tennis", "tennis"),
        ("maracas", "maraca"),
        ("gas", "gas"),
    ],
)
def test_singular(word, expected):
    assert singular(word) == expected


def test_normalize():
    assert normalize("SPEECH!!") == "speech"
    assert normalize("  Dogs   Barking ") == "dog barking"
    assert normalize("Hi-hat") == "hi hat"
    assert normalize("Dental drill, dentist's drill") == "dental drill dentist drill"
    assert normalize("Caf\u00e9 chatter") == "cafe chatter"


def test_name_texts_split_outside_parentheses():
    assert name_texts("Male speech, man speaking") == [
        "Male speech, man speaking",
        "Male speech",
        "man speaking",
    ]
    assert name_texts("Roaring cats (lions, tigers)") == [
        "Roaring cats (lions, tigers)",
        "Roaring cats",
    ]
    assert name_texts("Fire engine, fire truck (siren)") == [
        "Fire engine, fire truck (siren)",
        "Fire engine",
        "fire truck (siren)",
        "Fire engine, fire truck",
        "fire truck",
    ]
    assert name_texts("Tapping (guitar technique)") == ["Tapping (guitar technique)"]


def test_index_holds_only_trainable_classes(plain_index, trainable):
    assert len(plain_index.names) == 527
    assert set(plain_index.keys.values()) <= {c.mid for c in trainable}
    assert set(plain_index.keys.values()) == {c.mid for c in trainable}  # every class reachable
    extra = OntologyClass("/m/0dgw9r", "Human sounds", "abstract parent", (), ())  # index None
    idx = LabelIndex.build([*trainable[:3], extra])
    assert "/m/0dgw9r" not in idx.names
    assert idx.exact("Human sounds") is None


@pytest.mark.parametrize(
    ("phrase", "name"),
    [
        ("Speech", "Speech"),
        ("SPEECH!!", "Speech"),
        ("man speaking", "Male speech, man speaking"),
        ("Male speech", "Male speech, man speaking"),
        ("male speech, man speaking", "Male speech, man speaking"),
        ("dogs", "Dog"),
        ("sirens", "Siren"),
        ("barks", "Bark"),
        ("bus", "Bus"),
        ("cat", "Cat"),
        ("Cats", "Cat"),
        ("cattle", "Cattle, bovinae"),
        ("glass", "Glass"),
        ("wolves", "Canidae, dogs, wolves"),
        ("the sound of rain", "Rain"),
        ("a helicopter", "Helicopter"),
        ("siren sound", "Siren"),
        ("police car", "Police car (siren)"),
        ("fire truck", "Fire engine, fire truck (siren)"),
        ("Hi-Hat", "Hi-hat"),
        ("bells", "Bell"),
        ("mice", "Mouse"),
    ],
)
def test_exact_tier(plain_index, mid_of, phrase, name):
    c = one(phrase, plain_index, NO_SYN)
    assert c == Candidate(mid_of(name), "exact", phrase, 1.0)


def test_exact_ids(plain_index):
    assert one("man speaking", plain_index).mid == "/m/05zppz"
    assert one("SPEECH!!", plain_index).mid == "/m/09x0r"
    assert one("barks", plain_index).mid == "/m/05tny_"


@pytest.mark.parametrize(
    ("phrase", "name", "score"),
    [
        ("acoustic guiter", "Acoustic guitar", 0.9333),
        ("guitarr", "Guitar", 0.9231),
        ("hihat", "Hi-hat", 1.0),
        ("speaking man", "Male speech, man speaking", 1.0),
        ("dog whimper", "Whimper (dog)", 1.0),
        ("catle", "Cattle, bovinae", 0.9091),
    ],
)
def test_fuzzy_tier(plain_index, mid_of, phrase, name, score):
    c = one(phrase, plain_index, NO_SYN)
    assert (c.mid, c.tier, c.phrase) == (mid_of(name), "fuzzy", phrase)
    assert c.score == pytest.approx(score, abs=1e-4)


@pytest.mark.parametrize("phrase", ["busy", "kat", "cattel", "rainn", "crown", "tape", "belly"])
def test_near_misses_do_not_fuzzy_match(plain_index, phrase):
    assert one(phrase, plain_index, NO_SYN) is None


def test_fuzzy_near_misses_pick_the_right_neighbour(plain_index, mid_of):
    # "cat" must never become "Cattle, bovinae"; "bus" is Bus, not "Busy signal"
    assert plain_index.fuzzy("cat", 90) == (mid_of("Cat"), 1.0)
    assert plain_index.fuzzy("bus", 90) == (mid_of("Bus"), 1.0)
    assert plain_index.fuzzy("busy", 90) is None


def test_fuzzy_threshold_is_configurable(plain_index, mid_of):
    assert one("rainn", plain_index, MatchConfig(fuzzy_threshold=85, use_synonym=False)).mid == (
        mid_of("Rain")
    )


def test_synonym_tier_real_embedder(label_index, mid_of):
    bark = one("dog barking", label_index)
    assert (bark.mid, bark.tier) == ("/m/05tny_", "synonym")
    assert bark.score >= 0.6
    rain = one("rain on a roof", label_index)
    assert (rain.mid, rain.tier) == (mid_of("Rain on surface"), "synonym")
    assert one("a woman sings", label_index).mid == mid_of("Female singing")
    assert one("keyboard typing", label_index).mid == mid_of("Typing")
    assert one("gunshots", label_index).mid == mid_of("Gunshot, gunfire")


@pytest.mark.parametrize(
    "junk",
    [
        "quarterly tax report",
        "the word hello",
        "blue sky",
        "sadness",
        "happy birthday lyrics",
        "banana bread recipe",
        "<script>alert(1)</script>",
    ],
)
def test_synonym_tier_rejects_junk(label_index, junk):
    assert one(junk, label_index) is None


def test_synonym_can_be_switched_off(label_index):
    assert one("dog barking", label_index, NO_SYN) is None


def test_match_labels_order_tiers_dedupe_and_json(label_index, mid_of):
    phrases = ["dogs", "dog barking", "Dog", "quarterly tax report", "barks", "  ", "guitarr"]
    found = match_labels(phrases, label_index)
    assert [(c.mid, c.tier, c.phrase) for c in found] == [
        (mid_of("Dog"), "exact", "dogs"),
        (mid_of("Bark"), "exact", "barks"),  # replaced the synonym hit, at its first position
        (mid_of("Guitar"), "fuzzy", "guitarr"),
    ]
    assert all(c.mid in label_index.names for c in found)
    json.dumps([asdict(c) for c in found])


def test_dedupe_keeps_first_position_best_tier():
    a = Candidate("/m/1", "synonym", "x", 0.7)
    b = Candidate("/m/2", "exact", "y", 1.0)
    c = Candidate("/m/1", "fuzzy", "z", 0.95)
    d = Candidate("/m/1", "fuzzy", "w", 0.92)
    assert dedupe([a, b, c, d]) == [c, b]


class KeywordEmbedder:
    """Hand-made 4-d embeddings: 'bark' -> e0, 'rain' -> e1, anything else -> e2;
    the phrase 'half bark' is 0.6 e0 + 0.8 e3: cosine 0.6 with bark, 0 with the rest."""

    model_id = "kw-test"

    def __init__(self):
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        rows = []
        for t in texts:
            t = t.lower()
            if t == "half bark":
                rows.append([0.6, 0.0, 0.0, 0.8])
            elif "bark" in t:
                rows.append([1.0, 0.0, 0.0, 0.0])
            elif "rain" in t:
                rows.append([0.0, 1.0, 0.0, 0.0])
            else:
                rows.append([0.0, 0.0, 1.0, 0.0])
        return np.asarray(rows, dtype=np.float32)


def _small_classes():
    return [
        OntologyClass("/m/a", "Bark", "A dog's bark.", (), (), 0),
        OntologyClass("/m/b", "Rain", "Water falling.", (), (), 1),
        OntologyClass("/m/c", "Silence", "Nothing.", (), (), 2),
    ]


def test_synonym_threshold_boundary_with_controlled_embeddings():
    emb = KeywordEmbedder()
    idx = LabelIndex.build(_small_classes(), emb)
    assert emb.calls == 1  # names and descriptions embedded once, in build
    cfg = MatchConfig(synonym_threshold=0.6, synonym_name_weight=1.0)
    c = one("half bark", idx, cfg)
    assert (c.mid, c.tier) == ("/m/a", "synonym") and c.score == pytest.approx(0.6, abs=1e-6)
    assert (
        one("half bark", idx, MatchConfig(synonym_threshold=0.61, synonym_name_weight=1.0)) is None
    )
    # name/description mix: "Bark" name row 0.6, description "A dog's bark." row 0.6
    c = one("half bark", idx, MatchConfig(synonym_threshold=0.5, synonym_name_weight=0.7))
    assert c.score == pytest.approx(0.6, abs=1e-6)
    assert emb.calls == 4  # build, then one call per match_labels with synonym phrases


def test_label_index_disk_cache(tmp_path):
    emb = KeywordEmbedder()
    a = LabelIndex.build(_small_classes(), emb, cache_dir=tmp_path)
    b = LabelIndex.build(_small_classes(), emb, cache_dir=tmp_path)
    assert emb.calls == 1
    assert len(list(tmp_path.glob("labelindex-kw-test-*.npy"))) == 1
    np.testing.assert_array_equal(a.desc_matrix, b.desc_matrix)


# --- LLM tier ---------------------------------------------------------------------------


def test_build_llm_match_messages(trainable):
    msgs = build_llm_match_messages(["dog barking", "rain on a roof"], trainable)
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert "\nMale speech, man speaking\n" in user
    assert "- dog barking\n- rain on a roof" in user
    assert user.count("\n") > 527


def test_parse_llm_matches_json_with_think(plain_index, mid_of):
    text = (
        "<think>dog barking is Bark... maybe Dog? The /m/fake id...</think>\n"
        '```json\n{"dog barking": ["Bark", "Dog"], "rain on a roof": "Rain on surface", '
        '"tax report": [], "mystery": ["Human sounds"], "yelp": ["/m/05tny_"], '
        '"x": ["/m/0dgw9r"]}\n```'
    )
    found = parse_llm_matches(text, plain_index)
    assert [(c.mid, c.tier, c.phrase, c.score) for c in found] == [
        (mid_of("Bark"), "llm", "dog barking", 1.0),
        (mid_of("Dog"), "llm", "dog barking", 1.0),
        (mid_of("Rain on surface"), "llm", "rain on a roof", 1.0),
    ]


def test_parse_llm_matches_lines(plain_index, mid_of):
    text = (
        "dog barking -> Bark\n"
        "- a man talking => Male speech, man speaking\n"
        "rain: /m/06mb1\n"
        "guitar \u2192 Guitar; Acoustic guitar\n"
        "crowd -> Cheering, Applause\n"
        "nonsense -> Made-up class\n"
        "sky -> none\n"
        "Speech\n"
        "fake -> /m/notreal\n"
    )
    found = parse_llm_matches(text, plain_index)
    assert [(c.mid, c.phrase) for c in found] == [
        (mid_of("Bark"), "dog barking"),
        (mid_of("Male speech, man speaking"), "a man talking"),
        (mid_of("Rain"), "rain"),
        (mid_of("Guitar"), "guitar"),
        (mid_of("Acoustic guitar"), "guitar"),
        (mid_of("Cheering"), "crowd"),
        (mid_of("Applause"), "crowd"),
        (mid_of("Speech"), ""),
    ]
    assert all(c.tier == "llm" for c in found)


def test_parse_llm_matches_list_of_objects_and_garbage(plain_index, mid_of):
    text = '[{"phrase": "purring", "class": "Purr"}, {"phrase": "x", "mid": "/m/01yrx"}, 5]'
    found = parse_llm_matches(text, plain_index)
    assert [(c.mid, c.phrase) for c in found] == [(mid_of("Purr"), "purring"), (mid_of("Cat"), "x")]
    assert parse_llm_matches("<think>unfinished", plain_index) == []
    assert parse_llm_matches("", plain_index) == []
    assert parse_llm_matches(None, plain_index) == []
    assert parse_llm_matches("<script>alert(1)</script>", plain_index) == []
