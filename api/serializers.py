"""Serializers of the API: output shapes, the input of each write, and the query
parameters of each list (validated like any input, so a bad filter is a 400, not a 500).

Labels are rendered from the in-process ontology cache (relabel_app.label_info): a page of
clips, candidates or decisions never joins the label table."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.models import Adjudication, AdjudicationVerdict, ExportJob, Policy
from pipeline.models import Candidate, OriginalLabelScore, PipelineRun
from pipeline.profiles import profile_names
from pipeline.selectors import run_that_counts, run_that_counts_for_clip
from relabel_app.ids import BIGINT_MAX, BadNumber, id_if_in_range, looks_like_id, parse_int
from relabel_app.label_info import LabelInfo, ontology, ontology_clear
from relabel_app.models import Clip, Dataset, Label
from review.models import Decision, ErrorCategory, Verdict


class IdField(serializers.IntegerField):
    """An id in a query string or a body: a JSON integer or ASCII digits, within the id
    column's range (relabel_app.ids; DRF's IntegerField reads "٣" as 3)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        try:
            return parse_int(data, name=self.field_name or "id", min_value=self.min_value,
                             max_value=self.max_value)
        except BadNumber as e:
            raise serializers.ValidationError(str(e)) from None


class FilterSerializer(serializers.Serializer):
    """The query parameters of a list, validated like any input (a bad filter is a 400).
    Subclasses declare the parameters; views read them with `from_query`."""

    @classmethod
    def from_query(cls, request) -> dict:
        """Validated parameters. A plain dict, not the QueryDict, so an absent boolean stays
        absent instead of reading as false."""
        s = cls(data=request.query_params.dict())
        s.is_valid(raise_exception=True)
        return dict(s.validated_data)


# --- labels -------------------------------------------------------------------------------


class LabelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mid = serializers.CharField()
    name = serializers.CharField()


def label_ref(label_id: int) -> dict:
    info = ontology(need_ids=(label_id,)).get(label_id)
    if info is None:
        return {"id": label_id, "mid": "", "name": ""}
    return {"id": info.id, "mid": info.mid, "name": info.name}


@extend_schema_field(LabelRefSerializer)
class LabelOutField(serializers.Field):
    """The ``label`` of a row (its ``label_id``) as ``{id, mid, name}``, from the ontology
    cache: one field for every resource that points at a label."""

    def __init__(self, **kwargs):
        super().__init__(source="label_id", read_only=True, **kwargs)

    def to_representation(self, label_id: int) -> dict:
        return label_ref(label_id)


class LabelSerializer(serializers.Serializer):
    """One ontology class (from relabel_app.label_info.LabelInfo)."""

    id = serializers.IntegerField()
    mid = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    index = serializers.IntegerField(
        allow_null=True, help_text="Position in class_labels_indices.csv (0..526); null "
        "for the 105 classes that are not trainable."
    )
    trainable = serializers.BooleanField()
    abstract = serializers.BooleanField()
    blacklisted = serializers.BooleanField()
    parent_ids = serializers.ListField(child=serializers.IntegerField())
    path = serializers.CharField(help_text='"Animal > Domestic animals, pets > Dog"')

    def to_representation(self, info: LabelInfo) -> dict:
        return {
            "id": info.id, "mid": info.mid, "name": info.name, "description": info.description,
            "index": info.index, "trainable": info.trainable, "abstract": info.abstract,
            "blacklisted": info.blacklisted, "parent_ids": list(info.parent_ids),
            "path": info.path,
        }


class LabelFilterSerializer(FilterSerializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="Search names (exact, prefix, word, fuzzy) and descriptions; best first.",
    )
    mid = serializers.CharField(required=False, max_length=32)
    trainable = serializers.BooleanField(required=False)


def resolve_label(ref: str) -> int:
    """The id of a label given as an id or a MID (query string or body), or ValidationError."""
    ref = ref.strip()
    onto = ontology()
    if looks_like_id(ref):
        n = id_if_in_range(ref)
        info = onto.get(n) if n is not None else None
        if info is None and n is not None and Label.objects.filter(pk=n).exists():
            info = ontology(need_ids=(n,)).get(n)  # the cache predates this label
    else:
        info = onto.by_mid.get(ref)
        if info is None and Label.objects.filter(mid=ref).exists():
            ontology_clear()
            info = ontology().by_mid.get(ref)
    if info is None:
        raise serializers.ValidationError(f"no label {ref[:40]!r} (give an id or a MID)")
    return info.id


class RefField(serializers.CharField):
    """A row given by id or by name (text, in a query string), validated to the row's id:
    a 400 when there is none. Subclasses say how a reference resolves."""

    max_length_default = 32
    help_text_default = ""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", self.max_length_default)
        kwargs.setdefault("help_text", self.help_text_default)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty) -> int:
        # After CharField's own checks (length, blank, NUL), which need the text.
        return self.resolve(super().run_validation(data))

    def resolve(self, ref: str) -> int:
        raise NotImplementedError


class LabelRefField(RefField):
    help_text_default = "Label id or MID."

    def resolve(self, ref: str) -> int:
        return resolve_label(ref)


class DatasetRefField(RefField):
    max_length_default = 100
    help_text_default = "Dataset id or name."

    def resolve(self, ref: str) -> int:
        qs = Dataset.objects.filter(pk=id_if_in_range(ref)) if looks_like_id(ref) \
            else Dataset.objects.filter(name=ref)
        ds = qs.values_list("pk", flat=True).first()
        if ds is None:
            raise serializers.ValidationError(f"no dataset {ref[:40]!r}")
        return ds


# --- datasets and clips -------------------------------------------------------------------


class DatasetIdField(IdField):
    """A dataset's id in a body, validated to the Dataset (400 when there is none)."""

    def run_validation(self, data=serializers.empty) -> Dataset:
        ds = Dataset.objects.filter(pk=super().run_validation(data)).first()
        if ds is None:
            raise serializers.ValidationError(f"no dataset {data}")
        return ds


class DatasetSerializer(serializers.ModelSerializer):
    clip_count = serializers.IntegerField(
        read_only=True,
        help_text="Clips imported (highest import position + 1; an index lookup, not a count).",
    )
    run_that_counts = serializers.SerializerMethodField(
        help_text="The run whose candidates review and curation show for this dataset when "
        "none is named (pipeline.selectors): the latest running or finished run of the model "
        "chain, else the latest external label set; null when there is none.")

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "synthetic", "review_priority",
                  "required_reviews", "created_at", "clip_count", "run_that_counts"]

    def get_run_that_counts(self, dataset: Dataset) -> int | None:
        run = run_that_counts(dataset=dataset)
        return run.pk if run else None


class OriginalLabelScoreRefSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    label = LabelRefSerializer()
    clap_score = serializers.FloatField()


class ClipSerializer(serializers.ModelSerializer):
    labels = serializers.SerializerMethodField(help_text="The original labels.")
    original_label_scores = serializers.SerializerMethodField(
        help_text="CLAP evidence for the original labels: the cosine between the clip's "
        "audio and each original label's class text, per run whose filter stage scored it "
        "(not candidates).",
    )
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = ["id", "dataset", "ytid", "start_s", "end_s", "position", "audio_status",
                  "duration_s", "sample_rate", "labels", "original_label_scores", "audio_url"]

    @extend_schema_field(LabelRefSerializer(many=True))
    def get_labels(self, clip: Clip) -> list[dict]:
        return [label_ref(cl.label_id) for cl in clip.clip_labels.all()]

    @extend_schema_field(OriginalLabelScoreRefSerializer(many=True))
    def get_original_label_scores(self, clip: Clip) -> list[dict]:
        return [
            {"run": s.run_id, "label": label_ref(s.label_id), "clap_score": s.clap_score}
            for s in clip.original_scores.all()
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_audio_url(self, clip: Clip) -> str | None:
        if clip.audio_status != Clip.AudioStatus.OK:
            return None
        return reverse("review:clip_audio", kwargs={"clip_id": clip.pk})


class ClipDetailSerializer(ClipSerializer):
    run_that_counts = serializers.SerializerMethodField(
        help_text="The run whose candidates the review page and the curated state use for "
        "this clip (pipeline.selectors); null when no run covers it.")

    class Meta(ClipSerializer.Meta):
        fields = [*ClipSerializer.Meta.fields, "run_that_counts"]

    def get_run_that_counts(self, clip: Clip) -> int | None:
        run = run_that_counts_for_clip(clip=clip)
        return run.pk if run else None


class ClipFilterSerializer(FilterSerializer):
    dataset = DatasetRefField(required=False)
    ytid = serializers.CharField(required=False, max_length=64)
    decided = serializers.BooleanField(
        required=False, help_text="true: clips you decided on at least one label of; "
        "false: clips you have not decided anything on.",
    )
    finished = serializers.BooleanField(
        required=False, help_text="true: clips you finished (pressed next on); false: not.",
    )
    label = LabelRefField(required=False)
    label_source = serializers.ChoiceField(
        choices=["original", "candidate", "any"], default="any", required=False,
        help_text="Where `label` must be: an original label, a selected candidate, or either.",
    )
    run = IdField(required=False, help_text="With label_source=candidate: this run only.")




# --- runs and candidates ------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    random_weights = serializers.BooleanField(read_only=True)

    class Meta:
        model = PipelineRun
        fields = ["id", "dataset", "kind", "profile_name", "status", "clip_count",
                  "random_weights", "created_by", "created_at", "started_at", "finished_at"]


class RunProgressSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices)
    total = serializers.IntegerField()
    caption = serializers.IntegerField()
    predict = serializers.IntegerField()
    match = serializers.IntegerField()
    filter = serializers.IntegerField()
    stages = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Clips done per stage, in chain order (every registered stage).")
    failed = serializers.IntegerField()
    finished = serializers.IntegerField()
    percent = serializers.FloatField()
    rate_per_s = serializers.FloatField(allow_null=True)
    eta_s = serializers.FloatField(allow_null=True)


class RunDetailSerializer(RunSerializer):
    config = serializers.JSONField(read_only=True, help_text="The fully resolved profile.")
    progress = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["config", "progress"]

    @extend_schema_field(RunProgressSerializer(allow_null=True))
    def get_progress(self, run: PipelineRun) -> dict | None:
        progress = self.context.get("progress")
        return RunProgressSerializer(progress).data if progress is not None else None


class RunFilterSerializer(FilterSerializer):
    dataset = IdField(required=False)
    kind = serializers.ChoiceField(choices=PipelineRun.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=PipelineRun.Status.choices, required=False)


class RunStartSerializer(serializers.Serializer):
    dataset = DatasetIdField()
    profile = serializers.ChoiceField(choices=())
    new = serializers.BooleanField(
        default=False, help_text="Start a fresh run instead of continuing the latest one."
    )
    clips = serializers.ListField(
        child=IdField(), required=False, max_length=100_000,
        help_text="Only these clip ids of the dataset (default: all).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profile"].choices = profile_names()


class CandidateSerializer(serializers.ModelSerializer):
    label = LabelOutField()

    class Meta:
        model = Candidate
        fields = ["id", "run", "clip", "label", "attempt", "tier", "phrase", "match_score",
                  "clap_score", "kept", "selected"]


class OriginalLabelScoreSerializer(serializers.ModelSerializer):
    label = LabelOutField()

    class Meta:
        model = OriginalLabelScore
        fields = ["id", "run", "clip", "label", "clap_score"]


class OriginalLabelScoreFilterSerializer(FilterSerializer):
    run = IdField(required=False)
    clip = IdField(required=False)
    label = LabelRefField(required=False)


class CandidateFilterSerializer(FilterSerializer):
    run = IdField(required=False)
    clip = IdField(required=False)
    label = LabelRefField(required=False)
    kept = serializers.BooleanField(required=False)
    selected = serializers.BooleanField(required=False)
    tier = serializers.ChoiceField(choices=Candidate.Tier.choices, required=False)


# --- decisions ----------------------------------------------------------------------------


class ErrorCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = ErrorCategory
        fields = ["slug", "name", "description", "kind", "active"]


class DecisionSerializer(serializers.ModelSerializer):
    label = LabelOutField()
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    error_category = serializers.SlugRelatedField(slug_field="slug", read_only=True,
                                                  allow_null=True)

    class Meta:
        model = Decision
        fields = ["id", "clip", "label", "reviewer", "verdict", "error_category", "note",
                  "created_at", "updated_at"]


class DecisionFilterSerializer(FilterSerializer):
    clip = IdField(required=False)
    dataset = IdField(required=False)
    label = LabelRefField(required=False)
    verdict = serializers.ChoiceField(choices=Verdict.choices, required=False)
    reviewer = serializers.CharField(
        required=False, max_length=150,
        help_text="Curators only: a reviewer's username. Reviewers always see only their own.",
    )


class ClipLabelInput(serializers.Serializer):
    """A clip id and a label, given as `label` (id) or `mid`, resolved to rows (400 when
    either does not exist). A MID is only ever a MID: "3" or "٣" is not label 3."""

    clip = IdField()
    label = IdField(required=False)
    mid = serializers.CharField(required=False, max_length=32)

    def validate_clip(self, value: int) -> Clip:
        clip = Clip.objects.select_related("dataset").filter(pk=value).first()
        if clip is None:
            raise serializers.ValidationError(f"no clip {value}")
        return clip

    def validate(self, attrs: dict) -> dict:
        if ("label" in attrs) == ("mid" in attrs):
            raise serializers.ValidationError({"label": "give exactly one of label (id) or mid"})
        if "label" in attrs:
            ref = attrs.pop("label")
            label = Label.objects.filter(pk=ref).first()
        else:
            ref = attrs.pop("mid").strip()
            label = Label.objects.filter(mid=ref).first()
        if label is None:
            raise serializers.ValidationError({"label": f"no label {str(ref)[:40]!r}"})
        attrs["label"] = label
        return attrs


class DecisionInputSerializer(ClipLabelInput):
    """Set your verdict on a label of a clip. Idempotent: the same body twice leaves one
    decision. Give the label by `label` (id) or `mid`."""

    verdict = serializers.ChoiceField(choices=Verdict.choices)
    error_category = serializers.CharField(
        required=False, allow_null=True, max_length=64,
        help_text="Slug of an active error category; null clears it; absent keeps the stored "
        "one (a changed verdict drops it).",
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text="Absent keeps the stored note.",
    )

    def validate_error_category(self, value: str | None) -> ErrorCategory | None:
        if value is None:
            return None
        cat = ErrorCategory.objects.filter(slug=value, active=True).first()
        if cat is None:
            raise serializers.ValidationError(f"no active error category {value[:64]!r}")
        return cat


# --- curation: adjudications, exports, audits ---------------------------------------------


class AdjudicationSerializer(serializers.ModelSerializer):
    label = LabelOutField()
    curator = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Adjudication
        fields = ["id", "clip", "label", "curator", "verdict", "note", "created_at",
                  "updated_at"]


class AdjudicationFilterSerializer(FilterSerializer):
    clip = IdField(required=False)
    dataset = IdField(required=False)
    label = LabelRefField(required=False)
    verdict = serializers.ChoiceField(choices=AdjudicationVerdict.choices, required=False)


class AdjudicationInputSerializer(ClipLabelInput):
    """A curator's final verdict on a label of a clip (overrides the reviewers' majority).
    Idempotent. Give the label by `label` (id) or `mid`."""

    verdict = serializers.ChoiceField(choices=AdjudicationVerdict.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ExportJobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    percent = serializers.FloatField(read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = ["id", "dataset", "format", "policy", "status", "rows_done", "rows_total",
                  "percent", "size_bytes", "summary", "error", "created_by", "created_at",
                  "started_at", "finished_at", "download_url"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.DONE:
            return None
        return reverse("api:export-download", kwargs={"pk": job.pk})


class ExportFilterSerializer(FilterSerializer):
    dataset = IdField(required=False)
    status = serializers.ChoiceField(choices=ExportJob.Status.choices, required=False)


class ExportStartSerializer(serializers.Serializer):
    dataset = DatasetIdField()
    format = serializers.ChoiceField(choices=ExportJob.Format.choices)
    policy = serializers.ChoiceField(
        choices=Policy.choices, default=Policy.KEEP_ORIGINAL.value,
        help_text="What unresolved labels become (not used by the decisions CSV).",
    )


class AuditFilterSerializer(FilterSerializer):
    run = IdField(
        required=False,
        help_text="A run or external label set of this dataset (default: the latest run of "
        "the model chain).",
    )
