"""The UFLDL table of a term that is a network (named inputs, merges): one row per spec layer, last first.

Each row is the layer itself: what it reads (its merge of named inputs), its own weight and bias, f, f′,
δ⁽ˡ⁾ and z⁽ˡ⁾ (level l is spec layer l − 1, as in the chain tables). A layer's δ sums what every layer
reading it hands back: a consumer with weight W hands Wᵀ δ, a merge splits it by its row (add: the δ
itself; mul: δ • the other inputs; matmul: δ Bᵀ or Aᵀ δ; solve; slice and concat: the rows).
"""

from __future__ import annotations

from . import network
from .kinds import KINDS
from .merges import MERGES
from .model import Layer, Model, Term
from .symbolic import NoClosedForm
from .symwalk import Walker, safe_text, sup

NOTE = ("a network: each row is one spec layer with its own weight and bias; its δ sums what every layer "
        "reading it hands back (a merge gives each input its share: add the δ itself, mul δ • the others)")


def network_rows(model: Model, term: Term, row_type, f_texts, top_delta, hadamard, at) -> list:
    """The rows of a network term (explain.py passes its row type and its text helpers)."""
    walker = Walker(model)
    zs = _z_symbols(walker, term)
    rows = []
    for layer in reversed(term.layers):
        level = layer.index + 1
        weight = layer.weight.label if layer.weight is not None else "I"
        bias = layer.bias.label if layer.bias is not None else None
        if not KINDS[layer.kind].closed_form:
            rows.append(row_type(level, weight, bias, layer.kind, "—", "—", "—", layer.kind, layer.name,
                                 layer.reads))
            continue
        f_text, df_text, fprime = f_texts(walker, layer)
        delta = _delta_text(walker, term, layer, fprime, top_delta, hadamard, at)
        z = safe_text(zs[layer.key]) if layer.key in zs else None
        rows.append(row_type(level, weight, bias, f_text, df_text, delta, z or "—", "dense", layer.name,
                             layer.reads))
    return rows


def _z_symbols(walker: Walker, term: Term) -> dict:
    """z of each layer in closed form, up to the first layer kind without one."""
    zs = {}

    def step(layer, a_in):
        if not KINDS[layer.kind].closed_form:
            raise NoClosedForm(layer.label)
        done = walker.layer_forward(layer, a_in)
        zs[layer.key] = done.z
        return done

    try:
        network.walk_forward(term, walker.ops(), step)
    except NoClosedForm:
        pass
    return zs


def _handed_back(term: Term, layer: Layer) -> list[str]:
    """What each layer reading `layer` hands back to it, in the table's symbols."""
    parts = []
    for consumer in term.layers[layer.index:]:
        above = f"δ{sup(consumer.index + 1)}"
        if consumer.weight is not None:
            w = consumer.weight
            above = f"{w.name} @ {above}" if w.transposed else f"{w.name}.T @ {above}"
        labels = [r.label for r in consumer.inputs]
        for i, ref in enumerate(consumer.inputs):
            if ref.name != layer.key:
                continue
            part = above if consumer.merge is None else MERGES[consumer.merge].formula(above, labels, i)
            parts.append(f"({part})ᵀ" if ref.transposed else part)
    return parts


def _delta_text(walker, term: Term, layer: Layer, fprime, top_delta, hadamard, at) -> str:
    level = layer.index + 1
    parts = _handed_back(term, layer)
    is_out = layer is term.layers[term.output]
    if not parts and not is_out:
        return "0 (J does not read it)"
    texts = [top_delta(walker, term, layer, level, fprime)] if is_out else []
    if parts:
        g = " + ".join(parts)
        if fprime is None:
            a = f"a{sup(level)}"
            texts.append(f"{a} • (g - sum({a} • g, axis=0)), g = {g}")
        else:
            texts.append(hadamard(g, at(fprime, level)))
    return " + ".join(texts)
