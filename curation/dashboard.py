"""The audit dashboard's charts, drawn from the figures dict of curation.audits (the same
data ``audit --json`` prints)."""

from __future__ import annotations

from django.utils.safestring import SafeString

from .charts import PALETTE, Series, grouped_bars, horizontal_bars, line_chart

# Labels per clip: 0 .. 20 each, then "21+" (AudioSet-R's tail reaches 20).
HISTOGRAM_MAX = 21


def _histogram_percent(block: dict | None) -> list[float | None]:
    if not block or not block["clips"]:
        return [None] * (HISTOGRAM_MAX + 1)
    out = [0.0] * (HISTOGRAM_MAX + 1)
    for n, clips in block["histogram"].items():
        out[min(int(n), HISTOGRAM_MAX)] += 100.0 * clips / block["clips"]
    return out


def audit_charts(figures: dict) -> dict[str, SafeString]:
    charts: dict[str, SafeString] = {}
    lc = figures["label_counts"]
    names = (("original", "Original labels"), ("run", "Run: kept candidates"),
             ("curated", "Curated (keep-original)"))
    present = [(key, name) for key, name in names if lc.get(key)]
    categories = [str(i) for i in range(HISTOGRAM_MAX)] + [f"{HISTOGRAM_MAX}+"]
    charts["labels_histogram"] = grouped_bars(
        categories,
        [Series(name, _histogram_percent(lc[key]), PALETTE[i]) for i, (key, name)
         in enumerate(present)],
        title="Labels per clip (% of clips)", x_label="labels per clip", y_label="% of clips",
        width=760,
    )
    charts["labels_average"] = horizontal_bars(
        [(name, round(lc[key]["average"] or 0.0, 3)) for key, name in present],
        title="Average labels per clip", value_format="{:.2f}", width=560,
    )

    ec = figures["error_categories"]
    charts["error_categories"] = horizontal_bars(
        [(c["name"], c["count"]) for c in ec["per_category"]],
        title="Decisions per error category", color=PALETTE[4],
    )
    charts["error_branches"] = horizontal_bars(
        [(b["name"], b["count"]) for b in ec["per_branch"]],
        title="Categorised decisions per top-level branch", color=PALETTE[3],
    )

    agreement = figures.get("agreement")
    if agreement and agreement["per_class"]:
        top = [c for c in agreement["per_class"] if c["original"]][:15]
        charts["agreement_classes"] = horizontal_bars(
            [(f'{c["name"]} ({c["original"]})', round(100 * (c["original_kept_fraction"] or 0), 1))
             for c in top],
            title="Original labels the run keeps, % (15 most frequent classes)",
            value_format="{:.1f}%", color=PALETTE[2],
        )

    pve = figures.get("pipeline_vs_experts")
    if pve and pve["pr_curve"]["points"]:
        pr = pve["pr_curve"]
        pts = pr["points"]
        # The PR curve starts at its first real point: thresholds above every accepted
        # candidate keep nothing right (recall 0) and would pin the line to (0, 0).
        real = [p for p in pts if p["recall"] > 0] or pts
        best = pr["best"]
        xs = [p["threshold"] for p in pts]
        lo, hi = min(xs), max(xs)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.05, hi + 0.05
        vlines = [(best["threshold"], f'best F1 {best["f1"]:.2f} at {best["threshold"]:.3f}',
                   "#c0392b")]
        if pr["run_threshold"] is not None:
            vlines.append((pr["run_threshold"], f'run threshold {pr["run_threshold"]:.3f}',
                           "#5b6475"))
        charts["threshold_curve"] = line_chart(
            [(Series("precision", [p["precision"] for p in pts], PALETTE[0]), xs),
             (Series("recall", [p["recall"] for p in pts], PALETTE[1]), xs),
             (Series("F1", [p["f1"] for p in pts], PALETTE[2]), xs)],
            title="CLAP threshold over decided candidates", x_label="threshold (keep if ≥)",
            y_label="precision / recall / F1", vlines=vlines, x_range=(lo, hi),
        )
        charts["pr_curve"] = line_chart(
            [(Series("precision", [p["precision"] for p in real], PALETTE[0]),
              [p["recall"] for p in real])],
            title="Precision-recall of the CLAP threshold", x_label="recall",
            y_label="precision",
            markers=[(best["recall"], best["precision"],
                      f'best F1 {best["f1"]:.2f} (t = {best["threshold"]:.3f})')],
        )

    tp = figures["throughput"]
    charts["throughput"] = horizontal_bars(
        [(t["reviewer"], round(t["decisions_per_hour"] or 0.0, 1)) for t in tp],
        title="Decisions per active hour", value_format="{:,.1f}", color=PALETTE[5],
    )
    return charts


class LazyCharts:
    """The charts of a figures dict, drawn on first access (``charts.name`` in a template):
    a page whose figure block comes from the cache draws none."""

    def __init__(self, figures: dict | None):
        self._figures = figures
        self._charts: dict[str, SafeString] | None = None

    def __getitem__(self, name: str) -> SafeString:
        if self._charts is None:
            self._charts = audit_charts(self._figures) if self._figures else {}
        return self._charts[name]

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default
