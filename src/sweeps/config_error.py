"""The error every command reports as one line, in a module of its own: the store and the
analysis raise it without loading the config schemas (and Hydra with them)."""


class ConfigError(ValueError):
    """A config value that composes but is not allowed. The message is one line:
    ``key=value: what is allowed``."""
