"""What each layer of a term reads: names, `input`, the merge keys and `slice`, and `output` — validated into
located errors (an unknown name with a did-you-mean, a name used before it is defined, a cycle, shapes
that do not merge, a slice out of range).

The loader asks `Inputs.read(index, node, mapping)` before it parses a layer by its kind; the kind then
sees one input of one shape, whatever the layer merged (so a new kind reads its `input` like any layer).
"""

from __future__ import annotations

import re

from .errors import excerpt
from .limits import count, hint
from .merges import MERGES, describe_shapes, merge_shape
from .model import Layer, Ref
from .nodes import check_keys, expect_list, expect_mapping, number, place_of
from .shapes import Shape
from .suggest import did_you_mean
from .yamlsrc import Node

SOURCE_KEYS = ("input", *MERGES)  # the keys that say where a layer's input comes from; at most one a layer
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _name_of(text: str) -> tuple[str, bool]:
    """('h', True) for 'h.T'."""
    text = text.strip()
    return (text[:-2].strip(), True) if text.endswith(".T") else (text, False)


def explicit(mapping: dict) -> bool:
    """Whether a layer says what it reads (else it reads the layer before, or the term's input)."""
    return isinstance(mapping, dict) and any(k in mapping for k in SOURCE_KEYS)


def first_layer_reads(mapping: dict) -> bool:
    """Whether a term's first layer says what it reads (then the term needs no `input`)."""
    layers = mapping["layers"].value if "layers" in mapping else None
    return isinstance(layers, list) and bool(layers) and explicit(layers[0].value)


class Inputs:
    """One term's layer names and what each layer reads, resolved in spec order."""

    def __init__(self, loader, index: int, layer_nodes: list[Node], term_input: Ref | None, reserved):
        self.b, self.term, self.term_input = loader, index, term_input
        self.layers: dict[str, Layer] = {}  # key -> layer, as defined so far
        self.images: dict[str, object] = {}  # key -> the image its output columns hold (conv, maxpool)
        self.last: Layer | None = None
        self.names: dict[str, int] = {}  # every name this term's layers take -> its position (1-based)
        self.reads: dict[int, set[int | str]] = {}  # position -> positions (or names) it reads, for cycles
        for position, node in enumerate(layer_nodes, 1):
            self.prescan(position, node, reserved)

    # -- names, before any layer is parsed (a forward reference needs to know what lies below)

    def prescan(self, position: int, node: Node, reserved) -> None:
        mapping = node.value if isinstance(node.value, dict) else {}
        if "name" in mapping:
            name_node = mapping["name"]
            name = name_node.value
            if not isinstance(name, str) or not _IDENT.match(name):
                raise name_node.error(f'layer {position}: "{excerpt(str(name))}" is not a valid name (letters, '
                                      f'digits and _; not starting with a digit)')
            if name in reserved:
                raise name_node.error(f'layer {position}: "{name}" is reserved (I, z and the function names)')
            if name in self.b.kinds:
                raise name_node.error(f'layer {position}: "{name}" is already a name under {self.b.kinds[name]}; '
                                      f"layers, params and data share one namespace")
            if name in self.names:
                raise name_node.error(f'layer {position}: the name "{name}" is taken by layer {self.names[name]} '
                                      f"of this term")
            self.names[name] = position
        self.reads[position] = set(self.raw_reads(mapping)) if explicit(mapping) else {position - 1}

    @staticmethod
    def raw_reads(mapping: dict) -> list[str]:
        """The names a layer's source keys mention, unchecked (what the cycle search follows)."""
        out = []
        for key in SOURCE_KEYS:
            if key not in mapping:
                continue
            value = mapping[key].value
            if key == "slice" and isinstance(value, dict) and "input" in value:
                value = value["input"].value
            items = [i.value if isinstance(i, Node) else i for i in (value if isinstance(value, list) else [value])]
            out += [_name_of(text)[0] for text in items if isinstance(text, str)]
        return out

    # -- one layer's inputs

    def read(self, position: int, node: Node, mapping: dict):
        """(inputs, merge, merge options, the merged shape, Upstream image, the layer read as is or None)."""
        sources = [k for k in SOURCE_KEYS if k in mapping]
        if len(sources) > 1:
            raise mapping[sources[1]].key_error(
                f'layer {position} has both "{sources[0]}" and "{sources[1]}": a layer reads one input, or one '
                f"merge ({', '.join(MERGES)})")
        if not sources:
            ref = self.term_input if self.last is None else Ref(self.last.key, place=place_of(node))
            if ref is None:
                raise node.error(f'layer {position} reads nothing: give the term an "input", or the layer an '
                                 f'"input: <name>" or a merge ({", ".join(MERGES)})')
            return (ref,), None, None, self.shape(ref), self.image(ref), self.layer_of(ref)
        key = sources[0]
        if key == "input":
            ref = self.resolve(position, mapping["input"], f"the input of layer {position}")
            return (ref,), None, None, self.shape(ref), self.image(ref), self.layer_of(ref)
        if key == "slice":
            return self.slice(position, mapping["slice"])
        return self.merge(position, key, mapping[key])

    def merge(self, position: int, key: str, node: Node):
        items = expect_list(node, f"{key} in layer {position}")
        arity = MERGES[key].arity
        if arity is not None and len(items) != arity:
            raise node.error(f"{key} in layer {position} takes {arity} names, not {len(items)}")
        if arity is None and len(items) < 2:
            raise node.error(f"{key} in layer {position} takes two or more names, not {len(items)}")
        if len(items) > self.b.limits.layers:
            raise node.error(f"{key} in layer {position} merges {count(len(items))} names; the limit is "
                             f"{count(self.b.limits.layers)}, as for layers ({hint('layers')})")
        refs = tuple(self.resolve(position, item, f"{key} in layer {position}") for item in items)
        shape = self.merged(position, key, node, refs, None)
        return refs, key, None, shape, None, None

    def slice(self, position: int, node: Node):
        mapping = expect_mapping(node, f"slice in layer {position}")
        check_keys(mapping, ("input", "rows"), f"slice in layer {position}")
        for needed in ("input", "rows"):
            if needed not in mapping:
                raise node.error(f'slice in layer {position} needs "{needed}" (slice: {{input: <name>, rows: '
                                 f"[start, stop]}})")
        ref = self.resolve(position, mapping["input"], f"the slice input of layer {position}")
        rows = expect_list(mapping["rows"], f"slice rows in layer {position}")
        if len(rows) != 2:
            raise mapping["rows"].error(f"slice rows in layer {position} are [start, stop], two whole numbers")
        span = tuple(number(r, f"slice rows in layer {position}", integer=True) for r in rows)
        shape = self.merged(position, "slice", mapping["rows"], (ref,), span)
        return (ref,), "slice", span, shape, None, None

    def merged(self, position: int, key: str, node: Node, refs, opt) -> Shape:
        shapes = [self.shape(r) for r in refs]
        found = merge_shape(key, shapes, opt)
        if isinstance(found, str):
            what = "slice out of range" if key == "slice" else "shape mismatch"
            labels = [self.describe(r) for r in refs]
            raise node.error(f"{what} in layer {position}: {key} of {describe_shapes(labels, shapes)}: {found}")
        self.b.check_work(node, f"the merge of layer {position} would hold", found[0] * found[1], "numbers")
        return found

    # -- names

    def resolve(self, position: int, node: Node, role: str) -> Ref:
        """A name a layer reads: a layer defined above it in this term, or a param or data name."""
        if not isinstance(node.value, str):
            raise node.error(f"{role} must be a name, not {type(node.value).__name__}")
        name, transposed = _name_of(node.value)
        if name in self.layers:
            return Ref(name, transposed=transposed, place=place_of(node))
        if name in self.b.shapes:  # a param or data name (any name declared before the layers)
            self.b.require_data_define(node, name, role)  # a define read by a layer must not read a param
            return Ref(name, transposed=transposed, place=place_of(node))
        if name in self.names:
            raise node.error(self.forward_reference(position, name))
        known = [*self.layers, *self.b.shapes]
        raise node.error(f'{role}: undefined name "{excerpt(name)}"{did_you_mean(name, [*known, *self.names])}; '
                         f"layers above it: {', '.join(n for n in self.layers if not n.startswith('#')) or 'none'}; "
                         f"params and data: {', '.join(known[len(self.layers):]) or 'none'}")

    def forward_reference(self, position: int, name: str) -> str:
        """A name defined further down: a cycle if that layer reads this one back, else a matter of order."""
        target = self.names[name]
        path = self.path(target, position)
        if path is not None:
            route = [position, *path]
            shown = route if len(route) <= 8 else [*route[:4], None, *route[-3:]]  # a long cycle, shortened
            labels = " → ".join("…" if p is None else self.label(p) for p in shown)
            return f'layer {position} reads "{name}", which reads layer {position} back: a cycle ({labels}); ' \
                   f"layers must form a DAG"
        return f'"{name}" is used before it is defined (by layer {target}, below layer {position}); layers read ' \
               f"only names defined above them: move layer {target} up"

    def path(self, start: int, goal: int) -> list[int] | None:
        """Positions from `start` to `goal` following what each layer reads, or None."""
        stack, seen = [(start, [start])], set()
        while stack:
            at, route = stack.pop()
            if at == goal:
                return route
            if at in seen:
                continue
            seen.add(at)
            for read in self.reads.get(at, ()):
                nxt = self.names.get(read) if isinstance(read, str) else read
                if isinstance(nxt, int) and nxt >= 1:
                    stack.append((nxt, route + [nxt]))
        return None

    def label(self, position: int) -> str:
        names = {p: n for n, p in self.names.items()}
        return names.get(position, f"layer {position}")

    def describe(self, ref: Ref) -> str:
        """'r (layer 2)' or 'x': how a shape message names an input."""
        layer = self.layer_of(ref, any_t=True)
        return f"{ref.label} (layer {layer.index})" if layer is not None else ref.label

    def shape(self, ref: Ref) -> Shape:
        layer = self.layers.get(ref.name)
        if layer is None:
            return self.b.ref_shape(ref)
        rows, cols = layer.out_shape
        return (cols, rows) if ref.transposed else (rows, cols)

    def layer_of(self, ref: Ref, any_t: bool = False) -> Layer | None:
        """The layer a ref reads as is (the `before` a structured kind learns from), else None."""
        layer = self.layers.get(ref.name)
        return layer if layer is not None and (any_t or not ref.transposed) else None

    def image(self, ref: Ref):
        return self.images.get(ref.name) if not ref.transposed else None

    # -- after the kind has parsed the layer

    def add(self, layer: Layer, image_in) -> None:
        """Record a parsed layer; its output's image, as the chain tracked it (a kind's own, or passed on)."""
        self.layers[layer.key] = layer
        self.images[layer.key] = layer.image if layer.kind != "dense" else (image_in if layer.weight is None else None)
        self.last = layer

    def output(self, node: Node | None, count: int) -> int:
        """`output: name`: the position of the layer the objective reads (the last by default)."""
        if node is None:
            return -1
        name = node.value if isinstance(node.value, str) else None
        if name is None or name.strip() not in self.layers:
            named = [n for n in self.layers if not n.startswith("#")]
            raise node.error(f'output: "{excerpt(str(node.value))}" is not a layer of term {self.term}'
                             f"{did_you_mean(str(node.value), named)}; named layers: {', '.join(named) or 'none'}")
        return self.layers[name.strip()].index - 1
