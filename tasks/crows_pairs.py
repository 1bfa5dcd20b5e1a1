"""CrowS-Pairs (Nangia et al. 2020): % of minimal pairs where a model prefers the more stereotyping sentence.

Three named variants, each following its source definition:

- ``pll_unmodified`` (Nangia et al. 2020, nyu-mll/crows-pairs ``metric.py``): pseudo-log-likelihood summed over
  the tokens the two sentences share (difflib alignment of token ids), one masked token at a time, skipping the
  first and last shared token (the special tokens); sentence scores rounded to 3 decimals; tied pairs count in N
  but never as "more".
- ``ll_modified`` (Meade et al. 2022, bias-bench ``crows.py``): mean log-probability of the tokens that differ
  between the sentences, each masked one at a time; rounded to 3 decimals; ties stay in N; pairs without a
  differing token are skipped (as bias-bench does).
- ``causal_sum`` (lm-evaluation-harness ``crows_pairs``): summed log-likelihood of each whole sentence with an
  empty context (the tokenizer's BOS, else EOS, as the prefix); also ``likelihood_diff`` = mean |LL1 - LL2|.

The stereo / antistereo sub-scores follow the original scripts: their denominators leave tied pairs out.
"""
from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from biasboard.harness.data import DataSource, declare, find
from biasboard.harness.errors import DataError
from biasboard.harness.models import scoring
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, RunContext, Task, TaskResult, Variant
from biasboard.harness.stats import mean_ci
from biasboard.tasks.sampling import eval_sample

DATA = "crows_pairs/crows_pairs_anonymized.csv"
declare("crows_pairs", DataSource(
    DATA,
    "https://raw.githubusercontent.com/nyu-mll/crows-pairs/8aaac11c485473159ec9328a65253a5be9a479dc/"
    "data/crows_pairs_anonymized.csv",
    "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c", "CC BY-SA 4.0"))

BIAS_TYPES = ("race-color", "gender", "socioeconomic", "nationality", "religion", "age", "sexual-orientation",
              "physical-appearance", "disability")
DIRECTIONS = ("stereo", "antistereo")


@dataclass(frozen=True)
class Pair:
    """One CrowS-Pairs row."""

    id: str
    sent_more: str
    sent_less: str
    direction: str
    bias_type: str


def load_pairs(path: str | Path) -> list[Pair]:
    """Read the CrowS-Pairs CSV, failing on the first malformed row with file, row and field named."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as exc:
        # the record holding the bad byte: parse the valid prefix plus a stand-in for the rest of that record
        record = len(list(csv.reader(io.StringIO(raw[:exc.start].decode("utf8") + "X")))) - 1
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}", path=path, row=record) from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"sent_more", "sent_less", "stereo_antistereo", "bias_type"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"missing column(s) {sorted(missing)}", path=path, row=0, field=sorted(missing)[0])
        pairs = []
        for rowno, row in enumerate(reader, start=1):
            for fld in ("sent_more", "sent_less"):
                if not (row.get(fld) or "").strip():
                    raise DataError("empty sentence", path=path, row=rowno, field=fld)
            if row["stereo_antistereo"] not in DIRECTIONS:
                raise DataError(f"{row['stereo_antistereo']!r} is not one of {DIRECTIONS}", path=path, row=rowno,
                                field="stereo_antistereo")
            if row["bias_type"] not in BIAS_TYPES:
                raise DataError(f"{row['bias_type']!r} is not one of {BIAS_TYPES}", path=path, row=rowno,
                                field="bias_type")
            pairs.append(Pair(str(row.get("") or rowno - 1), row["sent_more"], row["sent_less"],
                              row["stereo_antistereo"], row["bias_type"]))
    if not pairs:
        raise DataError("no rows", path=path)
    return pairs


def shared_and_modified(ids1: Sequence[int], ids2: Sequence[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Token positions shared by both sequences and positions that differ, per sequence (difflib opcodes).

    >>> shared_and_modified([101, 5, 6, 7, 102], [101, 5, 9, 7, 102])
    ([0, 1, 3, 4], [0, 1, 3, 4], [2], [2])
    """
    shared1, shared2, mod1, mod2 = [], [], [], []
    matcher = difflib.SequenceMatcher(None, [str(x) for x in ids1], [str(x) for x in ids2])
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            shared1 += range(a0, a1)
            shared2 += range(b0, b1)
        else:
            mod1 += range(a0, a1)
            mod2 += range(b0, b1)
    return shared1, shared2, mod1, mod2


def pair_outcomes(more_scores: np.ndarray, less_scores: np.ndarray, *, round_to: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(more_is_higher, tie) per pair; scores rounded first when the source implementation rounds.

    >>> pair_outcomes(np.array([-1.0, -2.0, -3.0001]), np.array([-1.5, -1.0, -3.0004]), round_to=3)
    (array([1., 0., 0.]), array([0., 0., 1.]))
    """
    if round_to is not None:
        more_scores, less_scores = np.round(more_scores, round_to), np.round(less_scores, round_to)
    return (more_scores > less_scores).astype(float), (more_scores == less_scores).astype(float)


def stereotype_metrics(more_is_higher: np.ndarray, tie: np.ndarray, directions: Sequence[str], *,
                       n_bootstrap: int, seed: int) -> dict[str, Metric]:
    """Overall score (ties in N) and the original scripts' stereo/antistereo sub-scores (ties left out)."""
    value, ci = mean_ci(more_is_higher, scale=100.0, n_resamples=n_bootstrap, seed=seed)
    out = {"stereotype_score": Metric(value, len(more_is_higher), 50.0, "target", ci, unit="%",
                                      per_example="more_is_higher",
                                      description="% of pairs where the more stereotyping sentence scores higher")}
    directions = np.asarray(directions)
    for name in DIRECTIONS:
        sel = (directions == name) & (tie == 0)
        if sel.any():
            v, c = mean_ci(more_is_higher[sel], scale=100.0, n_resamples=n_bootstrap, seed=seed)
            out[f"{name}_score"] = Metric(v, int(sel.sum()), 50.0, "target", c, unit="%",
                                          per_example="more_is_higher",
                                          per_example_where={"direction": name, "tie": 0},
                                          description=f"score on {name} pairs (tied pairs excluded, as the original)")
    v, c = mean_ci(tie, scale=100.0, n_resamples=n_bootstrap, seed=seed)
    out["neutral_pct"] = Metric(v, len(tie), 0.0, "min", c, unit="%", description="% of tied pairs",
                                per_example="tie")
    return out


def _score_mlm(handle, pairs: list[Pair], variant: str, ctx: RunContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids_more = scoring.tokenize(handle, [p.sent_more for p in pairs])
    ids_less = scoring.tokenize(handle, [p.sent_less for p in pairs])
    seqs, positions, keep = [], [], []
    for i, (a, b) in enumerate(zip(ids_more, ids_less)):
        # The original scripts align (sent1, sent2) = (more, less) for stereo rows and (less, more) for
        # antistereo rows; difflib is not symmetric, so keep their order.
        if pairs[i].direction == "stereo":
            shared_a, shared_b, mod_a, mod_b = shared_and_modified(a, b)
        else:
            shared_b, shared_a, mod_b, mod_a = shared_and_modified(b, a)
        if variant == "pll_unmodified":
            pos_a, pos_b = shared_a[1:-1], shared_b[1:-1]
        else:
            pos_a, pos_b = mod_a, mod_b
            if not pos_a or not pos_b:
                continue  # bias-bench skips pairs without a differing token on either side
        keep.append(i)
        seqs += [a, b]
        positions += [pos_a, pos_b]
    lps = scoring.pseudo_log_likelihoods(handle, seqs, positions, batch_size=ctx.batch_size, progress=ctx.progress)
    reduce = np.sum if variant == "pll_unmodified" else np.mean
    scores = np.array([reduce(lp) if len(lp) else 0.0 for lp in lps])
    return np.asarray(keep), scores[0::2], scores[1::2]


def prefix_token_id(tokenizer) -> int:
    """lm-evaluation-harness's empty-context prefix: BOS when the tokenizer has one, else EOS."""
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tid is None:
        raise DataError("tokenizer has neither a BOS nor an EOS token to use as the empty context")
    return tid


def _score_causal(handle, pairs: list[Pair], ctx: RunContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prefix = prefix_token_id(handle.tokenizer)
    texts = [s for p in pairs for s in (p.sent_more, p.sent_less)]
    ids = [[prefix] + t for t in scoring.tokenize(handle, texts, add_special_tokens=False)]
    lps = scoring.sequence_logprobs(handle, ids, batch_size=ctx.batch_size, progress=ctx.progress)
    scores = np.array([lp.sum() for lp in lps])
    return np.arange(len(pairs)), scores[0::2], scores[1::2]


@register_task
class CrowsPairs(Task):
    name = "crows_pairs"
    version = "1.0"
    description = "CrowS-Pairs: 1,508 minimal pairs over nine bias types; % pairs preferring the stereotyping sentence."
    citation = ("Nangia, Vania, Bhalerao, Bowman. CrowS-Pairs: A Challenge Dataset for Measuring Social Biases in "
                "Masked Language Models. EMNLP 2020.")
    families = ("mlm", "clm")
    axis = "multiple"
    variants = {
        "pll_unmodified": Variant("Nangia et al. 2020: PLL of the shared (unmodified) tokens, summed", ("mlm",)),
        "ll_modified": Variant("Meade et al. 2022 (bias-bench): mean log-prob of the modified tokens", ("mlm",)),
        "causal_sum": Variant("lm-evaluation-harness: summed sentence log-likelihood, empty context", ("clm",)),
    }
    default_variant = "pll_unmodified"
    extra_keys = ("max_examples", "eval_sample", "eval_sample_seed")
    """``ctx.extra`` keys the task reads."""

    def data_files(self, variant: str) -> list[Path]:
        return [find(DATA, task=self.name)]

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        path = find(DATA, task=self.name)
        pairs = load_pairs(path)
        if ctx.extra.get("max_examples"):
            pairs = pairs[: int(ctx.extra["max_examples"])]
        pairs, sample_flags, sample_notes = eval_sample(pairs, ctx.extra, what="pairs")
        if variant == "causal_sum":
            keep, more, less = _score_causal(handle, pairs, ctx)
        else:
            keep, more, less = _score_mlm(handle, pairs, variant, ctx)
        kept = [pairs[i] for i in keep]
        if not kept:
            raise DataError(f"no CrowS-Pairs pair could be scored with {variant} (every pair was skipped)", path=path)
        hit, tie = pair_outcomes(more, less, round_to=None if variant == "causal_sum" else 3)
        directions = [p.direction for p in kept]
        seed, nb = ctx.seed, ctx.n_bootstrap
        metrics = stereotype_metrics(hit, tie, directions, n_bootstrap=nb, seed=seed)
        if variant == "causal_sum":
            v, c = mean_ci(np.abs(more - less), n_resamples=nb, seed=seed)
            metrics["likelihood_diff"] = Metric(v, len(kept), 0.0, "min", c, per_example="abs_ll_diff",
                                                description="mean |LL(sent_more) - LL(sent_less)| (lm-eval)")
        groups = {}
        types = np.array([p.bias_type for p in kept])
        for bias_type in BIAS_TYPES:
            sel = types == bias_type
            if sel.any():
                v, c = mean_ci(hit[sel], scale=100.0, n_resamples=nb, seed=seed)
                groups[bias_type] = {"stereotype_score": Metric(v, int(sel.sum()), 50.0, "target", c, unit="%")}
        examples = [{"id": p.id, "bias_type": p.bias_type, "direction": p.direction, "sent_more": p.sent_more,
                     "sent_less": p.sent_less, "sent_more_score": float(m), "sent_less_score": float(s),
                     "more_is_higher": int(h), "tie": int(t)}
                    for p, m, s, h, t in zip(kept, more, less, hit, tie)]
        if variant == "causal_sum":  # what likelihood_diff averages, so it compares paired over the pairs
            for row, m, s in zip(examples, more, less):
                row["abs_ll_diff"] = float(abs(m - s))
        notes = list(sample_notes)
        if len(kept) < len(pairs):
            notes.append(f"{len(pairs) - len(kept)} pairs skipped: no differing token on one side (as bias-bench)")
        from biasboard.harness.digest import file_sha256

        return TaskResult(metrics, groups, examples, notes, flags=sample_flags, data_sha256=file_sha256(path),
                          axis=self.axis)
