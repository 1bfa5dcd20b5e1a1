"""Malformed inputs give one line naming the file, row or field (exit 2), never a traceback, and are caught when
the matrix is read, before any model loads. The messages these tests see are the table of docs/malformed-input.md
(``BIASBOARD_WRITE_DOCS=1`` rewrites it from them; otherwise a test checks it is current)."""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from biasboard.harness.cli import main
from biasboard.harness.matrix import Matrix, plan
from biasboard.harness.runner import evaluate_cell

DOC = Path(__file__).resolve().parents[1] / "docs" / "malformed-input.md"
CROWS = "crows_pairs/crows_pairs_anonymized.csv"
SEEN: dict[str, tuple[str, str, int, str]] = {}
"""case id -> (input, command, exit code, message) as observed, for the docs table."""
BASE = "models: [zoo:splade-tiny]\ntasks: [crows_pairs:pll_unmodified]\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("biasboard: error:")]
    assert len(errors) == 1, err
    return errors[0]


def _note(case: str, what: str, command: str, code: int, message: str, *subs: tuple[Path, str]) -> None:
    for path, name in subs:
        message = message.replace(str(path), name)
    SEEN[case] = (what, command, code, message)


MATRIX_CASES = {
    "options-list": ("`options: [1, 2]`", BASE + "options: [1, 2]\n", "field 'options'"),
    "options-bad-int": ("`options: {batch_size: big}`", BASE + "options: {batch_size: big}\n", "options.batch_size"),
    "batch-size-0": ("`options: {batch_size: 0}`", BASE + "options: {batch_size: 0}\n", "options.batch_size"),
    "n-bootstrap-neg": ("`options: {n_bootstrap: -3}`", BASE + "options: {n_bootstrap: -3}\n", "options.n_bootstrap"),
    "unknown-option": ("`options: {n_bootstraps: 50}`", BASE + "options: {n_bootstraps: 50}\n",
                       "did you mean 'n_bootstrap'"),
    "non-utf8-matrix": ("a non-UTF-8 byte (0xe9) in the matrix", BASE + "description: caf\udce9\n", "not UTF-8"),
    "param-type": ("`methods: [{name: perturb, params: {sigma: high}}]`",
                   BASE + "methods: [{name: perturb, params: {sigma: high}}]\n", "not of type float"),
    "param-range": ("`methods: [{name: perturb, params: {sigma: 5.0}}]`",
                    BASE + "methods: [{name: perturb, params: {sigma: 5.0}}]\n", "outside the range"),
    "param-unknown": ("`methods: [{name: perturb, params: {sigmaa: 0.1}}]`",
                      BASE + "methods: [{name: perturb, params: {sigmaa: 0.1}}]\n", "unknown parameter"),
    "seeds-negative": ("`seeds: [-1]`", BASE + "seeds: [-1]\n", "field 'seeds'"),
    "seeds-empty": ("`seeds: []`", BASE + "seeds: []\n", "field 'seeds'"),
    "methods-empty": ("`methods: []`", BASE + "methods: []\n", "field 'methods'"),
    "extra-typo": ("`options: {extra: {eval_sampel: 150}}`", BASE + "options: {extra: {eval_sampel: 150}}\n",
                   "did you mean 'eval_sample'"),
    "extra-ignored": ("`tasks: [{task: seat, extra: {eval_sample: 150}}]` (SEAT reads no eval_sample)",
                      "models: [zoo:splade-tiny]\ntasks: [{task: seat, extra: {eval_sample: 150}}]\n",
                      "does not read extra key 'eval_sample'"),
}


@pytest.mark.parametrize("case", sorted(MATRIX_CASES))
def test_bad_matrix_is_one_line_before_any_model(case, capsys, tmp_path, monkeypatch):
    import biasboard.harness.matrix as matrix_mod

    def no_models(*a, **k):
        raise AssertionError("a model was resolved for a matrix that should have been refused")

    monkeypatch.setattr(matrix_mod, "resolve_model", no_models)
    what, text, expect = MATRIX_CASES[case]
    path = tmp_path / "m.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, err = _cli(capsys, ["run", str(path), "--out", str(tmp_path / "out"), "--no-site", "--quiet"])
    line = _one_error(err)
    assert code == 2 and expect in line and "m.yaml" in line, err
    assert not (tmp_path / "out").exists()  # refused before the store was created
    _note(case, what, "run", code, line, (tmp_path, "<tmp>"))


def test_an_extra_key_some_tasks_ignore_is_a_warning(capsys):
    matrix = Matrix.from_dict({"models": ["zoo:splade-tiny"], "tasks": ["seat", "crows_pairs"],
                               "options": {"extra": {"eval_sample": 150}}}, source="m.yaml")
    assert matrix.warnings == ("m.yaml: options.extra.eval_sample is ignored by task(s) seat",)
    matrix.print_warnings()
    line = capsys.readouterr().err.strip()
    _note("extra-ignored-some", "`options: {extra: {eval_sample: 150}}` with tasks seat and crows_pairs", "run", 0,
          line)


# --- results store ------------------------------------------------------------------------------------------------
def _foreign(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


def _truncated(path: Path) -> Path:
    from biasboard.harness.store import Store

    full = path.with_name("full.sqlite")
    with Store(full) as store:
        rec = {"model": "m", "method": "none", "task": "t", "variant": "v", "seed": 0}
        for i in range(200):
            store.put(f"k{i}", rec, [{"id": j, "text": "x" * 40} for j in range(100)])
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


STORES = {"foreign": ("another application's SQLite file as the store", _foreign, "another application"),
          "garbage": ("a file of random bytes as the store", _garbage, "not an SQLite database"),
          "truncated": ("a results store cut to half its size", _truncated, "corrupt or truncated")}


@pytest.mark.parametrize("command", ["run", "eval"])
@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_store_that_is_not_ours_is_refused_and_left_unchanged(kind, command, capsys, tmp_path, monkeypatch):
    import biasboard.harness.matrix as matrix_mod

    def no_models(*a, **k):
        raise AssertionError("the store should be checked before any model is resolved")

    monkeypatch.setattr(matrix_mod, "resolve_model", no_models)
    what, make, expect = STORES[kind]
    store = make(tmp_path / "store.sqlite")
    (tmp_path / "m.yaml").write_text(BASE)
    before, files = _sha(store), sorted(os.listdir(tmp_path))
    if command == "run":
        argv = ["run", str(tmp_path / "m.yaml"), "--store", str(store), "--no-site", "--quiet"]
    else:
        argv = ["eval", "--model", "zoo:splade-tiny", "--task", "crows_pairs", "--store", str(store)]
    code, err = _cli(capsys, argv)
    line = _one_error(err)
    assert code == 2 and expect in line and str(store) in line
    assert _sha(store) == before and sorted(os.listdir(tmp_path)) == files  # not a byte changed, no -wal/-shm
    _note(f"store-{kind}-{command}", what, command, code, line, (tmp_path, "<tmp>"))


# --- eval ---------------------------------------------------------------------------------------------------------
def test_eval_bad_param_fails_before_weights_load(capsys, tmp_path, monkeypatch, tiny_bert_dir):
    import biasboard.harness.matrix as matrix_mod
    import biasboard.harness.runner as runner

    def no_load(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(runner, "load_handle", no_load)
    monkeypatch.setattr(matrix_mod, "resolve_model", no_load)
    code, err = _cli(capsys, ["eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs", "--method", "perturb",
                              "--param", "sigma=abc", "--no-cache"])
    line = _one_error(err)
    assert code == 2 and "sigma" in line and "not of type float" in line
    _note("eval-param", "`eval --param sigma=abc`", "eval", code, line)


@pytest.fixture
def bad_crows(tmp_path, monkeypatch, data_dir):
    """A data folder whose CrowS-Pairs CSV has a byte that is not UTF-8 in its fifth row."""
    folder = tmp_path / "data"
    (folder / "crows_pairs").mkdir(parents=True)
    lines = (data_dir / CROWS).read_bytes().split(b"\n")
    lines[5] = lines[5][:30] + b"\xff" + lines[5][30:]
    (folder / CROWS).write_bytes(b"\n".join(lines))
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(folder))
    return folder


def test_non_utf8_crows_csv_under_eval(capsys, tmp_path, bad_crows, tiny_bert_dir):
    code, err = _cli(capsys, ["eval", "--model", str(tiny_bert_dir), "--task", "crows_pairs:ll_modified",
                              "--max-examples", "5", "--no-cache"])
    line = _one_error(err)
    assert code == 2 and f"file {bad_crows / CROWS}, row 5: not UTF-8: byte 0xff" in line
    _note("crows-non-utf8-eval", "a non-UTF-8 byte in row 5 of the CrowS-Pairs CSV", "eval", code, line,
          (tmp_path, "<tmp>"))


def test_non_utf8_crows_csv_under_run_names_file_and_row_in_the_failed_cell(capsys, tmp_path, bad_crows,
                                                                            tiny_bert_dir):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({"models": [str(tiny_bert_dir)], "tasks": ["crows_pairs:ll_modified"],
                                      "options": {"extra": {"max_examples": 5}}}))
    code, err = _cli(capsys, ["run", str(matrix), "--out", str(tmp_path / "out"), "--no-site", "--quiet"])
    failed = [line.strip() for line in err.splitlines() if line.strip().startswith("failed ")]
    assert code == 1 and len(failed) == 1 and f"{bad_crows / CROWS}, row 5: not UTF-8" in failed[0]
    _note("crows-non-utf8-run", "a non-UTF-8 byte in row 5 of the CrowS-Pairs CSV", "run", code,
          failed[0].split(": ", 1)[1], (tmp_path, "<tmp>"))


def test_pickle_payload_weights_are_refused_in_one_line(capsys, tmp_path, tiny_bert_dir):
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_bert_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    code, err = _cli(capsys, ["eval", "--model", str(folder), "--task", "crows_pairs:ll_modified", "--max-examples",
                              "2", "--no-cache"])
    line = _one_error(err)
    assert code == 2 and "refused to load pytorch_model.bin" in line and str(folder) in line
    assert not marker.exists()
    _note("pickle-weights", "a local model whose pytorch_model.bin is a pickle payload", "eval", code, line,
          (tmp_path, "<tmp>"))


# --- data digests (item 10) ---------------------------------------------------------------------------------------
def test_a_cut_crows_csv_is_flagged_in_the_result(tmp_path, monkeypatch, data_dir, tiny_bert_dir):
    folder = tmp_path / "data"
    (folder / "crows_pairs").mkdir(parents=True)
    text = (data_dir / CROWS).read_bytes()
    cut = text.index(b',"', len(text) // 2) + 10  # inside a quoted sentence: the rest of the file is one field
    (folder / CROWS).write_bytes(text[:cut])
    matrix = Matrix.from_dict({"models": [str(tiny_bert_dir)], "tasks": ["crows_pairs:ll_modified"],
                               "options": {"extra": {"max_examples": 5}, "n_bootstrap": 20}})
    clean = plan(matrix)[0][0]
    assert clean.data_warnings == ()
    monkeypatch.setenv("BIASBOARD_DATA_DIR", str(folder))
    cell = plan(matrix)[0][0]
    assert len(cell.data_warnings) == 1 and "differs from the pinned original" in cell.data_warnings[0]
    assert cell.key != clean.key
    record, _ = evaluate_cell(cell)
    assert record.flags["data_modified"] is True and cell.data_warnings[0] in record.notes
    _note("crows-cut", "a CrowS-Pairs CSV cut inside a field (runs; result flagged)", "run / eval", 0,
          "biasboard: warning: " + cell.data_warnings[0])


# --- the docs table -----------------------------------------------------------------------------------------------
def render(seen: dict[str, tuple[str, str, int, str]]) -> str:
    rows = ["# Malformed input: what biasboard says", "",
            "Each row is a malformed input and the exact message biasboard prints for it (generated from the "
            "outputs `tests/test_bad_input.py` observes; `BIASBOARD_WRITE_DOCS=1 pytest tests/test_bad_input.py` "
            "rewrites this file). Every error is one line on stderr with exit code 2 (a failed cell of a `run` exits "
            "1 and its message is in the run's summary); matrix problems are found when the matrix is read, before "
            "any model loads. `<tmp>` stands for the folder of the test.", "",
            "| input | command | exit | message |", "|---|---|---|---|"]
    order = [*MATRIX_CASES, "extra-ignored-some", "eval-param",
             *(f"store-{k}-{c}" for k in STORES for c in ("run", "eval")),
             "crows-non-utf8-eval", "crows-non-utf8-run", "crows-cut", "pickle-weights"]
    for case in sorted(seen, key=lambda c: order.index(c) if c in order else len(order)):
        what, command, code, message = seen[case]
        rows.append(f"| {what} | `{command}` | {code} | `{message.replace('|', '&#124;')}` |")
    rows += ["", "Hostile submissions (forged results, raw sockets, child processes, aliased unpickling, writes outside "
             "the sandbox, runaway memory and processes) are not malformed input: what `biasboard validate` says about "
             "each is in docs/submitting.md, \"Hostile submissions the tests try\"."]
    return "\n".join(rows) + "\n"


def test_docs_table_is_current():
    """Runs last in this module; checks the docs against every message seen (skipped on a partial selection)."""
    expected = len(MATRIX_CASES) + 2 * len(STORES) + 6
    if len(SEEN) < expected:
        pytest.skip(f"only {len(SEEN)} of {expected} cases ran")
    text = render(SEEN)
    if os.environ.get("BIASBOARD_WRITE_DOCS"):
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/malformed-input.md is stale: rerun with BIASBOARD_WRITE_DOCS=1"


def test_a_key_given_twice_in_a_matrix_or_manifest_is_an_error_with_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys; a matrix or manifest that says `seeds:` or `smoke:` twice is refused."""
    from biasboard.harness.errors import DataError
    from biasboard.harness.matrix import Matrix
    from biasboard.harness.submission import load_manifest

    matrix = tmp_path / "m.yaml"
    matrix.write_text("models: [zoo:splade-tiny]\ntasks: [crows_pairs]\nseeds: [0]\nseeds: [1, 2]\n")
    with pytest.raises(DataError) as err:
        Matrix.load(matrix)
    assert "'seeds' given twice (lines 3 and 4)" in str(err.value) and "m.yaml" in str(err.value)
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "manifest.yaml").write_text("name: x\nsmoke: {model: a}\nsmoke: {model: b}\n")
    with pytest.raises(DataError) as err:
        load_manifest(folder)
    assert "'smoke' given twice (lines 2 and 3)" in str(err.value)
