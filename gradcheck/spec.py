"""Load and validate a YAML spec into a Model; every problem is a SpecError at file:line:col."""

from __future__ import annotations

import difflib
import os
import re
import zlib
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from . import expr, network
from .activations import ACTIVATIONS, WITH_ARGUMENT, custom, lookup
from .errors import SpecError
from .expr import Expression, Shape, Where, broadcast, fmt_shape
from .model import (ActivationUse, CheckOptions, Decl, Layer, Model, Objective, Place, Ref, Term)
from .yamlsrc import Node, parse_yaml

MAX_FILE_BYTES = 1_000_000
MAX_ELEMENTS = 1_000_000  # per matrix
MAX_TOTAL_ELEMENTS = 5_000_000
MAX_LAYERS = 256
MAX_TERMS = 64

TOP_KEYS = ("name", "description", "seed", "params", "data", "input", "layers", "objective",
            "terms", "define", "expect", "check")
TERM_KEYS = ("input", "layers", "objective", "coef")
LAYER_KEYS = ("weight", "bias", "activation")
CHECK_KEYS = ("eps", "rtol", "atol")
INIT_OPTIONS = {
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"low": 0.0, "high": 1.0},
    "zeros": {}, "ones": {}, "eye": {}, "onehot": {},
    "binary": {"p": 0.5},
}
LOSSES = ("squared_error", "binary_cross_entropy", "cross_entropy")
RESERVED = {"I", "z"} | set(expr.FUNCTIONS)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ----------------------------------------------------------------------------- public API


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
        model = replace(self.model, seed=seed)
        return Spec(model, draw_values(model))


def load(path: str | os.PathLike) -> Spec:
    """Read, validate and build the spec in `path`."""
    path = os.fspath(path)
    return loads(read(path), path)


def read(path: str) -> str:
    """The text of a spec file, or a SpecError (too large, unreadable, not UTF-8)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise SpecError(f"file is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,}", path)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    return decode(raw, path)


def loads(text: str, path: str = "<string>") -> Spec:
    """Validate and build a spec from YAML text."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"spec text is {len(text):,} characters; the limit is {MAX_FILE_BYTES:,}", path)
    model = build_model(parse_yaml(text, path))
    return Spec(model, draw_values(model))


def decode(raw: bytes, path: str) -> str:
    """UTF-8 text, or a located error naming the first bad byte."""
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise SpecError("file is binary (contains NUL bytes), not a YAML spec", path, line, 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", path, line, col) from None


# ----------------------------------------------------------------------------- values


def draw_values(model: Model) -> dict[str, np.ndarray]:
    """The numbers for every declared name; each name draws from its own seeded stream."""
    return {d.name: make_value(d, model.seed) for d in model.decls}


def make_value(decl: Decl, seed: int) -> np.ndarray:
    """One declared matrix; a name's stream depends only on (seed, name), so adding names keeps others."""
    if decl.literal is not None:
        return np.array(decl.literal, dtype=float).reshape(decl.shape)
    rng = np.random.default_rng([seed, zlib.crc32(decl.name.encode())])
    opt = dict(decl.options)
    rows, cols = decl.shape
    if decl.init == "normal":
        return rng.normal(opt["mean"], opt["std"], size=decl.shape)
    if decl.init == "uniform":
        return rng.uniform(opt["low"], opt["high"], size=decl.shape)
    if decl.init == "zeros":
        return np.zeros(decl.shape)
    if decl.init == "ones":
        return np.ones(decl.shape)
    if decl.init == "eye":
        return np.eye(rows, cols)
    if decl.init == "binary":
        return (rng.random(decl.shape) < opt["p"]).astype(float)
    out = np.zeros(decl.shape)  # onehot: each column a random one-hot vector
    out[rng.integers(0, rows, size=cols), np.arange(cols)] = 1.0
    return out


# ----------------------------------------------------------------------------- validation


def place_of(node: Node) -> Place:
    return Place(node.file, node.line, node.col)


def key_place(node: Node) -> Place:
    return Place(node.file, node.key_line or node.line, node.key_col or node.col)


def expect_mapping(node: Node, what: str) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        raise node.error(f"{what} must be a mapping, not {describe(node.value)}")
    return node.value


def expect_list(node: Node, what: str) -> list[Node]:
    if not isinstance(node.value, list):
        raise node.error(f"{what} must be a list, not {describe(node.value)}")
    return node.value


def describe(value) -> str:
    """A value's kind as users say it."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value[:40]}"'
    return "a list" if isinstance(value, list) else "a mapping"


def check_keys(mapping: dict[str, Node], allowed, where: str) -> None:
    """Refuse unknown keys, suggesting the nearest allowed one."""
    for key, node in mapping.items():
        if key not in allowed:
            hint = difflib.get_close_matches(key, list(allowed), n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else f"; allowed: {', '.join(allowed)}"
            raise node.key_error(f'unknown key "{key}" in {where}{extra}')


def number(node: Node, what: str, positive: bool = False, integer: bool = False) -> float:
    """A finite number (YAML numbers, including `1e-6` that PyYAML leaves as a string)."""
    value = node.value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise node.error(f"{what} must be a number, not {describe(node.value)}")
    if not np.isfinite(value):
        raise node.error(f"{what} must be finite, not {value}")
    if positive and value <= 0:
        raise node.error(f"{what} must be positive, not {value}")
    if integer and float(value) != int(value):
        raise node.error(f"{what} must be a whole number, not {value}")
    return int(value) if integer else float(value)


class _Builder:
    """Validates the located YAML tree section by section into a Model."""

    def __init__(self, root: Node):
        self.root = root
        self.file = root.file
        self.top = expect_mapping(root, "a spec")
        self.shapes: dict[str, Shape] = {}
        self.kinds: dict[str, str] = {}
        self.total = 0

    def build(self) -> Model:
        check_keys(self.top, TOP_KEYS, "the spec")
        decls = self.declarations("params", "param") + self.declarations("data", "data")
        if not any(d.kind == "param" for d in decls):
            where = self.top.get("params") or self.root
            raise where.error("the spec declares no params: list at least one under params:")
        terms = self.terms()
        defines = self.defines()
        expects = self.expects(defines)
        name = self.top.get("name")
        return Model(
            path=self.file,
            name=self.text(name, "name") if name is not None else default_name(self.file),
            description=self.text(self.top["description"], "description") if "description" in self.top else None,
            seed=number(self.top["seed"], "seed", integer=True) if "seed" in self.top else 0,
            decls=tuple(decls),
            terms=tuple(terms),
            defines=tuple(defines),
            expects=tuple(expects),
            check=self.check_options(),
            places={k: key_place(v) for k, v in self.top.items()},
        )

    @staticmethod
    def text(node: Node, what: str) -> str:
        if isinstance(node.value, (dict, list)) or node.value is None:
            raise node.error(f"{what} must be text, not {describe(node.value)}")
        return str(node.value)

    # -- params and data

    def declarations(self, section: str, kind: str) -> list[Decl]:
        if section not in self.top:
            return []
        out = []
        for name, node in expect_mapping(self.top[section], section).items():
            if not _IDENT.match(name):
                raise node.key_error(f'"{name}" is not a valid name (letters, digits and _; not starting with a digit)')
            if name in RESERVED:
                raise node.key_error(f'"{name}" is reserved (I, z and the function names); pick another name')
            if name in self.kinds:
                raise node.key_error(f'"{name}" is declared twice (already under {self.kinds[name]})')
            decl = self.declaration(name, kind, node)
            size = decl.shape[0] * decl.shape[1]
            self.total += size
            if self.total > MAX_TOTAL_ELEMENTS:
                raise node.error(f"the spec's matrices hold {self.total:,} numbers in all; the limit is "
                                 f"{MAX_TOTAL_ELEMENTS:,}")
            self.shapes[name] = decl.shape
            self.kinds[name] = "params" if kind == "param" else "data"
            out.append(decl)
        return out

    def declaration(self, name: str, kind: str, node: Node) -> Decl:
        value = node.value
        place = key_place(node)
        if isinstance(value, list):
            literal, shape = self.literal(node, name)
            return Decl(name, kind, shape, "literal", literal=literal, place=place)
        if isinstance(value, dict):
            return self.initialized(name, kind, node, place)
        v = number(node, f"the value of {name}")
        return Decl(name, kind, (1, 1), "literal", literal=((v,),), place=place)

    def literal(self, node: Node, name: str):
        rows = node.value
        if not rows:
            raise node.error(f"{name} is an empty list")
        if all(isinstance(r.value, list) for r in rows):
            width = len(rows[0].value)
            matrix = []
            for r in rows:
                if len(r.value) != width:
                    raise r.error(f"row of {name} has {len(r.value)} entries; the first row has {width}")
                matrix.append(tuple(number(x, f"an entry of {name}") for x in r.value))
            if width == 0:
                raise node.error(f"{name} has empty rows")
            shape = (len(matrix), width)
        elif any(isinstance(r.value, (list, dict)) for r in rows):
            bad = next(r for r in rows if isinstance(r.value, (list, dict)) or not isinstance(rows[0].value, list))
            raise bad.error(f"{name} mixes numbers and lists: write a list of rows, or a flat list for a column")
        else:
            matrix = [(number(x, f"an entry of {name}"),) for x in rows]
            shape = (len(matrix), 1)
        self.check_size(node, name, shape)
        return tuple(matrix), shape

    def initialized(self, name: str, kind: str, node: Node, place: Place) -> Decl:
        spec = node.value
        init_node = spec.get("init")
        init = "normal" if init_node is None else self.text(init_node, "init")
        if init not in INIT_OPTIONS:
            hint = difflib.get_close_matches(init, list(INIT_OPTIONS), n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            raise init_node.error(f'no such init: "{init}"{extra}; valid: {", ".join(INIT_OPTIONS)}')
        defaults = INIT_OPTIONS[init]
        check_keys(spec, ("shape", "init", *defaults), f'{name} (init "{init}")')
        if "shape" not in spec:
            raise node.error(f"{name} needs a shape: [rows, cols]")
        shape = self.shape(spec["shape"], name)
        options = {k: number(spec[k], f"{k} of {name}") if k in spec else v for k, v in defaults.items()}
        if init == "normal" and options["std"] < 0:
            raise spec["std"].error(f"std of {name} must be >= 0")
        if init == "uniform" and options["low"] > options["high"]:
            raise spec.get("low", node).error(f"low of {name} is above high ({options['low']} > {options['high']})")
        if init == "binary" and not 0 <= options["p"] <= 1:
            raise spec["p"].error(f"p of {name} must lie in [0, 1]")
        return Decl(name, kind, shape, init, tuple(options.items()), place=place)

    def shape(self, node: Node, name: str) -> Shape:
        dims = expect_list(node, f"the shape of {name}")
        if len(dims) != 2:
            raise node.error(f"the shape of {name} must be [rows, cols], got {len(dims)} numbers")
        shape = tuple(number(d, f"a dimension of {name}", integer=True) for d in dims)
        for d, n in zip(dims, shape):
            if n < 1:
                raise d.error(f"dimensions of {name} must be at least 1, not {n}")
        self.check_size(node, name, shape)
        return shape  # type: ignore[return-value]

    @staticmethod
    def check_size(node: Node, name: str, shape) -> None:
        size = shape[0] * shape[1]
        if size > MAX_ELEMENTS:
            raise node.error(f"{name} would hold {size:,} numbers; the limit is {MAX_ELEMENTS:,} per matrix")

    # -- names used in roles

    def ref(self, node: Node, role: str, allow_number: bool = False, allow_transpose: bool = False) -> Ref:
        value = node.value
        if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Ref(None, number(node, role), place=place_of(node))
        if isinstance(value, str) and allow_number:
            try:
                return Ref(None, number(node, role), place=place_of(node))
            except SpecError:
                pass
        if not isinstance(value, str):
            kinds = "a name or a number" if allow_number else "a name"
            raise node.error(f"{role} must be {kinds}, not {describe(value)}")
        text = value.strip()
        transposed = allow_transpose and text.endswith(".T")
        name = text[:-2].strip() if transposed else text
        if name not in self.shapes:
            raise node.error(self.unknown(name, role))
        return Ref(name, transposed=transposed, place=place_of(node))

    def unknown(self, name: str, role: str) -> str:
        hint = difflib.get_close_matches(name, list(self.shapes), n=1)
        extra = f' (did you mean "{hint[0]}"?)' if hint else ""
        declared = ", ".join(self.shapes) or "nothing"
        return f'{role}: undefined name "{name}"{extra}; declared: {declared}'

    def ref_shape(self, ref: Ref) -> Shape:
        if ref.name is None:
            return (1, 1)
        rows, cols = self.shapes[ref.name]
        return (cols, rows) if ref.transposed else (rows, cols)

    # -- terms and layers

    def terms(self) -> list[Term]:
        has_terms = "terms" in self.top
        flat = [k for k in ("input", "layers", "objective") if k in self.top]
        if has_terms and flat:
            raise self.top[flat[0]].key_error(f'"{flat[0]}" cannot stand beside "terms": put it inside a term')
        if has_terms:
            items = expect_list(self.top["terms"], "terms")
            if not items:
                raise self.top["terms"].error("terms is empty")
            if len(items) > MAX_TERMS:
                raise self.top["terms"].error(f"{len(items)} terms; the limit is {MAX_TERMS}")
            out = []
            for i, item in enumerate(items, 1):
                mapping = expect_mapping(item, f"term {i}")
                check_keys(mapping, TERM_KEYS, f"term {i}")
                out.append(self.term(i, mapping, item))
            return out
        if "input" not in self.top:
            raise self.root.error('the spec needs "input" and "layers" (or a list of "terms")')
        return [self.term(1, self.top, self.root, coef_allowed=False)]

    def term(self, index: int, mapping: dict[str, Node], node: Node, coef_allowed: bool = True) -> Term:
        if "input" not in mapping:
            raise node.error(f'term {index} needs an "input"')
        input_ref = self.ref(mapping["input"], "input", allow_transpose=True)
        layers = []
        shape = self.ref_shape(input_ref)
        layer_nodes = expect_list(mapping["layers"], "layers") if "layers" in mapping else []
        if len(layer_nodes) > MAX_LAYERS:
            raise mapping["layers"].error(f"{len(layer_nodes)} layers; the limit is {MAX_LAYERS}")
        for i, layer_node in enumerate(layer_nodes, 1):
            layer = self.layer(i, layer_node, shape)
            layers.append(layer)
            shape = layer.out_shape
        objective = self.objective(mapping.get("objective"), shape, node)
        coef = self.coef(mapping["coef"]) if "coef" in mapping else None
        return Term(index, input_ref, tuple(layers), objective, coef, place_of(node))

    def coef(self, node: Node) -> Ref:
        ref = self.ref(node, "coef", allow_number=True)
        if self.ref_shape(ref) != (1, 1):
            raise node.error(f"coef must be a number or a 1×1 name; {ref.label} has shape "
                             f"{fmt_shape(self.ref_shape(ref))}")
        return ref

    def layer(self, index: int, node: Node, in_shape: Shape) -> Layer:
        mapping = expect_mapping(node, f"layer {index}")
        check_keys(mapping, LAYER_KEYS, f"layer {index}")
        weight = None
        z_shape = in_shape
        if "weight" in mapping and mapping["weight"].value != "I":
            weight = self.ref(mapping["weight"], f"the weight of layer {index}", allow_transpose=True)
            w_shape = self.ref_shape(weight)
            if w_shape[1] != in_shape[0]:
                raise mapping["weight"].error(
                    f"shape mismatch in layer {index}: weight {weight.label} has shape {fmt_shape(w_shape)} "
                    f"but the layer's input has shape {fmt_shape(in_shape)} ({w_shape[1]} columns against "
                    f"{in_shape[0]} rows)")
            z_shape = (w_shape[0], in_shape[1])
        bias = None
        if "bias" in mapping:
            bias = self.ref(mapping["bias"], f"the bias of layer {index}", allow_transpose=True)
            self.require_fits(mapping["bias"], f"bias {bias.label} of layer {index}", self.ref_shape(bias), z_shape)
        activation = self.activation(mapping.get("activation"), index, z_shape)
        return Layer(index, weight, bias, activation, in_shape, z_shape, place_of(node))

    def require_fits(self, node: Node, what: str, shape: Shape, target: Shape) -> None:
        """A bias or argument must broadcast onto z without changing z's shape."""
        if broadcast(shape, target) != target:
            raise node.error(f"shape mismatch: {what} has shape {fmt_shape(shape)}, which does not "
                             f"broadcast onto z of shape {fmt_shape(target)}")

    def activation(self, node: Node | None, index: int, z_shape: Shape) -> ActivationUse:
        if node is None or node.value is None:
            return ActivationUse("identity", ACTIVATIONS["identity"])
        if isinstance(node.value, str):
            return ActivationUse(node.value, lookup(node.value.strip(), node), place=place_of(node))
        mapping = expect_mapping(node, f"the activation of layer {index}")
        if set(mapping) & {"f", "df"}:
            return self.custom_activation(node, mapping, index, z_shape)
        if len(mapping) != 1:
            raise node.error(f"an activation with an argument has one key ({', '.join(WITH_ARGUMENT)}), "
                             f"or is custom with keys f and df")
        (name, arg_node), = mapping.items()
        if name not in WITH_ARGUMENT:
            hint = difflib.get_close_matches(name, [*WITH_ARGUMENT, "f", "df"], n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            takes = "takes no argument" if name in ACTIVATIONS else "is not an activation"
            raise arg_node.key_error(f'"{name}" {takes}{extra}; activations with an argument: '
                                     f'{", ".join(WITH_ARGUMENT)}; custom: {{f: ..., df: ...}}')
        argument = self.ref(arg_node, f"the argument of {name}", allow_number=True, allow_transpose=True)
        self.require_fits(arg_node, f"the argument {argument.label} of {name}", self.ref_shape(argument), z_shape)
        return ActivationUse(f"{{{name}: {argument.label}}}", WITH_ARGUMENT[name], argument, place=place_of(node))

    def custom_activation(self, node: Node, mapping: dict[str, Node], index: int, z_shape: Shape) -> ActivationUse:
        check_keys(mapping, ("f", "df"), f"the custom activation of layer {index}")
        for key in ("f", "df"):
            if key not in mapping:
                raise node.error(f'a custom activation needs both "f" and "df" (missing "{key}")')
        data_names = {n for n, k in self.kinds.items() if k == "data"}
        shapes = {**{n: self.shapes[n] for n in data_names}, "z": z_shape}
        parsed = {}
        for key in ("f", "df"):
            e = self.expression(mapping[key], set(shapes) | set(self.shapes), f"custom {key}")
            params_used = sorted(e.names - data_names - {"z"})
            if params_used:
                raise e.error(f'custom {key} may use z and data names only; "{params_used[0]}" is a param '
                              f"(its gradient through a custom activation is not defined)", params_used[0])
            out = e.shape(shapes)
            if broadcast(out, z_shape) != z_shape:
                raise mapping[key].error(f"custom {key} has shape {fmt_shape(out)}; it must match z {fmt_shape(z_shape)}")
            parsed[key] = e
        return ActivationUse("custom", custom(parsed["f"], parsed["df"]), f_text=parsed["f"].text,
                             df_text=parsed["df"].text, place=place_of(node))

    def objective(self, node: Node | None, shape: Shape, term_node: Node) -> Objective:
        if node is None:
            return Objective("sum")
        if isinstance(node.value, str):
            kind = node.value.strip()
            if kind in ("sum", "mean"):
                return Objective(kind, place=place_of(node))
            if kind in LOSSES:
                raise node.error(f'loss "{kind}" needs a target: {{loss: {kind}, target: <name>}}')
            hint = difflib.get_close_matches(kind, ["sum", "mean", *LOSSES], n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            raise node.error(f'no such objective: "{kind}"{extra}; valid: sum, mean, or {{loss: ..., target: ...}}')
        mapping = expect_mapping(node, "objective")
        check_keys(mapping, ("loss", "target", "reduce"), "objective")
        if "loss" not in mapping:
            raise node.error(f"objective needs a loss: one of {', '.join(LOSSES)}")
        loss = self.text(mapping["loss"], "loss")
        if loss not in LOSSES:
            hint = difflib.get_close_matches(loss, list(LOSSES), n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            raise mapping["loss"].error(f'no such loss: "{loss}"{extra}; valid: {", ".join(LOSSES)}')
        if "target" not in mapping:
            raise node.error(f'loss "{loss}" needs a target: name the matrix of labels')
        target = self.ref(mapping["target"], "target", allow_transpose=True)
        self.require_fits(mapping["target"], f"target {target.label}", self.ref_shape(target), shape)
        reduce = self.text(mapping["reduce"], "reduce") if "reduce" in mapping else "sum"
        if reduce not in ("sum", "mean"):
            raise mapping["reduce"].error(f'reduce must be "sum" or "mean", not "{reduce}"')
        return Objective(loss, target, reduce, place_of(node))

    # -- define, expect, check

    def expression(self, node: Node, known: set[str], what: str) -> Expression:
        return expr.parse(node.value, expression_where(node), known, what)

    def defines(self) -> list[tuple[str, Expression]]:
        if "define" not in self.top:
            return []
        out = []
        for name, node in expect_mapping(self.top["define"], "define").items():
            if not _IDENT.match(name) or name in RESERVED:
                raise node.key_error(f'"{name}" cannot be defined (not a valid name, or reserved)')
            if name in self.shapes:
                raise node.key_error(f'"{name}" is already declared under {self.kinds.get(name, "define")}')
            e = self.expression(node, set(self.shapes), f"define {name}")
            self.shapes[name] = e.shape(self.shapes)
            self.kinds[name] = "define"
            out.append((name, e))
        return out

    def expects(self, defines) -> list:
        if "expect" not in self.top:
            return []
        out = []
        for name, node in expect_mapping(self.top["expect"], "expect").items():
            if self.kinds.get(name) != "params":
                what = f"is {self.kinds[name]}, not a param" if name in self.kinds else "is not a declared param"
                params = [n for n, k in self.kinds.items() if k == "params"]
                hint = difflib.get_close_matches(name, params, n=1)
                extra = f' (did you mean "{hint[0]}"?)' if hint else ""
                raise node.key_error(f'expect: "{name}" {what}{extra}; params: {", ".join(params)}')
            e = self.expression(node, set(self.shapes), f"expect {name}")
            e.shape(self.shapes)  # a wrong shape is reported at check time as a failure of that param
            out.append((name, e, place_of(node)))
        return out

    def check_options(self) -> CheckOptions:
        if "check" not in self.top:
            return CheckOptions()
        mapping = expect_mapping(self.top["check"], "check")
        check_keys(mapping, CHECK_KEYS, "check")
        return CheckOptions(**{k: number(v, f"check.{k}", positive=k != "atol") for k, v in mapping.items()})


def expression_where(node: Node) -> Where:
    """Where an expression's first character stands: after the quote of a quoted scalar."""
    if node.style in ("|", ">"):
        return Where(node.file, node.line + 1, node.col + 2)
    return Where(node.file, node.line, node.col + (1 if node.style in ("'", '"') else 0))


def default_name(path: str) -> str:
    """A spec's name when it gives none: the file name without its extension."""
    base = os.path.basename(path)
    return os.path.splitext(base)[0] or base


def build_model(root: Node) -> Model:
    """Validate a located YAML tree into a Model."""
    return _Builder(root).build()
