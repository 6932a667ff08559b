"""Errors a person can act on: one line that says what was wrong and what to do.

The command line prints a ``UserError`` as ``fimpack: error: ...`` with exit status 2 (1 for
``BuildFailed``) and no traceback; ``--debug`` (or ``FIMPACK_DEBUG=1``) shows the traceback.
A UserError raised inside a Beam worker reaches the driver wrapped in the runner's own
exception, whose text keeps the original message: ``MARK`` lets the driver find that line.
"""
from __future__ import annotations

MARK = "[fimpack user error] "


class UserError(Exception):
    """A mistake in the command's inputs or options, fixable by the user."""

    exit_code = 2

    def __str__(self) -> str:
        return MARK + super().__str__()

    @property
    def message(self) -> str:
        return super().__str__()


class BuildFailed(UserError):
    """The build ran but has nothing to show (every input file dropped): no manifest.json."""

    exit_code = 1


def user_message(err: BaseException) -> str | None:
    """The one-line message of a UserError, also when a runner wrapped it; else None."""
    if isinstance(err, UserError):
        return err.message
    text = str(err)
    at = text.rfind(MARK)
    if at < 0:
        return None
    return text[at + len(MARK):].splitlines()[0].strip().strip("'\"")
