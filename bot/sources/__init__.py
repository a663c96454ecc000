"""Source types. Importing this package registers every type: each module in it
registers its collector with ``@register("type")``."""

import importlib
import pkgutil

from bot.sources.base import (
    Collected,
    Fetcher,
    Response,
    SourceSpec,
    collect_postings,
    collector_for,
    source_types,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Collected",
    "Fetcher",
    "Response",
    "SourceSpec",
    "collect_postings",
    "collector_for",
    "source_types",
]
