"""Package APIs are re-exported with an honest ``__all__``."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["listenwell.store", "listenwell.config"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_honest(name):
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    public = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and not inspect.ismodule(obj)
        and getattr(obj, "__module__", "").startswith(name)
    }
    assert public <= exported, f"public but not in __all__: {sorted(public - exported)}"
