"""The one error type a user sees for a bad run spec."""


class ConfigError(ValueError):
    """A run spec is invalid. ``path`` names the field (``model.n_head``), ``reason`` says why."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)
