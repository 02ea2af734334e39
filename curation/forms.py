from django import forms

from relabel_app.ids import IntegerFormField

from .models import AdjudicationVerdict, ExportJob, Policy


class AdjudicationForm(forms.Form):
    CLEAR = "clear"
    verdict = forms.ChoiceField(
        choices=[*AdjudicationVerdict.choices, (CLEAR, "Clear adjudication")]
    )
    note = forms.CharField(required=False, max_length=2000, strip=True)


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportJob.Format.choices, initial=ExportJob.Format.CSV)
    policy = forms.ChoiceField(
        choices=Policy.choices, initial=Policy.KEEP_ORIGINAL,
        help_text="What unresolved labels become. Not used by the decisions CSV.",
    )


class GoldSettingsForm(forms.Form):
    gold_rate_percent = forms.FloatField(
        label="Gold rate (% of picks)", min_value=0, max_value=100, initial=5,
    )
    # In percent like the rate and the page's precision and recall (issue 21: the floor
    # was a fraction beside a rate in percent).
    gold_floor_percent = forms.FloatField(
        label="Floor (%: a precision or recall below it flags a reviewer)", required=False,
        min_value=0, max_value=100,
    )
    gold_exclude_flagged = forms.BooleanField(
        label="Leave flagged reviewers' votes out of the majority", required=False,
    )


class ThresholdFitForm(forms.Form):
    run = IntegerFormField(min_value=1)
    min_decisions = IntegerFormField(min_value=1, max_value=1_000_000, initial=20,
                                     label="Decisions a class needs")
