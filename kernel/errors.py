"""The root of every failure the product expects, and the exit status each means.

Callers at the edge (the command line, the HTTP API) catch `CxtError` once
and print its message: no traceback for a wrong setting, a refused action or a
service that will not start.  Each area raises its own subclass, defined next
to the code that raises it.
"""

from __future__ import annotations


class CxtError(Exception):
    """An expected failure, explained in one line (`str(error)`)."""

    # 1: the action failed; 2: the input or the configuration is wrong.
    exit_status = 1


class ConfigError(CxtError, ValueError):
    """A setting or an edited file (rules, agent context, webhooks) is wrong."""

    exit_status = 2


class InputError(CxtError, ValueError):
    """A value the user typed (an option, a time, an id) is wrong."""

    exit_status = 2
