"""The validated spec as frozen dataclasses: what the network, the checker and reports read."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .activations import Activation
from .errors import Located
from .losses import LOSSES, Loss
from .expr import Expression
from .shapes import Shape


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
    symmetric: bool = False  # a param checked on symmetric matrices: (i, j) and (j, i) move together


@dataclass(frozen=True)
class Ref:
    """A use of a name, a number or an expression in some role: weight, bias, input, argument, target, coef."""

    name: str | None  # None for a number or an expression
    number: float = 0.0
    transposed: bool = False
    place: Place | None = None
    expression: Expression | None = field(default=None, hash=False)  # a computed use: `lam / 2`, `W + I`
    identity: int = 0  # the size of I inside the expression (0: it reads no I)
    params: frozenset = frozenset()  # the params the expression reads (its backward pass: exprgrad.py)

    @property
    def label(self) -> str:
        """How the spec wrote it."""
        if self.expression is not None:
            return " ".join(self.expression.text.split())  # one line, however the YAML scalar was folded
        if self.name is None:
            return f"{self.number:g}"
        return self.name + (".T" if self.transposed else "")

    @property
    def reads(self) -> frozenset:
        """Every name the use reads."""
        if self.expression is not None:
            return frozenset(self.expression.names - {"I"})
        return frozenset() if self.name is None else frozenset((self.name,))

    def env(self, values: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """The values an expression reads, with I when it uses one."""
        return {**values, "I": np.eye(self.identity)} if self.identity else values

    def value(self, values: Mapping[str, np.ndarray]):
        """The referenced array (transposed over the last two axes when written `.T`)."""
        if self.expression is not None:
            return self.expression.evaluate(self.env(values))
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
    expressions: tuple[Expression, ...] = ()  # a custom activation's parsed f and df (to size them)


@dataclass(frozen=True)
class Layer:
    """z = W a (+ b), a = f(z), where a is the layer's input, or the merge of its inputs (merges.py).

    `inputs` name what the layer reads: a layer of its term (by its key), a param or data name, or the
    term's input; the loader fills them in (the layer before, when a spec says nothing), so the walks
    never guess. `merge` (a key of merges.MERGES, or None for one input read as is) combines them.
    """

    index: int  # 1-based within its term
    weight: Ref | None  # None: identity
    bias: Ref | None
    activation: ActivationUse
    in_shape: Shape
    out_shape: Shape
    place: Place
    kind: str = "dense"  # a key of kinds.KINDS
    options: object = None  # kind-specific settings (frozen), e.g. a convolution's geometry
    name: str | None = None  # `name:` in the spec; other layers and `output` read it by this name
    inputs: tuple[Ref, ...] = ()
    merge: str | None = None
    merge_options: object = None  # a slice's (start, stop)

    @property
    def key(self) -> str:
        """How other layers of its term refer to it: its name, or '#k' for an unnamed layer k."""
        return self.name if self.name is not None else f"#{self.index}"
    pre_shape: Shape | None = None  # z's shape where the activation changes it (logdet: z n×n, a 1×1)

    @property
    def z_shape(self) -> Shape:
        """The shape of z, the activation's input."""
        return self.pre_shape or self.out_shape

    @property
    def label(self) -> str:
        """Human name: 'layer 2 (W.T, tanh)', 'layer 1 (conv, K, + c, relu)'."""
        parts = [self.kind] if self.kind != "dense" else []
        if hasattr(self.options, "label_parts"):
            parts.extend(self.options.label_parts)
        else:
            if self.weight or self.merge is None:
                parts.append(self.weight.label if self.weight else "I")
            if self.bias:
                parts.append("+ " + self.bias.label)
        parts.append(self.activation.label)
        if self.merge is not None:
            parts.insert(0, f"{self.merge} {', '.join(r.label for r in self.inputs)}")
        named = f" {self.name}" if self.name is not None else ""
        return f"layer {self.index}{named} ({', '.join(parts)})"

    @property
    def reads(self) -> str:
        """What the layer reads, as explain writes it: 'h', 'add(r, x)', 'slice(g, rows 0:4)'."""
        labels = ", ".join(r.label for r in self.inputs)
        if self.merge is None:
            return labels
        if self.merge == "slice":
            return f"slice({labels}, rows {self.merge_options[0]}:{self.merge_options[1]})"
        return f"{self.merge}({labels})"

    @property
    def image(self) -> tuple[int, ...] | None:
        """The (channels, *spatial) image each output column holds, when the kind tracks one."""
        return getattr(self.options, "out_image", None)


@dataclass(frozen=True)
class Objective:
    """How a term turns its last activation into a number."""

    kind: str  # a key of losses.LOSSES
    target: Ref | None = None
    reduce: str = "sum"
    place: Place | None = None

    @property
    def row(self) -> Loss:
        """The objective's row in the loss table."""
        return LOSSES[self.kind]

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
    input: Ref | None  # None when every layer says what it reads
    layers: tuple[Layer, ...]
    objective: Objective
    coef: Ref | None
    place: Place
    output: int = -1  # the position of the layer the objective reads (`output: name`; the last by default)

    @functools.cached_property
    def chain(self) -> bool:
        """Whether each layer reads the one before it as is (the first the term's input) and the objective the
        last: the v1 shape, which the perturber's chain shortcuts assume."""
        if self.output not in (-1, len(self.layers) - 1):
            return False
        for position, layer in enumerate(self.layers):
            if layer.merge is not None or len(layer.inputs) != 1:
                return False
            ref = layer.inputs[0]
            if position == 0 and ref is not self.input:
                return False
            if position > 0 and (ref.transposed or ref.name != self.layers[position - 1].key):
                return False
        return True

    def read_by(self, position: int) -> int:
        """How many inputs of later layers read the layer at `position` (0 for the last layer of a chain)."""
        key = self.layers[position].key
        return sum(ref.name == key for layer in self.layers[position + 1:] for ref in layer.inputs)

    @functools.cached_property
    def keys(self) -> frozenset[str]:
        """The keys of its layers (what a layer's input may name besides params and data)."""
        return frozenset(layer.key for layer in self.layers)

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every name the term reads (input, target, coef, each layer's refs), worked out once.

        Asked once per param and term: recomputing it walked every layer each time, which made a
        spec of T terms × L layers of small params cost O((T·L)²).
        """
        refs = [self.input, self.objective.target, self.coef] + [r for l in self.layers for r in layer_refs(l)]
        refs += [r for l in self.layers for r in l.inputs]
        return frozenset().union(*(r.reads for r in refs if r is not None))


@dataclass(frozen=True)
class CheckOptions:
    """Tolerances and steps; None means the default."""

    eps: float | None = None
    rtol: float | None = None
    atol: float | None = None
    mode: str | None = None  # "full" | "fast" | "sample:K"
    method: str | None = None  # "central" | "richardson" | "complex-step"


@dataclass(frozen=True)
class SecondFormula:
    """A hand-derived second-order formula: `hessian: {p: ...}` (n×1 p, n×n) or `hvp: {p: ...}` (H·V, p's shape)."""

    section: str  # "hessian" | "hvp"
    name: str  # the param
    expression: Expression
    place: Place


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
    second: tuple[SecondFormula, ...] = ()  # the hessian: and hvp: formulas (gradcheck.second checks them)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Params in declaration order."""
        return tuple(d.name for d in self.decls if d.kind == "param")

    def entry_coordinates(self, param: str, index) -> tuple[tuple[str, int], ...] | None:
        """What a matrix index of `param` means to a layer, e.g. a kernel's (filter, channel, row, column).

        None unless some layer gives the param a structured meaning (only conv kernels do). A kernel
        used by several conv layers with different geometry has no single meaning: None then too.
        """
        found = {layer.options.entry_coordinates(param, index) for layer in self.coordinate_layers} - {None}
        return found.pop() if len(found) == 1 else None

    @functools.cached_property
    def coordinate_layers(self) -> tuple[Layer, ...]:
        """The layers that give entries a structured meaning (conv), found once rather than per param."""
        return tuple(layer for term in self.terms for layer in term.layers
                     if hasattr(layer.options, "entry_coordinates"))

    def is_kernel(self, param: str) -> bool:
        """Whether some conv layer uses `param` as its kernel."""
        return param in self.kernel_names

    @functools.cached_property
    def decl_shapes(self) -> dict[str, tuple[int, int]]:
        """name -> shape of every param and data name (read, never changed)."""
        return {d.name: d.shape for d in self.decls}

    @functools.cached_property
    def memo(self) -> dict:
        """Derived figures worked out once per model (budget's per-param memory); not part of its value."""
        return {}

    @functools.cached_property
    def kernel_names(self) -> frozenset[str]:
        """The params some conv layer uses as its kernel (found once; asked per param)."""
        return frozenset(layer.options.kernel.name for term in self.terms for layer in term.layers
                         if getattr(layer.options, "kernel", None) is not None)

    @functools.cached_property
    def shapes(self) -> dict[str, Shape]:
        """The shape of every declared and defined name."""
        shapes = {d.name: d.shape for d in self.decls}
        for name, expression in self.defines:
            shapes[name] = expression.shape(shapes)
        return shapes

    @functools.cached_property
    def data_defines(self) -> tuple:
        """The defines that read data (and earlier such defines) only, in order: layers may use them."""
        known = {d.name for d in self.decls if d.kind == "data"}
        out = []
        for name, expression in self.defines:
            if expression.names <= known:
                known.add(name)
                out.append((name, expression))
        return tuple(out)

    @functools.cached_property
    def symmetric_params(self) -> frozenset[str]:
        """The params declared `symmetric: true` (checked on symmetric matrices)."""
        return frozenset(d.name for d in self.decls if d.kind == "param" and d.symmetric)

    @functools.cached_property
    def decl_places(self) -> dict[str, tuple]:
        """name -> (where it is declared, where its expect stands or None), found once rather than per param."""
        expects = {n: place for n, _, place in reversed(self.expects)}  # the first expect of a name wins
        return {d.name: (d.place, expects.get(d.name)) for d in reversed(self.decls)}

    def describe_index(self, param: str, index) -> str | None:
        """'filter 1, channel 0, row 2, column 1' for a kernel entry; None for an ordinary matrix."""
        coords = self.entry_coordinates(param, index)
        return None if coords is None else ", ".join(f"{name} {value}" for name, value in coords)


def layer_refs(layer: Layer) -> list[Ref]:
    """Every name a layer reads (weight, bias, activation argument, refs inside kind options)."""
    refs = [layer.weight, layer.bias, layer.activation.argument]
    if layer.options is not None and dataclasses.is_dataclass(layer.options):
        refs += [getattr(layer.options, f.name) for f in dataclasses.fields(layer.options)]
    return [r for r in refs if isinstance(r, Ref) and (r.name is not None or r.params)]
