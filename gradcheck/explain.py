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

import keyword
from dataclasses import dataclass, field

from . import expr
from .expr import MAX_DEPTH, MAX_LENGTH
from . import network
from .kinds import KINDS
from .model import ActivationUse, Layer, Model, Objective, Ref, Term
from .perturb import layer_refs
from .symbolic import (Num, NoClosedForm, Ones, Sym, Var, add, div, fn, mul, num,
                       reduce_to, sub, t)

SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(k: int) -> str:
    """⁽k⁾"""
    return f"⁽{str(k).translate(SUPERSCRIPTS)}⁾"


# ----------------------------------------------------------------------------- rows as symbols


def forward(use: ActivationUse, z: Sym, c) -> Sym:
    """a = f(z) as a symbol, from the activation's row (c: its argument, or the names of a custom row)."""
    return use.row.sym_f(z, c)


def derivative(use: ActivationUse, z: Sym, c) -> Sym:
    """f′(z) as a symbol, written in z as the UFLDL tables do (not for rows without one, like softmax)."""
    return use.row.sym_df(z, c)


def objective_value(obj: Objective, a: Sym, y: Sym | None) -> Sym:
    """J_term from the last activation."""
    return obj.row.sym_value(a, y, obj.reduce)


# ----------------------------------------------------------------------------- the walk


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

    def to_json(self) -> dict:
        return {"layer": self.layer, "kind": self.kind, "weight": self.weight, "bias": self.bias, "f": self.f,
                "df": self.df, "delta": self.delta, "z": self.z}


@dataclass
class Use:
    """One use of a param and its contribution to the gradient."""

    param: str
    term: int
    where: str  # "weight W of layer 1"
    formula: str  # "δ⁽²⁾ a⁽¹⁾ᵀ"
    expression: str | None = None

    def to_json(self) -> dict:
        return {"param": self.param, "term": self.term, "where": self.where, "formula": self.formula,
                "expression": self.expression}


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

    def to_json(self) -> dict:
        return {"path": self.path, "name": self.name, "params": dict(self.params), "notes": dict(self.notes),
                "terms": [term.to_json() for term in self.terms], "uses": [u.to_json() for u in self.uses]}


class Walker:
    """Backprop over a model's terms with symbols; subclasses decide what a step becomes."""

    def __init__(self, model: Model):
        self.model = model
        self.shapes = {d.name: d.shape for d in model.decls}
        self.data = {d.name for d in model.decls if d.kind == "data"}
        self.params = set(model.param_names)
        self.onehot = {d.name for d in model.decls if d.init == "onehot"}

    sup = staticmethod(sup)  # for the layer kinds' symbolic rows

    # -- hooks

    def var(self, name: str) -> Sym:
        return Var(name, self.shapes[name])

    def bind(self, hint: str, value: Sym) -> Sym:
        """A step's value as later steps should refer to it."""
        return value

    def contribute(self, ref: Ref, term: Term, where: str, formula: str, value: Sym) -> None:
        """Add `value` (already reduced to the use's shape) to the gradient of ref's param."""

    def term_value(self, term: Term, value: Sym) -> None:
        """J_term·coef was computed."""

    # -- helpers

    def ref(self, ref: Ref) -> Sym:
        if ref.name is None:
            return num(ref.number)
        v = self.var(ref.name)
        return t(v) if ref.transposed else v

    def ones_like(self, like: Sym) -> Sym:
        """Ones of like's shape, written with the shortest declared name of that shape if there is one."""
        for name, shape in self.shapes.items():
            if shape == like.shape and shape != (1, 1):
                return Ones(self.var(name))
        return Ones(like)

    def uses_param(self, ref: Ref | None) -> bool:
        return ref is not None and ref.name in self.params

    def give(self, ref: Ref | None, term: Term, where: str, formula: str, value: Sym) -> None:
        """Reduce a contribution to the use's shape, transpose it back for `.T` uses, and hand it on."""
        if not self.uses_param(ref):
            return
        rows, cols = self.shapes[ref.name]
        use_shape = (cols, rows) if ref.transposed else (rows, cols)
        value = reduce_to(value, use_shape)
        self.contribute(ref, term, where, formula, t(value) if ref.transposed else value)

    # -- the walk

    def walk(self) -> None:
        for term in self.model.terms:
            self.walk_term(term)

    def walk_term(self, term: Term) -> None:
        structured = [layer for layer in term.layers if not KINDS[layer.kind].closed_form]
        if structured:
            raise NoClosedForm(f"{structured[0].label} is a {structured[0].kind} layer: no closed form in the "
                               f"expression language")
        steps, a = network.walk_forward(term, self.ref(term.input), self.layer_forward)
        obj = term.objective
        y = self.ref(obj.target) if obj.target is not None else None
        coef = self.ref(term.coef) if term.coef is not None else None
        value = objective_value(obj, a, y)
        self.term_value(term, value if coef is None else mul(coef, value))
        if self.uses_param(term.coef):
            self.give(term.coef, term, f"coef {term.coef.label}", f"J{_sub(term.index)}", value)

        def scaled(x: Sym) -> Sym:
            x = x if coef is None else mul(coef, x)
            return div(x, a.shape[1]) if obj.reduce == "mean" and obj.target is not None else x

        if self.uses_param(obj.target):
            self.give(obj.target, term, f"target {obj.target.label} of the objective",
                      f"∂J/∂{obj.target.label}", scaled(obj.row.sym_grad_y(a, y)))

        def layer_backward(step: SymStep, g, below: bool):
            top = g is None  # δ and ∂a/∂c are linear in g: the coef and 1/m go outside, where they read best
            g_here = obj.row.sym_grad_a(step.a, y, self.ones_like) if top else g
            delta = self.top_delta(step, obj, y, scaled) if top else self.delta(step, g)
            delta = self.bind(f"delta{step.layer.index + 1}", delta)
            use = step.layer.activation
            if use.argument is not None and self.uses_param(use.argument):
                grad = use.row.argument.sym_grad(g_here, step.z, step.a, step.c)
                self.give(use.argument, term, f"argument {use.argument.label} of f{sup(step.layer.index + 1)}",
                          f"Σ ∂J/∂a{sup(step.layer.index + 1)} • ∂f/∂c", scaled(grad) if top else grad)
            return KINDS[step.layer.kind].sym_backward(self, term, step.layer, step.a_in, delta,
                                                       below or self.uses_param(term.input))

        g = network.walk_backward(steps, None, layer_backward)
        if g is None:  # no layers: J is the objective of the input itself
            g = scaled(obj.row.sym_grad_a(a, y, self.ones_like))
        formula = f"δ{sup(1)}" + ("ᵀ" if term.input.transposed else "")
        self.give(term.input, term, f"input {term.input.label}", formula, g)

    def layer_forward(self, layer: Layer, a_in: Sym) -> "SymStep":
        """One layer on symbols: z from its kind, a from its activation's row, each bound to a name."""
        z = self.bind(f"z{layer.index + 1}", KINDS[layer.kind].sym_z(self, layer, a_in))
        c = self.argument(layer.activation)
        a = self.bind(f"a{layer.index + 1}", forward(layer.activation, z, c))
        return SymStep(layer, a_in, z, a, c)

    def argument(self, use: ActivationUse):
        """The activation's argument as a symbol; for a custom row, the names its f and df may read."""
        if use.argument is not None:
            return self.ref(use.argument)
        return self.custom_names() if use.row.takes_argument else None

    def custom_names(self) -> dict:
        """Data names as symbols: what a custom activation's expressions may read besides z."""
        return {name: self.var(name) for name in self.data}

    def top_delta(self, step: "SymStep", obj: Objective, y: Sym | None, scaled) -> Sym:
        """δ⁽ⁿˡ⁾ = ∂J/∂a • f′(z), with the loss row's cancellation after this activation where it has one."""
        fused = obj.row.fused.get(step.layer.activation.row.name)
        if fused is not None:
            return scaled(fused.sym_delta(step.a, y, self.is_onehot(obj.target)))
        return scaled(self.delta(step, obj.row.sym_grad_a(step.a, y, self.ones_like)))

    def is_onehot(self, target: Ref | None) -> bool:
        """Whether the target's columns each sum to 1 (a one-hot init, not transposed)."""
        return target is not None and target.name in self.onehot and not target.transposed

    def delta(self, step: "SymStep", g: Sym) -> Sym:
        """δ = g • f′(z); a row that mixes entries (softmax) gives a • (g − Σ_column a • g)."""
        if not step.layer.activation.row.elementwise:
            return mul(step.a, sub(g, fn("sum", mul(step.a, g), axis=0)))
        return mul(g, derivative(step.layer.activation, step.z, step.c))


@dataclass
class SymStep:
    """One layer of the symbolic walk: its input, z, a and the activation's argument."""

    layer: Layer
    a_in: Sym
    z: Sym
    a: Sym
    c: object


def _sub(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


# ----------------------------------------------------------------------------- closed form


class ClosedForm(Walker):
    """Every step inline: each param's gradient as one expression in the spec's names."""

    def __init__(self, model: Model):
        super().__init__(model)
        self.parts: dict[str, list[Sym]] = {name: [] for name in model.param_names}
        self.uses: list[Use] = []

    def contribute(self, ref, term, where, formula, value):
        self.parts[ref.name].append(value)
        self.uses.append(Use(ref.name, term.index, where, formula, safe_text(value)))

    def walk_term(self, term):
        """Walk one term, then put its uses in layer order (the walk goes top down; UFLDL sums bottom up)."""
        before = {name: len(parts) for name, parts in self.parts.items()}
        used = len(self.uses)
        try:
            super().walk_term(term)
        finally:
            for name, parts in self.parts.items():
                parts[before[name]:] = parts[before[name]:][::-1]
            self.uses[used:] = self.uses[used:][::-1]

    def gradient(self, name: str) -> Sym:
        parts = self.parts[name]
        if not parts:
            return fn("zeros_like", self.var(name))
        total = parts[0]
        for part in parts[1:]:
            total = add(total, part)
        return total


def safe_text(value: Sym) -> str | None:
    try:
        return value.text()
    except NoClosedForm:
        return None


def check_expression(text: str, model: Model, name: str) -> str | None:
    """Why `text` cannot stand in `expect` for param `name`, or None when it can."""
    if len(text) > MAX_LENGTH:
        return (f"the closed form is {len(text):,} characters long; expect takes at most {MAX_LENGTH:,} "
                f"(use --emit python)")
    shapes = {d.name: d.shape for d in model.decls}
    try:
        parsed = expr.parse(text, expr.Where(model.path, 1, 1), set(shapes), f"expect {name}")
        shape = parsed.shape(shapes)
    except Exception as exc:  # noqa: BLE001 - too deep or too long for the parser's limits
        return f"the closed form does not fit the expression language's limits ({exc}; depth <= {MAX_DEPTH})"
    if shape != shapes[name]:
        raise AssertionError(f"explain built a gradient of shape {shape} for {name} of shape {shapes[name]}")
    return None


# ----------------------------------------------------------------------------- the tables


def table_rows(model: Model, term: Term) -> list[LayerRow]:
    """The UFLDL table of a term, n_l first; symbolic entries in the spec's names."""
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
    zs = [walker.ref(term.input)]

    def step(layer: Layer, a_in: Sym) -> SymStep:
        if not KINDS[layer.kind].closed_form:
            raise _NoSymbols
        done = walker.layer_forward(layer, a_in)
        zs.append(done.z)
        return done

    try:
        network.walk_forward(term, zs[0], step)
    except _NoSymbols:
        pass
    return zs + [Var("—", (1, 1))] * (len(term.layers) + 1 - len(zs))


def _f_texts(walker: Walker, layer: Layer | None) -> tuple[str, str, Sym | None]:
    """f(z), f′(z) as text, and f′ as a symbol in the placeholder z (None for a row without one, like softmax)."""
    if layer is None:
        return "z", "1", num(1)
    z = Var("z", layer.out_shape)
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
    if fprime is None:  # softmax on top of another objective
        g = dJda or "1"
        return f"{scale}{a} • (g - sum({a} • g, axis=0)){m}, g = {g}"
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
        a = f"a{sup(level)}"
        return f"{a} • (g - sum({a} • g, axis=0)), g = {g}"
    return _hadamard(g, _at(fprime, level))


def _paren(text: str) -> str:
    return text if _simple(text) else f"({text})"


def _columns(term: Term) -> int:
    last = term.layers[-1].out_shape if term.layers else None
    return last[1] if last else 1


def _size(term: Term) -> int:
    last = term.layers[-1].out_shape if term.layers else (1, 1)
    return last[0] * last[1]


def objective_text(term: Term) -> str:
    """J_term in terms of a⁽ⁿˡ⁾, e.g. 'sum(a⁽⁵⁾)'."""
    level = len(term.layers) + 1
    shape = term.layers[-1].out_shape if term.layers else (1, 1)
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
        table = TermTable(term.index, term.input.label, objective_text(term),
                          term.coef.label if term.coef is not None else None, table_rows(model, term))
        structured = [layer for layer in term.layers if not KINDS[layer.kind].closed_form]
        if structured:
            table.note = f"{structured[0].label} is a {structured[0].kind} layer: no closed form in the expression language"
        terms.append(table)
    return Explanation(model.path, model.name, terms, closed.uses, params, notes)


def _params_of(term: Term, params: set[str]) -> list[str]:
    """Params a term reads anywhere, including inside a structured layer's options (a conv kernel)."""
    refs = [term.input, term.coef, term.objective.target] + [r for layer in term.layers for r in layer_refs(layer)]
    return [r.name for r in refs if r is not None and r.name in params]


# ----------------------------------------------------------------------------- --emit python


PRELUDE = '''import numpy as np


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax(z):
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)
'''


class PythonEmitter(Walker):
    """Every step bound to a variable: a standalone numpy function, backprop unrolled."""

    def __init__(self, model: Model):
        super().__init__(model)
        self.lines: list[str] = []
        reserved = {"np", "sigmoid", "softmax", "values", "J", "float"}  # names the generated code uses
        self.taken = {d.name for d in model.decls} | reserved
        self.local = {}
        for d in model.decls:
            clash = keyword.iskeyword(d.name) or d.name in reserved
            self.local[d.name] = self.fresh(d.name + "_") if clash else d.name
        self.grad = {name: self.fresh(f"grad_{name}") for name in model.param_names}
        self.prefix = ""

    def fresh(self, hint: str) -> str:
        name, n = hint, 1
        while name in self.taken or keyword.iskeyword(name):
            n += 1
            name = f"{hint}_{n}"
        self.taken.add(name)
        return name

    def code(self, value: Sym) -> str:
        return value.python(self.local)

    def bind(self, hint, value):
        if isinstance(value, (Var, Num)):
            return value
        name = self.fresh(self.prefix + hint)
        self.lines.append(f"    {name} = {self.code(value)}")
        self.local[name] = name
        return Var(name, value.shape)

    def contribute(self, ref, term, where, formula, value):
        self.lines.append(f"    {self.grad[ref.name]} += {self.code(value)}  # {where}: {formula}")

    def term_value(self, term, value):
        self.lines.append(f"    J = J + {self.code(value)}")

    def walk_term(self, term):
        self.prefix = f"t{term.index}_" if len(self.model.terms) > 1 else ""
        self.lines.append(f"    # term {term.index}: input {term.input.label}, objective {term.objective.label}"
                          + (f", coef {term.coef.label}" if term.coef is not None else ""))
        super().walk_term(term)


def emit_python(model: Model, function: str = "objective_and_gradients") -> str:
    """Source of a standalone numpy module computing J and every gradient of the spec."""
    emitter = PythonEmitter(model)
    body = [f'    """J and {{param: dJ/dparam}} for "{_doc(model.name)}"; values maps every param and data name to its matrix."""']
    for d in model.decls:
        body.append(f"    {emitter.local[d.name]} = np.asarray(values[{d.name!r}], dtype=float)")
    for name in model.param_names:
        body.append(f"    {emitter.grad[name]} = np.zeros_like({emitter.local[name]})")
    body.append("    J = 0.0")
    emitter.walk()
    body += emitter.lines
    grads = ", ".join(f"{name!r}: {emitter.grad[name]}" for name in model.param_names)
    body.append(f"    return float(np.sum(J)), {{{grads}}}")
    header = (f'"""{_doc(model.name)}: J and its gradients by backpropagation, unrolled.\n\n'
              f"Generated by `gradcheck explain --emit python {_doc(model.path)}`; needs only numpy.\n"
              f'"""\n\n')
    return header + PRELUDE + "\n\n" + f"def {function}(values):\n" + "\n".join(body) + "\n"


def _doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")
