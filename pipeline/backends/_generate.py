"""Batched `generate` for the local chat adapters: left-padded batches, per-request seeded
sampling inside a greedy batch, and a one-by-one fallback that isolates a failing request.

Why a logits processor does the sampling: `generate(do_sample=True)` draws every row from
one shared random generator, so a row's tokens would depend on the rows beside it (and a
greedy first attempt could not share a batch with sampled ones). `RowSampler` keeps one
`torch.Generator` per row, seeded from that request's `Sampling.seed`, applies
temperature and top_p to that row's scores and leaves only the drawn token; the batch
itself decodes greedily, so greedy rows are untouched and a sampled row's answer is the
same in any batch and on every rerun.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import BackendError, Sampling


def row_sampler(samplings: Sequence[Sampling | None]):
    """A LogitsProcessor drawing the sampled rows' next tokens (None rows stay greedy)."""
    import torch
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.samplings = list(samplings)
            self.generators = [
                torch.Generator(device="cpu").manual_seed(int(s.seed)) if s else None
                for s in self.samplings
            ]

        def __call__(self, input_ids, scores):
            scores = scores.clone()
            for i, s in enumerate(self.samplings):
                if s is None:
                    continue
                probs = torch.softmax(scores[i].float().cpu() / float(s.temperature), dim=-1)
                if s.top_p < 1.0:
                    # Nucleus: the smallest set of most likely tokens whose mass reaches
                    # top_p (the most likely token always stays).
                    sorted_p, order = torch.sort(probs, descending=True)
                    cum = torch.cumsum(sorted_p, dim=-1)
                    drop = (cum - sorted_p) >= float(s.top_p)
                    drop[0] = False
                    probs[order[drop]] = 0.0
                    probs = probs / probs.sum()
                token = int(torch.multinomial(probs, 1, generator=self.generators[i]))
                row = torch.full_like(scores[i], float("-inf"))
                row[token] = 0.0
                scores[i] = row
            return scores

    return RowSampler()


def generate_kwargs(samplings: Sequence[Sampling | None]) -> dict:
    """Extra `generate` keywords for a batch: a RowSampler when any row samples."""
    if not any(samplings):
        return {}
    from transformers import LogitsProcessorList

    return {"logits_processor": LogitsProcessorList([row_sampler(samplings)])}


def run_rows(
    n: int,
    prepare: Callable[[int], object],
    generate: Callable[[list[int], list[object]], list[str]],
    return_exceptions: bool,
    who: str,
) -> list[str | Exception]:
    """Prepare every row (a row whose input is bad fails alone), generate the good rows as
    one batch, and when that batch fails, retry its rows one by one so only the rows that
    fail on their own are lost. Model errors become BackendError naming `who`."""
    out: list[str | Exception | None] = [None] * n
    good, prepared = [], []
    for i in range(n):
        try:
            prepared.append(prepare(i))
            good.append(i)
        except Exception as exc:  # noqa: BLE001 - reported per row
            out[i] = exc
    if good:
        try:
            answers = generate(good, prepared)
        except (RuntimeError, ValueError) as exc:
            if len(good) == 1:
                answers = [BackendError(f"{who} generation failed: {exc}")]
            else:
                answers = []
                for i, item in zip(good, prepared, strict=True):
                    try:
                        answers.extend(generate([i], [item]))
                    except (RuntimeError, ValueError) as one_exc:
                        answers.append(BackendError(f"{who} generation failed: {one_exc}"))
        for i, a in zip(good, answers, strict=True):
            out[i] = a
    if not return_exceptions:
        for a in out:
            if isinstance(a, Exception):
                raise a
    return out  # type: ignore[return-value]
