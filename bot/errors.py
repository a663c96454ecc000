"""The project's error hierarchy: every error a user can cause is one of these."""


class CareerbotError(Exception):
    """Base of every error that the CLI turns into one clear line."""


class ConfigError(CareerbotError):
    """The config file or the environment it needs is invalid."""


class SourceError(CareerbotError):
    """A source could not be fetched or its content could not be parsed.

    ``retry_after`` is the delay in seconds the server asked for (429/503), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueryError(CareerbotError):
    """A subscription query is invalid.

    ``position`` is the 0-based character offset of the problem in ``query``,
    so callers can point at it.
    """

    def __init__(self, message: str, query: str = "", position: int | None = None) -> None:
        self.reason = message
        self.query = query
        self.position = position
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.position is None:
            return self.reason
        return f"{self.reason} (at character {self.position + 1})"

    def pointer(self) -> str:
        """The query with a caret under the problem, for multi-line displays."""
        if self.position is None:
            return self.query
        return f"{self.query}\n{' ' * self.position}^"


class StoreError(CareerbotError):
    """The database cannot be used (for example, a schema newer than this code)."""


class DeliveryError(CareerbotError):
    """Sending an alert failed.

    ``retryable`` says whether another attempt may succeed; ``retry_after`` is
    the delay in seconds the platform asked for, when it said one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        target_down: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable or target_down
        self.retry_after = retry_after
        # The platform itself is unusable (outage, revoked token): the alert is not
        # at fault, so waiting for the platform costs it no attempt.
        self.target_down = target_down


class MessageRefused(DeliveryError):
    """The platform refused the message itself (its size or layout): the same message
    will never pass, a plainer rendering of the alert may."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
