"""Errors of the local stack, kept apart so every module can import them."""

from __future__ import annotations

from kernel.errors import CxtError


class PrerequisiteError(CxtError, RuntimeError):
    """A tool the local stack needs (java, mvn, redis-server) is missing.

    The message names the tool and the command that installs it, because the
    person reading it is usually setting the project up for the first time.
    """


class ServiceStartError(CxtError, RuntimeError):
    """A local service did not come up; the message carries the tail of its log."""
