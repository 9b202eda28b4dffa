"""What a linter would flag in a valid spec: warnings (a `--strict` run fails on them) and notes (info).

- warning: a param J does not read (its gradient is identically zero: a `layers` entry forgotten?);
- warning: a define that no expect and no later define uses;
- warning: a param whose backprop gradient is zero at every entry (found by the check, `zero_gradients`);
- info: a param with no `expect` formula (only backprop is checked; fine for layers the expression
  language cannot write).
"""

from __future__ import annotations

import numpy as np

from .model import Model
from .problems import Problem


def lint(model: Model) -> tuple[Problem, ...]:
    """The warnings and notes of a loaded spec, in file order."""
    found = []
    read = frozenset().union(*(term.names for term in model.terms))
    expected = {name for name, _, _ in model.expects}
    for name in model.param_names:
        place = model.decl_places[name][0]
        if place is None:
            continue
        if name not in read:
            found.append(_at(place, f"param {name} is not used by any term: J does not depend on it, so its "
                                    f"gradient is zero (is a layer or a term missing?)", "warning"))
        elif name not in expected:
            found.append(_at(place, f"param {name} has no expect formula: only backprop is checked", "info"))
    used = set()
    for _, expression in model.defines:
        used |= expression.names
    for _, expression, _ in model.expects:
        used |= expression.names
    for name, expression in model.defines:
        if name not in used:
            where = expression.error("")
            found.append(Problem(f"define {name} is not used by any expect or later define", where.file,
                                 where.line, where.col, "warning"))
    return tuple(sorted(found, key=lambda p: (p.line, p.col)))


def zero_gradients(model: Model, grads) -> tuple[Problem, ...]:
    """A warning for each param J reads whose gradient is exactly zero at every entry, at these values."""
    read = frozenset().union(*(term.names for term in model.terms))
    found = []
    for name in model.param_names:
        place = model.decl_places[name][0]
        if name in read and place is not None and not np.any(grads[name]):
            found.append(_at(place, f"the gradient of {name} is zero at every entry: J does not change with {name} "
                                    f"here, so the check cannot tell a right formula from a wrong one", "warning"))
    return tuple(found)


def _at(place, message: str, severity: str) -> Problem:
    return Problem(message, place.file, place.line, place.col, severity)
