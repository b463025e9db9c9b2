"""Errors raised by vasomics.

Every error a user can provoke with bad input is a :class:`VasomicsError` whose ``str()`` is one
line naming the file (when there is one) and the problem. The CLI prints that line and exits
non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os


class VasomicsError(Exception):
    """Base class: a problem the user can fix, described in one line.

    Parameters
    ----------
    message:
        What is wrong, without the file name.
    path:
        The file or folder concerned, if any; it is prefixed to the message.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.message = " ".join(str(message).split())  # always one line
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(VasomicsError):
    """An input file or array is missing, unreadable, corrupt or holds invalid values."""


class FormatError(InputError):
    """A file is of an unknown or unsupported format."""


class GeometryError(InputError):
    """Spacing, origin, direction or shape are invalid or do not match between inputs."""


class ParameterError(VasomicsError):
    """A parameter file or parameter value is invalid."""


class OutputError(VasomicsError):
    """An output cannot be written (folder not writable, disk full, ...)."""


class DependencyError(VasomicsError):
    """An optional extra, external tool or model weight file is not installed."""

    exit_code = 3
