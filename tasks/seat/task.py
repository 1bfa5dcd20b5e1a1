"""SEAT (May et al. 2019) for sentence encoders and WEAT (Caliskan et al. 2017) for word vectors.

``seat`` runs the 23 sentence tests of sent-bias and bias-bench (15 ``sent-weat*``, 2 angry-black-woman, 2
Heilman double-bind, 4 religion) by default, bias-bench's set. ``extra: {tests: [...]}`` selects any of the 50 test
files by name instead: those 23 plus sent-bias's other 27 (the word-level ``weat*`` lists, the word/phrase
angry-black-woman tests and the Heilman double-bind ``_1``, ``_1+3-``, ``_1-``, ``_one_sentence``, ``_one_word``
variants), each encoded as sentences, as sent-bias does. Every distinct sentence is encoded once, in batches.
Pooling variants:
``mean`` (mean of the last hidden state over all tokens, special tokens included, L2-normalised: bias-bench's
encoder, for encoder / mlm / clm models), ``first`` (first position, e.g. [CLS]: encoder / mlm) and ``last``
(last real token: clm). Cosines do not depend on the normalisation; it is kept to match bias-bench.

``weat`` runs the word-level tests on static word vectors. Look-up is lowercase; a multi-word entry (weat3b/5b's
"European American") is the mean of its word vectors, as sent-bias's bag-of-words encoder does; an entry with
any out-of-vocabulary word is dropped and reported. The permutation test needs |X| == |Y| (the original asserts
it), so when drops leave the target sets unequal, trailing entries of the larger set (file order) are dropped
too and reported (GloVe 6B loses "gladiola", so weat1 drops the last insect, "weevil").

Statistics: ``tasks.seat.metrics``. Headline: mean |effect size| over the gender, race and religion tests.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from biasboard.harness.data import find
from biasboard.harness.digest import files_sha256
from biasboard.harness.errors import UnsupportedError
from biasboard.harness.models import scoring
from biasboard.harness.matrix import did_you_mean
from biasboard.harness.registry import register_task
from biasboard.harness.specs import RunContext, Task, TaskResult, Variant
from biasboard.tasks.seat.runner import lookup_vectors, run_tests
from biasboard.tasks.seat.data import SeatTest, declare_sources, load_test, load_wefe_tests

CITATION_SEAT = ("May, Wang, Bordia, Bowman, Rudinger. On Measuring Social Biases in Sentence Encoders. NAACL 2019; "
                 "Meade, Poole-Dayan, Reddy. An Empirical Survey of the Effectiveness of Debiasing Techniques for "
                 "Pre-trained Language Models. ACL 2022")
CITATION_WEAT = ("Caliskan, Bryson, Narayanan. Semantics derived automatically from language corpora contain "
                 "human-like biases. Science 2017")

SEAT_FILES = {f"sent-weat{i}": f"seat/sent-weat{i}.jsonl"
              for i in ("1", "2", "3", "3b", "4", "5", "5b", "6", "6b", "7", "7b", "8", "8b", "9", "10")}
SEAT_FILES.update({name: f"seat/{name}.jsonl" for name in (
    "sent-angry_black_woman_stereotype", "sent-angry_black_woman_stereotype_b",
    "sent-heilman_double_bind_competent_one_word", "sent-heilman_double_bind_likable_one_word")})
SEAT_FILES.update({f"sent-religion{i}": f"seat/bias_bench_religion/sent-religion{i}.jsonl"
                   for i in ("1", "1b", "2", "2b")})
SEAT_BIAS_TYPES = {
    "gender": ("sent-weat6", "sent-weat6b", "sent-weat7", "sent-weat7b", "sent-weat8", "sent-weat8b"),
    "race": ("sent-angry_black_woman_stereotype", "sent-angry_black_woman_stereotype_b", "sent-weat3",
             "sent-weat3b", "sent-weat4", "sent-weat5", "sent-weat5b"),
    "religion": ("sent-religion1", "sent-religion1b", "sent-religion2", "sent-religion2b"),
}
SEAT_EXTRA_FILES = {name: f"seat/{name}.jsonl" for name in (
    "angry_black_woman_stereotype", "angry_black_woman_stereotype_b",
    *(f"heilman_double_bind_{kind}_{v}" for kind in ("competent", "likable")
      for v in ("1", "1+3-", "1-", "one_sentence", "one_word")))}
SEAT_EXTRA_FILES.update({f"weat{i}": f"seat/weat{i}.jsonl"
                         for i in ("1", "2", "3", "3b", "4", "5", "5b", "6", "6b", "7", "7b", "8", "8b", "9", "10")})
SEAT_ALL_FILES = {**SEAT_FILES, **SEAT_EXTRA_FILES}
"""Every sent-bias / bias-bench test file, selectable by name with ``extra: {tests: [...]}``."""
WEAT_FILES = {f"weat{i}": f"seat/weat{i}.jsonl"
              for i in ("1", "2", "3", "3b", "4", "5", "5b", "6", "6b", "7", "7b", "8", "8b", "9", "10")}
WEAT_BIAS_TYPES = {
    "gender": ("weat6", "weat6b", "weat7", "weat7b", "weat8", "weat8b"),
    "race": ("weat3", "weat3b", "weat4", "weat5", "weat5b"),
}
WEFE_FILE = "seat/weat_caliskan_wefe/WEAT.json"

SHA256 = {
    "seat/sent-angry_black_woman_stereotype.jsonl": "d421fb37fbac73184d60a73b95b5585cfc9bf0683b8100a57cd87d6d1c149588",
    "seat/sent-angry_black_woman_stereotype_b.jsonl": "95b0bf8cde740bcd5241af89a217687dcf0a13bb48db8a628a49872df9bb1505",
    "seat/sent-heilman_double_bind_competent_one_word.jsonl":
        "cc99565db26eaea3b09fe73b93109a6c3c11decb7b320f73942abdd7f60fa5d4",
    "seat/sent-heilman_double_bind_likable_one_word.jsonl":
        "f3bb2f8e41caec232262ca3eec86ad4d773e1cb6fa5d0e33c7a863dccd40db7a",
    "seat/sent-weat1.jsonl": "ff493f29fa0e0984b67e1502b0c04688473e189fd6d107c91054507ed73ff77a",
    "seat/sent-weat10.jsonl": "04dd864639909052e2ee1f386cfc0a99b5d5311c7c3ab0411396a6f5ddf0aeae",
    "seat/sent-weat2.jsonl": "58378442b8894e6987250a4ca52fc36495429c85695e9dcf952e9c4c31626609",
    "seat/sent-weat3.jsonl": "1e1b9f89f518ad5bba47cbe5bd1d08d679b296b3eb640ee0b060f080c5d7ffef",
    "seat/sent-weat3b.jsonl": "8db3f84b109031a8b86392fbd4544ca1b29f361d98b30b1e83a82b1ca60ee351",
    "seat/sent-weat4.jsonl": "5eb5a2bc5b36d8c0567b1992aea7adb015f3e170e4d24a220c2dca763f59a418",
    "seat/sent-weat5.jsonl": "2478d808135759371ee43754fa8efd89a928e434ad2981df61726b7328c5fb47",
    "seat/sent-weat5b.jsonl": "c0af61519bee074d0c3218bf8e5537b10fae5d795230422cd7bff92f90cafc26",
    "seat/sent-weat6.jsonl": "bcf1a6864e3da0e8982d70451721877f23e2efaf6aea33628df843d826b68ae2",
    "seat/sent-weat6b.jsonl": "8d1dd09833d1854784503c2eb9986d1951d684fb3289a18da85e72fa1e59e4ff",
    "seat/sent-weat7.jsonl": "86c151b640bc9ebf6f60cd94920ab1f5bff68ea1a993f322f729cf3620173e0f",
    "seat/sent-weat7b.jsonl": "16b7c23eb529421b411b508b2928b0d62e52cbb80cf40f8e9acbdfb52cd75350",
    "seat/sent-weat8.jsonl": "352fea8d5440800a219dd6141a6f5e414a708770bc2717bfc581bc249e108ded",
    "seat/sent-weat8b.jsonl": "c410535cac813f806d20a7f76f4bea62ee44f98d8828f8f0ac6a4b7694c414bc",
    "seat/sent-weat9.jsonl": "dd1b60d64dedde7ce532915a6a39cd8ec7d036e90896a6a854bfcd6315866c6c",
    "seat/bias_bench_religion/sent-religion1.jsonl": "39eceaa76103c32772bf6d13e78686a10272754e821c3197d07cf2bd4cee34e2",
    "seat/bias_bench_religion/sent-religion1b.jsonl":
        "baddaead03ed69f50bb29ac3130108ca753fb6933ed0de435d3146403b51fbf5",
    "seat/bias_bench_religion/sent-religion2.jsonl": "692ca32dc36305d34792aea17b9b1e3d520fe0f3c686f59d34159c9cfb3cdb2a",
    "seat/bias_bench_religion/sent-religion2b.jsonl":
        "b7012c637402e85f00da240daf040b92888df4923c31a06e64998abf3a043521",
    "seat/angry_black_woman_stereotype.jsonl": "06ac61a1054ff82596a4b713e1acc5d800e5b70e84b1dd24d9e32231854e8828",
    "seat/angry_black_woman_stereotype_b.jsonl": "69844f32f32f1f33264446d5a8ff75b11e896719c6627e8721a2e3153c493b9d",
    "seat/heilman_double_bind_competent_1+3-.jsonl": "21924ce01aaee12162d8833e4f1dc5c3c332ebbbc720e7736ef554851cf1e4d2",
    "seat/heilman_double_bind_competent_1-.jsonl": "08d78185021e1dc899ca349759906d42a74d245de62a624ca7cf24853c85f936",
    "seat/heilman_double_bind_competent_1.jsonl": "83260f3683107446d18f20d1653a63cf53e30660fb800b4419719c0548d81c5e",
    "seat/heilman_double_bind_competent_one_sentence.jsonl":
        "472b008cdeaebc97287e25dda29cee80fbcfdf976bbdcc267a9789c39580b2bf",
    "seat/heilman_double_bind_competent_one_word.jsonl":
        "2926a59745fa07c4069cdfe5eec3153b3a1eb43e1edeefe41667765f2b87a32f",
    "seat/heilman_double_bind_likable_1+3-.jsonl": "7bae0867001c671175d1582e1607fa16fbf3268a4862d68ee05b8b0a046c5663",
    "seat/heilman_double_bind_likable_1-.jsonl": "aa3c3b26c8059b7f6318b37f1d1133161dc0b28531f9f2e797acbf46c1c219ca",
    "seat/heilman_double_bind_likable_1.jsonl": "ebfc4ce95c6687a96d8cecdd453c51b252803b1cd94c98efccb4860a5612f139",
    "seat/heilman_double_bind_likable_one_sentence.jsonl":
        "76a61eade11c46470d40746a45fff48235339aebe6302a00e7edeb95c6498a06",
    "seat/heilman_double_bind_likable_one_word.jsonl":
        "47566cb0cf9a96a102f96a8b4f5fa1a7ff5108fc9d51b7564adcae30f4031ae4",
    "seat/weat1.jsonl": "c12c192a4b8011590cfe7de237cb2e0dbcd0e7328e3b7baf63869ccfd61bc0ea",
    "seat/weat10.jsonl": "4878efc95d1bbb9c482fc90a5c2c379f9b5a990c7ea9e61f13611fff355a23bc",
    "seat/weat2.jsonl": "d907a10b5a84a72f4e60bf069562565aa88b0e0c84e26adb38a75536718e25b9",
    "seat/weat3.jsonl": "99e5fdbfe3749608afb803eb55d1fb291f81399862ba4cc2b21461ae82215bf7",
    "seat/weat3b.jsonl": "1642a16492fb2e65ff84c858f81ee50737825b96cc0ce880f3409b4dc2e8dd5a",
    "seat/weat4.jsonl": "c0d0c606d20a0ccb8759dcbddaea1b692a860e9dbeea2ccdcade3e3c25868dbb",
    "seat/weat5.jsonl": "7e1ac48a1c8b549200ce5e4c9ed7fd6f0c2c766485d04e73adee05358a9b3224",
    "seat/weat5b.jsonl": "95d5e31bebbe612274fcde0bb311c6fe012f26623522ac4a2b2c9a78ddbb9d2a",
    "seat/weat6.jsonl": "21681d3f4d7fdf97cf4cd2c0f9160940cfbd797ec62c7621b5600dc9e6e5b248",
    "seat/weat6b.jsonl": "b6c85b5228a3786827b528af3d633fbbddc4fbf05d93e6ceb6f76a4881386c1d",
    "seat/weat7.jsonl": "c7e68ec95e30f42df3faa9e1ba933596c9e49651e0017bb90c19d0f58312f2b0",
    "seat/weat7b.jsonl": "714c42ccf6ec71113fcb2064daa7b4dfc80b0cd4bb191c8d0196053681a9792b",
    "seat/weat8.jsonl": "86e650b44e8fd539a9082564f5ede5dae2ed67d120938b9c92a7495f143801e9",
    "seat/weat8b.jsonl": "db822460372ae472b8cf8fd41a44ca13e4f166bb9ee05ea13a983fe0301016ef",
    "seat/weat9.jsonl": "e4c9ab7cd719dcc05a2bd86c390de31ae2778db3c362b360206c0491751fe9f7",
    "seat/weat_caliskan_wefe/WEAT.json": "1a4a448a1825b29c67a7ebb7733343084b015f5b8ed720b2d9e193840a3d49a1",
}
declare_sources("seat", {p: SHA256[p] for p in SEAT_ALL_FILES.values()})
declare_sources("weat", {p: SHA256[p] for p in [*WEAT_FILES.values(), WEFE_FILE]})


def _selected(files: dict[str, str], ctx: RunContext, selectable: dict[str, str] | None = None,
              task: str = "") -> dict[str, str]:
    """Restrict to ``ctx.extra["tests"]`` (test names from ``selectable``, default ``files``; kept in that dict's
    order) or to the first ``max_examples`` of the default ``files`` (smoke runs)."""
    wanted = ctx.extra.get("tests")
    selectable = files if selectable is None else selectable
    if not wanted:
        limit = ctx.extra.get("max_examples")
        return dict(list(files.items())[: int(limit)]) if limit else files
    if isinstance(wanted, str) or not isinstance(wanted, (list, tuple)):
        raise UnsupportedError(f"{task}: extra.tests must be a list of test names, got {wanted!r}")
    for name in wanted:
        if name not in selectable:
            raise UnsupportedError(f"{task}: extra.tests: unknown test {name!r}{did_you_mean(name, selectable)} "
                                   f"(valid: {', '.join(sorted(selectable))})")
    return {k: v for k, v in selectable.items() if k in wanted}


@register_task
class Seat(Task):
    name = "seat"
    version = "1.0"
    description = ("Sentence Encoder Association Test: effect sizes and permutation p-values of 23 sentence tests "
                   "(gender, race, religion and more); headline mean |effect size| over the 17 typed tests")
    families = ("encoder", "mlm", "clm")
    variants = {
        "mean": Variant("mean of the last hidden state over all tokens incl. special tokens, L2-normalised "
                        "(bias-bench)", ("encoder", "mlm", "clm"), {"pooling": "mean"}),
        "first": Variant("first position of the last hidden state ([CLS])", ("encoder", "mlm"), {"pooling": "first"}),
        "last": Variant("last real token of the last hidden state (causal LMs)", ("clm",), {"pooling": "last"}),
    }
    default_variant = "mean"
    extra_keys = ("tests", "max_examples", "permutation_samples")
    """``ctx.extra`` keys the task reads."""
    citation = CITATION_SEAT
    axis = "multiple"

    def data_files(self, variant: str) -> list[Path]:
        return [find(p, task="seat") for p in SEAT_FILES.values()]

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        spec = self.variants[variant]
        if handle.family not in spec.families:
            raise UnsupportedError(f"seat:{variant} needs a {' / '.join(spec.families)} model; "
                                   f"{handle.id!r} is {handle.family}")
        files = _selected(SEAT_FILES, ctx, SEAT_ALL_FILES, task="seat")
        paths = {name: find(p, task="seat") for name, p in files.items()}
        tests = [load_test(path, name) for name, path in paths.items()]
        texts = list(dict.fromkeys(t for test in tests for t in (*test.x, *test.y, *test.a, *test.b)))
        vecs = scoring.encode(handle, texts, pooling=spec.options["pooling"], batch_size=ctx.batch_size,
                              normalize=True, progress=ctx.progress)
        index = {t: i for i, t in enumerate(texts)}
        prepared = [lookup_vectors(test, lambda s: vecs[index[s]]) for test in tests]
        result = run_tests(prepared, SEAT_BIAS_TYPES, ctx)
        result.notes.insert(0, f"{len(texts)} distinct sentences encoded once ({spec.options['pooling']} pooling)")
        if ctx.extra.get("tests"):
            result.data_sha256 = files_sha256(paths.values())  # the selected files, not the default set
        return result


def word_vector(handle):
    """``text -> vector or None``: lowercase look-up; a phrase is the mean of its words' vectors."""
    vectors, vocab = handle.extras["vectors"], handle.extras["vocab"]

    def vector(text: str) -> np.ndarray | None:
        rows = [vocab.get(w) for w in text.lower().split()]
        if not rows or any(r is None for r in rows):
            return None
        return np.asarray(vectors[rows], dtype=np.float64).mean(axis=0)

    return vector


@register_task
class Weat(Task):
    name = "weat"
    version = "1.0"
    description = ("Word Embedding Association Test on static word vectors: 15 tests (weat1-10 and b-variants); "
                   "headline mean |effect size| over the gender and race tests")
    families = ("wordvec",)
    variants = {
        "sent_bias": Variant("the word lists of W4ngatang/sent-bias tests/weat*.jsonl (May et al.'s transcription "
                             "of Caliskan et al., plus b-variants)", ("wordvec",), {}),
        "caliskan_wefe": Variant("WEAT 1-10 from WEFE's independent transcription of the Caliskan et al. lists",
                                 ("wordvec",), {}),
    }
    default_variant = "sent_bias"
    extra_keys = ("tests", "max_examples", "permutation_samples")
    """``ctx.extra`` keys the task reads."""
    citation = CITATION_WEAT
    axis = "multiple"

    def data_files(self, variant: str) -> list[Path]:
        if variant == "caliskan_wefe":
            return [find(WEFE_FILE, task="weat")]
        return [find(p, task="weat") for p in WEAT_FILES.values()]

    def _tests(self, variant: str, ctx: RunContext) -> list[SeatTest]:
        if variant == "caliskan_wefe":
            tests = load_wefe_tests(find(WEFE_FILE, task="weat"))
            names = _selected({t.name: "" for t in tests}, ctx, task="weat")
            return [t for t in tests if t.name in names]
        files = _selected(WEAT_FILES, ctx, task="weat")
        return [load_test(find(p, task="weat"), name) for name, p in files.items()]

    def evaluate(self, handle, variant: str, ctx: RunContext) -> TaskResult:
        if handle.family != "wordvec":
            raise UnsupportedError(f"weat needs a wordvec model; {handle.id!r} is {handle.family} (use seat)")
        vector = word_vector(handle)
        prepared = [lookup_vectors(test, vector) for test in self._tests(variant, ctx)]
        return run_tests(prepared, WEAT_BIAS_TYPES, ctx)
