import json

import pytest
from django.core.management import call_command

from relabel_app.label_info import ontology
from relabel_app.models import Label
from relabel_app.ontology_loader import ontology_load
from relabel_app.ontology_source import load_ontology, read_wheel_member

pytestmark = pytest.mark.django_db


def test_all_classes_loaded_with_standard_index():
    assert Label.objects.count() == 632
    assert Label.objects.filter(index__isnull=False).count() == 527
    first = Label.objects.get(index=0)
    assert (first.mid, first.name) == ("/m/09x0r", "Speech")
    second = Label.objects.get(index=1)
    assert (second.mid, second.name) == ("/m/05zppz", "Male speech, man speaking")
    assert Label.objects.get(index=526).mid == load_ontology().trainable[-1].mid
    assert Label.objects.filter(blacklisted=True, index__isnull=False).count() == 12
    assert Label.objects.get(name="Human sounds").abstract is True


def test_ancestors_follow_edges():
    onto = ontology()
    bark, animal = onto.by_mid["/m/05tny_"], onto.by_mid["/m/0jbk"]
    names = {onto.get(i).name for i in bark.ancestor_ids}
    assert {"Dog", "Domestic animals, pets", "Animal"} <= names
    assert "Music" not in names
    assert bark.id not in animal.ancestor_ids


def test_class_with_several_parents_keeps_all():
    onto = load_ontology()
    multi = [m for m, ps in onto.parents.items() if len(ps) > 1]
    assert multi, "the AudioSet ontology has classes with several parents"
    label = Label.objects.get(mid=multi[0])
    assert set(label.parents.values_list("mid", flat=True)) == set(onto.parents[multi[0]])


def test_second_load_changes_nothing():
    edges = Label.parents.through.objects.count()
    report = ontology_load()
    assert (report.created, report.updated, report.edges_added, report.edges_removed) == (0, 0, 0, 0)
    assert Label.objects.count() == 632
    assert Label.parents.through.objects.count() == edges == 670


def test_load_from_user_path_updates_in_place(tmp_path, capsys):
    data = json.loads(read_wheel_member("src/ontology.json"))
    for item in data:
        if item["id"] == "/m/05tny_":
            item["description"] = "A changed description."
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(data))
    call_command("load_ontology", "--path", str(path))
    assert "updated 1" in capsys.readouterr().out
    assert Label.objects.get(mid="/m/05tny_").description == "A changed description."
    assert Label.objects.count() == 632
