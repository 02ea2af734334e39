"""Admin for review data. Error categories are edited here; the decision log is read-only
(append-only history)."""

from django.contrib import admin

from relabel_app.admin import EstimatedCountPaginator

from .models import ClipReview, Decision, DecisionLog, ErrorCategory, QueueSlot, QueueState


@admin.register(ErrorCategory)
class ErrorCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "position", "active")
    list_editable = ("position", "active")
    list_filter = ("kind", "active")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ("clip", "label", "reviewer", "verdict", "error_category", "updated_at")
    list_filter = ("verdict", "error_category", "clip__dataset")
    raw_id_fields = ("clip", "label", "reviewer")
    list_select_related = ("clip", "label", "reviewer", "error_category")
    search_fields = ("=clip__ytid", "=label__mid", "reviewer__username")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    date_hierarchy = "updated_at"


@admin.register(DecisionLog)
class DecisionLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "clip", "label", "reviewer", "before_verdict",
                    "after_verdict", "after_error_category")
    list_filter = ("action",)
    list_select_related = ("clip", "label", "reviewer", "after_error_category")
    search_fields = ("=clip__ytid", "=label__mid", "reviewer__username")
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ClipReview)
class ClipReviewAdmin(admin.ModelAdmin):
    list_display = ("clip", "reviewer", "dataset", "finished_at")
    list_filter = ("dataset",)
    raw_id_fields = ("clip", "reviewer", "dataset")
    list_select_related = ("clip", "reviewer", "dataset")
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(QueueSlot)
class QueueSlotAdmin(admin.ModelAdmin):
    list_display = ("clip", "slot", "dataset", "leased_to", "lease_expires_at", "done_by",
                    "rank_uncertain")
    list_filter = ("dataset",)
    raw_id_fields = ("clip", "dataset", "leased_to", "done_by")
    list_select_related = ("clip", "dataset", "leased_to", "done_by")
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(QueueState)
class QueueStateAdmin(admin.ModelAdmin):
    list_display = ("dataset", "max_position", "required_reviews", "run", "refreshed_at")
    raw_id_fields = ("dataset", "run")
