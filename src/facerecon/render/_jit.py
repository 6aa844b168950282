"""numba's `njit`, applied when a kernel is first called rather than when its module is imported.

Importing numba costs about 0.1 s (its compiler machinery), which a process that never runs a kernel
should not pay: a fast-mode reconstruction renders only one-shot images, on the torch twins
(`_fused.torch_kernels`). `njit(**options)` returns a `LazyKernel`; its first call imports numba and
compiles (or loads from numba's cache) every lazy kernel of the kernel's module, and of the modules
whose kernels those name, replacing each module global by its numba dispatcher, so that kernels
calling other kernels (the `inline="always"` helpers) see dispatchers when numba resolves them.
Callers that imported a `LazyKernel` by name keep it; its call forwards to the dispatcher.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable

_LOCK = threading.RLock()


class LazyKernel:
    """A function to be compiled by `numba.njit(**options)` on first use; called like the kernel."""

    def __init__(self, py_func: Callable, options: dict) -> None:
        self.py_func = py_func
        self.options = options
        self._dispatcher = None
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__
        self.__module__ = py_func.__module__
        self.__wrapped__ = py_func

    @property
    def dispatcher(self):
        """The numba dispatcher (made, with its module's other kernels, on first access)."""
        if self._dispatcher is None:
            with _LOCK:
                if self._dispatcher is None:
                    _materialize(sys.modules[self.py_func.__module__])
                if self._dispatcher is None:  # not a module global (a kernel made in a function)
                    import numba

                    self._dispatcher = numba.njit(**self.options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args):
        return self.dispatcher(*args)

    def __repr__(self) -> str:
        state = "compiled" if self._dispatcher is not None else "not compiled yet"
        return f"<LazyKernel {self.__module__}.{self.__name__} ({state})>"


def njit(**options) -> Callable[[Callable], LazyKernel]:
    """`numba.njit(**options)` as a decorator that defers numba to the kernel's first call."""
    def wrap(fn: Callable) -> LazyKernel:
        return LazyKernel(fn, options)
    return wrap


def _materialize(module) -> None:
    """Give every `LazyKernel` named in `module` its dispatcher and put the dispatcher in its place."""
    import numba

    for name, value in list(vars(module).items()):
        if not isinstance(value, LazyKernel):
            continue
        if value._dispatcher is None:
            value._dispatcher = numba.njit(**value.options)(value.py_func)
            home = sys.modules[value.py_func.__module__]
            if home is not module:  # a kernel imported from another module: that module's kernels too
                _materialize(home)
        setattr(module, name, value._dispatcher)
