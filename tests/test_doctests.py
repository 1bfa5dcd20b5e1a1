"""Run the doctest examples of every module that has them: they are the hand-worked cases of the metrics, the
statistics, the leaderboard and the regression gate, so a wrong working fails the suite."""
import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "tasks", "leaderboard", "submissions")


def modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append("biasboard." + ".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_metric_modules_are_covered():
    found = set(modules_with_examples())
    assert {"biasboard.tasks.seat.metrics", "biasboard.tasks.stereoset.metrics", "biasboard.tasks.stereoset.data", "biasboard.harness.stats",
            "biasboard.harness.regress", "biasboard.leaderboard.ranking"} <= found


@pytest.mark.parametrize("name", modules_with_examples())
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
