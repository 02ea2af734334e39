"""Admin for the curated set. The adjudication log is read-only (append-only history)."""

from django.contrib import admin

from .models import Adjudication, AdjudicationLog, ExportJob


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("clip", "label", "verdict", "curator", "updated_at")
    list_filter = ("verdict", "clip__dataset")
    raw_id_fields = ("clip", "label", "curator")
    list_select_related = ("clip", "label", "curator")
    search_fields = ("=clip__ytid", "=label__mid", "curator__username")
    date_hierarchy = "updated_at"


@admin.register(AdjudicationLog)
class AdjudicationLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "clip", "label", "curator", "before_verdict",
                    "after_verdict")
    list_filter = ("action",)
    list_select_related = ("clip", "label", "curator")
    search_fields = ("=clip__ytid", "=label__mid", "curator__username")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "format", "policy", "status", "rows_done", "rows_total",
                    "created_by", "created_at", "finished_at")
    list_filter = ("status", "format", "policy", "dataset")
    readonly_fields = ("rows_done", "rows_total", "path", "size_bytes", "summary", "started_at",
                       "finished_at", "error", "created_at")
    raw_id_fields = ("created_by",)
