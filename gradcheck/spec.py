"""A loaded spec, and how to load one: read the file safely, validate it into a Model, draw its values."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from . import network
from .errors import SpecError
from .kinds.dropout import redraw_masks
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits, count, hint
from .loader import build_model
from .model import Model
from .source import decode, read_bytes
from .values import draw_values
from .yamlsrc import parse_yaml


@dataclass(frozen=True)
class Spec:
    """A loaded spec: the validated model and the numbers drawn for it."""

    model: Model
    values: Mapping[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def path(self) -> str:
        return self.model.path

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.model.param_names

    def with_values(self, values: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """This spec's values, with any given ones put in their place."""
        merged = dict(self.values)
        if values:
            for name, v in values.items():
                if name not in merged:
                    raise KeyError(f"{name!r} is not a param or data name of this spec")
                merged[name] = np.asarray(v, dtype=float)
            for name, expression in self.model.data_defines:  # computed from the data given, unless given itself
                if name not in values:
                    merged[name] = expression.evaluate(merged)
        return merged

    def objective(self, values: Mapping[str, np.ndarray] | None = None) -> float:
        """J at the spec's values (or at the given ones)."""
        with np.errstate(all="ignore"):
            return float(network.objective(self.model, self.with_values(values)))

    def gradient(self, values: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """∂J/∂p for every param, by backpropagation."""
        with np.errstate(all="ignore"):
            return network.gradient(self.model, self.with_values(values), check_finite=False)

    def reseeded(self, seed: int) -> "Spec":
        """The same spec with its random values drawn from another seed."""
        model = redraw_masks(replace(self.model, seed=seed))
        return Spec(model, draw_values(model))


def load(path: str | os.PathLike, limits: Limits | None = None) -> Spec:
    """Read, validate and build the spec in `path`."""
    limits = limits or DEFAULT_LIMITS
    path = os.fspath(path)
    return loads(read(path, limits), path, limits)


def read(path: str, limits: Limits | None = None) -> str:
    """The text of a spec file, or a SpecError (too large, unreadable, not a regular file, not UTF-8)."""
    return decode(read_bytes(path, (limits or DEFAULT_LIMITS).file_size), path)


def loads(text: str, path: str = "<string>", limits: Limits | None = None) -> Spec:
    """Validate and build a spec from YAML text."""
    limits = limits or DEFAULT_LIMITS
    if len(text) > limits.file_size:
        raise SpecError(f"spec text is {count(len(text))} characters; the limit is {count(limits.file_size)} "
                        f"({hint('file_size')})", path)
    model = build_model(parse_yaml(text, path), limits)
    return Spec(model, draw_values(model))
