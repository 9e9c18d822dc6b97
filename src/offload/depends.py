"""Dependency injection for tasks, spelled the way FastAPI users already know.

A task parameter whose default is ``Depends(get_db)`` (or whose annotation is
``Annotated[Db, Depends(get_db)]``) is not an argument: it is left out of the
payload model, never validated, never stored, and the worker calls ``get_db``
for every run. Dependencies may be sync or async functions, or generators whose
code after ``yield`` runs once the job's run is over (success or failure); they
may take a ``JobContext`` and other dependencies themselves, and each is called
once per run however many parameters ask for it (``use_cache=False`` opts out).

Why a default and not only ``Annotated``: ``Task[R, P]`` types ``enqueue`` by
the function's parameters, and a type checker cannot drop a parameter from a
ParamSpec by its annotation. A parameter with a default is one the caller need
not pass, so ``db: Db = Depends(get_db)`` (or, with the annotation,
``db: Annotated[Db, Depends(get_db)] = Depends()``) keeps ``enqueue`` exact.
An ``Annotated`` parameter without a default works at run time too; the type
checker then asks callers for it, which is why the docs show the default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from offload.errors import ConfigurationError
from offload.job import JobContext, JobContextOf


@dataclass(frozen=True, slots=True, eq=False)
class Dependency:
    """What ``Depends(...)`` returns: the callable to run for each job.

    ``dependency`` is ``None`` for ``Depends()`` in the default of an
    ``Annotated[..., Depends(fn)]`` parameter, which then names the callable."""

    dependency: Callable[..., Any] | None = None
    use_cache: bool = True


def Depends(dependency: Callable[..., Any] | None = None, *, use_cache: bool = True) -> Any:
    """Mark a task parameter as resolved by the worker, not passed by the caller.

    Typed ``Any`` so that ``db: Db = Depends(get_db)`` type-checks as FastAPI's does."""
    if dependency is not None and not callable(dependency):
        raise ConfigurationError(f"Depends() takes a callable, not {dependency!r}")
    return Dependency(dependency, use_cache)


@dataclass(frozen=True, slots=True)
class Resolver:
    """How to build one dependency's value: its callable and its own parameters."""

    fn: Callable[..., Any]
    use_cache: bool
    params: Mapping[str, Resolver | None]  # None: the job context


def dependency_params(fn: Callable[..., Any], hints: Mapping[str, Any]) -> dict[str, Resolver]:
    """The parameters of ``fn`` that are dependencies, each with its resolver."""
    found: dict[str, Resolver] = {}
    for param in inspect.signature(fn).parameters.values():
        marker = _marker(param, hints.get(param.name))
        if marker is not None:
            found[param.name] = _resolver(marker, fn, param.name, ())
    return found


def _marker(param: inspect.Parameter, hint: Any) -> Dependency | None:
    """The ``Dependency`` of a parameter: its default, else its ``Annotated`` metadata."""
    from_hint = next((m for m in _annotated_meta(hint) if isinstance(m, Dependency)), None)
    default = param.default if isinstance(param.default, Dependency) else None
    if default is None:
        return from_hint
    if default.dependency is None and from_hint is not None:
        return Dependency(from_hint.dependency, default.use_cache and from_hint.use_cache)
    return default


def _annotated_meta(hint: Any) -> tuple[Any, ...]:
    if get_origin(hint) is Annotated:
        return tuple(get_args(hint)[1:])
    return ()


def _resolver(
    marker: Dependency, owner: Callable[..., Any], name: str, seen: tuple[Callable[..., Any], ...]
) -> Resolver:
    fn = marker.dependency
    if fn is None:
        raise ConfigurationError(
            f"{_label(owner)}: parameter {name!r} has Depends() without a callable; "
            "pass one (Depends(get_db)) or annotate it Annotated[Db, Depends(get_db)]"
        )
    if fn in seen:
        raise ConfigurationError(f"{_label(fn)}: dependencies form a cycle")
    hints = _hints(fn)
    params: dict[str, Resolver | None] = {}
    for param in inspect.signature(fn).parameters.values():
        sub = _marker(param, hints.get(param.name))
        if sub is not None:
            params[param.name] = _resolver(sub, fn, param.name, (*seen, fn))
        elif _is_context_hint(hints.get(param.name)):
            params[param.name] = None
        elif param.default is param.empty:
            raise ConfigurationError(
                f"{_label(fn)}: parameter {param.name!r} is neither a JobContext nor a "
                "dependency (Depends(...)), so the worker cannot supply it"
            )
    return Resolver(fn, marker.use_cache, params)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    if inspect.isclass(fn):
        target = fn.__init__
    try:
        return get_type_hints(target, include_extras=True)
    except (NameError, TypeError):
        return dict(getattr(target, "__annotations__", {}))


def _is_context_hint(hint: Any) -> bool:
    if hint is JobContext or get_origin(hint) is JobContextOf:
        return True
    if isinstance(hint, str):
        return hint.replace(" ", "").startswith("JobContext")
    return any(a is JobContext or get_origin(a) is JobContextOf for a in get_args(hint))


def _label(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))


class Solver:
    """Resolves the dependencies of one run; ``stack`` tears generators down."""

    def __init__(self, ctx: JobContext, stack: AsyncExitStack) -> None:
        self.ctx = ctx
        self.stack = stack
        self.cache: dict[Callable[..., Any], Any] = {}

    async def solve_all(self, resolvers: Mapping[str, Resolver]) -> dict[str, Any]:
        return {name: await self.solve(r) for name, r in resolvers.items()}

    async def solve(self, resolver: Resolver) -> Any:
        if resolver.use_cache and resolver.fn in self.cache:
            return self.cache[resolver.fn]
        kwargs = {
            name: self.ctx if sub is None else await self.solve(sub)
            for name, sub in resolver.params.items()
        }
        value = await self._call(resolver.fn, kwargs)
        if resolver.use_cache:
            self.cache[resolver.fn] = value
        return value

    async def _call(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if inspect.isasyncgenfunction(fn):
            return await self.stack.enter_async_context(asynccontextmanager(fn)(**kwargs))
        if inspect.isgeneratorfunction(fn):
            return self.stack.enter_context(contextmanager(fn)(**kwargs))
        value = fn(**kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value


__all__ = ["Dependency", "Depends", "Resolver", "Solver", "dependency_params"]
