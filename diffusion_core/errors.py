"""Errors whose message is meant for the person who made the request."""


class InvalidRequest(ValueError):
    """A parameter the user can fix (the message says how)."""


class ModelLoadError(RuntimeError):
    """A model could not be loaded (unknown id, offline, wrong format)."""


class GenerationCancelled(Exception):
    """Raised from a step callback to stop a generation between steps."""
