"""WIKI toxicity: identity-term false positives after fine-tuning a toxicity classifier (Dixon et al. 2018).

The model is fine-tuned on talk-page comments (synthetic offline, or the real Wikipedia Talk release), then
evaluated on Dixon et al.'s bias madlibs or the identity subset of the Wikipedia Talk test set (original or fuzzed).
Per identity term: FPR and FNR (fairlearn MetricFrame), FPED / FNED (Dixon et al. 2018) and the subgroup, BPSN and BNSP
AUCs (Borkan et al. 2019).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats as sps

import biasboard.tasks.synthetic_wiki as synthetic_wiki
import biasboard.tasks.wordlists as wordlists
from biasboard.harness import data as hdata
from biasboard.harness.digest import files_sha256, json_sha256
from biasboard.harness.errors import BiasboardError, DataError
from biasboard.harness.registry import register_task
from biasboard.harness.specs import Metric, Task, TaskResult, Variant
from biasboard.harness.training import TextDataset, finetune, predict, probabilities
from biasboard.harness.training.leakage import leakage
from biasboard.tasks import wiki_data
from biasboard.harness.stats import basic_ci, hanley_mcneil_se, weighted_bootstrap, weighted_bootstrap_ci
from biasboard.tasks.text_classifier_metrics import (bias_aucs, eer_threshold, equality_difference,
                                                     equality_differences_from_weights, error_rate_counts,
                                                     term_error_rates)
from biasboard.tasks.finetune_common import option_keys
from biasboard.tasks.finetune_common import SYNTHETIC_NOTE, accuracy_metric, capped, options, train_config, training_summary

FAMILIES = ("encoder", "mlm", "clm")
DEFAULTS = {"train": "synthetic", "n_train": 3000, "n_val": 400, "n_eval": 8000, "skew": 1.0, "identity_rate": 0.3,
            "ambiguity": 0.3, "data_seed": 0, "threshold": "eer", "epochs": 2, "lr": 5e-5, "batch_size": 32,
            "max_length": 64}
_REPO = ("https://raw.githubusercontent.com/conversationai/unintended-ml-bias-analysis/"
         "9c7d91aaa53406a362354661a93e07956d95e59a/archive/unintended_ml_bias/")
hdata.declare("wiki_toxicity", *(hdata.DataSource(rel, _REPO + orig, sha, license="CC BY 4.0") for rel, orig, sha in (
    (wiki_data.EVAL_FILES["madlibs"], "eval_datasets/bias_madlibs_77k.csv",
     "aac542254cf158415ec74623d54fa76176f26a7e7d8ef20788e1748a05ba5b4c"),
    (wiki_data.EVAL_FILES["nonfuzzed"], "eval_datasets/toxicity_nonfuzzed_testset.csv",
     "c11caefa0c487cb7a7fc0726cb53358d4e5463bd071d65979398af59fa80f881"),
    (wiki_data.EVAL_FILES["fuzzed"], "eval_datasets/toxicity_fuzzed_testset.csv",
     "382f8698edc67dc0ebd521406d9b4fb27b0192a0d09559503bd965609382685c"),
    (wiki_data.TERMS_FILE, "bias_madlibs_data/adjectives_people.txt",
     "5d999b7488ada99a0bb41715cc7c7c2627927319775f041d4a2d447496411eb8"))))


def _variant(eval_set: str, what: str) -> Variant:
    return Variant(f"Fine-tune on comments (synthetic unless extra train=real), evaluate on {what}. Options: "
                   "train, n_train, n_val, n_eval, skew, identity_rate, ambiguity, threshold (eer, the default: the "
                   "model's equal-error-rate threshold on the test scores, as Dixon et al.; or a number such as "
                   "0.5), data_seed.",
                   FAMILIES, {"eval": eval_set})


@register_task
class WikiToxicity(Task):
    name = "wiki_toxicity"
    version = "2"
    """2: FPED / FNED at the equal-error-rate threshold by default (1: fixed 0.5)."""
    description = ("Toxicity classification after fine-tuning; bias = identity-term false positives: FPED/FNED "
                   "(Dixon et al. 2018) and subgroup/BPSN/BNSP AUCs (Borkan et al. 2019).")
    families = FAMILIES
    variants = {
        "madlibs": _variant("madlibs", "Dixon et al.'s 77k bias madlibs (a seeded sample of n_eval)"),
        "nonfuzzed": _variant("nonfuzzed", "the identity-term subset of the Wikipedia Talk test set (1,492)"),
        "fuzzed": _variant("fuzzed", "the same subset with identity terms randomly swapped (1,492)"),
    }
    default_variant = "madlibs"
    extra_keys = option_keys(DEFAULTS, variants)
    citation = ("Dixon et al. 2018, Measuring and Mitigating Unintended Bias in Text Classification, AIES; Borkan "
                "et al. 2019, Nuanced Metrics for Measuring Unintended Bias; Baksi, Singh, Joshi 2024, arXiv 2408.00612")
    axis = "identity"
    fine_tunes = True

    def data_files(self, variant: str) -> list[Path]:
        files = [hdata.find(wiki_data.EVAL_FILES[self.variants[variant].options["eval"]], task=self.name),
                 hdata.find(wiki_data.TERMS_FILE, task=self.name),
                 Path(synthetic_wiki.__file__), Path(wordlists.__file__)]
        return files

    def _train_val(self, opts: dict) -> tuple[TextDataset, TextDataset]:
        seed = int(opts["data_seed"])
        if opts["train"] == "synthetic":
            make = lambda n, s: synthetic_wiki.generate(synthetic_wiki.WikiConfig(  # noqa: E731
                n=int(n), skew=float(opts["skew"]), identity_rate=float(opts["identity_rate"]),
                ambiguity=float(opts["ambiguity"]), seed=s))
            return make(opts["n_train"], 2 * seed), make(opts["n_val"], 2 * seed + 1)
        if opts["train"] != "real":
            raise DataError(f"wiki_toxicity: option train={opts['train']!r}; expected 'synthetic' or 'real'")
        parts = wiki_data.read_wikipedia_talk(hdata.find(wiki_data.TRAIN_DIR, task=self.name))
        terms = wordlists.IDENTITY_TERMS
        return (capped(wiki_data.with_identity_groups(parts["train"], terms), opts["n_train"], seed),
                capped(wiki_data.with_identity_groups(parts["dev"], terms), opts["n_val"], seed))

    def evaluate(self, handle, variant, ctx):
        opts = options(DEFAULTS, self.variants[variant].options, ctx.extra)
        eval_set = self.variants[variant].options["eval"]
        test_full = wiki_data.read_eval(hdata.find(wiki_data.EVAL_FILES[eval_set], task=self.name))
        test = capped(test_full, min(int(opts["n_eval"] or len(test_full)), int(opts["max_examples"] or len(test_full))),
                      int(opts["data_seed"]))
        terms = wiki_data.read_terms(hdata.find(wiki_data.TERMS_FILE, task=self.name))
        train, val = self._train_val(opts)
        config = train_config(opts, num_labels=2, seed=ctx.seed, handle=handle, extra=ctx.extra)
        ft = finetune(handle, train, val, config, ctx)
        p_toxic = probabilities(predict(ft, test, batch_size=ctx.batch_size))[:, 1]
        result = score(test, p_toxic, ft.train_data, terms, threshold=parse_threshold(opts["threshold"]),
                       n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)
        result.flags.update(training_summary(ft))
        leak_flags, leak_notes = leakage(handle, self.name)  # e.g. CDA / Dropout continued on this task's text
        result.flags.update(leak_flags)
        result.notes.extend(leak_notes)
        if len(test) < len(test_full):
            result.flags["eval_subsample"] = len(test)
            result.notes.append(f"Evaluated on a seeded sample of {len(test):,} of the {len(test_full):,} {eval_set} rows.")
        if opts["train"] == "synthetic":
            result.flags["synthetic_data"] = True
            result.notes.append(SYNTHETIC_NOTE.format(what="talk-page comment", skew=opts["skew"]))
        result.data_sha256 = json_sha256([files_sha256(self.data_files(variant)), train.digest(), val.digest()])
        return result


def parse_threshold(value) -> str | float:
    """The ``threshold`` option: ``"eer"`` or a probability in [0, 1] (``0.5`` is the fixed threshold of task
    version 1); anything else is a usage error naming the option."""
    if isinstance(value, str) and value.strip().lower() == "eer":
        return "eer"
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 <= t <= 1.0:
        raise BiasboardError(f"wiki_toxicity: option threshold={value!r}; expected 'eer' or a number in [0, 1]")
    return t


def score(test: TextDataset, p_toxic: np.ndarray, train: TextDataset, terms, *, threshold: str | float = "eer",
          n_bootstrap: int = 1000, seed: int = 0) -> TaskResult:
    """WIKI metrics from toxicity probabilities and the training data (pure: no model).

    ``threshold`` "eer" classifies at this model's equal-error-rate threshold on these test scores (Dixon et al.'s
    analysis; ``eer_threshold``), held fixed inside the bootstrap; a number is used as given."""
    y = np.asarray(test.labels, dtype=int)
    rule = "eer" if threshold == "eer" else "fixed"
    cut = eer_threshold(y, p_toxic) if rule == "eer" else float(threshold)
    threshold_notes = []
    if not np.isfinite(cut):
        cut = 0.5
        threshold_notes.append("EER threshold undefined (the test labels have one class): used 0.5.")
    threshold_notes.append(f"Decision threshold {cut:.4g} on P(toxic) ("
                           + ("this model's equal-error-rate threshold on the test scores" if rule == "eer"
                              else "fixed") + "); FPED, FNED, FPRs, FNRs and accuracy use it, the AUCs do not.")
    pred = (np.asarray(p_toxic) >= cut).astype(int)
    M = wiki_data.mentions(test.texts, terms)
    present = [j for j in range(len(terms)) if M[:, j].any()]
    terms, M = [terms[j] for j in present], M[:, present]
    rates = term_error_rates(y, pred, M, terms)
    neg, pos = y == 0, y == 1
    fpr_all = float(pred[neg].mean()) if neg.any() else float("nan")
    fnr_all = float(1 - pred[pos].mean()) if pos.any() else float("nan")
    fped = equality_difference(fpr_all, [rates[t]["fpr"] for t in terms])
    fned = equality_difference(fnr_all, [rates[t]["fnr"] for t in terms])
    boot = weighted_bootstrap(equality_differences_from_weights(error_rate_counts(y, pred, M), len(terms)), len(y),
                              n_resamples=n_bootstrap, seed=seed)
    ident = M.any(axis=1)
    metrics = {
        "fped": Metric(fped, n=int(neg.sum()), ideal=0.0, direction="min", ci95=basic_ci(fped, boot[:, 0]),
                       description=f"False positive equality difference: sum over {len(terms)} identity terms of "
                                   "|FPR - FPR_term| (Dixon et al. 2018), rates as fractions. Basic bootstrap CI: "
                                   "it can sit below the estimate, which sampling noise biases upward."),
        "fned": Metric(fned, n=int(pos.sum()), ideal=0.0, direction="min", ci95=basic_ci(fned, boot[:, 1]),
                       description="False negative equality difference (Dixon et al. 2018)."),
    }
    idn = ident & neg
    if idn.any():
        v = pred[idn].astype(float)
        metrics["identity_fpr"] = Metric(float(v.mean() * 100), n=int(idn.sum()), ideal=0.0, direction="min",
                                         ci95=weighted_bootstrap_ci(lambda W: W @ v / len(v) * 100, len(v),
                                                                    n_resamples=n_bootstrap, seed=seed), unit="%",
                                         description="FPR on non-toxic comments that mention an identity term "
                                                     "(Baksi et al. 2024's WIKI bias).")
    per_term = {t: bias_aucs(y, p_toxic, M[:, j]) for j, t in enumerate(terms)}
    for kind, npos, nneg in (("subgroup_auc", "n_sub_pos", "n_sub_neg"), ("bpsn_auc", None, None),
                             ("bnsp_auc", None, None)):
        vals, ses = [], []
        for j, t in enumerate(terms):
            a = per_term[t][kind]
            if not np.isfinite(a):
                continue
            n1, n0 = _auc_counts(kind, y, M[:, j])
            vals.append(a)
            ses.append(hanley_mcneil_se(a, n1, n0))
        if vals:
            m, se = float(np.mean(vals)), float(np.sqrt(np.nansum(np.square(ses))) / len(vals))
            metrics[f"mean_{kind}"] = Metric(m, n=len(vals), ideal=1.0, direction="max",
                                             ci95=(max(0.0, m - 1.96 * se), min(1.0, m + 1.96 * se)),
                                             description=f"Mean over identity terms of the {kind.replace('_', ' ')} "
                                             "(Borkan et al. 2019); CI from per-term Hanley-McNeil SEs, terms "
                                             "treated as independent.")
    if 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y, p_toxic))
        se = hanley_mcneil_se(auc, int(pos.sum()), int(neg.sum()))
        metrics["auc"] = Metric(auc, n=len(y), ideal=1.0, direction="max", ci95=(auc - 1.96 * se, min(1.0, auc + 1.96 * se)),
                                description="Overall ROC AUC (utility; Hanley-McNeil CI).")
    metrics["accuracy"] = accuracy_metric(pred == y, n_bootstrap=n_bootstrap, seed=seed)
    if train.groups is not None:
        metrics["train_identity_toxicity_gap"] = _train_gap(train, n_bootstrap=n_bootstrap, seed=seed)
    groups = {}
    for j, t in enumerate(terms):
        r, a = rates[t], per_term[t]
        g = {}
        if r["n_neg"]:
            g["fpr"] = Metric(r["fpr"] * 100, n=r["n_neg"], ideal=0.0, direction="min", unit="%",
                              ci95=_cp(r["fpr"], r["n_neg"]))
        if r["n_pos"]:
            g["fnr"] = Metric(r["fnr"] * 100, n=r["n_pos"], ideal=0.0, direction="min", unit="%",
                              ci95=_cp(r["fnr"], r["n_pos"]))
        for kind in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
            if np.isfinite(a[kind]):
                n1, n0 = _auc_counts(kind, y, M[:, j])
                se = hanley_mcneil_se(a[kind], n1, n0)
                g[kind] = Metric(a[kind], n=n1 + n0, ideal=1.0, direction="max",
                                 ci95=(max(0.0, a[kind] - 1.96 * se), min(1.0, a[kind] + 1.96 * se)))
        groups[t] = g
    examples = [{"id": i, "label": int(t), "p_toxic": float(p), "terms": [terms[j] for j in np.flatnonzero(M[k])]}
                for k, (i, t, p) in enumerate(zip(test.ids, y, p_toxic))]
    return TaskResult(metrics=metrics, groups=groups, examples=examples, axis="identity", notes=threshold_notes,
                      flags={"threshold": cut, "threshold_rule": rule})


def _auc_counts(kind: str, y: np.ndarray, g: np.ndarray) -> tuple[int, int]:
    """(positives, negatives) behind one of the three AUCs."""
    if kind == "subgroup_auc":
        return int((g & (y == 1)).sum()), int((g & (y == 0)).sum())
    if kind == "bpsn_auc":
        return int((~g & (y == 1)).sum()), int((g & (y == 0)).sum())
    return int((g & (y == 1)).sum()), int((~g & (y == 0)).sum())


def _cp(rate: float, n: int) -> tuple[float, float]:
    ci = sps.binomtest(int(round(rate * n)), n).proportion_ci(0.95)
    return ci.low * 100, ci.high * 100


def _train_gap(train: TextDataset, *, n_bootstrap: int, seed: int) -> Metric:
    """Dataset bias: P(toxic | identity term) - P(toxic | none) in the fine-tuning data, in pp."""
    y = np.asarray(train.labels, dtype=float)
    g = np.asarray([x == "identity" for x in train.groups], dtype=float)
    A = np.stack([y * g, g, y * (1 - g), 1 - g], axis=1)

    def stat(W):
        S = W @ A
        with np.errstate(invalid="ignore", divide="ignore"):
            return (S[:, 0] / S[:, 1] - S[:, 2] / S[:, 3]) * 100

    value = float(stat(np.ones((1, len(y))))[0])
    return Metric(value, n=len(y), ideal=0.0, direction="target",
                  ci95=weighted_bootstrap_ci(stat, len(y), n_resamples=n_bootstrap, seed=seed), unit="pp",
                  description="Dataset bias of the fine-tuning data after the method's data hook: "
                              "P(toxic | identity term) - P(toxic | no term).")
