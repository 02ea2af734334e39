from django import forms

from relabel_app.ids import IdModelChoiceField, IntegerFormField
from relabel_app.models import Dataset

from .clip_notes import NOTE_MAX_CHARS
from .models import ErrorCategory, Verdict


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=Verdict.choices)


class CategoryForm(forms.Form):
    error_category = IdModelChoiceField(
        queryset=ErrorCategory.objects.filter(active=True), required=False
    )
    note = forms.CharField(required=False, max_length=2000, strip=True)


class ClipNoteForm(forms.Form):
    # Empty removes the note (review.clip_notes.clip_note_save).
    note = forms.CharField(required=False, max_length=NOTE_MAX_CHARS, strip=True)


class DatasetReviewSettingsForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["review_priority", "required_reviews"]
        field_classes = {"required_reviews": IntegerFormField}

    def clean_required_reviews(self):
        k = self.cleaned_data["required_reviews"]
        if k < 1 or k > 20:
            raise forms.ValidationError("Between 1 and 20 reviewers per clip.")
        return k
