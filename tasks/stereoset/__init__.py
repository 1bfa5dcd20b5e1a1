"""StereoSet, one module group: ``task`` (the registered task), ``data`` (reader), ``scoring`` (how each model
family scores a candidate) and ``metrics`` (SS / LMS / ICAT: pure functions)."""
