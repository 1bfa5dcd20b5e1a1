"""BIOS metrics: hand-worked cases, the fairlearn path against an independent count, the bootstrap fast path against
the reported values, and the readers of the public Bias in Bios formats (bad input names file, row and field)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from biasboard.harness.errors import DataError
from biasboard.harness.training import TextDataset
from biasboard.tasks import bios_data, synthetic_bios
from biasboard.tasks.bios import female_share_by_class, score
from biasboard.tasks.text_classifier_metrics import gaps_from_weights, rms, tpr_gap_counts, tpr_gaps


def _dataset(labels, genders, names=("a", "b")):
    n = len(labels)
    return TextDataset(texts=tuple("x" for _ in range(n)), labels=tuple(labels), ids=tuple(map(str, range(n))),
                       groups=tuple(genders), axis="gender", label_names=tuple(names))


def test_tpr_gaps_hand_worked():
    # class a: female 1 of 2 right (TPR .5), male 2 of 2 (1.0) -> gap -.5
    # class b: female 2 of 2 (1.0), male 1 of 4 (.25)          -> gap +.75
    y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    p = [0, 1, 0, 0, 1, 1, 1, 0, 0, 0]
    g = ["female", "female", "male", "male", "female", "female", "male", "male", "male", "male"]
    gaps = tpr_gaps(y, p, g, 2)
    assert gaps.tolist() == pytest.approx([-0.5, 0.75])
    # RMS = sqrt((.25 + .5625) / 2) = sqrt(.40625) = .637377
    assert rms(gaps) == pytest.approx(0.637377, abs=1e-6)
    res = score(_dataset(y, g), np.array(p), _dataset(y, g), n_bootstrap=200, seed=0)
    assert res.metrics["tpr_gap_rms"].value == pytest.approx(63.7377, abs=1e-3)
    assert res.groups["a"]["tpr_gap"].value == pytest.approx(-50.0)
    assert res.groups["b"]["tpr_female"].value == pytest.approx(100.0)
    # accuracy: class a 3 of 4 right, class b 3 of 6 -> 6 of 10
    assert res.metrics["accuracy"].value == pytest.approx(60.0)


def test_class_missing_a_gender_is_left_out_not_zero():
    gaps = tpr_gaps([0, 0, 1], [0, 0, 1], ["female", "male", "female"], 2)
    assert gaps[0] == 0.0 and np.isnan(gaps[1])
    assert rms(gaps) == 0.0


def test_fairlearn_path_matches_independent_count_on_synthetic_bios():
    data = synthetic_bios.generate(synthetic_bios.BiosConfig(n=3000, seed=3))
    rng = np.random.default_rng(0)
    y = np.asarray(data.labels)
    pred = np.where(rng.random(len(y)) < 0.7, y, rng.integers(0, len(data.label_names), len(y)))
    g = np.asarray(data.groups)
    K = len(data.label_names)
    ours = tpr_gaps(y, pred, g, K)
    expected = []
    for c in range(K):
        f, m = (y == c) & (g == "female"), (y == c) & (g == "male")
        expected.append((pred[f] == c).mean() - (pred[m] == c).mean())
    assert ours == pytest.approx(np.array(expected), abs=1e-12)
    # the bootstrap's matrix form gives the same numbers on the unweighted sample
    fast = gaps_from_weights(tpr_gap_counts(y, pred == y, g == "female", K), K)(np.ones((1, len(y))))[0]
    assert fast[:-1] == pytest.approx(ours, abs=1e-12)
    assert fast[-1] == pytest.approx(rms(ours), abs=1e-12)


def test_pearson_and_ci_on_planted_pattern():
    # gap = share - 0.5 exactly: r must be 1
    train = _dataset([0] * 10 + [1] * 10 + [2] * 10,
                     ["female"] * 9 + ["male"] + ["female"] * 5 + ["male"] * 5 + ["female"] + ["male"] * 9,
                     names=("a", "b", "c"))
    share = female_share_by_class(train)
    assert share.tolist() == pytest.approx([0.9, 0.5, 0.1])
    # test: 10 per class and gender; female TPR = .5 + gap/2, male = .5 - gap/2 with gaps .4, 0, -.4
    y, g, p = [], [], []
    for c, (tf, tm) in enumerate([(7, 3), (5, 5), (3, 7)]):
        for gender, hits in (("female", tf), ("male", tm)):
            y += [c] * 10
            g += [gender] * 10
            p += [c] * hits + [(c + 1) % 3] * (10 - hits)
    res = score(_dataset(y, g, ("a", "b", "c")), np.array(p), train, n_bootstrap=300, seed=0)
    assert res.metrics["tpr_gap_pearson_r"].value == pytest.approx(1.0)
    assert res.metrics["tpr_gap_pearson_r"].n == 3
    # RMS of (.4, 0, -.4) = sqrt(.32 / 3) = .326599
    m = res.metrics["tpr_gap_rms"]
    assert m.value == pytest.approx(32.6599, abs=1e-3)
    assert m.ci95[0] <= m.value <= m.ci95[1]
    # dataset bias: shares .9/.5/.1 around the overall .5 -> RMS sqrt((.16 + 0 + .16) / 3) = .326599
    assert res.metrics["train_gender_skew"].value == pytest.approx(32.6599, abs=1e-3)


def test_synthetic_bios_plants_the_requested_shares():
    cfg = synthetic_bios.BiosConfig(n=8000, skew=1.0, occupations=("nurse", "surgeon"), seed=1)
    share = female_share_by_class(synthetic_bios.generate(cfg))
    assert share[0] == pytest.approx(0.91, abs=0.02) and share[1] == pytest.approx(0.15, abs=0.02)
    flat = female_share_by_class(synthetic_bios.generate(synthetic_bios.BiosConfig(n=8000, skew=0.0, seed=1,
                                                                                      occupations=("nurse", "surgeon"))))
    assert flat == pytest.approx([0.5, 0.5], abs=0.03)
    a, b = synthetic_bios.generate(cfg), synthetic_bios.generate(cfg)
    assert a.digest() == b.digest()
    assert "she" in a.texts[0].lower().split() or "he" in a.texts[0].lower().split()


def test_synthetic_bios_rejects_unknown_occupation():
    with pytest.raises(Exception, match="unknown occupations"):
        synthetic_bios.generate(synthetic_bios.BiosConfig(occupations=("wizard",)))


def test_reader_hf_schema_jsonl(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"hard_text": "She treats patients.", "profession": 13, "gender": 1},
        {"hard_text": "He writes code.", "profession": 24, "gender": 0}]))
    d = bios_data.read_bios(f)
    assert d.labels == (13, 24) and d.groups == ("female", "male")
    assert d.label_names[13] == "nurse" and d.label_names[24] == "software_engineer"


LABHC_CARD_PROFESSIONS = (
    "accountant architect attorney chiropractor comedian composer dentist dietitian dj filmmaker interior_designer "
    "journalist model nurse painter paralegal pastor personal_trainer photographer physician poet professor "
    "psychologist rapper software_engineer surgeon teacher yoga_teacher").split()
"""Profession ids 0..27 as the LabHC/bias_in_bios dataset card lists them; its gender codes are male 0, female 1."""


def test_labhc_codes_match_the_dataset_card(tmp_path):
    """Every profession id and both gender codes, read from a parquet file in the hub's schema (int64 columns)."""
    import pandas as pd

    assert bios_data.PROFESSIONS == tuple(LABHC_CARD_PROFESSIONS) and bios_data.HF_GENDER == {0: "male", 1: "female"}
    f = tmp_path / "test.parquet"
    pd.DataFrame({"hard_text": [f"bio {i}" for i in range(56)], "profession": [i % 28 for i in range(56)],
                  "gender": [i // 28 for i in range(56)]}).astype({"profession": "int64", "gender": "int64"}
                                                                 ).to_parquet(f)
    d = bios_data.read_bios(f)
    assert [d.label_names[y] for y in d.labels] == LABHC_CARD_PROFESSIONS * 2
    assert d.groups == ("male",) * 28 + ("female",) * 28


def test_reader_original_pickle(tmp_path):
    f = tmp_path / "BIOS.pkl"
    with open(f, "wb") as fh:
        pickle.dump([{"raw": "x", "bio": "She is a nurse.", "title": "nurse", "gender": "F"},
                     {"raw": "y", "bio": "He is a yoga teacher.", "title": "yoga teacher", "gender": "M"}], fh)
    d = bios_data.read_bios(f)
    assert d.texts[0] == "She is a nurse."
    assert [d.label_names[i] for i in d.labels] == ["nurse", "yoga_teacher"]
    assert bios_data.find_split_files(tmp_path) == {"all": f}


@pytest.mark.parametrize("row, field, match", [
    ({"hard_text": "x", "profession": 99, "gender": 1}, "profession", "unknown profession"),
    ({"hard_text": "x", "profession": 3, "gender": "x"}, "gender", "unknown gender"),
    ({"profession": 3, "gender": 1}, "hard_text", "missing biography text"),
])
def test_reader_errors_name_file_row_field(tmp_path, row, field, match):
    f = tmp_path / "test.jsonl"
    f.write_text(json.dumps({"hard_text": "ok", "profession": 1, "gender": 0}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=match) as err:
        bios_data.read_bios(f)
    assert err.value.row == 2 and err.value.field == field and str(f) in str(err.value)
