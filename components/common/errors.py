"""Errors that carry a one-line message meant for the user, not a traceback."""


class ClipflowError(Exception):
    """Base class: the message names the problem and the fix in one line."""


class ConfigError(ClipflowError):
    """A configuration value is unknown, of the wrong type or out of range."""


class DataError(ClipflowError):
    """Input data is missing, malformed or inconsistent."""
