"""Params and data: how a declared name becomes a Decl (a number, a literal matrix, or a shape and an init)."""

from __future__ import annotations

from .shapes import Shape
from .limits import Limits, count, hint
from .model import Decl, Place
from .nodes import check_keys, expect_list, key_place, number, text
from .suggest import did_you_mean
from .yamlsrc import Node

INIT_OPTIONS = {
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"low": 0.0, "high": 1.0},
    "zeros": {}, "ones": {}, "eye": {}, "onehot": {},
    "binary": {"p": 0.5},
    "spd": {"low": 0.5, "high": 2.0},  # symmetric positive definite: Q diag(λ) Qᵀ, λ uniform in [low, high]
}


def declaration(name: str, kind: str, node: Node, limits: Limits) -> Decl:
    """One declared name: a number, a literal matrix, or a shape with a random init."""
    value = node.value
    place = key_place(node)
    if isinstance(value, list):
        literal, shape = literal_matrix(node, name, limits)
        return Decl(name, kind, shape, "literal", literal=literal, place=place)
    if isinstance(value, dict):
        return initialized(name, kind, node, place, limits)
    v = number(node, f"the value of {name}")
    return Decl(name, kind, (1, 1), "literal", literal=((v,),), place=place)

def literal_matrix(node: Node, name: str, limits: Limits):
    """A matrix written out: a list of rows, or a flat list for a column."""
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
    check_size(node, name, shape, limits)
    return tuple(matrix), shape

def initialized(name: str, kind: str, node: Node, place: Place, limits: Limits) -> Decl:
    """A shape and an init (normal, uniform, …) with its options."""
    spec = node.value
    init_node = spec.get("init")
    init = "normal" if init_node is None else text(init_node, "init")
    if init not in INIT_OPTIONS:
        raise init_node.error(f'no such init: "{init}"{did_you_mean(init, INIT_OPTIONS)}; valid: '
                              f'{", ".join(INIT_OPTIONS)}')
    defaults = INIT_OPTIONS[init]
    check_keys(spec, ("shape", "init", "symmetric", *defaults), f'{name} (init "{init}")')
    if "shape" not in spec:
        raise node.error(f"{name} needs a shape: [rows, cols]")
    shape = read_shape(spec["shape"], name, limits)
    symmetric = _symmetric(spec, name, kind, shape)
    if init == "spd" and shape[0] != shape[1]:
        raise spec["shape"].error(f"init spd draws a square matrix; {name} has shape {shape[0]}×{shape[1]}")
    if init == "spd" and not 0 < spec_number(spec, "low", defaults, name) <= spec_number(spec, "high", defaults, name):
        raise spec.get("low", spec.get("high", node)).error(f"init spd of {name} needs 0 < low <= high (its eigenvalues)")
    options = {k: number(spec[k], f"{k} of {name}") if k in spec else v for k, v in defaults.items()}
    if init == "normal" and options["std"] < 0:
        raise spec["std"].error(f"std of {name} must be >= 0")
    if init == "uniform" and options["low"] > options["high"]:
        raise spec.get("low", node).error(f"low of {name} is above high ({options['low']} > {options['high']})")
    if init == "binary" and not 0 <= options["p"] <= 1:
        raise spec["p"].error(f"p of {name} must lie in [0, 1]")
    return Decl(name, kind, shape, init, tuple(options.items()), place=place, symmetric=symmetric)


def spec_number(spec: dict, key: str, defaults: dict, name: str) -> float:
    """An init option as written, or its default."""
    return number(spec[key], f"{key} of {name}") if key in spec else defaults[key]


def _symmetric(spec: dict, name: str, kind: str, shape) -> bool:
    """`symmetric: true`: a square param checked on symmetric matrices only (see README, symmetric params)."""
    node = spec.get("symmetric")
    if node is None:
        return False
    if not isinstance(node.value, bool):
        raise node.error(f"symmetric of {name} must be true or false")
    if node.value and kind != "param":
        raise node.key_error(f"symmetric applies to params (it changes how {name}'s gradient is checked); "
                             f"data is drawn as it is")
    if node.value and shape[0] != shape[1]:
        raise node.key_error(f"symmetric needs a square matrix; {name} has shape {shape[0]}×{shape[1]}")
    return bool(node.value)

def read_shape(node: Node, name: str, limits: Limits) -> Shape:
    """[rows, cols], each at least 1, within the per-matrix limit."""
    dims = expect_list(node, f"the shape of {name}")
    if len(dims) != 2:
        raise node.error(f"the shape of {name} must be [rows, cols], got {len(dims)} numbers")
    shape = tuple(number(d, f"a dimension of {name}", integer=True) for d in dims)
    for d, n in zip(dims, shape):
        if n < 1:
            raise d.error(f"dimensions of {name} must be at least 1, not {n}")
    check_size(node, name, shape, limits)
    return shape  # type: ignore[return-value]

def check_size(node, name: str, shape, limits: Limits) -> None:
    """Refuse a matrix over the per-matrix limit."""
    size = shape[0] * shape[1]
    if size > limits.elements:
        raise node.error(f"{name} would hold {count(size)} numbers; the limit is {count(limits.elements)} "
                         f"per matrix ({hint('elements')})")
