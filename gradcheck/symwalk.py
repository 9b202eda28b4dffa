"""The UFLDL backprop walk on symbols: each param's gradient in the spec's own names.

The walk is network.walk_forward / walk_backward with a symbolic step: z from the layer kind's
symbolic rows, a and f′ from the activation's row, ∂J/∂a and the fused δ from the loss's row.
Subclasses decide what a step becomes: inline (ClosedForm, one expression per param, what `explain`
prints and `expect` accepts) or bound to a variable (emit.PythonEmitter, a standalone numpy function).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import exprgrad, network
from .kinds import KINDS, no_closed_form
from .merges import MERGES
from .model import ActivationUse, Layer, Model, Objective, Ref, Term
from .symbolic import MAX_SYMBOLIC, NoClosedForm, Ones, Sym, Var, add, div, fn, from_expr, mul, num, reduce_to, t

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


def objective_value(obj: Objective, a: Sym, y: Sym | None, count=None) -> Sym:
    """J_term from the last activation; `count(a, axis)` writes a's size (a number unless told otherwise)."""
    return obj.row.sym_value(a, y, obj.reduce, count or _literal_count)


def _literal_count(a: Sym, axis: int | None) -> Sym:
    """a's number of columns (axis 1) or of entries (None), as a number fixed by the spec's shapes."""
    return num(a.shape[1] if axis == 1 else a.shape[0] * a.shape[1])


# ----------------------------------------------------------------------------- the walk


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


class Walker:
    """Backprop over a model's terms with symbols; subclasses decide what a step becomes."""

    def __init__(self, model: Model):
        self.model = model
        self.shapes = dict(model.shapes)  # defines of data too: layers may read them
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
        if ref.expression is not None:
            return from_expr(ref.expression.root, self.expression_env(ref))
        if ref.name is None:
            return num(ref.number)
        v = self.var(ref.name)
        return t(v) if ref.transposed else v

    def count(self, a: Sym, axis: int | None) -> Sym:
        """a's columns (axis 1) or entries (None): a number in the expression language (it has no cols())."""
        return _literal_count(a, axis)

    def ones_like(self, like: Sym) -> Sym:
        """Ones of like's shape, written with the shortest declared name of that shape if there is one."""
        for name, shape in self.shapes.items():
            if shape == like.shape and shape != (1, 1):
                return Ones(self.var(name))
        return Ones(like)

    def input_text(self, term: Term, layer: Layer) -> str:
        """How a gradient's formula names a layer's input: a⁽ˡ⁾ in a chain, what the layer reads in a network."""
        if term.chain:
            return f"a{sup(layer.index)}"
        return layer.reads if layer.merge is None else f"({layer.reads})"
    def expression_env(self, ref: Ref) -> dict:
        """The symbols an expression use reads: each name as itself, I as eye(n)."""
        env = {name: self.var(name) for name in ref.reads}
        return {**env, "I": fn("eye", num(ref.identity))} if ref.identity else env

    def uses_param(self, ref: Ref | None) -> bool:
        return ref is not None and (ref.name in self.params or bool(ref.params))

    def give(self, ref: Ref | None, term: Term, where: str, formula: str, value: Sym) -> None:
        """Reduce a contribution to the use's shape, transpose it back for `.T` uses, and hand it on (through an
        expression use's own backward pass to each param it reads)."""
        if not self.uses_param(ref):
            return
        if ref.params:
            ops = exprgrad.SymbolOps(self.expression_env(ref))
            g = reduce_to(value, ops.shape(ref.expression.root))
            exprgrad.backward(ref.expression.root, g, set(ref.params), ops,
                              lambda name, piece: self.contribute(Ref(name), term, where, formula, piece))
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
            raise NoClosedForm(no_closed_form(structured[0]))
        ops = self.ops()
        steps, a = network.walk_forward(term, ops, self.layer_forward)
        obj = term.objective
        y = self.ref(obj.target) if obj.target is not None else None
        coef = self.ref(term.coef) if term.coef is not None else None
        value = objective_value(obj, a, y, self.count)
        self.term_value(term, value if coef is None else mul(coef, value))
        if self.uses_param(term.coef):
            self.give(term.coef, term, f"coef {term.coef.label}", f"J{_sub(term.index)}", value)

        def scaled(x: Sym) -> Sym:
            x = x if coef is None else mul(coef, x)
            return div(x, self.count(a, 1)) if obj.reduce == "mean" and obj.target is not None else x

        if self.uses_param(obj.target):
            self.give(obj.target, term, f"target {obj.target.label} of the objective",
                      f"∂J/∂{obj.target.label}", scaled(obj.row.sym_grad_y(a, y)))

        def layer_backward(step: SymStep, g, below: bool):
            top = g is None  # δ and ∂a/∂c are linear in g: the coef and 1/m go outside, where they read best
            g_here = obj.row.sym_grad_a(step.a, y, self.ones_like, self.count) if top else g
            delta = self.top_delta(step, obj, y, scaled) if top else self.delta(step, g)
            delta = self.bind(f"delta{step.layer.index + 1}", delta)
            use = step.layer.activation
            if use.argument is not None and self.uses_param(use.argument):
                grad = use.row.argument.sym_grad(g_here, step.z, step.a, step.c)
                self.give(use.argument, term, f"argument {use.argument.label} of f{sup(step.layer.index + 1)}",
                          f"Σ ∂J/∂a{sup(step.layer.index + 1)} • ∂f/∂c", scaled(grad) if top else grad)
            reads_param = any(self.uses_param(r) for r in step.layer.inputs)
            return KINDS[step.layer.kind].sym_backward(self, term, step.layer, step.a_in, delta, below or reads_param)

        def leaf(ref: Ref, g):
            if g is None:  # no layers: J is the objective of the input itself
                g = scaled(obj.row.sym_grad_a(a, y, self.ones_like, self.count))
            if ref is term.input:
                formula = f"δ{sup(1)}" + ("ᵀ" if ref.transposed else "")
                self.give(ref, term, f"input {ref.label}", formula, g)
                return
            reader = next(l for l in term.layers if any(r is ref for r in l.inputs))
            self.give(ref, term, f"input {ref.label} of layer {reader.index}", self.share(reader, ref), g)

        network.walk_backward(term, steps, None, ops, layer_backward, leaf)

    def ops(self) -> network.Ops:
        """The walk on symbols: names as variables, merges by their rows' symbols."""
        return network.Ops(self.ref, t, add, lambda layer, xs: MERGES[layer.merge].sym_forward(xs, layer.merge_options),
                           lambda layer, g, xs, merged: MERGES[layer.merge].sym_backward(g, xs, merged,
                                                                                      layer.merge_options))

    def share(self, layer: Layer, ref: Ref) -> str:
        """How explain writes the δ a layer hands one of its inputs (its merge row's words)."""
        delta = f"δ{sup(layer.index)}ᵢₙ"
        if layer.merge is None:
            return delta
        labels = [r.label for r in layer.inputs]
        i = next(k for k, r in enumerate(layer.inputs) if r is ref)
        return MERGES[layer.merge].formula(delta, labels, i)

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
        return scaled(self.delta(step, obj.row.sym_grad_a(step.a, y, self.ones_like, self.count)))

    def is_onehot(self, target: Ref | None) -> bool:
        """Whether the target's columns each sum to 1 (a one-hot init, not transposed)."""
        return target is not None and target.name in self.onehot and not target.transposed

    def delta(self, step: "SymStep", g: Sym) -> Sym:
        """δ = g • f′(z); a row that mixes entries gives its own δ (softmax: a • (g − Σ_column a • g); logdet: g • inv(z).T)."""
        row = step.layer.activation.row
        if row.sym_vjp is not None:
            return row.sym_vjp(g, step.z, step.a, step.c)
        return mul(g, derivative(step.layer.activation, step.z, step.c))


@dataclass
class SymStep:
    """One layer of the symbolic walk: its input, z, a and the activation's argument."""

    layer: Layer
    a_in: Sym
    z: Sym
    a: Sym
    c: object
    inputs: list = None  # what the layer read, before its merge (set by the walk)


def _sub(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


# ----------------------------------------------------------------------------- closed form


_STEP_NAMES = {"z": "its input z", "a": "its output a", "delta": "its error signal δ"}


class ClosedForm(Walker):
    """Every step inline: each param's gradient as one expression in the spec's names."""

    def __init__(self, model: Model):
        super().__init__(model)
        self.parts: dict[str, list[Sym]] = {name: [] for name in model.param_names}
        self.uses: list[Use] = []
        self.term: Term | None = None

    def bind(self, hint: str, value: Sym) -> Sym:
        """Inline, within MAX_SYMBOLIC printed nodes (checked before anything is printed)."""
        if value.size > MAX_SYMBOLIC:
            raise NoClosedForm(self.too_large(hint, value.size))
        return value

    def too_large(self, hint: str, size: int) -> str:
        """Which layer's step outgrew the symbolic budget, and where that layer is written."""
        kind = hint.rstrip("0123456789")
        number = int(hint[len(kind):] or 0)
        layer = next((l for l in (self.term.layers if self.term else ()) if l.index + 1 == number), None)
        where = (f"{layer.label} ({layer.place.file}:{layer.place.line}:{layer.place.col})" if layer
                 else f"layer {number - 1}")
        return (f"in closed form, {_STEP_NAMES.get(kind, hint)} of {where} would print "
                f"{size:,} nodes; explain stops at {MAX_SYMBOLIC:,} (each layer repeats the one below: "
                f"`explain --emit python` writes it step by step)")

    def contribute(self, ref, term, where, formula, value):
        self.parts[ref.name].append(value)
        self.uses.append(Use(ref.name, term.index, where, formula, safe_text(value)))

    def walk_term(self, term):
        """Walk one term, then put its uses in layer order (the walk goes top down; UFLDL sums bottom up)."""
        before = {name: len(parts) for name, parts in self.parts.items()}
        used = len(self.uses)
        self.term = term
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
        if total.size > MAX_SYMBOLIC:
            raise NoClosedForm(f"the gradient of {name} would print {total.size:,} nodes in closed form; explain "
                               f"stops at {MAX_SYMBOLIC:,} (`explain --emit python` writes it step by step)")
        return total


def safe_text(value: Sym) -> str | None:
    try:
        return value.text()
    except NoClosedForm:
        return None
