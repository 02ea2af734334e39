from django import forms

from relabel_app.ids import IdModelChoiceField
from relabel_app.models import Dataset

from .profiles import profile_names


class StartRunForm(forms.Form):
    dataset = IdModelChoiceField(queryset=Dataset.objects.order_by("name"))
    profile = forms.ChoiceField(choices=())
    new = forms.BooleanField(required=False, label="Start a fresh run (instead of continuing)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profile"].choices = [(p, p) for p in profile_names()]
