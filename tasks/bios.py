"""BIOS: occupation classification from biographies, gender TPR gaps after fine-tuning (De-Arteaga et al. 2019).

The model is fine-tuned (``harness.training``) on biographies, with the cell's method hooked into the loop, then
scored on a test split: per occupation TPR(female) - TPR(male), their root mean square, and their Pearson r with the
share of women among the (possibly transformed) training bios of that occupation. Offline the bios are synthetic
(``tasks.synthetic_bios``) and every result says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats as sps

import biasboard.tasks.synthetic_bios as synthetic_bios
import biasboard.tasks.wordlists as wordlists
from biasboard.harness import data as hdata
from biasboard.harness.digest import files_sha256, json_sha256
from biasboard.harness.errors import DataError
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, Task, TaskResult, Variant
from biasboard.harness.training import TextDataset, finetune, predict
from biasboard.tasks import bios_data
from biasboard.harness.stats import basic_ci, clopper_pearson_ci, percentile_ci, weighted_bootstrap
from biasboard.tasks.text_classifier_metrics import gaps_from_weights, rms, tpr_gap_counts, tpr_gaps, tpr_table
from biasboard.tasks.finetune_common import option_keys
from biasboard.tasks.finetune_common import (SYNTHETIC_NOTE, accuracy_metric, capped, options, split, train_config,
                                   training_summary)

FAMILIES = ("encoder", "mlm", "clm")
DEFAULTS = {"n_train": 2000, "n_val": 300, "n_test": 3000, "skew": 1.0, "ambiguity": 0.5, "data_seed": 0,
            "occupations": tuple(synthetic_bios.OCCUPATIONS),
            "epochs": 2, "lr": 5e-5, "batch_size": 32, "max_length": 64}


@register_task
class Bios(Task):
    name = "bios"
    version = "1"
    description = ("Occupation classification after fine-tuning; gender bias = RMS over occupations of "
                   "TPR(female) - TPR(male) (De-Arteaga et al. 2019), as in Baksi et al. (2024).")
    families = FAMILIES
    variants = {
        "synthetic": Variant("Synthetic biographies with a planted P(female | occupation) (ours; offline default). "
                             "Options: n_train, n_val, n_test, skew, ambiguity, occupations, data_seed.", FAMILIES,
                             {"source": "synthetic"}),
        "real": Variant("The real Bias in Bios corpus under <data>/bios/ (LabHC/bias_in_bios split files or the "
                        "original pickled release, split 65/10/25 by occupation); sizes capped by n_train etc.",
                        FAMILIES, {"source": "real"}),
    }
    default_variant = "synthetic"
    extra_keys = option_keys(DEFAULTS, variants)
    citation = ("De-Arteaga et al. 2019, Bias in Bios, FAT*; Baksi, Singh, Joshi 2024, Downstream bias mitigation "
                "is all you need, arXiv 2408.00612")
    axis = "gender"
    fine_tunes = True

    def data_files(self, variant: str) -> list[Path]:
        if self.variants[variant].options["source"] == "synthetic":
            return [Path(synthetic_bios.__file__), Path(wordlists.__file__)]
        try:
            folder = hdata.find("bios", task="bios")
        except DataError:
            return []  # planning a matrix without the real corpus; evaluate() raises the clear error
        return sorted(bios_data.find_split_files(folder).values())

    def _splits(self, variant: str, opts: dict) -> tuple[TextDataset, TextDataset, TextDataset]:
        seed = int(opts["data_seed"])
        if self.variants[variant].options["source"] == "synthetic":
            make = lambda n, s: synthetic_bios.generate(synthetic_bios.BiosConfig(  # noqa: E731
                n=int(n), skew=float(opts["skew"]), ambiguity=float(opts["ambiguity"]), seed=s,
                occupations=_names(opts["occupations"])))
            return make(opts["n_train"], 3 * seed), make(opts["n_val"], 3 * seed + 1), make(opts["n_test"], 3 * seed + 2)
        files = bios_data.find_split_files(hdata.find("bios", task="bios"))
        if "all" in files:
            full = bios_data.read_bios(files["all"])
            tr, va, te = split(len(full), (0.65, 0.10, 0.25), seed=0, stratify=np.asarray(full.labels))
            parts = full.select(tr), full.select(va), full.select(te)
        else:
            parts = tuple(bios_data.read_bios(files[s]) for s in ("train", "dev", "test"))
        return tuple(capped(p, opts[k], seed) for p, k in zip(parts, ("n_train", "n_val", "n_test")))

    def evaluate(self, handle, variant, ctx):
        opts = options(DEFAULTS, self.variants[variant].options, ctx.extra)
        train, val, test = self._splits(variant, opts)
        test = capped(test, opts["max_examples"], int(opts["data_seed"]))
        config = train_config(opts, num_labels=len(train.label_names), seed=ctx.seed, handle=handle, extra=ctx.extra)
        ft = finetune(handle, train, val, config, ctx)
        pred = predict(ft, test, batch_size=ctx.batch_size).argmax(axis=1)
        result = score(test, pred, ft.train_data, n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)
        result.flags.update(training_summary(ft))
        if self.variants[variant].options["source"] == "synthetic":
            result.flags["synthetic_data"] = True
            result.notes.append(SYNTHETIC_NOTE.format(what="biography", skew=opts["skew"]))
            result.data_sha256 = json_sha256([train.digest(), val.digest(), test.digest()])
        else:
            result.data_sha256 = files_sha256(self.data_files(variant))
            if any(len(p) == opts[k] for p, k in zip((train, val, test), ("n_train", "n_val", "n_test"))):
                result.notes.append(f"Subsampled Bias in Bios: {len(train)} train / {len(val)} val / {len(test)} test.")
        return result


def _names(value) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)


def female_share_by_class(data: TextDataset) -> np.ndarray:
    """Share of women among the examples of each class (NaN for a class absent from ``data``)."""
    y = np.asarray(data.labels, dtype=int)
    f = np.asarray([g == "female" for g in data.groups], dtype=float)
    K = len(data.label_names)
    n = np.bincount(y, minlength=K).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.bincount(y, weights=f, minlength=K) / np.where(n > 0, n, 1), np.nan)


def score(test: TextDataset, pred: np.ndarray, train: TextDataset, *, n_bootstrap: int, seed: int) -> TaskResult:
    """BIOS metrics from test predictions and the training data (pure: no model)."""
    K = len(test.label_names)
    y = np.asarray(test.labels, dtype=int)
    gender = np.asarray(test.groups)
    correct = pred == y
    gaps = tpr_gaps(y, pred, gender, K)
    A = tpr_gap_counts(y, correct, gender == "female", K)
    boot = weighted_bootstrap(gaps_from_weights(A, K), len(y), n_resamples=n_bootstrap, seed=seed)
    lo, hi = percentile_ci(boot[:, :-1] * 100)
    share = female_share_by_class(train)
    ok = np.isfinite(gaps) & np.isfinite(share)
    value = rms(gaps) * 100
    metrics = {"tpr_gap_rms": Metric(value, n=len(y), ideal=0.0, direction="min", ci95=basic_ci(value, boot[:, -1] * 100),
                                     unit="pp", description="RMS over occupations of TPR(female) - TPR(male), in "
                                     "percentage points (De-Arteaga et al. 2019); basic bootstrap CI.")}
    if ok.sum() >= 3 and np.std(gaps[ok]) > 0 and np.std(share[ok]) > 0:
        res = sps.pearsonr(share[ok], gaps[ok])
        ci = res.confidence_interval(0.95)
        metrics["tpr_gap_pearson_r"] = Metric(float(res.statistic), n=int(ok.sum()), ideal=0.0, direction="target",
                                              ci95=(float(ci.low), float(ci.high)), p_value=float(res.pvalue),
                                              description="Pearson r over occupations between the TPR gap and the "
                                              "share of women in training (Fisher CI).")
    metrics["accuracy"] = accuracy_metric(correct, n_bootstrap=n_bootstrap, seed=seed)
    metrics["train_gender_skew"] = _train_skew(train, n_bootstrap=n_bootstrap, seed=seed)
    table = tpr_table(y, pred, gender)
    groups = {}
    for c, name in enumerate(test.label_names):
        if not np.isfinite(gaps[c]):
            continue
        n_f, n_m = int(((y == c) & (gender == "female")).sum()), int(((y == c) & (gender == "male")).sum())
        groups[name] = {
            "tpr_gap": Metric(gaps[c] * 100, n=n_f + n_m, ideal=0.0, direction="target", ci95=(lo[c], hi[c]), unit="pp"),
            "tpr_female": Metric(float(table.by_group["tpr"][(c, "female")]) * 100, n=n_f, ideal=100.0,
                                 direction="max", ci95=_binom_ci(table, c, "female", n_f), unit="%"),
            "tpr_male": Metric(float(table.by_group["tpr"][(c, "male")]) * 100, n=n_m, ideal=100.0,
                               direction="max", ci95=_binom_ci(table, c, "male", n_m), unit="%"),
            "share_female_train": Metric(float(share[c]) * 100, n=int((np.asarray(train.labels) == c).sum()),
                                         ideal=50.0, direction="target", unit="%"),
        }
    examples = [{"id": i, "label": int(t), "pred": int(p), "gender": g, "correct": bool(c)}
                for i, t, p, g, c in zip(test.ids, y, pred, gender, correct)]
    return TaskResult(metrics=metrics, groups=groups, examples=examples, axis="gender")


def _binom_ci(table, c: int, g: str, n: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95% CI of a per-occupation TPR, in %."""
    k = int(round(float(table.by_group["tpr"][(c, g)]) * n))
    return clopper_pearson_ci(k, n, scale=100.0)


def _train_skew(train: TextDataset, *, n_bootstrap: int, seed: int) -> Metric:
    """Dataset bias: RMS over occupations of (share of women in the occupation - share overall), in pp."""
    y = np.asarray(train.labels, dtype=int)
    f = np.asarray([g == "female" for g in train.groups], dtype=float)
    K = len(train.label_names)
    onehot = np.eye(K)[y]
    A = np.hstack([onehot * f[:, None], onehot, f[:, None]])

    def stat(W):
        S = W @ A
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = S[:, :K] / np.where(S[:, K:2 * K] > 0, S[:, K:2 * K], np.nan)
            dev = shares - (S[:, -1] / W.sum(axis=1))[:, None]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.sqrt(np.nanmean(dev ** 2, axis=1)) * 100

    value = float(stat(np.ones((1, len(y))))[0])
    ci = basic_ci(value, weighted_bootstrap(stat, len(y), n_resamples=n_bootstrap, seed=seed))
    return Metric(value, n=len(y), ideal=0.0, direction="min", ci95=ci, unit="pp",
                  description="Dataset bias of the fine-tuning data after the method's data hook: RMS over "
                              "occupations of P(female | occupation) - P(female).")
