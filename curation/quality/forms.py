from django import forms
from django.contrib.auth import get_user_model

from relabel_app.names import DATASET_NAME_MAX
from relabel_app.roles import ROLE_GROUPS


class StudyForm(forms.Form):
    name = forms.SlugField(max_length=DATASET_NAME_MAX)
    sources = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple,
                                        help_text="Label sources to compare.")
    per_class = forms.IntegerField(min_value=1, initial=10, label="Per class")
    recall_clips = forms.IntegerField(min_value=0, initial=100, label="Recall clips",
                                      help_text="0: precision only.")
    answers_per_question = forms.IntegerField(min_value=1, max_value=5, initial=1,
                                              label="Answers per question")
    classes = forms.CharField(required=False, label="Classes (MIDs, comma-separated)",
                              help_text="Empty: every trainable class.")
    seed = forms.IntegerField(initial=0)
    answerers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Who may answer. None chosen: every reviewer.")

    def __init__(self, *args, source_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sources"].choices = source_choices
        self.fields["answerers"].queryset = (
            get_user_model().objects.filter(groups__name__in=ROLE_GROUPS, is_active=True)
            .distinct().order_by("username"))
