"""SentenceDebias and INLP against bias-bench's own code, on the same sentences and the same model: the fidelity
check of docs/representation-methods.md ("Fidelity against bias-bench's own code").

A plain script, not collected by the test run. bias-bench (McGill-NLP/bias-bench, no licence, so not shipped) is
imported from a clone the user points at with BIAS_BENCH_SRC (a work tree, not a bare mirror, with
../shared/peers/patches/bias-bench.diff applied: its SEAT needs the ``np.int`` fix). Both sides get biasboard's
gender sentences from the chosen corpus, so only the code differs:

- SentenceDebias: bias-bench's ``compute_gender_subspace`` against ``counterfactual_vectors`` + ``bias_subspace``, on
  the counterfactual pairs of at most 128 tokens (biasboard leaves longer ones out), cut to whole batches of 32
  (bias-bench drops its last partial batch): |cosine| of the two bias directions.
- INLP: bias-bench's ``_extract_gender_features`` (one sentence at a time), ``_split_gender_dataset`` and
  ``_apply_nullspace_projection`` (its classifier settings; only ``input_dim`` is set to the model's width instead
  of its fixed 768) against ``inlp_data`` (padded batches), ``split_like_bias_bench`` and ``inlp_projection``: rank
  of P, relative Frobenius difference, largest entry difference, first / last dev accuracy. Also biasboard's
  projection fitted on bias-bench's own feature vectors, which separates the fit from the feature extraction.
- SEAT after debiasing, end to end, on the six gender tests: bias-bench's ``SentenceDebiasBertModel`` /
  ``INLPBertModel`` with ``SEATRunner`` (each with bias-bench's fit) against biasboard's ``seat:mean`` task on a
  handle with the method's ``represent`` hook (each with biasboard's fit). Effect sizes only: the p-values depend
  on the permutation samples (bias-bench's side runs its parametric test, to save time).

It prints Markdown tables and, with --out, appends one JSON line per method::

    BIAS_BENCH_SRC=path/to/bias-bench-clone BIASBOARD_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \\
        python tests/benchmarks/pair_debias.py --model zoo:splade-tiny --methods sentence_debias inlp \\
        --n-classifiers 10 --out pair-debias.jsonl

bias-bench's classes are BERT ones, so the model must be a BERT (zoo:splade-tiny, zoo:minilm-l6). Its one-at-a-time
INLP encoding is the slow part: bound it with --n-per-class (SentenceDebias: --max-examples).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

TESTS = ("sent-weat6", "sent-weat6b", "sent-weat7", "sent-weat7b", "sent-weat8", "sent-weat8b")
"""bias-bench's gender SEAT tests."""
TARGET = 0.01
"""The issue's acceptance: SEAT effect sizes after debiasing within 0.01 of bias-bench's."""
MAX_TOKENS = 128
"""bias-bench's SentenceDebias ``max_length``; biasboard's ``counterfactual_vectors`` leaves longer examples out."""
BATCH = 32
"""bias-bench's SentenceDebias batch size (it drops the last partial batch)."""


def import_bias_bench() -> dict:
    """bias-bench's modules from BIAS_BENCH_SRC (put first on sys.path), or exit with a one-line reason."""
    src = os.environ.get("BIAS_BENCH_SRC")
    if not src:
        raise SystemExit("pair_debias: set BIAS_BENCH_SRC to a clone of McGill-NLP/bias-bench (not shipped: no "
                         "licence) with ../shared/peers/patches/bias-bench.diff applied")
    root = Path(src).expanduser().resolve()
    if not (root / "bias_bench" / "debias" / "inlp" / "debias.py").is_file():
        raise SystemExit(f"pair_debias: BIAS_BENCH_SRC={src} has no bias_bench/debias/inlp/debias.py "
                         "(a work tree of McGill-NLP/bias-bench is needed, not a bare mirror)")
    sys.path.insert(0, str(root))
    try:
        from bias_bench.benchmark.seat import SEATRunner
        from bias_bench.debias.inlp import classifier, context_nullspace_projection, debias
        from bias_bench.debias.sentence_debias import compute_gender_subspace
        from bias_bench.model import models
    except ImportError as exc:
        raise SystemExit(f"pair_debias: cannot import bias-bench from {root}: {exc}") from exc
    return {"SEATRunner": SEATRunner, "classifier": classifier, "cnp": context_nullspace_projection,
            "debias": debias, "compute_gender_subspace": compute_gender_subspace, "models": models}


def to_stderr():
    """bias-bench prints its progress to stdout; the tables go there."""
    return contextlib.redirect_stdout(sys.stderr)


class Setup:
    """The model on both sides and the data both sides share."""

    def __init__(self, model: str, corpus: str, bb: dict):
        import transformers

        from biasboard.harness.models.handles import load_handle, resolve_model
        from biasboard.harness.training import bias_sentences as bs

        resolved = resolve_model(model)
        config = transformers.AutoConfig.from_pretrained(resolved.path)
        if config.model_type != "bert":
            raise SystemExit(f"pair_debias: {model} is a {config.model_type} model; bias-bench's "
                             "SentenceDebiasBertModel / INLPBertModel need a BERT")
        self.model, self.path, self.bb = model, str(resolved.path), bb
        self.handle = load_handle(resolved)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path)  # as bias-bench's experiments
        self.width = int(config.hidden_size)
        self.corpus = bs.load_corpus(corpus)
        self.groups = bs.attribute_words("gender")

    def bias_bench_encoder(self):
        with to_stderr():
            return self.bb["models"].BertModel(self.path).eval()


def seat_bias_bench(setup: Setup, model) -> dict[str, float]:
    """Effect sizes of bias-bench's SEATRunner on a debiased bias-bench model."""
    from biasboard.harness.data import find

    runner = setup.bb["SEATRunner"](model=model.eval(), tokenizer=setup.tokenizer, tests=list(TESTS),
                                    data_dir=str(find(f"seat/{TESTS[0]}.jsonl").parent), experiment_id="pair_debias",
                                    n_samples=1000, parametric=True)
    with torch.no_grad(), to_stderr():
        return {r["test"]: float(r["effect_size"]) for r in runner()}


def seat_biasboard(setup: Setup, method) -> dict[str, float]:
    """Effect sizes of biasboard's ``seat:mean`` on the handle with ``method.represent`` installed."""
    from biasboard.harness.models.represent import install_method_representation
    from biasboard.harness.registry import TASKS
    from biasboard.harness.specs import RunContext

    handle = install_method_representation(setup.handle, method, RunContext())
    ctx = RunContext(extra={"tests": list(TESTS), "permutation_samples": 1000}, n_bootstrap=100)
    result = TASKS.get("seat")().evaluate(handle, "mean", ctx)
    return {r["id"]: float(r["effect_size"]) for r in result.examples}


def add_seat(rec: dict, setup: Setup, bb_model, method) -> None:
    t = time.monotonic()
    rec["seat_bias_bench"] = seat_bias_bench(setup, bb_model)
    rec["seat_biasboard"] = seat_biasboard(setup, method)
    diffs = {k: abs(rec["seat_biasboard"][k] - rec["seat_bias_bench"][k]) for k in TESTS}
    rec["max_abs_seat_diff"] = max(diffs.values())
    rec["max_seat_diff_test"] = max(diffs, key=diffs.get)
    rec["seconds"]["seat"] = round(time.monotonic() - t, 1)


def run_sentence_debias(setup: Setup, args) -> dict:
    from biasboard.harness.models import scoring
    from biasboard.harness.training import bias_sentences as bs
    from biasboard.harness.training.subspace import bias_subspace, counterfactual_vectors
    from biasboard.submissions.sentence_debias import SentenceDebias

    sentences = [s for line in setup.corpus.lines for s in bs.split_sentences(line)]
    examples = bs.counterfactual_examples(sentences, setup.groups)
    texts = sorted({t for ex in examples for t in ex})
    length = {t: len(ids) for t, ids in zip(texts, scoring.tokenize(setup.handle, texts))}
    fitting = [ex for ex in examples if max(length[t] for t in ex) <= MAX_TOKENS]
    kept = fitting[:args.max_examples] if args.max_examples else fitting
    kept = kept[:len(kept) // BATCH * BATCH]
    rec = {"method": "sentence_debias", "examples": len(kept), "examples_all": len(examples),
           "examples_fitting": len(fitting), "seconds": {}}

    t = time.monotonic()
    data = [{"male_example": m, "female_example": f} for m, f in kept]  # gender groups are [male, female]
    with to_stderr():
        v_bb = setup.bb["compute_gender_subspace"](data, setup.bias_bench_encoder(), setup.tokenizer,
                                                   batch_size=BATCH).numpy().astype(np.float64)
    rec["seconds"]["fit_bias_bench"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    v_ours = bias_subspace(counterfactual_vectors(setup.handle, kept, batch_size=args.batch_size), 1)
    rec["seconds"]["fit_biasboard"] = round(time.monotonic() - t, 1)
    rec["abs_cosine"] = float(abs(v_ours[0] @ v_bb) / (np.linalg.norm(v_ours[0]) * np.linalg.norm(v_bb)))

    if not args.no_seat:
        method = SentenceDebias()
        method.direction = torch.from_numpy(v_ours.astype(np.float32))
        add_seat(rec, setup, setup.bb["models"].SentenceDebiasBertModel(setup.path, torch.from_numpy(
            v_bb.astype(np.float32))), method)
    return rec


@contextlib.contextmanager
def bias_bench_inlp(bb: dict, width: int, accuracies: list):
    """bias-bench's ``_apply_nullspace_projection`` as it is, except ``input_dim`` = the model's width (its code
    fixes 768), recording each round's dev accuracy (bias-bench only shows it in a progress bar)."""
    debias, clf = bb["debias"], bb["classifier"].SKlearnClassifier
    projection, train = debias.get_debiasing_projection, clf.train_network

    def at_width(*a, **kw):
        return projection(*a, **{**kw, "input_dim": width})

    def recorded(self, *a, **kw):
        accuracies.append(float(train(self, *a, **kw)))
        return accuracies[-1]

    debias.get_debiasing_projection, clf.train_network = at_width, recorded
    try:
        yield
    finally:
        debias.get_debiasing_projection, clf.train_network = projection, train


def compare_projections(ours: np.ndarray, theirs: np.ndarray) -> dict:
    return {"rel_frobenius_diff": float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)),
            "max_abs_diff": float(np.abs(ours - theirs).max()), "bitwise_equal": bool(np.array_equal(ours, theirs)),
            "rank_biasboard": int(round(float(np.trace(ours))))}


def fit_biasboard(x: np.ndarray, y: np.ndarray, rounds: int):
    """biasboard's INLP fit as ``submissions/inlp`` runs it: (P, dev accuracy of each round)."""
    from biasboard.harness.training.subspace import inlp_projection, split_like_bias_bench

    x_train, x_dev, y_train, y_dev = split_like_bias_bench(x, y)
    return inlp_projection(x_train, y_train, x_dev, y_dev, n_classifiers=rounds)


def run_inlp(setup: Setup, args) -> dict:
    from biasboard.harness.training import bias_sentences as bs
    from biasboard.submissions.inlp import INLP, inlp_data

    sentences = bs.inlp_sentences(list(setup.corpus.lines), setup.groups, "gender", n_per_class=args.n_per_class,
                                  seed=0)
    rounds = args.n_classifiers
    rec = {"method": "inlp", "n_classifiers": rounds, "sentences": {k: len(v) for k, v in sentences.items()},
           "seconds": {}}

    t = time.monotonic()
    cnp, accuracies = setup.bb["cnp"], []
    with to_stderr():
        m, f, n = cnp._extract_gender_features(setup.bias_bench_encoder(), setup.tokenizer, sentences["male"],
                                               sentences["female"], sentences["neutral"])
    rec["seconds"]["features_bias_bench"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    x_train, x_dev, x_test, y_train, y_dev, y_test = cnp._split_gender_dataset(m, f, n)
    with bias_bench_inlp(setup.bb, setup.width, accuracies), to_stderr():
        p_bb, _, _ = cnp._apply_nullspace_projection(x_train, x_dev, x_test, y_train, y_dev, y_test,
                                                     n_classifiers=rounds)
    rec["seconds"]["fit_bias_bench"] = round(time.monotonic() - t, 1)
    rec["rank_bias_bench"] = int(round(float(np.trace(p_bb))))
    rec["dev_accuracy_bias_bench"] = [accuracies[0], accuracies[-1]]

    t = time.monotonic()
    x, y = inlp_data(setup.handle, sentences, batch_size=args.batch_size)
    rec["seconds"]["features_biasboard"] = round(time.monotonic() - t, 1)
    theirs = np.concatenate([m, f, n]).astype(np.float64)
    rec["max_abs_feature_diff"] = float(np.abs(x - theirs).max())
    t = time.monotonic()
    p_ours, acc = fit_biasboard(x, y, rounds)
    rec["seconds"]["fit_biasboard"] = round(time.monotonic() - t, 1)
    rec["end_to_end"] = {**compare_projections(p_ours, p_bb), "dev_accuracy_biasboard": [acc[0], acc[-1]]}
    p_same, acc_same = fit_biasboard(theirs, y, rounds)
    rec["same_features"] = {**compare_projections(p_same, p_bb), "dev_accuracy_biasboard": [acc_same[0], acc_same[-1]]}
    if rec["rank_bias_bench"] == 0:
        print(f"pair_debias: {rounds} rounds removed every dimension of {setup.model} (P = 0 on bias-bench's side); "
              "SEAT compares zero vectors", file=sys.stderr)

    if not args.no_seat:
        method = INLP()
        method.projection = torch.from_numpy(p_ours.astype(np.float32))
        add_seat(rec, setup, setup.bb["models"].INLPBertModel(setup.path, torch.tensor(p_bb, dtype=torch.float32)),
                 method)
    return rec


def map_rows(rec: dict) -> list[tuple[str, str]]:
    """(what was compared, the fitted maps' agreement) rows of one method's record."""
    if rec["method"] == "sentence_debias":
        return [("end to end", f"direction \\|cosine\\| = {rec['abs_cosine']:.6f}")]
    rows, b = [], rec["dev_accuracy_bias_bench"]
    for label, key in (("end to end", "end_to_end"), ("bias-bench's features on both sides", "same_features")):
        c = rec[key]
        same = "P bit-for-bit equal" if c["bitwise_equal"] else (
            f"P: relative Frobenius difference {c['rel_frobenius_diff']:.1e}, largest entry {c['max_abs_diff']:.1e}")
        rows.append((label, f"rank {c['rank_biasboard']} vs {rec['rank_bias_bench']}; {same}; dev accuracy first / "
                            f"last {c['dev_accuracy_biasboard'][0]:.3f} / {c['dev_accuracy_biasboard'][1]:.3f} vs "
                            f"{b[0]:.3f} / {b[1]:.3f}"))
    return rows


def data_cell(rec: dict) -> str:
    batches = f"biasboard's batches of {rec.get('batch_size', 32)}"
    if rec["method"] == "sentence_debias":
        return f"{rec['examples']:,} counterfactual pairs; {batches}"
    s = rec["sentences"]
    return (f"{s['male']:,} male / {s['female']:,} female / {s['neutral']:,} neutral; {rec['n_classifiers']} rounds; "
            f"{batches}")


def print_tables(model: str, records: list[dict]) -> None:
    print("\n| model | method | sentences | compared | fitted map: biasboard vs bias-bench | SEAT after debiasing: "
          f"largest \\|difference\\| (test) | within {TARGET} |")
    print("|---|---|---|---|---|---|---|")
    for r in records:
        for i, (label, cell) in enumerate(map_rows(r)):
            seat = ("", "")
            if i == 0:
                seat = (f"{r['max_abs_seat_diff']:.1e} ({r['max_seat_diff_test']})",
                        "yes" if r["max_abs_seat_diff"] <= TARGET else "**no**") if "max_abs_seat_diff" in r \
                    else ("not run", "")
            print(f"| {model} | {r['method']} | {data_cell(r)} | {label} | {cell} | {seat[0]} | {seat[1]} |")
    for r in records:
        if "seat_bias_bench" not in r:
            continue
        print(f"\n{r['method']}: SEAT effect sizes after debiasing (each side with its own fit)\n")
        print("| test | bias-bench | biasboard | difference |\n|---|---:|---:|---:|")
        for t in TESTS:
            a, b = r["seat_bias_bench"][t], r["seat_biasboard"][t]
            print(f"| {t} | {a:.4f} | {b:.4f} | {b - a:+.1e} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="zoo:splade-tiny", help="a BERT model (bias-bench's classes are BERT ones)")
    ap.add_argument("--methods", nargs="+", choices=("sentence_debias", "inlp"), default=["sentence_debias", "inlp"])
    ap.add_argument("--corpus", default="wikipedia_talk", help="biasboard's fitting corpus (both sides get it)")
    ap.add_argument("--n-classifiers", type=int, default=80, help="INLP rounds (bias-bench: 80)")
    ap.add_argument("--n-per-class", type=int, default=10000, help="INLP: at most this many sentences per class")
    ap.add_argument("--max-examples", type=int, default=0, help="SentenceDebias: the first N counterfactual pairs "
                    "(cut to whole batches of 32); 0 = all of at most 128 tokens")
    ap.add_argument("--batch-size", type=int, default=32, help="biasboard's encoding batch size when fitting "
                    "(the cell's batch_size; bias-bench's INLP encodes one sentence at a time, i.e. 1)")
    ap.add_argument("--no-seat", action="store_true", help="compare the fitted maps only")
    ap.add_argument("--out", type=Path, help="append one JSON line per method")
    args = ap.parse_args(argv)
    setup = Setup(args.model, args.corpus, import_bias_bench())
    runs = {"sentence_debias": run_sentence_debias, "inlp": run_inlp}
    records = []
    for name in args.methods:
        t = time.monotonic()
        rec = {"model": args.model, "corpus": args.corpus, "width": setup.width, "batch_size": args.batch_size,
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), **runs[name](setup, args)}
        rec["seconds"]["total"] = round(time.monotonic() - t, 1)
        records.append(rec)
        print(f"pair_debias: {name} on {args.model} done in {rec['seconds']['total']:.0f} s", file=sys.stderr,
              flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    print_tables(args.model, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
