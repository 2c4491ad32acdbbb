"""Run-stopping problems. Row failures are data (a result row); these are exceptions.

The CLI turns each into a one-line message and an exit status; nothing below the CLI prints or exits.
"""

from __future__ import annotations


class BulkStatusError(Exception):
    """Base class: the message is one line that says what is wrong and how to fix it."""


class ConfigError(BulkStatusError):
    """A setting is missing, malformed or contradicts another (exit 2, nothing sent)."""


class InputFileError(BulkStatusError):
    """The input file cannot be read or understood (exit 2, nothing sent)."""


class RunFolderError(BulkStatusError):
    """A run folder is missing, unfinished, or does not match its input (exit 2)."""


class RunAborted(BulkStatusError):
    """A systemic failure stopped the run (exit 3); files were written, the rest is `unprocessed`.

    ``cause``: what kind of thing must be fixed: ``credentials``, ``tls``, ``proxy``, ``config``, ``disk``, or
    ``endpoint`` (the API answered in a way no retry changes: a wrong URL, missing access, a bad query).
    """

    def __init__(self, message: str, cause: str = "endpoint") -> None:
        super().__init__(message)
        self.cause = cause


class OutputError(RunAborted):
    """A file of the run folder could not be written (a full disk, an I/O error): the run stops (exit 3)
    and resume continues it once the cause is gone."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "disk")
