"""The home page's quality study cards: a template tag, so the review app's home view (a
layer below curation) needs no import of curation to show them."""

from django import template

register = template.Library()


@register.inclusion_tag("curation/quality/_home_card.html", takes_context=True)
def quality_study_cards(context):
    from curation.quality.answers import open_studies_for

    request = context.get("request")
    user = getattr(request, "user", None)
    return {"studies": open_studies_for(user) if user is not None else []}
