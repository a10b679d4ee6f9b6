"""The collector registry: source name -> collector class.

Built-in collectors are registered exactly the way an extension would be,
with :func:`register`; nothing else treats them specially. A collector class
needs a ``name`` and a ``from_settings(settings, *, retry=None)`` class method.
"""

from __future__ import annotations

from typing import Any, Protocol

from .appstore import AppStoreCollector
from .base import Collector, RetryPolicy
from .reddit import RedditCollector
from .x import XCollector

__all__ = ["CollectorFactory", "UnknownSourceError", "create", "default_registry", "register"]


class CollectorFactory(Protocol):
    """What the registry holds: a collector class built from settings."""

    name: str

    def from_settings(self, settings: Any, *, retry: RetryPolicy | None = None) -> Collector:
        """Build the collector from :class:`~listenwell.config.Settings`."""
        ...


class UnknownSourceError(KeyError):
    """No collector is registered under that name."""


def register(registry: dict[str, Any], factory: Any) -> Any:
    """Add a collector class to ``registry`` under its ``name``; returns it (usable as decorator).

    Raises:
        ValueError: Another collector already has that name.
    """
    name = factory.name
    if name in registry and registry[name] is not factory:
        raise ValueError(f"a collector named {name!r} is already registered")
    registry[name] = factory
    return factory


def default_registry() -> dict[str, Any]:
    """A fresh registry holding the built-in collectors, in display order."""
    registry: dict[str, Any] = {}
    for factory in (RedditCollector, XCollector, AppStoreCollector):
        register(registry, factory)
    return registry


def create(
    name: str,
    settings: Any,
    *,
    registry: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
) -> Collector:
    """Build the collector registered as ``name`` from settings.

    Raises:
        UnknownSourceError: No collector has that name.
    """
    registry = default_registry() if registry is None else registry
    try:
        factory = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise UnknownSourceError(f"unknown source {name!r} (known: {known})") from None
    collector: Collector = factory.from_settings(settings, retry=retry)
    return collector
