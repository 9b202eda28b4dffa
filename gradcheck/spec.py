"""Load and validate a YAML spec into a Model; every problem is a SpecError at file:line:col."""

from __future__ import annotations

import codecs
import difflib
import math
import os
import re
import stat
import zlib
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from . import budget, expr, network
from .activations import ACTIVATIONS, WITH_ARGUMENT, custom, lookup
from .errors import SpecError
from .expr import Expression, Shape, Where, broadcast, fmt_shape
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits, count, hint
from .model import (ActivationUse, CheckOptions, ConvOptions, Decl, Layer, Model, Objective, Place, PoolOptions,
                    RecurrentOptions, Ref, Term, fmt_image)
from .options import Mode
from .yamlsrc import Node, parse_yaml

# The default figures (gradcheck.limits.Limits holds them, with the options that raise them).
MAX_FILE_BYTES = DEFAULT_LIMITS.file_size
MAX_ELEMENTS = DEFAULT_LIMITS.elements  # per matrix
MAX_TOTAL_ELEMENTS = DEFAULT_LIMITS.total_elements
MAX_LAYERS = DEFAULT_LIMITS.layers
MAX_TERMS = DEFAULT_LIMITS.terms
MAX_UNFOLDED = DEFAULT_LIMITS.unfolded  # numbers a structured layer may hold for one evaluation (im2col, outputs)
MAX_STEPS = DEFAULT_LIMITS.recurrent_steps  # a recurrent layer unrolls into this many steps at most
MAX_SEED = 2**128

TOP_KEYS = ("name", "description", "seed", "params", "data", "input", "layers", "objective",
            "terms", "define", "expect", "check")
TERM_KEYS = ("input", "layers", "objective", "coef")
LAYER_KEYS = ("weight", "bias", "activation", "conv", "maxpool", "recurrent")
STRUCTURED = ("conv", "maxpool", "recurrent")  # layer kinds named by their key
CONV_KEYS = ("kernel", "image", "size", "stride", "padding")
POOL_KEYS = ("size", "stride", "image")
RECURRENT_KEYS = ("hidden_weight", "input_weight", "bias", "steps", "activation", "init", "output")
CHECK_KEYS = ("eps", "rtol", "atol", "mode", "method")
METHODS = ("central", "richardson", "complex-step")
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


def read_bytes(path: str, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`; anything else is a SpecError at file:1:1.

    Opened non-blocking and checked on the open descriptor, so a FIFO or device named *.yaml can
    neither hang the run nor be swapped in after the check.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.isdir(path):  # a folder named *.yaml, or one os.walk could not list
            raise SpecError(_folder_problem(path), path) from None
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(_folder_problem(path), path)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"not a regular file ({_file_kind(info.st_mode)}); specs are read from regular "
                            f"files only", path)
        if info.st_size > max_bytes:
            raise SpecError(f"file is {count(info.st_size)} bytes; the limit is {count(max_bytes)} "
                            f"({hint('file_size')})", path)
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew after the size check
            raise SpecError(f"file is over {count(max_bytes)} bytes, the limit ({hint('file_size')})", path)
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path) from None
    finally:
        os.close(fd)


def _folder_problem(path: str) -> str:
    """Why a folder given as a spec could not be read (os.walk skips folders it cannot list)."""
    try:
        os.listdir(path)
    except OSError as exc:
        return f"cannot read folder: {exc.strerror or exc}"
    return "is a folder, not a spec file"


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def decode(raw: bytes, path: str) -> str:
    """UTF-8 text, or a located error naming the first bad byte."""
    for bom, name in _WIDE_BOMS:
        if raw.startswith(bom):
            raise SpecError(f"file is {name} encoded; specs must be UTF-8 (save it as UTF-8)", path, 1, 1)
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
    values = {}
    for decl in model.decls:
        try:
            with np.errstate(all="ignore"):
                value = make_value(decl, model.seed)
        except (OverflowError, ValueError) as exc:  # e.g. uniform over a range wider than a float
            raise _decl_error(decl, model, f"cannot draw {decl.name} ({decl.init}): {exc}") from None
        if not np.all(np.isfinite(value)):
            options = ", ".join(f"{k} {v:g}" for k, v in decl.options)
            raise _decl_error(decl, model, f"drawing {decl.name} ({decl.init}{': ' + options if options else ''}) "
                                           f"gives values that are not finite; use a smaller scale")
        values[decl.name] = value
    return values


def _decl_error(decl: Decl, model: Model, message: str) -> SpecError:
    if decl.place is None:
        return SpecError(message, model.path, 1, 1)
    return decl.place.error(message)


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
    if not positive and not integer:  # the common case, first: a literal matrix can hold 300,000 entries
        if type(value) is float and math.isfinite(value):
            return value
        if type(value) is int and -2**53 <= value <= 2**53:
            return float(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise node.error(f"{what} must be a number, not {describe(node.value)}")
    if isinstance(value, int) and not integer:
        try:
            value = float(value)
        except OverflowError:
            raise node.error(f"{what} is too large (a number of {len(str(abs(value)))} digits)") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise node.error(f"{what} must be finite, not {value}")
    if integer and isinstance(value, float):
        if value != int(value):
            raise node.error(f"{what} must be a whole number, not {value}")
        value = int(value)
    if positive and value <= 0:
        raise node.error(f"{what} must be positive, not {value}")
    return value if integer else float(value)


class _Builder:
    """Validates the located YAML tree section by section into a Model."""

    def __init__(self, root: Node, limits: Limits | None = None):
        self.limits = limits or DEFAULT_LIMITS
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
        model = Model(
            path=self.file,
            name=self.text(name, "name") if name is not None else default_name(self.file),
            description=self.text(self.top["description"], "description") if "description" in self.top else None,
            seed=self.seed() if "seed" in self.top else 0,
            decls=tuple(decls),
            terms=tuple(terms),
            defines=tuple(defines),
            expects=tuple(expects),
            check=self.check_options(),
            places={k: key_place(v) for k, v in self.top.items()},
        )
        budget.require(model, self.limits)
        return model

    def seed(self) -> int:
        node = self.top["seed"]
        value = number(node, "seed", integer=True)
        if not 0 <= value < MAX_SEED:
            raise node.error(f"seed must be a whole number from 0 to 2**128 - 1, not {count(value)}")
        return value

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
            if self.total > self.limits.total_elements:
                raise node.error(f"the spec's matrices would hold {count(self.total)} numbers in all; the limit "
                                 f"is {count(self.limits.total_elements)} ({hint('total_elements')})")
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

    def check_size(self, node, name: str, shape) -> None:
        size = shape[0] * shape[1]
        if size > self.limits.elements:
            raise node.error(f"{name} would hold {count(size)} numbers; the limit is {count(self.limits.elements)} "
                             f"per matrix ({hint('elements')})")

    def sized_shape(self, e: Expression, shapes, what: str) -> Shape:
        """An expression's shape, refusing any intermediate over the per-matrix limit (before evaluating)."""
        found = e.node_shapes(shapes)
        for node, shape in found:
            size = shape[0] * shape[1]
            if size > self.limits.elements:
                raise e.at(node, f"{what}: this part would hold {count(size)} numbers, shape {fmt_shape(shape)}; "
                                 f"the limit is {count(self.limits.elements)} per matrix ({hint('elements')})")
        return found[-1][1]

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
            if len(items) > self.limits.terms:
                raise self.top["terms"].error(f"{count(len(items))} terms; the limit is {count(self.limits.terms)} "
                                              f"({hint('terms')})")
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
        image = None  # the (C, *spatial) image each column holds, while a conv/maxpool's output flows
        layer_nodes = expect_list(mapping["layers"], "layers") if "layers" in mapping else []
        if len(layer_nodes) > self.limits.layers:
            raise mapping["layers"].error(f"{count(len(layer_nodes))} layers; the limit is "
                                          f"{count(self.limits.layers)} per term ({hint('layers')})")
        for i, layer_node in enumerate(layer_nodes, 1):
            layer = self.layer(i, layer_node, shape, image, layers[-1] if layers else None)
            self.check_size(layer_node, f"the output of layer {i}, shape {fmt_shape(layer.out_shape)},",
                            layer.out_shape)
            layers.append(layer)
            shape = layer.out_shape
            image = layer.image if layer.kind != "dense" else (image if layer.weight is None else None)
        objective = self.objective(mapping.get("objective"), shape, node)
        coef = self.coef(mapping["coef"]) if "coef" in mapping else None
        return Term(index, input_ref, tuple(layers), objective, coef, place_of(node))

    def coef(self, node: Node) -> Ref:
        ref = self.ref(node, "coef", allow_number=True)
        if self.ref_shape(ref) != (1, 1):
            raise node.error(f"coef must be a number or a 1×1 name; {ref.label} has shape "
                             f"{fmt_shape(self.ref_shape(ref))}")
        return ref

    def layer(self, index: int, node: Node, in_shape: Shape, image=None, before: Layer | None = None) -> Layer:
        mapping = expect_mapping(node, f"layer {index}")
        check_keys(mapping, LAYER_KEYS, f"layer {index}")
        kinds = [k for k in ("weight", *STRUCTURED) if k in mapping]
        if len(kinds) > 1:
            raise mapping[kinds[1]].key_error(
                f'layer {index} has both "{kinds[0]}" and "{kinds[1]}": a layer is one of weight (dense), '
                f'{", ".join(STRUCTURED)}')
        if kinds and kinds[0] in STRUCTURED:
            build = {"conv": self.conv_layer, "maxpool": self.pool_layer, "recurrent": self.recurrent_layer}
            return build[kinds[0]](index, node, mapping, in_shape, _Upstream(image, before))
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

    # -- structured layers: conv, maxpool, recurrent

    def conv_layer(self, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, up: "_Upstream") -> Layer:
        spec_node = mapping["conv"]
        conv = expect_mapping(spec_node, f"conv of layer {index}")
        check_keys(conv, CONV_KEYS, f"conv of layer {index}")
        for key in ("kernel", "size"):
            if key not in conv:
                raise spec_node.error(f'conv of layer {index} needs "{key}"')
        image = self.layer_image(index, "conv", conv.get("image"), spec_node, in_shape, up)
        dims = len(image) - 1
        size = self.int_or_list(conv["size"], f"conv size of layer {index}", dims, None, minimum=1)
        stride = self.int_or_list(conv.get("stride"), f"conv stride of layer {index}", dims, 1, minimum=1)
        padding = self.int_or_list(conv.get("padding"), f"conv padding of layer {index}", dims, 0, minimum=0)
        for n, p, k in zip(image[1:], padding, size):
            if k > n + 2 * p:
                raise conv["size"].error(
                    f"conv size {fmt_image(size)} of layer {index} does not fit the image {fmt_image(image)}"
                    f" padded by {fmt_image(padding)}")
        kernel = self.conv_kernel(conv["kernel"], index, image, size)
        filters = self.ref_shape(kernel)[0]
        bias = self.conv_bias(mapping["bias"], index, filters) if "bias" in mapping else None
        options = ConvOptions(kernel, bias, image, size, stride, padding, filters)
        out_shape = (int(np.prod(options.out_image)), in_shape[1])
        taps = image[0] * int(np.prod(size))
        self.check_work(spec_node, f"the convolution of layer {index} unfolds into",
                        taps * int(np.prod(options.out_spatial)) * in_shape[1], "numbers (im2col)")
        self.check_work(spec_node, f"the convolution of layer {index} outputs", out_shape[0] * out_shape[1], "numbers")
        activation = self.activation(mapping.get("activation"), index, out_shape)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "conv", options)

    def pool_layer(self, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, up: "_Upstream") -> Layer:
        spec_node = mapping["maxpool"]
        if "bias" in mapping:
            raise mapping["bias"].key_error(f"layer {index} (maxpool) takes no bias")
        pool = expect_mapping(spec_node, f"maxpool of layer {index}")
        check_keys(pool, POOL_KEYS, f"maxpool of layer {index}")
        if "size" not in pool:
            raise spec_node.error(f'maxpool of layer {index} needs "size", e.g. {{size: [2, 2]}}')
        image = self.layer_image(index, "maxpool", pool.get("image"), spec_node, in_shape, up)
        dims = len(image) - 1
        size = self.int_or_list(pool["size"], f"maxpool size of layer {index}", dims, None, minimum=1)
        stride = self.int_or_list(pool.get("stride"), f"maxpool stride of layer {index}", dims, size, minimum=1)
        for n, k in zip(image[1:], size):
            if k > n:
                raise pool["size"].error(f"maxpool size {fmt_image(size)} of layer {index} does not fit the image "
                                         f"{fmt_image(image)}")
        options = PoolOptions(image, size, stride)
        out_shape = (int(np.prod(options.out_image)), in_shape[1])
        activation = self.activation(mapping.get("activation"), index, out_shape)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "maxpool", options)

    def recurrent_layer(self, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        spec_node = mapping["recurrent"]
        for key in ("bias", "activation"):
            if key in mapping:
                raise mapping[key].key_error(f'in a recurrent layer "{key}" goes inside recurrent: {{...}} '
                                             f"(layer {index})")
        rec = expect_mapping(spec_node, f"recurrent of layer {index}")
        check_keys(rec, RECURRENT_KEYS, f"recurrent of layer {index}")
        for key in ("hidden_weight", "input_weight", "steps"):
            if key not in rec:
                raise spec_node.error(f'recurrent of layer {index} needs "{key}"')
        wh, wx = self.recurrent_weights(rec, index)
        wh_shape, wx_shape = self.ref_shape(wh), self.ref_shape(wx)
        steps = self.recurrent_steps(rec["steps"], index, wx, in_shape)
        hidden_shape = (wh_shape[0], in_shape[1])
        bias = self.fitting_ref(rec.get("bias"), "bias", index, hidden_shape)
        init = self.fitting_ref(rec.get("init"), "init", index, hidden_shape)
        output = self.text(rec["output"], "output") if "output" in rec else "last"
        if output not in ("last", "all"):
            raise rec["output"].error(f'output must be "last" (h_T) or "all" (h_1..h_T stacked), not "{output}"')
        activation_node = rec.get("activation")
        if activation_node is None:
            activation = ActivationUse("tanh", ACTIVATIONS["tanh"])
        else:
            activation = self.activation(activation_node, index, hidden_shape)
        options = RecurrentOptions(wh, wx, bias, init, steps, wh_shape[0], wx_shape[1], output)
        rows = wh_shape[0] * (steps if output == "all" else 1)
        self.check_work(spec_node, f"the recurrent layer {index} holds", 2 * steps * hidden_shape[0] * in_shape[1],
                        "numbers (z and h of every step)")
        return Layer(index, None, None, activation, in_shape, (rows, in_shape[1]), place_of(node), "recurrent",
                     options)

    def recurrent_weights(self, rec: dict[str, Node], index: int) -> tuple[Ref, Ref]:
        """Wh, square (n, n), and Wx, (n, d)."""
        wh = self.ref(rec["hidden_weight"], f"the hidden_weight of layer {index}", allow_transpose=True)
        wx = self.ref(rec["input_weight"], f"the input_weight of layer {index}", allow_transpose=True)
        wh_shape, wx_shape = self.ref_shape(wh), self.ref_shape(wx)
        if wh_shape[0] != wh_shape[1]:
            raise rec["hidden_weight"].error(f"shape mismatch in layer {index}: hidden_weight {wh.label} has shape "
                                             f"{fmt_shape(wh_shape)}; it must be square (hidden, hidden)")
        if wx_shape[0] != wh_shape[0]:
            raise rec["input_weight"].error(
                f"shape mismatch in layer {index}: input_weight {wx.label} has shape {fmt_shape(wx_shape)} but "
                f"hidden_weight {wh.label} has shape {fmt_shape(wh_shape)} ({wx_shape[0]} rows against "
                f"{wh_shape[0]})")
        return wh, wx

    def recurrent_steps(self, node: Node, index: int, wx: Ref, in_shape: Shape) -> int:
        """T, such that T blocks of d rows (d the columns of Wx) make the layer's input."""
        steps = number(node, f"steps of layer {index}", positive=True, integer=True)
        if steps > self.limits.recurrent_steps:
            raise node.error(f"{count(steps)} steps in layer {index}; the limit is {count(self.limits.recurrent_steps)} "
                             f"({hint('recurrent_steps')})")
        wx_shape = self.ref_shape(wx)
        if steps * wx_shape[1] != in_shape[0]:
            raise node.error(
                f"shape mismatch in layer {index}: {steps} steps of input_weight {wx.label} {fmt_shape(wx_shape)} "
                f"read {steps}·{wx_shape[1]} = {steps * wx_shape[1]} rows, but the layer's input has shape "
                f"{fmt_shape(in_shape)}")
        return steps

    def fitting_ref(self, node: Node | None, role: str, index: int, target: Shape) -> Ref | None:
        """An optional name that must broadcast onto `target` (a recurrent bias or h_0)."""
        if node is None:
            return None
        ref = self.ref(node, f"the {role} of layer {index}", allow_transpose=True)
        self.require_fits(node, f"{role} {ref.label} of layer {index}", self.ref_shape(ref), target)
        return ref

    def check_work(self, node: Node, what: str, amount: int, unit: str) -> None:
        """Refuse a layer whose one evaluation would hold too many numbers, before numpy runs out of memory."""
        if amount > self.limits.unfolded:
            raise node.error(f"{what} {count(amount)} {unit}; the limit is {count(self.limits.unfolded)} "
                             f"({hint('unfolded')})")

    def layer_image(self, index: int, kind: str, node: Node | None, spec_node: Node, in_shape: Shape,
                    up: "_Upstream") -> tuple[int, ...]:
        """The image of a conv/maxpool input: as written, or from the layer before; both must agree."""
        if node is None:
            if up.image is None:
                raise spec_node.error(
                    f"{kind} of layer {index} needs image: [C, H, W] (or [C, L]): the layer before it "
                    f"({up.label}) does not output images")
            return up.image
        dims = expect_list(node, f"the image of layer {index}")
        if len(dims) not in (2, 3):
            raise node.error(f"image of layer {index} must be [C, H, W] or, for signals, [C, L]; got {len(dims)} "
                             f"numbers")
        image = tuple(number(d, f"an image dimension of layer {index}", positive=True, integer=True) for d in dims)
        if up.image is not None and up.image != image:
            raise node.error(f"shape mismatch in layer {index}: {kind} image {fmt_image(image)} but {up.label} "
                             f"outputs images {fmt_image(up.image)}")
        if int(np.prod(image)) != in_shape[0]:
            raise node.error(
                f"shape mismatch in layer {index}: {kind} image {fmt_image(image)} holds "
                f"{'·'.join(map(str, image))} = {int(np.prod(image))} numbers per column but the layer's input "
                f"has shape {fmt_shape(in_shape)} ({in_shape[0]} rows)")
        return image

    def conv_kernel(self, node: Node, index: int, image: tuple[int, ...], size: tuple[int, ...]) -> Ref:
        """The kernel name: (filters, C·kh·kw), one flattened C×kh×kw block per filter."""
        if isinstance(node.value, str) and node.value.strip().endswith(".T"):
            raise node.error(f"the kernel of layer {index} must be a name of shape (filters, C·kh·kw); "
                             f"a transposed kernel is not supported")
        kernel = self.ref(node, f"the kernel of layer {index}")
        k_shape, taps = self.ref_shape(kernel), image[0] * int(np.prod(size))
        if k_shape[1] != taps:
            raise node.error(
                f"shape mismatch in layer {index}: kernel {kernel.label} has shape {fmt_shape(k_shape)} but image "
                f"{fmt_image(image)} with size {fmt_image(size)} needs (filters, {taps}) "
                f"({'C·k' if len(size) == 1 else 'C·kh·kw'} = {image[0]}·{'·'.join(map(str, size))})")
        return kernel

    def conv_bias(self, node: Node, index: int, filters: int) -> Ref:
        """One bias per filter, (filters, 1), shared over every position."""
        bias = self.ref(node, f"the bias of layer {index}", allow_transpose=True)
        if self.ref_shape(bias) != (filters, 1):
            raise node.error(
                f"shape mismatch in layer {index}: conv bias {bias.label} has shape "
                f"{fmt_shape(self.ref_shape(bias))}; it must be (filters, 1) = ({filters}, 1), "
                f"one number per filter shared over positions")
        return bias

    def int_list(self, node: Node, what: str, dims: int, minimum: int) -> tuple[int, ...]:
        """[kh, kw] for a 2-D image, [k] for a 1-D one."""
        items = expect_list(node, what)
        if len(items) != dims:
            want = "[kh, kw] for a [C, H, W] image" if dims == 2 else "[k] for a [C, L] signal"
            raise node.error(f"{what} must be {want}, got {len(items)} number{'s' * (len(items) != 1)}")
        out = tuple(number(d, what, integer=True) for d in items)
        for d, n in zip(items, out):
            if n < minimum:
                raise d.error(f"{what} must be at least {minimum}, not {n}")
        return out

    def int_or_list(self, node: Node | None, what: str, dims: int, default, minimum: int) -> tuple[int, ...]:
        """A number used along every spatial axis, or one per axis."""
        if node is None:
            return tuple(default) if isinstance(default, tuple) else (default,) * dims
        if isinstance(node.value, list):
            return self.int_list(node, what, dims, minimum)
        value = number(node, what, integer=True)
        if value < minimum:
            raise node.error(f"{what} must be at least {minimum}, not {value}")
        return (value,) * dims

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
            out = self.sized_shape(e, shapes, f"custom {key}")
            if broadcast(out, z_shape) != z_shape:
                raise mapping[key].error(f"custom {key} has shape {fmt_shape(out)}; it must match z {fmt_shape(z_shape)}")
            parsed[key] = e
        return ActivationUse("custom", custom(parsed["f"], parsed["df"]), f_text=parsed["f"].text,
                             df_text=parsed["df"].text, place=place_of(node),
                             expressions=(parsed["f"], parsed["df"]))

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
        return expr.parse(node.value, expression_where(node), known, what, self.limits)

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
            self.shapes[name] = self.sized_shape(e, self.shapes, f"define {name}")
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
            self.sized_shape(e, self.shapes, f"expect {name}")  # a wrong shape fails the param at check time
            out.append((name, e, place_of(node)))
        return out

    def check_options(self) -> CheckOptions:
        if "check" not in self.top:
            return CheckOptions()
        mapping = expect_mapping(self.top["check"], "check")
        check_keys(mapping, CHECK_KEYS, "check")
        options = {k: number(v, f"check.{k}", positive=k != "atol")
                   for k, v in mapping.items() if k in ("eps", "rtol", "atol")}
        if "mode" in mapping:
            text = self.text(mapping["mode"], "check.mode")
            try:
                options["mode"] = Mode.parse(text)
            except ValueError as exc:
                raise mapping["mode"].error(str(exc)) from None
        if "method" in mapping:
            method = self.text(mapping["method"], "check.method")
            if method not in METHODS:
                hint = difflib.get_close_matches(method, list(METHODS), n=1)
                extra = f' (did you mean "{hint[0]}"?)' if hint else ""
                raise mapping["method"].error(f'no such method: "{method}"{extra}; valid: {", ".join(METHODS)}')
            options["method"] = method
        return CheckOptions(**options)


@dataclass(frozen=True)
class _Upstream:
    """What a structured layer learns from the layer before it."""

    image: tuple[int, ...] | None
    layer: Layer | None

    @property
    def label(self) -> str:
        return self.layer.label if self.layer is not None else "the term's input"


def expression_where(node: Node) -> Where:
    """Where an expression's first character stands: after the quote of a quoted scalar."""
    if node.style in ("|", ">"):
        return Where(node.file, node.line + 1, node.col + 2)
    return Where(node.file, node.line, node.col + (1 if node.style in ("'", '"') else 0))


def default_name(path: str) -> str:
    """A spec's name when it gives none: the file name without its extension."""
    base = os.path.basename(path)
    return os.path.splitext(base)[0] or base


def build_model(root: Node, limits: Limits | None = None) -> Model:
    """Validate a located YAML tree into a Model."""
    return _Builder(root, limits).build()
