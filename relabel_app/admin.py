"""Admin for the core domain. List pages must stay fast on 2M clips: no full COUNT(*),
no unbounded selects, raw id widgets for big foreign keys."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

from .models import Clip, ClipLabel, Dataset, Label


class EstimatedCountPaginator(Paginator):
    """Use PostgreSQL's planner estimate instead of COUNT(*) for unfiltered big tables."""

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if not query.where:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cur.fetchone()
                if row and row[0] > 100_000:
                    return int(row[0])
        return super().count


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
    search_fields = ("=ytid",)
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset",)
    inlines = [ClipLabelInline]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("dataset", "position")

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
    search_fields = ("=clip__ytid", "=label__mid")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
