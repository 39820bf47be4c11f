"""A module imported on first use.

The daemon must stay within its idle memory budget, but it registers every recipient kind and
mounts every dialect at start: their heavy libraries (the SMTP, FTP and SSH clients, lxml for
XML dialects) are bound to a :class:`LazyModule` and load only when a delivery, a configuration
or a request actually needs them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A client library imported on first use.

    The daemon registers every recipient kind at start, but most devices use one or two: the
    SMTP, FTP and SSH clients (asyncssh pulls in ``cryptography``) load only when a delivery
    or a configuration actually needs them, keeping the idle daemon within its memory budget.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)
