"""Continued language-model training on a plain text corpus (bias-bench's CDA and Dropout, Meade et al. 2022).

bias-bench continues MLM / CLM training on 10% of English Wikipedia. No Wikipedia text is available offline, so the
named corpora are real text that is: ``glue_text`` (default) = every distinct sentence of the five GLUE dev files
in ../shared/data/glue (CoLA, SST-2, MRPC, RTE, STS-B: news, captions, forums, reviews, 5,627 sentences);
``wikipedia_talk`` = the 1,492 Wikipedia Talk comments of the WIKI toxicity test set (as written, not fuzzed). Both are
evaluation data of other tasks: the handle records ``trained_on`` (GLUE / wiki_toxicity) so those results can be
flagged, and every cell's flags name the corpus (``finetune_corpus``) and the CDA counts or dropout rates. Any ``.txt`` file (one text per line, bias-bench's ``wikipedia-10.txt`` format) or labelled corpus file
works too, so bias-bench's own corpus can be used where it exists.

Training settings follow bias-bench (Hugging Face Trainer defaults): AdamW at lr 5e-5, no weight decay, no warm-up,
linear decay; the step budget, batch and sequence length are CPU-sized (bias-bench: 2,000 steps of 512 sequences of
512 tokens for masked LMs, 256 x 1,024 for GPT-2) and recorded with each cell.
"""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from biasboard.harness import data as hdata
from biasboard.harness.errors import DataError
from biasboard.harness.training.corpora import LabelledCorpus, read_labelled_file
from biasboard.harness.training.lm import (COMMON_PARAMS, LMFinetuneMethod, finetune_lm, finetune_record, label,
                                           train_config)
from biasboard.harness.training.objectives import ErmObjective

GLUE_TEXT_FILES = (("glue/CoLA/dev.tsv", False, (3,)), ("glue/SST-2/dev.tsv", True, (0,)),
                   ("glue/MRPC/dev.tsv", True, (3, 4)), ("glue/RTE/dev.tsv", True, (0, 1)),
                   ("glue/STS-B/dev.tsv", True, (7, 8)))
"""(file, has a header row, text columns) of each GLUE dev file (see ../shared/data/SOURCES.md)."""
WIKI_TALK_FILE = "wiki_toxicity/toxicity_nonfuzzed_testset.csv"
TEXT_CORPORA = {"glue_text": "glue", "wikipedia_talk": "wiki_toxicity"}
"""Named corpus -> the task whose evaluation data it is (recorded as ``trained_on``)."""


def _glue_text() -> list[str]:
    out: list[str] = []
    for relpath, header, columns in GLUE_TEXT_FILES:
        path = hdata.find(relpath, task="glue")
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        for i, row in enumerate(rows[1:] if header else rows, start=2 if header else 1):
            if len(row) <= max(columns):
                raise DataError(f"expected at least {max(columns) + 1} columns", path=path, row=i)
            out += [row[c].strip() for c in columns]
    return out


def _wikipedia_talk() -> list[str]:
    path = hdata.find(WIKI_TALK_FILE, task="wiki_toxicity")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "comment" not in rows[0]:
        raise DataError("no 'comment' column", path=path)
    return [" ".join(r["comment"].split()) for r in rows]  # one comment is one text, whitespace collapsed


def plain_texts(spec: str) -> tuple[list[str], str, list[str]]:
    """(distinct non-empty texts in corpus order, corpus name, tasks whose evaluation data they are)."""
    if spec == "glue_text":
        texts, trained_on = _glue_text(), ["glue"]
    elif spec == "wikipedia_talk":
        texts, trained_on = _wikipedia_talk(), ["wiki_toxicity"]
    elif Path(spec).suffix == ".txt":
        path = Path(spec)
        if not path.exists():
            raise DataError("no such corpus file", path=path)
        texts, trained_on = path.read_text(encoding="utf-8").splitlines(), []
    elif Path(spec).suffix in (".jsonl", ".csv", ".tsv"):
        texts, trained_on = list(read_labelled_file(spec).texts), []
    else:
        raise DataError(f"corpus {spec!r}: not one of {', '.join(TEXT_CORPORA)} and not a .txt (one text per line) "
                        "or .jsonl/.csv/.tsv file")
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not texts:
        raise DataError(f"corpus {spec!r} has no text")
    return texts, Path(spec).name if Path(spec).suffix else spec, trained_on


def sample(texts: list[str], n: int, seed: int) -> list[str]:
    """``n`` texts drawn without replacement by ``seed``, in corpus order; all of them when ``n`` is 0 or more."""
    if not n or n >= len(texts):
        return list(texts)
    keep = np.random.default_rng(seed).choice(len(texts), size=n, replace=False)
    return [texts[i] for i in sorted(keep)]


TEXT_PARAMS: dict[str, Any] = {**{k: v for k, v in COMMON_PARAMS.items() if k not in ("corpus", "n_sentences")},
                               "corpus": "glue_text", "n_sentences": 0}
"""Parameters of continued training on a plain text corpus: ``n_sentences`` 0 = the whole corpus."""


class ContinuedLMMethod(LMFinetuneMethod):
    """``apply``: continue MLM/CLM training (ERM) on the corpus ``training_corpus`` builds, on the model
    ``training_model`` gives, and hand back ``evaluation_model`` of the result; the handle records corpus, budget
    and ``settings``."""

    def training_corpus(self, params: dict[str, Any], texts: list[str], name: str) -> tuple[LabelledCorpus, dict]:
        """(the corpus to train on, what to record about it); the default trains on the texts as they are."""
        return LabelledCorpus(tuple(texts), ("text",) * len(texts), name), {}

    def training_model(self, handle, params: dict[str, Any]) -> tuple[Any, dict]:
        """(the model to fine-tune, what to record); the default is the handle's own model."""
        return handle.model, {}

    def evaluation_model(self, trained, handle, params: dict[str, Any]):
        """The model the cell evaluates, from the trained one."""
        return trained

    def apply(self, handle, ctx):
        params = self.resolve_params(ctx.params)
        texts, name, trained_on = plain_texts(str(params["corpus"]))
        n, source_size = int(params["n_sentences"]), len(texts)
        texts = sample(texts, n, int(params["corpus_seed"]))
        if len(texts) < source_size:
            name = f"{name}(n={n},seed={params['corpus_seed']})"
        corpus, corpus_info = self.training_corpus(params, texts, name)
        model, model_info = self.training_model(handle, params)
        # bias-bench trains with the Trainer's defaults: no weight decay, no warm-up
        config = replace(train_config(params, handle.family, ctx.seed, ctx.extra), weight_decay=0.0, warmup_ratio=0.0)
        ft = finetune_lm(handle.derive(model=model), corpus, config, lambda dim, c: ErmObjective(),
                         objective_id={"name": self.name, "version": self.version, "params": params},
                         cache=ctx.cache_dir, progress=ctx.progress)
        record = {**finetune_record(config), "lr": config.lr, "weight_decay": 0.0, "warmup_ratio": 0.0,
                  "corpus": corpus.name, "source_texts": len(texts), "training_texts": len(corpus),
                  **corpus_info, **model_info}
        before = list(handle.extras.get("trained_on", ()))
        flags = {**(handle.extras.get("result_flags") or {}), "finetune_corpus": corpus.name,
                 **corpus_info, **model_info}
        return handle.derive(model=self.evaluation_model(ft.model, handle, params),
                             step=label(self.name, params, ctx.seed), finetuned_on=corpus.name,
                             finetune_history=ft.history, finetune=record, result_flags=flags,
                             trained_on=before + [t for t in trained_on if t not in before])
