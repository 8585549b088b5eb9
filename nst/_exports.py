"""Lazy public names for the packages' ``__init__`` (PEP 562).

A package's ``__init__`` names what it offers without importing it: ``nst.optimise.Stylizer``
imports :mod:`nst.optimise.stylize` on first use.  So importing a package costs nothing,
and no ``__init__`` can close an import cycle between packages.
"""

import importlib


def lazy(package: str, table: dict):
    """A module ``__getattr__`` for ``package``: ``table`` maps a public name to its module's name."""

    def __getattr__(name):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{table[name]}"), name)

    return __getattr__
