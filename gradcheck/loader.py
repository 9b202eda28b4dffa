"""Validate the located YAML tree of a spec into a Model; every problem is a SpecError at file:line:col.

Sections are read in order (params and data, define, the terms and their layers, expect, check); a layer
is parsed by its kind (gradcheck/kinds), an activation by its row, an objective by its row. Independent
pieces (each top-level key, declaration, term, activation, define, expect, check setting) are read in
isolation (problems.Collector), so one run reports every problem of a file, in file order; a name
whose own definition failed is `broken`, and what only fails because of it is not reported again.
"""

from __future__ import annotations

import dataclasses
import os
import re

from . import budget
from .check_section import read_check
from .declarations import check_size, declaration
from .refs import DATA, RefReader
from .rowreader import RowReader
from .errors import SpecError, excerpt
from .expr import Expression
from .exprparse import parse
from .functions import FUNCTIONS
from .graph import SOURCE_KEYS, Inputs, first_layer_reads
from .kinds import KEYED, KINDS
from .kinds.geometry import Upstream
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits, count, hint
from .model import CheckOptions, Decl, Layer, Model, Ref, Term
from .nodes import check_keys, expression_where, expect_list, expect_mapping, key_place, number, place_of, text
from .second_load import SECTIONS, parsed_outside_hvp, second_formulas
from .options import MAX_SEED
from .problems import Cascade, Collector
from .shapes import Shape, broadcast, fmt_shape
from .suggest import did_you_mean
from .yamlsrc import Node


TOP_KEYS = ("name", "description", "seed", "params", "data", "input", "layers", "output", "objective",
            "terms", "define", "expect", "check", *SECTIONS)
TERM_KEYS = ("input", "layers", "output", "objective", "coef")
LAYER_KEYS = ("name", *SOURCE_KEYS, "weight", "bias", "activation", *KEYED)
RESERVED = {"I", "z"} | set(FUNCTIONS)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ----------------------------------------------------------------------------- validation


class Loader(RowReader, RefReader):
    """Validates the located YAML tree section by section into a Model."""

    def __init__(self, root: Node, limits: Limits | None = None):
        self.limits = limits or DEFAULT_LIMITS
        self.root = root
        self.file = root.file
        self.source_lines = (getattr(root, "source", None) or "").split("\n")  # for expression_where
        self.top = expect_mapping(root, "a spec")
        self.shapes: dict[str, Shape] = {}
        self.kinds: dict[str, str] = {}
        self.layer_names: dict[str, int] = {}  # every layer name -> its term (one namespace with params and data)
        self.on_params: dict[str, str] = {}  # define name -> a param it reads (directly or through a define)
        self.total = 0
        self.problems = Collector()
        self.broken: set[str] = set()  # names whose declaration or define failed (reported once, there)

    def build(self) -> Model:
        self.keys(self.top, TOP_KEYS, "the spec")
        before = len(self.problems.found)
        decls = self.declarations("params", "param") + self.declarations("data", "data")
        if not any(d.kind == "param" for d in decls) and len(self.problems.found) == before:
            with self.problems.isolated():
                raise (self.top.get("params") or self.root).error("the spec declares no params: list at least one "
                                                                  "under params:")
        defines = self.defines()  # before the terms: layers may read defines of data
        terms = self.safely(self.terms, [])
        expects = self.expects()
        name = self.top.get("name")
        fields = dict(
            name=self.safely(lambda: self.text(name, "name"), "") if name is not None else default_name(self.file),
            description=self.safely(lambda: self.text(self.top["description"], "description"))
            if "description" in self.top else None,
            seed=self.safely(self.seed, 0) if "seed" in self.top else 0,
            check=self.safely(self.check_options, CheckOptions()),
            second=self.safely(lambda: second_formulas(self), ()),
        )
        self.problems.raise_any()
        model = Model(path=self.file, decls=tuple(decls), terms=tuple(terms), defines=tuple(defines),
                      expects=tuple(expects), places={k: key_place(v) for k, v in self.top.items()}, **fields)
        budget.require(model, self.limits)
        return model

    def safely(self, read, default=None):
        """read(), or `default` when it fails: the problem is recorded and loading goes on."""
        with self.problems.isolated():
            return read()
        return default

    def keys(self, mapping: dict[str, Node], allowed, where: str) -> None:
        """Record every unknown key of a mapping (not only the first)."""
        for key, node in mapping.items():
            with self.problems.isolated():
                check_keys({key: node}, allowed, where)

    def cascade(self) -> Cascade:
        """The error of something that only failed because of a problem already recorded."""
        return Cascade("follows from a problem reported above", self.file)

    def seed(self) -> int:
        node = self.top["seed"]
        value = number(node, "seed", integer=True)
        if not 0 <= value < MAX_SEED:
            raise node.error(f"seed must be a whole number from 0 to 2**128 - 1, not {count(value)}")
        return value

    text = staticmethod(text)  # the layer kinds' parsers read text through the loader they are given

    # -- params and data

    def declarations(self, section: str, kind: str) -> list[Decl]:
        if section not in self.top:
            return []
        out = []
        for name, node in self.safely(lambda: expect_mapping(self.top[section], section), {}).items():
            if name not in self.kinds:
                self.broken.add(name)  # until it is declared
            with self.problems.isolated():
                out.append(self.declared(name, node, kind))
                self.broken.discard(name)
        return out

    def declared(self, name: str, node: Node, kind: str) -> Decl:
        """One declaration under params or data."""
        if not _IDENT.match(name):
            raise node.key_error(f'"{excerpt(name)}" is not a valid name (letters, digits and _; not starting with a digit)')
        if name in RESERVED:
            raise node.key_error(f'"{name}" is reserved (I, z and the function names); pick another name')
        if name in self.kinds:
            raise node.key_error(f'"{name}" is declared twice (already under {self.kinds[name]})')
        decl = declaration(name, kind, node, self.limits)
        size = decl.shape[0] * decl.shape[1]
        if self.total + size > self.limits.total_elements:  # refused, so not counted: later ones judged alone
            raise node.error(f"the spec's matrices would hold {count(self.total + size)} numbers in all; the limit "
                             f"is {count(self.limits.total_elements)} ({hint('total_elements')})")
        self.total += size
        self.shapes[name] = decl.shape
        self.kinds[name] = "params" if kind == "param" else "data"
        return decl

    def sized_shape(self, e: Expression, shapes, what: str) -> Shape:
        """An expression's shape, refusing any intermediate over the per-matrix limit (before evaluating)."""
        found = e.node_shapes(shapes)
        for node, shape in found:
            size = shape[0] * shape[1]
            if size > self.limits.elements:
                raise e.at(node, f"{what}: this part would hold {count(size)} numbers, shape {fmt_shape(shape)}; "
                                 f"the limit is {count(self.limits.elements)} per matrix ({hint('elements')})")
        return found[-1][1]


    # -- terms and layers

    def terms(self) -> list[Term]:
        has_terms = "terms" in self.top
        flat = [k for k in ("input", "layers", "output", "objective") if k in self.top]
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
                with self.problems.isolated():  # each term on its own
                    mapping = expect_mapping(item, f"term {i}")
                    self.keys(mapping, TERM_KEYS, f"term {i}")
                    out.append(self.term(i, mapping, item))
            return out
        if "input" not in self.top and not first_layer_reads(self.top):
            raise self.root.error('the spec needs "input" and "layers" (or a list of "terms")')
        return [self.term(1, self.top, self.root)]

    def term(self, index: int, mapping: dict[str, Node], node: Node) -> Term:
        if "input" not in mapping and not first_layer_reads(mapping):
            raise node.error(f'term {index} needs an "input"')
        input_ref = self.ref(mapping["input"], "input", allow_transpose=True) if "input" in mapping else None
        self.term_index, self.term_input = index, input_ref  # what a kind may ask of its term (dropout, embedding)
        layers = []
        shape = self.ref_shape(input_ref) if input_ref is not None else (1, 1)
        layer_nodes = expect_list(mapping["layers"], "layers") if "layers" in mapping else []
        if len(layer_nodes) > self.limits.layers:
            raise mapping["layers"].error(f"{count(len(layer_nodes))} layers; the limit is "
                                          f"{count(self.limits.layers)} per term ({hint('layers')})")
        graph = Inputs(self, index, layer_nodes, input_ref, RESERVED)
        for i, layer_node in enumerate(layer_nodes, 1):
            mapping_i = expect_mapping(layer_node, f"layer {i}")
            self.keys(mapping_i, LAYER_KEYS, f"layer {i}")
            inputs, merge, opt, in_shape, image, before = graph.read(i, layer_node, mapping_i)
            layer = self.layer(i, layer_node, in_shape, image, before)
            name = mapping_i["name"].value if "name" in mapping_i else None
            layer = dataclasses.replace(layer, name=name, inputs=inputs, merge=merge, merge_options=opt)
            check_size(layer_node, f"the output of layer {i}, shape {fmt_shape(layer.out_shape)},", layer.out_shape,
                       self.limits)
            graph.add(layer, image)
            layers.append(layer)
            if name is not None:
                self.layer_names[name] = index
        output = graph.output(mapping.get("output"), len(layers))
        if layers:
            shape = layers[output].out_shape
        objective = self.safely(lambda: self.objective(mapping.get("objective"), shape))
        coef = self.safely(lambda: self.coef(mapping["coef"])) if "coef" in mapping else None
        if objective is None or ("coef" in mapping and coef is None):
            raise self.cascade()  # recorded above
        return Term(index, input_ref, tuple(layers), objective, coef, place_of(node), output)

    def coef(self, node: Node) -> Ref:
        ref = self.ref(node, "coef", allow_number=True, computed=DATA)
        if self.ref_shape(ref) != (1, 1):
            raise node.error(f"coef must be a number or a 1×1 name; {ref.label} has shape "
                             f"{fmt_shape(self.ref_shape(ref))}")
        return ref

    def layer(self, index: int, node: Node, in_shape: Shape, image=None, before: Layer | None = None) -> Layer:
        """One layer: its kind is the kind key it carries (conv, maxpool, …), dense without one."""
        mapping = expect_mapping(node, f"layer {index}")

        kinds = [k for k in ("weight", *KEYED) if k in mapping]
        if len(kinds) > 1:
            raise mapping[kinds[1]].key_error(
                f'layer {index} has both "{kinds[0]}" and "{kinds[1]}": a layer is one of weight (dense), '
                f'{", ".join(KEYED)}')
        kind = KINDS[kinds[0]] if kinds and kinds[0] in KEYED else KINDS["dense"]
        return kind.parse(self, index, node, mapping, in_shape, Upstream(image, before))

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

    def require_fits(self, node: Node, what: str, shape: Shape, target: Shape) -> None:
        """A bias or argument must broadcast onto z without changing z's shape."""
        if broadcast(shape, target) != target:
            raise node.error(f"shape mismatch: {what} has shape {fmt_shape(shape)}, which does not "
                             f"broadcast onto z of shape {fmt_shape(target)}")

    # -- define, expect, check

    def expression(self, node: Node, known: set[str], what: str) -> Expression:
        where = expression_where(node, self.source_lines)  # V outside hvp: a named error, not "undefined name"
        e = parsed_outside_hvp(lambda names: parse(node.value, where, set(names) | self.broken, what, self.limits),
                               set(known), what)
        if e.names & self.broken:
            raise self.cascade()
        return e

    def defines(self) -> list[tuple[str, Expression]]:
        if "define" not in self.top:
            return []
        out = []
        for name, node in self.safely(lambda: expect_mapping(self.top["define"], "define"), {}).items():
            with self.problems.isolated():
                out.append(self.define(name, node))
        return out

    def define(self, name: str, node: Node) -> tuple[str, Expression]:
        """One define; when it fails, the name is broken (what uses it is not reported again)."""
        if not _IDENT.match(name) or name in RESERVED:
            raise node.key_error(f'"{excerpt(name)}" cannot be defined (not a valid name, or reserved)')
        if name in self.shapes:
            raise node.key_error(f'"{name}" is already declared under {self.kinds.get(name, "define")}')
        try:
            e = self.expression(node, set(self.shapes), f"define {name}")
            self.shapes[name] = self.sized_shape(e, self.shapes, f"define {name}")
        except SpecError:
            self.broken.add(name)
            raise
        self.kinds[name] = "define"
        reads = sorted(n for n in e.names if self.kinds.get(n) == "params" or n in self.on_params)
        if reads:
            self.on_params[name] = self.on_params.get(reads[0], reads[0])
        return name, e

    def expects(self) -> list:
        if "expect" not in self.top:
            return []
        out = []
        for name, node in self.safely(lambda: expect_mapping(self.top["expect"], "expect"), {}).items():
            with self.problems.isolated():
                out.append(self.expected(name, node))
        return out

    def expected(self, name: str, node: Node):
        """One expect formula."""
        if name in self.broken:
            raise self.cascade()
        if self.kinds.get(name) != "params":
            what = f"is {self.kinds[name]}, not a param" if name in self.kinds else "is not a declared param"
            params = [n for n, k in self.kinds.items() if k == "params"]
            raise node.key_error(f'expect: "{excerpt(name)}" {what}{did_you_mean(name, params)}; params: '
                                 f'{", ".join(params)}')
        e = self.expression(node, set(self.shapes), f"expect {name}")
        self.sized_shape(e, self.shapes, f"expect {name}")  # a wrong shape fails the param at check time
        return name, e, place_of(node)

    def check_options(self) -> CheckOptions:
        return read_check(self.top["check"], self.keys) if "check" in self.top else CheckOptions()


def default_name(path: str) -> str:
    """A spec's name when it gives none: the file name without its extension."""
    base = os.path.basename(path)
    return os.path.splitext(base)[0] or base


def build_model(root: Node, limits: Limits | None = None) -> Model:
    """Validate a located YAML tree into a Model."""
    return Loader(root, limits).build()
