"""Source types. Importing this package registers every type."""

from bot.sources import cvpr, greenhouse  # noqa: F401  (registration side effect)
from bot.sources.base import (
    Collected,
    Fetcher,
    Response,
    SourceSpec,
    collector_for,
    source_types,
)

__all__ = ["Collected", "Fetcher", "Response", "SourceSpec", "collector_for", "source_types"]
