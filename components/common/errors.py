"""Errors that carry a one-line message meant for the user, not a traceback."""
import re

BEAM_CONTEXT = re.compile(r" \[while running '[^']*'\]")  # what Beam appends to an error it passes on


def first_line(err: BaseException) -> str:
    """What a one-line report can say of ``err``: the first line of its own message (without Beam's
    step names), or its type's name when it has no message."""
    lines = BEAM_CONTEXT.sub("", str(err)).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


class ClipflowError(Exception):
    """Base class: the message names the problem and the fix in one line."""


class ConfigError(ClipflowError):
    """A configuration value is unknown, of the wrong type or out of range."""


class DataError(ClipflowError):
    """Input data is missing, malformed or inconsistent."""
