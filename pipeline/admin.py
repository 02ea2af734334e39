from django.contrib import admin

from relabel_app.admin import EstimatedCountPaginator

from . import chain
from .models import Candidate, ClipResult, PipelineRun


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "profile_name", "kind", "status", "clip_count", "created_at")
    list_filter = ("status", "kind", "profile_name")
    search_fields = ("profile_name", "dataset__name")
    raw_id_fields = ("dataset", "created_by")
    list_select_related = ("dataset",)


@admin.register(ClipResult)
class ClipResultAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "clip", *chain.status_fields(), "error_stage")
    list_filter = (*chain.status_fields(), "error_stage")
    search_fields = ("clip__ytid__exact",)
    raw_id_fields = ("run", "clip")
    list_select_related = ("run", "clip")
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "clip", "label", "tier", "phrase", "clap_score", "kept", "selected")
    list_filter = ("tier", "kept", "selected")
    search_fields = ("clip__ytid__exact", "label__mid__exact")
    raw_id_fields = ("run", "clip", "label")
    list_select_related = ("run", "clip", "label")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
