"""Exceptions with one-line messages meant for users."""

from __future__ import annotations


class PtychoInputError(ValueError):
    """Bad user input (file, key, option). The message is one line naming what is wrong.

    Parameters
    ----------
    message : str
        What was expected and what was found.
    path : str or Path, optional
        The offending file; prefixed to the message.
    key : str, optional
        The offending key/field inside the file.
    """

    def __init__(self, message: str, *, path: object | None = None, key: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if key is not None:
            where.append(f"key '{key}'")
        prefix = ": ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(" ".join(text.split("\n")))
        self.path = path
        self.key = key
