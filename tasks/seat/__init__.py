"""SEAT and WEAT, one module group: ``task`` (the two registered tasks), ``data`` (test files), ``runner`` (run a
list of tests on vectors, aggregates) and ``metrics`` (effect size, permutation test: pure functions)."""
