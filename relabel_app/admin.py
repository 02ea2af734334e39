"""Admin for the core domain. List pages must stay fast on 2M clips: no full COUNT(*),
no unbounded selects, raw id widgets for big foreign keys."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

from .models import Clip, ClipLabel, Dataset, Label

BIG_TABLE_ROWS = 100_000
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """On big tables, never COUNT(*) millions of rows for a list page: the planner's
    estimate when unfiltered, a count capped at COUNT_CAP (+1) when filtered."""

    @cached_property
    def count(self) -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                [self.object_list.model._meta.db_table],
            )
            row = cur.fetchone()
        if not row or row[0] < BIG_TABLE_ROWS:
            return super().count
        if not self.object_list.query.where:
            return int(row[0])
        return self.object_list[: COUNT_CAP + 1].count()


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ("name", "mid", "index", "abstract", "blacklisted")
    list_filter = ("abstract", "blacklisted")
    search_fields = ("name", "mid", "description")
    filter_horizontal = ("parents",)
    ordering = ("index", "name")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "synthetic", "review_priority", "required_reviews", "created_at")
    search_fields = ("name",)


class ClipLabelInline(admin.TabularInline):
    model = ClipLabel
    extra = 0
    raw_id_fields = ("label",)


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ("ytid", "start_s", "end_s", "dataset", "audio_status", "original_labels")
    list_filter = ("dataset", "audio_status")
    # Exact ytid lookups use the ytid index; a prefix search would scan 2M rows.
    search_fields = ("ytid__exact",)
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset",)
    inlines = [ClipLabelInline]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("dataset_id", "position")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("labels")

    @admin.display(description="Original labels")
    def original_labels(self, obj: Clip) -> str:
        return ", ".join(label.name for label in obj.labels.all())


@admin.register(ClipLabel)
class ClipLabelAdmin(admin.ModelAdmin):
    list_display = ("clip", "label")
    raw_id_fields = ("clip", "label")
    list_select_related = ("clip", "label")
    list_filter = ("clip__dataset",)
    search_fields = ("clip__ytid__exact", "label__mid__exact")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
