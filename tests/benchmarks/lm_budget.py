"""How many optimiser steps does causal-LM fine-tuning need before it does anything? (issue 17)

For each LM fine-tuning method and step budget this fine-tunes zoo:smollm2-135m (seed 0, the method's defaults
otherwise) into the run cache, so a later ``biasboard run`` with the same ``BIASBOARD_CACHE`` reuses the weights,
and measures the method's own training objective before and after on a fixed sample of its training sentences:

- mean per-sentence CLM loss (ERM's objective; the per-sentence losses every robust objective is built from),
- worst bias type's mean loss (what Group DRO bounds),
- the mean of the largest 6/32 of the losses (the population version of TopK DRO's top-6-of-32 batch mean; the
  TopK-AE objectives take it per latent group, whose autoencoder is not kept),
- Bias Vector: the CLM loss on StereoSet stereotype sentences of theta_biased (its fine-tuning objective) and of
  theta_pre - lambda V.

Each difference after - before has a paired bootstrap 95% CI over the sentences (1,000 resamples).
``--store`` instead reads a results store of the matching matrix and compares every method cell's CrowS-Pairs /
rows with the ``none`` cell on the same pairs: the change in stereotype score, in the mean log-likelihood gap
(more - less stereotyping) and in its mean absolute value (lm-eval's ``likelihood_diff``), paired bootstrap 95% CIs.

Run: BIASBOARD_CACHE=... BIASBOARD_DATA_DIR=../shared/data python tests/benchmarks/lm_budget.py --steps 16 64
     python tests/benchmarks/lm_budget.py --store OUT/results.sqlite
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from biasboard.harness.paths import cache_dir
from biasboard.harness.registry import METHODS
from biasboard.harness.specs import RunContext
from biasboard.harness.training import lm as lf

METHODS_DEFAULT = ["erm", "group_dro", "topk_dro", "topk_ae_dro", "robust_debias", "bias_vector"]
TAIL = 6 / 32


def ci(stat, before: np.ndarray, after: np.ndarray, labels: np.ndarray, n_boot: int = 1000, seed: int = 0):
    """(after - before, 95% CI) of ``stat(losses, labels)`` with sentences resampled jointly (paired)."""
    rng = np.random.default_rng(seed)
    diff = stat(after, labels) - stat(before, labels)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(len(before), size=len(before))
        boots.append(stat(after[i], labels[i]) - stat(before[i], labels[i]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(diff), float(lo), float(hi)


def mean(x, _labels):
    return float(x.mean())


def worst_type(x, labels):
    return max(float(x[labels == t].mean()) for t in np.unique(labels))


def tail(x, _labels):
    k = max(1, math.ceil(TAIL * len(x)))
    return float(np.sort(x)[-k:].mean())


def losses(model, tokenizer, texts, max_length: int, batch: int = 32) -> np.ndarray:
    """Per-sentence CLM losses in float32, eval mode, as the training step computes them."""
    config = lf.TrainConfig("lm", steps=1, max_length=max_length)
    tokens = lf._Tokens(tokenizer, texts, max_length)
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            rows = list(range(start, min(start + batch, len(texts))))
            b = lf.build_batch(tokens, rows, family="clm", config=config, epoch=0, mask_id=None, vocab_size=0)
            out.append(lf.sentence_losses(model, b, family="clm")[0].numpy())
    return np.concatenate(out)


def objective_rows(args) -> list[dict]:
    from biasboard.harness.models import load_handle
    from biasboard.harness.training.corpora import load_corpus, stereoset_stereotypes

    handle = load_handle(args.model)
    rows, base = [], {}
    for name in args.methods:
        method = METHODS.get(name)()
        for steps in args.steps:
            params = method.resolve_params({"steps": steps, **({"lambda": 1.0} if name == "bias_vector" else {})})
            corpus = (stereoset_stereotypes(str(params["bias_type"])) if name == "bias_vector" else
                      load_corpus(str(params["corpus"]), n_sentences=int(params["n_sentences"]),
                                  seed=int(params["corpus_seed"])))
            config = lf.train_config(params, handle.family, 0)
            pick = np.sort(np.random.default_rng(1).permutation(len(corpus))[: args.n_sentences])
            texts = [corpus.texts[i] for i in pick]
            labels = np.array([corpus.labels[i] for i in pick])
            if corpus.name not in base:
                base[corpus.name] = (pick, losses(handle.model, handle.tokenizer, texts, config.max_length))
            before = base[corpus.name][1]
            ctx = RunContext(seed=0, params=params, cache_dir=cache_dir() / "cells", method=method)
            started = time.perf_counter()
            if name == "bias_vector":
                from biasboard.submissions.bias_vector import apply_vector

                vec = method.vector(handle, params, ctx)
                seconds = time.perf_counter() - started
                tuned = apply_vector(handle.clone_model(), vec, 1.0)
                after = losses(tuned, handle.tokenizer, texts, config.max_length)
                debiased = apply_vector(tuned, vec, -2.0)
                after_debiased = losses(debiased, handle.tokenizer, texts, config.max_length)
                del tuned, debiased
            else:
                tuned = method.apply(handle, ctx)
                seconds = time.perf_counter() - started
                after = losses(tuned.model, handle.tokenizer, texts, config.max_length)
                after_debiased = None
                del tuned
            row = {"method": name, "steps": config.steps, "precision": config.precision, "corpus": corpus.name,
                   "n": len(texts), "train_seconds": round(seconds, 1),
                   "mean_before": mean(before, labels), "mean_after": mean(after, labels),
                   "mean": ci(mean, before, after, labels), "worst_type": ci(worst_type, before, after, labels),
                   "tail": ci(tail, before, after, labels)}
            if after_debiased is not None:
                row["debiased_mean"] = ci(mean, before, after_debiased, labels)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def store_rows(path: str) -> list[dict]:
    """Paired bias-metric changes of every method cell against ``none`` (same model, task, variant, seed)."""
    from biasboard.harness.store import Store

    out = []
    with Store(path) as store:
        by = {key: store.get(key) for key in store.done_keys()}
        by = {key: r.to_json() if hasattr(r, "to_json") else r for key, r in by.items()}  # CellRecord or dict
        refs = {(r["model"], r["task"], r["variant"], r["seed"]): k for k, r in by.items() if r["method"] == "none"}
        for key, rec in sorted(by.items(), key=lambda kv: (kv[1]["task"], kv[1]["method"],
                                                               str(kv[1]["method_params"]))):
            ref = refs.get((rec["model"], rec["task"], rec["variant"], rec["seed"]))
            if rec["method"] == "none" or ref is None:
                continue
            a, b = {e["id"]: e for e in store.examples(ref)}, {e["id"]: e for e in store.examples(key)}
            ids = sorted(set(a) & set(b))
            if rec["task"] != "crows_pairs":
                continue
            x0, x1 = (np.array([e[i]["more_is_higher"] for i in ids], float) for e in (a, b))
            g0, g1 = (np.array([e[i]["sent_more_score"] - e[i]["sent_less_score"] for i in ids]) for e in (a, b))
            z = np.zeros(len(ids))
            row = {"method": rec["method"], "params": {k: v for k, v in rec["method_params"].items()
                                                        if k in ("steps", "lambda", "corpus")},
                   "task": f"{rec['task']}:{rec['variant']}", "n": len(ids),
                   "score_none": 100 * x0.mean(), "score": 100 * x1.mean(),
                   "score_diff": [100 * v for v in ci(mean, x0, x1, z)],
                   "gap_diff": ci(mean, g0, g1, z), "flips": int((x0 != x1).sum()),
                   "likelihood_diff": [float(np.abs(g0).mean()), float(np.abs(g1).mean())],
                   "likelihood_diff_diff": ci(mean, np.abs(g0), np.abs(g1), z),
                   "finetune": rec["provenance"].get("finetune")}
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="zoo:smollm2-135m")
    parser.add_argument("--methods", nargs="+", default=METHODS_DEFAULT)
    parser.add_argument("--steps", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--n-sentences", type=int, default=512)
    parser.add_argument("--store")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = store_rows(args.store) if args.store else objective_rows(args)
    if args.json:
        with open(args.json, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
