"""Run the doctest examples of the leaderboard and regression modules (they document hand-worked cases)."""
import doctest

import pytest

import harness.regress
import leaderboard.plots
import leaderboard.ranking
import leaderboard.release
import leaderboard.site
import tasks.sampling


@pytest.mark.parametrize("module", [harness.regress, tasks.sampling, leaderboard.plots, leaderboard.ranking, leaderboard.release,
                                    leaderboard.site], ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
