"""Loaders: the I/O half of the file-loading destinations (object stores, warehouses).

`destinations/` stays pure: a destination module writes a batch into staged rows or objects
(`FileDestination.write`); the loader of its type, here, uploads and loads it. The contract is
`loaders/base.py`; delivery (`delivery/loading.py`) and the admin test/preview calls use it.
"""

from eventrelay.loaders.base import (
    CheckStep,
    Loader,
    LoaderContext,
    LoadError,
    LoadReport,
    MissingExtra,
    extra_installed,
    loader_for,
)

__all__ = [
    "CheckStep",
    "LoadError",
    "LoadReport",
    "Loader",
    "LoaderContext",
    "MissingExtra",
    "extra_installed",
    "loader_for",
]
