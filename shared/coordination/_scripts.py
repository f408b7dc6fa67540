"""Plumbing shared by the coordination modules: reading `.lua` files and encoding arguments."""

from __future__ import annotations

from importlib import resources

_PACKAGE = "shared.coordination"


def load_lua(name: str) -> str:
    """The source of one `.lua` file shipped beside this module (read once, at import)."""
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def clock_arg(now_ms: int | None) -> int | str:
    """`now_ms` as a script argument; an empty string tells the script to use Redis `TIME`."""
    return "" if now_ms is None else int(now_ms)


def to_ms(seconds: float, name: str) -> int:
    """A positive duration in whole milliseconds, or ValueError naming the argument."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"{name} must be at least 1 ms, got {seconds!r} s")
    return ms


def positive(value: int, name: str) -> int:
    """`value` itself when it is a positive integer, else ValueError naming the argument."""
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return value


def text(value: bytes | str) -> str:
    """A reply value as `str`, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
