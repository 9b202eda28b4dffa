"""`gradcheck validate`: load a spec and check its structure, names, shapes and expressions; no numbers.

Everything `run` would reject before computing anything is rejected here, at the same place with
the same message; in addition an `expect` whose shape differs from its param (which `run` reports as
a failure of that param) is an error here, located at the formula. Nothing is drawn or evaluated.
"""

from __future__ import annotations

import time

from .deadline import SpecTimeout, time_limit, timeout_error
from .errors import SpecError
from .problems import Collector
from .shapes import fmt_shape
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits
from .model import Model
from .results import SpecResult, error_result
from .lint import lint
from .loader import build_model
from .spec import read
from .yamlsrc import parse_yaml


def validate_model(model: Model) -> None:
    """Raise a located SpecError for every `expect` whose shape is not its param's (all of them, in file order)."""
    shapes = {d.name: d.shape for d in model.decls}
    for name, expression in model.defines:
        shapes[name] = expression.shape(shapes)
    found = Collector()
    for name, expression, place in model.expects:
        got, want = expression.shape(shapes), shapes[name]
        with found.isolated():
            if got != want:
                raise place.error(f"expect for {name} has shape {fmt_shape(got)} but {name} has shape {fmt_shape(want)}")
    found.raise_any()


def validate_path(path: str, limits: Limits | None = None, strict: bool = False) -> SpecResult:
    """The validation verdict on one file: status "pass" or "error" (with the located message)."""
    started = time.perf_counter()
    seconds = (limits or DEFAULT_LIMITS).timeout
    try:
        with time_limit(seconds):
            model = build_model(parse_yaml(read(path, limits), path), limits)
            validate_model(model)
    except SpecTimeout:
        result = error_result(path, timeout_error(path, seconds))
    except SpecError as exc:
        result = error_result(path, exc)
    else:
        result = SpecResult(path=path, name=model.name, status="pass").with_problems(lint(model), strict, "error")
    return result.timed(started)
