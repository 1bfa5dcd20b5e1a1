"""biasboard against the original tools (issue 18): the side-by-side scripts in ../shared/peers, one pair per test.

Each test runs one ``pair_<name>.sh`` once on a copy of the peers folder (nothing is written into it): the original
code first, then the matching ``biasboard eval`` (cold), each under GNU time. It records both wall and CPU times,
the ratio and both scores, and asserts that the two sides give the same number (a side-by-side is only worth timing
when it computes the same thing). Ratios are printed next to the issue's targets and not asserted: they are
wall-clock figures and mean something only on an idle machine.

Run (full size; see BENCHMARKS.md, "Against the original tools")::

    BIAS_BENCH_SRC=path/to/bias-bench-clone LM_EVAL=path/to/lmeval-venv/bin/lm-eval \\
    BIASBOARD_DATA_DIR=../shared/data pytest tests/benchmarks/bench_peers.py -o python_files='bench_*.py' \\
        --benchmark-enable -s

Environment: BIASBOARD_PEERS (peers folder, default ../shared/peers beside the repository), BIAS_BENCH_SRC (a git
clone or mirror of McGill-NLP/bias-bench, not shipped: no licence), BIAS_BENCH_COMMIT (default: the commit pinned in
the peers README, else HEAD), LM_EVAL (lm-eval command; crows_causal is skipped without it), BENCH_PEERS_N (first N
examples, default 0 = full size), BENCH_PEERS_OUT (JSON lines, default in the temporary folder), PEER_PY, BIASBOARD,
SEAT_SET (default bb17), and whatever else the scripts read (THREADS, BS, SEAT_TESTS, SEAT_PERM, TIME_BIN).
SEAT_SET=bb17 runs all 17 tests whatever N says (the script's rule): for a small SEAT run set SEAT_TESTS as well;
``n_scored`` in the results says how many examples (SEAT: tests) the scores cover.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
# pair -> (needs bias-bench, needs lm-eval, issue 18's target ratio peer/biasboard)
PAIRS = {"crows_pll": (False, False, 20), "seat": (True, False, 20), "crows_causal": (False, True, 3),
         "stereoset": (True, False, 10)}
BIAS_BENCH_PATHS = ("bias_bench", "experiments")  # the scripts give bias-bench its data via --persistent_dir
RESULT = re.compile(r"^RESULT (?P<label>\S+) N=(?P<n>\S+) peer_wall=(?P<pw>\S+)s biasboard_wall=(?P<bw>\S+)s "
                    r"ratio\(peer/bb\)=(?P<ratio>\S+) peer_score=(?P<ps>\S+) biasboard_score=(?P<bs>\S+)$", re.M)
TIME_LINE = re.compile(r"([\d.]+) s wall ([\d.]+) user ([\d.]+) sys (\d+) KB")


def _git(src: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(src), *args], capture_output=True, **kw)


def _apply_patch(tree: Path, patch: Path) -> str | None:
    """Apply the peers' bias-bench patch unless the tree already has it; an error message, or None."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.parent)}  # never pick up an enclosing repository
    if subprocess.run(["git", "apply", "--reverse", "--check", str(patch)], cwd=tree, env=env,
                      capture_output=True).returncode == 0:
        return None
    p = subprocess.run(["git", "apply", str(patch)], cwd=tree, env=env, capture_output=True, text=True)
    return f"git apply {patch.name} failed: {p.stderr.strip()[:300]}" if p.returncode else None


def _bias_bench(copy: Path) -> tuple[str | None, str]:
    """Put bias-bench at <copy>/bias-bench from BIAS_BENCH_SRC: (why it is unavailable or None, what was used)."""
    target, src = copy / "bias-bench", os.environ.get("BIAS_BENCH_SRC")
    if not src:
        if (target / "experiments").is_dir():
            return None, "bias-bench as found in the peers folder"
        return "bias-bench is not shipped (no licence): set BIAS_BENCH_SRC to a git clone of McGill-NLP/bias-bench", ""
    src_path = Path(src).resolve()
    shutil.rmtree(target, ignore_errors=True)
    if _git(src_path, "rev-parse", "--git-dir").returncode:  # a plain tree: copy it (patched already or not)
        if not (src_path / "experiments").is_dir():
            return f"BIAS_BENCH_SRC={src} is neither a git directory nor a bias-bench tree", ""
        for part in BIAS_BENCH_PATHS:
            shutil.copytree(src_path / part, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        used = f"bias-bench tree copied from {src}"
    else:
        pinned = re.search(r"at commit ([0-9a-f]{40})", (copy / "README.md").read_text())
        commit = os.environ.get("BIAS_BENCH_COMMIT") or (pinned.group(1) if pinned else "HEAD")
        note = ""
        if _git(src_path, "cat-file", "-e", f"{commit}^{{commit}}").returncode:
            if os.environ.get("BIAS_BENCH_COMMIT"):
                return f"BIAS_BENCH_COMMIT={commit} is not in {src}", ""
            note, commit = f" (pinned {commit[:8]} is not in BIAS_BENCH_SRC: used HEAD)", "HEAD"
        sha = _git(src_path, "rev-parse", commit, text=True).stdout.strip()
        for part in BIAS_BENCH_PATHS:  # path by path: a mirror may lack big data blobs the pairs never read
            tar = _git(src_path, "archive", "--format=tar", sha, part)
            if tar.returncode:
                return f"git archive {sha[:8]} {part} failed: {tar.stderr.decode().strip()[:300]}", ""
            with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
                t.extractall(target, filter="data")
        used = f"bias-bench commit {sha}{note}"
    err = _apply_patch(target, copy / "patches" / "bias-bench.diff")
    return (err, "") if err else (None, used + ", patched with patches/bias-bench.diff")


@pytest.fixture(scope="module")
def peers(tmp_path_factory, data_dir):
    """A private copy of the peers folder (with bias-bench in it when available) and the scripts' environment."""
    src = Path(os.environ.get("BIASBOARD_PEERS", REPO.parent / "shared" / "peers")).resolve()
    if not (src / "lib" / "common.sh").is_file():
        pytest.skip(f"no peers folder at {src} (set BIASBOARD_PEERS)")
    tmp = tmp_path_factory.mktemp("peers")
    copy = tmp / "peers"
    shutil.copytree(src, copy, symlinks=True, ignore=shutil.ignore_patterns("out", "__pycache__"))
    bb_missing, bb_used = _bias_bench(copy)
    print(f"\npeers: copy of {src} in {copy}; {bb_used or 'bias-bench unavailable: ' + bb_missing}")
    env = {**os.environ, "OUT": str(tmp / "out"), "DATA": str(data_dir),
           "N": os.environ.get("BENCH_PEERS_N", "0"), "SEAT_SET": os.environ.get("SEAT_SET", "bb17"),
           "PEER_PY": os.environ.get("PEER_PY", sys.executable),
           "BIASBOARD": os.environ.get("BIASBOARD", str(Path(sys.executable).with_name("biasboard")))}
    jsonl = Path(os.environ.get("BENCH_PEERS_OUT", tmp / "bench_peers.jsonl")).resolve()
    print(f"peers: results appended to {jsonl}")
    return SimpleNamespace(dir=copy, env=env, jsonl=jsonl, bias_bench_missing=bb_missing, bias_bench=bb_used)


def _score(text: str) -> tuple[str, str, dict[str, str]]:
    """A script's score field, e.g. ``0.6349(mean_abs_effect_size,n=17)`` or ``55.57(pct_stereotype*100;likelihood_diff
    =4.6)`` -> ("0.6349", "mean_abs_effect_size", {"n": "17", ...}); metric.py's bare ``54.31`` -> ("54.31", "", {})."""
    m = re.fullmatch(r"([^()]+)(?:\((.*)\))?", text)
    assert m, f"unreadable score {text!r}"
    head, *rest = re.split(r"[,;]", m.group(2) or "")
    return m.group(1), head, dict(kv.split("=", 1) for kv in rest if "=" in kv)


def _time_line(run: Path, label: str) -> dict:
    lines = (run / f"{label}.time").read_text().strip().splitlines()
    failed = any("exited with non-zero status" in x for x in lines[:-1])
    assert not failed, f"{label} side failed: {lines[0]}; tail of {label}.err:\n" + \
        "\n".join((run / f"{label}.err").read_text().splitlines()[-15:])
    wall, user, sys_, kb = TIME_LINE.search(lines[-1]).groups()
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "max_rss_kb": int(kb)}


def _run_pair(peers, pair: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(peers.dir / f"pair_{pair}.sh")], env=peers.env, capture_output=True, text=True)


def _check_scores(pair: str, peer: str, bb: dict) -> dict:
    """Assert the agreement issue 18 asks for; both scores as numbers."""
    pv, _, pextra = _score(peer)
    assert pv != "NA", f"{pair}: the peer printed no score"
    metrics = {k: (v["value"] if isinstance(v, dict) else v) for k, v in bb["metrics"].items()}
    out = {"peer_score": float(pv), "n_scored": next(v.get("n") for v in bb["metrics"].values()
                                                     if isinstance(v, dict))}
    if pair == "crows_pll":  # metric.py prints round(%, 2)
        out["biasboard_score"] = metrics["stereotype_score"]
        assert round(metrics["stereotype_score"], 2) == float(pv), out
    elif pair == "seat":
        out["biasboard_score"] = metrics["mean_abs_effect_size"]
        assert f"{metrics['mean_abs_effect_size']:.4f}" == pv, out
    elif pair == "crows_causal":
        out.update(biasboard_score=metrics["stereotype_score"], peer_likelihood_diff=float(pextra["likelihood_diff"]),
                   biasboard_likelihood_diff=metrics["likelihood_diff"])
        assert f"{metrics['stereotype_score']:.4f}" == pv, out
        assert f"{metrics['likelihood_diff']:.4f}" == pextra["likelihood_diff"], out
    else:  # stereoset: SS to 2 decimals; ICAT and LMS recorded
        out.update(biasboard_score=metrics["ss"], peer_icat=float(pextra["icat"]), peer_lms=float(pextra["lms"]),
                   biasboard_icat=metrics.get("icat"), biasboard_lms=metrics.get("lms"))
        assert f"{metrics['ss']:.2f}" == f"{float(pv):.2f}", out
    return out


@pytest.mark.parametrize("pair", list(PAIRS))
def test_pair(benchmark, peers, pair):
    needs_bias_bench, needs_lm_eval, target = PAIRS[pair]
    if needs_bias_bench and peers.bias_bench_missing:
        pytest.skip(peers.bias_bench_missing)
    if needs_lm_eval and not os.environ.get("LM_EVAL"):
        pytest.skip("set LM_EVAL to the lm-eval command of its own venv (see the peers README, Set-up)")
    proc = benchmark.pedantic(_run_pair, args=(peers, pair), rounds=1, iterations=1)
    found = RESULT.search(proc.stdout)
    assert proc.returncode == 0 and found, f"pair_{pair}.sh rc={proc.returncode}\n{proc.stdout[-1500:]}" \
                                           f"\n{proc.stderr[-2500:]}"
    run = Path(re.search(r"^--- logs: (.*)$", proc.stdout, re.M).group(1))
    peer_t, bb_t = _time_line(run, "peer"), _time_line(run, "bb")
    record = json.loads((run / "bb.out").read_text())  # eval --json, or the store record of the one-cell run
    scores = _check_scores(pair, found["ps"], record)
    prov = record.get("provenance") or {}
    info = {"pair": found["label"], "N": found["n"], "peer_wall": peer_t["wall"], "biasboard_wall": bb_t["wall"],
            "ratio": peer_t["wall"] / bb_t["wall"], "target_ratio": target, "peer_cpu": peer_t["cpu"],
            "biasboard_cpu": bb_t["cpu"], "peer_max_rss_kb": peer_t["max_rss_kb"],
            "biasboard_max_rss_kb": bb_t["max_rss_kb"], **scores, "biasboard_cell_seconds": prov.get("seconds"),
            "peer_score_text": found["ps"], "biasboard_score_text": found["bs"]}
    if needs_bias_bench:
        info["bias_bench"] = peers.bias_bench
    benchmark.extra_info.update(info)
    cell = f"{info['biasboard_cell_seconds']:.2f}s" if info["biasboard_cell_seconds"] is not None else "n/a"
    print(f"\n{found.group(0)}\n{info['pair']} N={info['N']}: peer {info['peer_wall']:.2f}s wall "
          f"({info['peer_cpu']:.1f} CPU s), biasboard {info['biasboard_wall']:.2f}s wall ({info['biasboard_cpu']:.1f} "
          f"CPU s; cell {cell} in-process), ratio {info['ratio']:.2f}x (issue target {target}x); scores "
          f"peer {info['peer_score']} | biasboard {info['biasboard_score']:.4f}")
    peers.jsonl.parent.mkdir(parents=True, exist_ok=True)
    with peers.jsonl.open("a") as f:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        f.write(json.dumps({"finished_at": stamp, "result": found.group(0), **info}) + "\n")
