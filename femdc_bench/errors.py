"""The error of a bad experiment file, importable without the rest (standard library
only): the experiment package, the providers and the deployment methods raise it."""

from __future__ import annotations


class ExperimentError(Exception):
    """A bad experiment file. str() is the one-line message users see."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file, self.path, self.message = file, path, message
        where = f"{file}: {path}: " if path else f"{file}: "
        super().__init__(where + message)


def unknown(value: str, known: list[str]) -> str:
    """" (did you mean 'x'?)" for a near miss among `known`, else ""."""
    import difflib

    hint = difflib.get_close_matches(value, known, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""
