"""Errors users see: each carries a message meant to be printed as is (no traceback)."""


class BiasboardError(Exception):
    """Base class for errors reported to the user with exit code 2 (usage or data problem)."""

    exit_code = 2


class DataError(BiasboardError):
    """Malformed or missing input data. The message names the file, row and field."""

    def __init__(self, message: str, *, path=None, row=None, field=None):
        where = []
        if path is not None:
            where.append(f"file {path}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.path, self.row, self.field = path, row, field


class UnsupportedError(BiasboardError):
    """A model family / task variant / method pairing that cannot be evaluated."""
