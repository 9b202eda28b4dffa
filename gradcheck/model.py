"""The validated spec as frozen dataclasses: what the network, the checker and reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .activations import Activation
from .errors import Located
from .expr import Expression, Shape


@dataclass(frozen=True)
class Place(Located):
    """A location in a spec file; `error(msg)` makes a SpecError there."""

    file: str
    line: int
    col: int


@dataclass(frozen=True)
class Decl:
    """A declared matrix under `params` or `data`, and how to make its numbers."""

    name: str
    kind: str  # "param" | "data"
    shape: Shape
    init: str  # "literal", "normal", "uniform", ...
    options: tuple[tuple[str, float], ...] = ()
    literal: tuple[tuple[float, ...], ...] | None = None
    place: Place | None = None


@dataclass(frozen=True)
class Ref:
    """A use of a name (or a number) in some role: weight, bias, input, argument, target, coef."""

    name: str | None  # None for a number
    number: float = 0.0
    transposed: bool = False
    place: Place | None = None

    @property
    def label(self) -> str:
        """How the spec wrote it."""
        if self.name is None:
            return f"{self.number:g}"
        return self.name + (".T" if self.transposed else "")

    def value(self, values: Mapping[str, np.ndarray]):
        """The referenced array (transposed over the last two axes when written `.T`)."""
        if self.name is None:
            return self.number
        v = values[self.name]
        return np.swapaxes(v, -1, -2) if self.transposed else v


@dataclass(frozen=True)
class ActivationUse:
    """An activation in a layer: the table row plus its argument, if any."""

    label: str  # as written: "tanh", "{sub: x}", "custom"
    row: Activation
    argument: Ref | None = None
    f_text: str | None = None  # custom activations keep their source for reports
    df_text: str | None = None
    place: Place | None = None


@dataclass(frozen=True)
class Layer:
    """z = W a (+ b), a = f(z)."""

    index: int  # 1-based within its term
    weight: Ref | None  # None: identity
    bias: Ref | None
    activation: ActivationUse
    in_shape: Shape
    out_shape: Shape
    place: Place
    kind: str = "dense"  # a key of network.LAYER_KINDS
    options: object = None  # kind-specific settings (frozen), e.g. a convolution's geometry

    @property
    def label(self) -> str:
        """Human name: 'layer 2 (W.T, tanh)'."""
        parts = [self.kind] if self.kind != "dense" else []
        parts.append(self.weight.label if self.weight else "I")
        if self.bias:
            parts.append("+ " + self.bias.label)
        parts.append(self.activation.label)
        return f"layer {self.index} ({', '.join(parts)})"


@dataclass(frozen=True)
class Objective:
    """How a term turns its last activation into a number."""

    kind: str  # "sum" | "mean" | "squared_error" | "binary_cross_entropy" | "cross_entropy"
    target: Ref | None = None
    reduce: str = "sum"
    place: Place | None = None

    @property
    def label(self) -> str:
        """Human name: 'cross_entropy(Y), mean'."""
        if self.target is None:
            return self.kind
        return f"{self.kind}({self.target.label}), {self.reduce}"


@dataclass(frozen=True)
class Term:
    """One network: J_term = objective(layers(input)), weighted by coef."""

    index: int
    input: Ref
    layers: tuple[Layer, ...]
    objective: Objective
    coef: Ref | None
    place: Place


@dataclass(frozen=True)
class CheckOptions:
    """Tolerances and steps; None means the default."""

    eps: float | None = None
    rtol: float | None = None
    atol: float | None = None
    mode: str | None = None  # "full" | "fast" | "sample:K"
    method: str | None = None  # "central" | "richardson" | "complex-step"


@dataclass(frozen=True)
class Model:
    """Everything a spec says, validated, without the numbers."""

    path: str
    name: str
    description: str | None
    seed: int
    decls: tuple[Decl, ...]
    terms: tuple[Term, ...]
    defines: tuple[tuple[str, Expression], ...]
    expects: tuple[tuple[str, Expression, Place], ...]
    check: CheckOptions = field(default_factory=CheckOptions)
    places: Mapping[str, Place] = field(default_factory=dict)  # where each top-level key stood

    @property
    def param_names(self) -> tuple[str, ...]:
        """Params in declaration order."""
        return tuple(d.name for d in self.decls if d.kind == "param")
