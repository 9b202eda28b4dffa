"""A spec's `check:` section (eps, rtol, atol, mode, method) as CheckOptions, each setting within its range."""

from __future__ import annotations

from .errors import excerpt
from .model import CheckOptions
from .nodes import expect_mapping, number, text
from .options import METHODS, Mode, setting_problem
from .suggest import did_you_mean
from .yamlsrc import Node

CHECK_KEYS = ("eps", "rtol", "atol", "mode", "method")


def setting(node: Node, name: str) -> float:
    """A tolerance or step of check:, within its valid range (options.SETTING_RANGES)."""
    value = number(node, f"check.{name}")
    problem = setting_problem(name, value)
    if problem:
        raise node.error(f"check.{problem}")
    return value


def read_check(node: Node, keys) -> CheckOptions:
    """The check: mapping; `keys(mapping, allowed, where)` records its unknown keys (the loader's collector)."""
    mapping = expect_mapping(node, "check")
    keys(mapping, CHECK_KEYS, "check")
    options = {k: setting(v, k) for k, v in mapping.items() if k in ("eps", "rtol", "atol")}
    if "mode" in mapping:
        try:
            options["mode"] = Mode.parse(text(mapping["mode"], "check.mode"))
        except ValueError as exc:
            raise mapping["mode"].error(str(exc)) from None
    if "method" in mapping:
        method = text(mapping["method"], "check.method")
        if method not in METHODS:
            raise mapping["method"].error(f'no such method: "{excerpt(method)}"{did_you_mean(method, METHODS)}; valid: '
                                          f'{", ".join(METHODS)}')
        options["method"] = method
    return CheckOptions(**options)
