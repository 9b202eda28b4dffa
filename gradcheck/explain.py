"""`gradcheck explain`: the UFLDL derivation of a spec, done symbolically in the spec's own names.

UFLDL writes a matrix function as a network and fills one table row per layer: the weight W⁽ˡ⁾
leaving the layer, its activation f⁽ˡ⁾ and f′⁽ˡ⁾, the error signal δ⁽ˡ⁾ and the layer's input z⁽ˡ⁾.
Layer 1 is the input (z⁽¹⁾ = the input, f⁽¹⁾ the identity); the spec's layer l is UFLDL layer l + 1.

    δ⁽ⁿˡ⁾ = ∂J/∂a⁽ⁿˡ⁾ • f′(z⁽ⁿˡ⁾)              (for J = sum: just f′(z⁽ⁿˡ⁾))
    δ⁽ˡ⁾  = (W⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾) • f′(z⁽ˡ⁾)
    ∇W⁽ˡ⁾ = δ⁽ˡ⁺¹⁾ a⁽ˡ⁾ᵀ  for a use of W, its transpose for a use of W.T; tied uses are summed.

The same walk, run on symbols (symbolic.py), gives each param's gradient as one expression of the
expression language (closed form), or, binding every step to a variable, a standalone numpy function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import expr, network
from .expr import MAX_DEPTH, MAX_LENGTH
from .exprparse import parse
from .kinds import KINDS, no_closed_form
from .explain_network import NOTE, network_rows

from .model import Layer, Model, Term, layer_refs
from .symbolic import NoClosedForm, Ones, Sym, Var, num
from .symwalk import ClosedForm, SymStep, Use, Walker, derivative, forward, objective_value, safe_text, sup


@dataclass
class LayerRow:
    """One row of a UFLDL table (display text)."""

    layer: int
    weight: str
    bias: str | None
    f: str
    df: str
    delta: str
    z: str
    kind: str = "dense"
    name: str | None = None  # a network's rows: the layer's name and what it reads
    reads: str | None = None

    def to_json(self) -> dict:
        out = {"layer": self.layer, "kind": self.kind, "weight": self.weight, "bias": self.bias, "f": self.f,
               "df": self.df, "delta": self.delta, "z": self.z}
        return out if self.reads is None else {**out, "name": self.name, "reads": self.reads}


@dataclass
class TermTable:
    """The derivation table of one term."""

    index: int
    input: str
    objective: str  # J_term in terms of a⁽ⁿˡ⁾
    coef: str | None
    rows: list[LayerRow] = field(default_factory=list)  # n_l first, as the UFLDL δ table
    note: str | None = None

    def to_json(self) -> dict:
        return {"index": self.index, "input": self.input, "objective": self.objective, "coef": self.coef,
                "layers": [r.to_json() for r in self.rows], "note": self.note}


@dataclass
class Explanation:
    """Everything `explain` prints."""

    path: str
    name: str
    terms: list[TermTable]
    uses: list[Use]
    params: dict[str, str | None]
    notes: dict[str, str]
    second: list[tuple[str, str, str]] = field(default_factory=list)  # (section, param, formula) of hessian/hvp

    def to_json(self) -> dict:
        extra = {"second_order": [{"section": s, "param": p, "formula": f} for s, p, f in self.second]}
        return {"path": self.path, "name": self.name, "params": dict(self.params), "notes": dict(self.notes),
                "terms": [term.to_json() for term in self.terms], "uses": [u.to_json() for u in self.uses],
                **(extra if self.second else {})}


def check_expression(text: str, model: Model, name: str) -> str | None:
    """Why `text` cannot stand in `expect` for param `name`, or None when it can."""
    if len(text) > MAX_LENGTH:
        return (f"the closed form is {len(text):,} characters long; expect takes at most {MAX_LENGTH:,} "
                f"(use --emit python)")
    shapes = model.shapes
    try:
        parsed = parse(text, expr.Where(model.path, 1, 1), set(shapes), f"expect {name}")
        shape = parsed.shape(shapes)
    except Exception as exc:  # noqa: BLE001 - too deep or too long for the parser's limits
        return f"the closed form does not fit the expression language's limits ({exc}; depth <= {MAX_DEPTH})"
    if shape != shapes[name]:
        raise AssertionError(f"explain built a gradient of shape {shape} for {name} of shape {shapes[name]}")
    return None


# ----------------------------------------------------------------------------- the tables


def table_rows(model: Model, term: Term) -> list[LayerRow]:
    """The UFLDL table of a term, n_l first; symbolic entries in the spec's names."""
    if not term.chain:
        return network_rows(model, term, LayerRow, _f_texts, _top_delta_text, _hadamard, _at)
    walker = Walker(model)
    n = len(term.layers) + 1
    z_syms = _forward_symbols(walker, term)
    rows = []
    for level in range(n, 0, -1):
        layer = term.layers[level - 2] if level >= 2 else None  # the spec layer whose activation is f⁽ˡᵉᵛᵉˡ⁾
        leaving = term.layers[level - 1] if level <= len(term.layers) else None  # its weight is W⁽ˡᵉᵛᵉˡ⁾
        weight = "N/A" if leaving is None else (leaving.weight.label if leaving.weight else "I")
        bias = leaving.bias.label if leaving is not None and leaving.bias else None
        if layer is not None and not KINDS[layer.kind].closed_form:
            rows.append(LayerRow(level, weight, bias, layer.kind, "—", "—", "—", layer.kind))
            continue
        z_text = safe_text(z_syms[level - 1]) or "—"
        f_text, df_text, fprime = _f_texts(walker, layer)
        if level == n:
            delta = _top_delta_text(walker, term, layer, level, fprime)
        else:
            delta = _lower_delta_text(leaving, layer, level, fprime)
        rows.append(LayerRow(level, weight, bias, f_text, df_text, delta, z_text))
    return rows


class _NoSymbols(Exception):
    """The walk reached a layer kind without a closed form."""


def _forward_symbols(walker: Walker, term: Term) -> list[Sym]:
    """z⁽¹⁾ … z⁽ⁿˡ⁾ in closed form (z⁽¹⁾ is the input); "—" from the first layer kind without one."""
    zs = [walker.ref(term.input) if term.input is not None else Var("—", (1, 1))]

    def step(layer: Layer, a_in: Sym) -> SymStep:
        if not KINDS[layer.kind].closed_form:
            raise _NoSymbols
        done = walker.layer_forward(layer, a_in)
        zs.append(done.z)
        return done

    try:
        network.walk_forward(term, walker.ops(), step)
    except _NoSymbols:
        pass
    return zs + [Var("—", (1, 1))] * (len(term.layers) + 1 - len(zs))


def _f_texts(walker: Walker, layer: Layer | None) -> tuple[str, str, Sym | None]:
    """f(z), f′(z) as text, and f′ as a symbol in the placeholder z (None for a row without one, like softmax)."""
    if layer is None:
        return "z", "1", num(1)
    z = Var("z", layer.z_shape)
    use = layer.activation
    c = walker.argument(use)
    f_text = safe_text(forward(use, z, c)) or "—"
    if use.row.sym_df is None:
        return f_text, use.row.df_text, None
    fprime = derivative(use, z, c)
    return f_text, safe_text(fprime) or "—", fprime


def _at(fprime: Sym, level: int) -> str:
    """f′ written at z⁽ˡᵉᵛᵉˡ⁾."""
    return safe_text(_rename_z(fprime, f"z{sup(level)}")) or "—"


def _rename_z(sym: Sym, name: str) -> Sym:
    """The symbol with the placeholder z renamed (for display)."""
    from . import symbolic as s

    if isinstance(sym, Var):
        return Var(name, sym.shape) if sym.name == "z" else sym
    if isinstance(sym, s.Neg):
        return s.Neg(_rename_z(sym.operand, name))
    if isinstance(sym, s.Transpose):
        return s.Transpose(_rename_z(sym.operand, name))
    if isinstance(sym, s.Pow):
        return s.Pow(_rename_z(sym.base, name), sym.exponent)
    if isinstance(sym, s.Bin):
        return s.Bin(sym.op, _rename_z(sym.left, name), _rename_z(sym.right, name), sym.shape)
    if isinstance(sym, s.Fn):
        return s.Fn(sym.name, tuple(_rename_z(a, name) for a in sym.args), sym.axis, sym.shape)
    if isinstance(sym, Ones):
        return Ones(_rename_z(sym.like, name))
    return sym


def _hadamard(left: str, right: str) -> str:
    left = left if _simple(left) else f"({left})"
    right = right if _simple(right) else f"({right})"
    return f"{left} • {right}"


def _simple(text: str) -> bool:
    return all(op not in text for op in (" + ", " - ", " * ", " / ", " @ ", " • "))


def _top_delta_text(walker: Walker, term: Term, layer: Layer | None, level: int, fprime: Sym | None) -> str:
    obj = term.objective
    a = f"a{sup(level)}"
    y = obj.target.label if obj.target is not None else None
    name = layer.activation.row.name if layer is not None else "identity"
    scale = ("" if term.coef is None else f"{term.coef.label} • ")
    m = f" / {_columns(term)}" if obj.reduce == "mean" and obj.target is not None else ""
    fused = obj.row.fused.get(name)
    if fused is not None:
        return f"{scale}({fused.text(a, y, walker.is_onehot(obj.target))}){m}"
    dJda = obj.row.grad_text(a, y, _size(term))
    if fprime is None:  # a row that mixes entries (softmax, logdet) on top of another objective
        g = dJda or "1"
        return f"{scale}{layer.activation.row.vjp_text(a, f'z{sup(level)}')}{m}, g = {g}"
    f_at = _at(fprime, level)
    body = f_at if dJda is None else _hadamard(dJda, f_at)
    return f"{scale}{_paren(body) if scale or m else body}{m}"


def _lower_delta_text(leaving: Layer, layer: Layer | None, level: int, fprime: Sym | None) -> str:
    above = f"δ{sup(level + 1)}"
    if leaving.weight is None:
        g = above
    else:
        w = leaving.weight
        g = f"{w.name} @ {above}" if w.transposed else f"{w.name}.T @ {above}"
    if fprime is None:
        return f"{layer.activation.row.vjp_text(f'a{sup(level)}', f'z{sup(level)}')}, g = {g}"
    return _hadamard(g, _at(fprime, level))


def _paren(text: str) -> str:
    return text if _simple(text) else f"({text})"


def _columns(term: Term) -> int:
    last = term.layers[term.output].out_shape if term.layers else None
    return last[1] if last else 1


def _size(term: Term) -> int:
    last = term.layers[term.output].out_shape if term.layers else (1, 1)
    return last[0] * last[1]


def objective_text(term: Term) -> str:
    """J_term in terms of a⁽ⁿˡ⁾, e.g. 'sum(a⁽⁵⁾)'."""
    level = (term.output % len(term.layers) + 2) if term.layers else 1
    shape = term.layers[term.output].out_shape if term.layers else (1, 1)
    a = Var(f"a{sup(level)}", shape)
    y = Var(term.objective.target.label, shape) if term.objective.target is not None else None
    return objective_value(term.objective, a, y).text()


# ----------------------------------------------------------------------------- explain


def explain(model: Model) -> Explanation:
    """The derivation tables, each use's contribution and each param's closed-form gradient."""
    closed = ClosedForm(model)
    params: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    blocked = {}
    for term in model.terms:
        try:
            closed.walk_term(term)
        except NoClosedForm as exc:
            for name in _params_of(term, closed.params):
                blocked.setdefault(name, str(exc))
    for name in model.param_names:
        if name in blocked:
            params[name], notes[name] = None, blocked[name]
            continue
        try:
            text = closed.gradient(name).text()
        except NoClosedForm as exc:
            params[name], notes[name] = None, str(exc)
            continue
        problem = check_expression(text, model, name)
        params[name] = text
        if problem:
            notes[name] = problem
    terms = []
    for term in model.terms:
        table = TermTable(term.index, term.input.label if term.input is not None else "—", objective_text(term),
                          term.coef.label if term.coef is not None else None, table_rows(model, term))
        structured = [layer for layer in term.layers if not KINDS[layer.kind].closed_form]
        if not term.chain:
            table.note = NOTE
        if structured:
            table.note = no_closed_form(structured[0], standard=True)
        terms.append(table)
    second = [(f.section, f.name, f.expression.text) for f in model.second]
    return Explanation(model.path, model.name, terms, closed.uses, params, notes, second)


def _params_of(term: Term, params: set[str]) -> list[str]:
    """Params a term reads anywhere, including inside a structured layer's options (a conv kernel)."""
    refs = [term.input, term.coef, term.objective.target] + [r for layer in term.layers for r in layer_refs(layer)]
    return [n for r in refs if r is not None for n in ([r.name] if r.name else sorted(r.params)) if n in params]
