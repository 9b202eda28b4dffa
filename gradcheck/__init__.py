"""gradcheck: check hand-derived gradients of matrix functions against finite differences.

Imports are lazy so that the command line starts fast (`gradcheck --help` loads neither numpy,
yaml nor rich): the API names below are imported on first use.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

from .errors import SpecError  # noqa: E402  (no heavy imports)

__all__ = ["__version__", "assert_gradients", "check", "load", "loads", "Limits", "RunOptions", "Spec", "SpecError"]

_LAZY = {"load": "spec", "loads": "spec", "Spec": "spec", "assert_gradients": "testing", "Limits": "limits",
         "RunOptions": "options"}


def __getattr__(name: str):
    """Import an API name on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """This package, whose `check` attribute is the function although a submodule has that name.

    Importing the submodule `gradcheck.check` makes Python set the package attribute `check` to the
    module; a property on the module's type wins over that assignment, so `gradcheck.check(spec)`
    keeps working however the modules were imported.
    """

    @property
    def check(self):
        override = self.__dict__.get("_check_override")
        if override is not None:
            return override
        from .check import check

        return check

    @check.setter
    def check(self, value):
        if not isinstance(value, types.ModuleType):  # a user's replacement (e.g. monkeypatch) is kept
            self.__dict__["_check_override"] = value


sys.modules[__name__].__class__ = _Package
