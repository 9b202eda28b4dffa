"""Single-head scaled dot-product attention over the columns of its input (one column per token).

Q = Wq X, K = Wk X, V = Wv X; S = KᵀQ/√d_k (S[s, t]: key s against query t); A = softmax of each column of S
(over the keys), with keys after the query masked out when causal; z = V A. The columns are one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import cancelled_terms, top_distance
from ..model import Layer, Ref
from ..nodes import place_of
from ..shapes import Shape, fmt_shape
from ..trace import LayerTrace, accumulate, activate, activation_backward
from ..yamlsrc import Node
from .common import kind_options, tr

KEYS = ("query", "key", "value", "causal")
REWEIGHT_LIMIT = 300.0  # |Δs| up to which A ⊙ e^Δs stays finite and its column sums above 0 (max A ≥ 1/T)


@dataclass(frozen=True)
class AttentionOptions:
    """The three projections (d_k, d), (d_k, d), (d_v, d) and whether a query sees only keys up to itself."""

    query: Ref
    key: Ref
    value: Ref
    causal: bool
    width: int  # d_k, the rows of a query and of a key

    patch_rows = 1  # a moved value-projection entry moves one row of z

    @property
    def label_parts(self) -> list[str]:
        return [self.query.label, self.key.label, self.value.label] + (["causal"] if self.causal else [])


class Attention:
    """z = V softmax(KᵀQ/√d_k) with Q, K, V projections of the input; backward through the softmax's Jacobian."""

    key = "attention"
    standard = ("δ = ∂J/∂z; dV = δ Aᵀ, dA = Vᵀ δ, dS = A ∘ (dA − 1 (1ᵀ(A ∘ dA))) column by column, "
                "dQ = K dS / √d_k, dK = Q dSᵀ / √d_k; ∂J/∂Wq = dQ Xᵀ, ∂J/∂Wk = dK Xᵀ, ∂J/∂Wv = dV Xᵀ, "
                "∂J/∂X = Wqᵀ dQ + Wkᵀ dK + Wvᵀ dV")
    schema = {"type": "object", "additionalProperties": False, "required": ["query", "key", "value"],
              "description": "Single head over the columns (tokens): z = Wv X softmax((Wk X)ᵀ(Wq X)/√d_k), softmax "
                             "over keys; causal masks keys after each query.",
              "properties": {"query": {"$ref": "#/$defs/transposableName"},
                             "key": {"$ref": "#/$defs/transposableName"},
                             "value": {"$ref": "#/$defs/transposableName"}, "causal": {"type": "boolean"}}}
    analytic = True  # exp and products; the max subtracted for stability is a constant of the softmax
    row_patch = False  # every output entry reads every token

    @staticmethod
    def patch(layer: Layer, lt: LayerTrace, ref: Ref, rows, cols, delta, values):
        """(rows (B,), new z (B, T)) when entry (i, j) of the value projection moves by δ: V's row i moves by
        δ·x_j, so z = V A moves in row i alone, by δ·(x_j A). None for the query and key projections."""
        opt = layer.options
        if ref is not opt.value or ref is opt.query or ref is opt.key:
            return None
        i, j = (cols, rows) if ref.transposed else (rows, cols)
        return i, lt.z[i] + np.asarray(delta)[:, None] * (lt.a_in[j] @ lt.cache["weights"])

    @staticmethod
    def moved(layer: Layer, a_in, values, refs, rows, cols, delta) -> LayerTrace | None:
        """The batched forward with entry (rows[b], cols[b]) of a projection moved by delta[b] in member b: the base
        projections once (one product over the whole batch when the input is batched), plus the moved entry's own
        term δ·x_j in row i; the scores, softmax and z = V A per member."""
        opt, delta = layer.options, np.asarray(delta)
        if any(r is not opt.query and r is not opt.key and r is not opt.value for r in refs):
            return None
        if a_in.ndim == 2 and len(refs) == 1 and (refs[0] is opt.query or refs[0] is opt.key):
            return _moved_scores(layer, a_in, values, refs[0], rows, cols, delta)
        batch, dtype = np.arange(len(rows)), np.result_type(delta, a_in, float)
        projected = {}
        for role in ("query", "key", "value"):
            ref = getattr(opt, role)
            p = np.matmul(ref.value(values), a_in)  # the base projection: shared unless the input is batched
            if any(r is ref for r in refs):  # only a moved projection is copied per member
                p = np.broadcast_to(p, (len(rows),) + p.shape[-2:]).astype(dtype)
                i, j = (cols, rows) if ref.transposed else (rows, cols)
                p[batch, i] += delta[:, None] * (a_in[j] if a_in.ndim == 2 else a_in[batch, j])
            projected[role] = p
        return _attend(layer, a_in, values, projected["query"], projected["key"], projected["value"])

    @staticmethod
    def moved_numbers(layer: Layer, refs, shared_input: bool) -> int | None:
        """Numbers one perturbation of its one use holds in `moved` at the layer's first use, beside its z (counted by the
        caller with the loss's temporaries): a moved query or key entry's weights, token × token (the plain softmax,
        should a step be too large to reweight, takes a quarter of the batch at a time). None where `patch` or the
        dense route runs."""
        opt, ref = layer.options, refs[0]
        if len(refs) != 1 or not shared_input or ref.expression is not None or \
                (ref is not opt.query and ref is not opt.key) or ref is opt.value:
            return None
        tokens = layer.in_shape[1]
        return tokens * tokens + tokens
    fusable = True
    closed_form = False
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        """{attention: {query: Wq, key: Wk, value: Wv, causal: false}, activation: f}."""
        options = kind_options("attention", index, mapping, KEYS, required=("query", "key", "value"))
        refs = {}
        for role in ("query", "key", "value"):
            ref = b.ref(options[role], f"the {role} projection of layer {index}", allow_transpose=True)
            shape = b.ref_shape(ref)
            if shape[1] != in_shape[0]:
                raise options[role].error(
                    f"shape mismatch in layer {index}: {role} projection {ref.label} has shape {fmt_shape(shape)} "
                    f"but the layer's input has shape {fmt_shape(in_shape)} ({shape[1]} columns against "
                    f"{in_shape[0]} rows)")
            refs[role] = ref
        q_rows, k_rows = b.ref_shape(refs["query"])[0], b.ref_shape(refs["key"])[0]
        if q_rows != k_rows:
            raise options["key"].error(f"shape mismatch in layer {index}: key projection {refs['key'].label} gives "
                                       f"{k_rows} rows but query projection {refs['query'].label} gives {q_rows}; "
                                       f"queries and keys are compared by a dot product")
        causal = False
        if "causal" in options:
            causal = options["causal"].value
            if not isinstance(causal, bool):
                raise options["causal"].error(f"causal of layer {index} must be true or false")
        tokens = in_shape[1]
        out_shape = (b.ref_shape(refs["value"])[0], tokens)
        b.check_work(mapping["attention"], f"the attention of layer {index} holds", 3 * tokens * tokens,
                     "numbers (scores and weights, token × token)")
        activation = b.activation(mapping.get("activation"), index, out_shape)
        opt = AttentionOptions(refs["query"], refs["key"], refs["value"], causal, q_rows)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "attention", opt)

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        q = np.matmul(opt.query.value(values), a_in)
        k = np.matmul(opt.key.value(values), a_in)
        v = np.matmul(opt.value.value(values), a_in)
        return _attend(layer, a_in, values, q, k, v)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """dV = δAᵀ; dA = Vᵀδ; dS = A ⊙ (dA − 1(1ᵀ(A ⊙ dA))) per column; dQ = K dS/√d_k, dK = Q dSᵀ/√d_k."""
        opt, c = lt.layer.options, lt.cache
        delta = activation_backward(lt, g, grads)
        weights, root = c["weights"], np.sqrt(c["q"].shape[-2])
        d_weights = tr(c["v"]) @ delta
        d_scores = weights * (d_weights - np.sum(weights * d_weights, axis=-2, keepdims=True))
        dq, dk, dv = c["k"] @ d_scores / root, c["q"] @ tr(d_scores) / root, delta @ tr(weights)
        x_t = tr(lt.a_in)
        accumulate(grads, opt.query, dq @ x_t)
        accumulate(grads, opt.key, dk @ x_t)
        accumulate(grads, opt.value, dv @ x_t)
        g_in = tr(opt.query.value(values)) @ dq + tr(opt.key.value(values)) @ dk + tr(opt.value.value(values)) @ dv
        return g_in, delta

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """Q, K, V, the scores, their exponentials and weights, z and a."""
        opt, t, dv = layer.options, layer.in_shape[1], layer.out_shape[0]
        return 3 * t * t + (2 * opt.width + 3 * dv) * t


def _attend(layer: Layer, a_in, values, q, k, v) -> LayerTrace:
    """z = V softmax(KᵀQ/√d_k) from the projections, with its imag_noise for an imaginary step."""
    scores = tr(k) @ q / np.sqrt(q.shape[-2])
    weights = softmax_keys(scores, layer.options.causal)
    z = v @ weights
    if not np.iscomplexobj(z):
        return activate(layer, a_in, z, values, q=q, k=k, v=v, weights=weights)
    spread_imag = np.abs(np.imag(scores)) * _spread(np.real(scores), layer.options.causal)
    noise = imag_noise(v, np.real(weights), spread_imag)
    return activate(layer, a_in, z, values, q=q, k=k, v=v, weights=weights, imag_noise=noise)


def imag_noise(v, weights, spread_imag):
    """Per entry of z = V A after an imaginary step, Σ|Im| of the terms summed into it (imag_noise.py): the softmax's
    cancelled terms (activations.cancelled_terms; `weights` A's real parts) through |V|, and Im V's through A."""
    terms, column = cancelled_terms(weights, spread_imag)
    av = np.abs(np.real(v))
    noise = av @ terms + (av @ weights) * column  # |V| (terms + A ⊙ column), without a second keys × queries array
    return noise + np.abs(np.imag(v)) @ weights if np.iscomplexobj(v) else noise


def _spread(scores, causal: bool):
    """1 + |s − top| per (real) score, top the largest its query sees; 0 where a causal key is masked."""
    if not causal:
        return top_distance(scores)
    allowed = _allowed(scores.shape[-1])
    top = np.max(np.where(allowed, scores, -np.inf), axis=-2, keepdims=True)
    return np.where(allowed, top_distance(scores, top), 0.0)


def _allowed(tokens: int) -> np.ndarray:
    """allowed[s, t]: key s ≤ query t, what a causal query sees."""
    return np.tril(np.ones((tokens, tokens), dtype=bool)).T


def softmax_keys(scores, causal: bool):
    """Softmax of each column (over the keys); causal: key s > query t gets weight 0, never exp of −inf."""
    if causal:
        allowed = _allowed(scores.shape[-1])
        top = np.max(np.where(allowed, scores.real, -np.inf), axis=-2, keepdims=True)
        e = np.exp(np.where(allowed, scores - top, 0.0)) * allowed
    else:
        e = np.exp(scores - np.max(scores.real, axis=-2, keepdims=True))
    return e / np.sum(e, axis=-2, keepdims=True)


def _moved_scores(layer: Layer, a_in, values, ref: Ref, rows, cols, delta) -> LayerTrace:
    """One entry (i, j) of the query (or key) projection moved, the input shared: the scores move by a rank-1 term,
    Δs = δ/√d_k · u ⊗ w with u = K[i, :] over the keys and w = x_j over the queries (a key: u = x_j, w = Q[i, :]).
    So each query's weights are the base's reweighted, A' = A ⊙ e^Δs / Σ_keys A ⊙ e^Δs (a masked key keeps weight 0;
    no maximum to subtract while |Δs| stays small), and z = V A' one small product a member."""
    opt = layer.options
    q, k, v = (np.matmul(r.value(values), a_in) for r in (opt.query, opt.key, opt.value))
    root = np.sqrt(q.shape[-2])
    i, j = (cols, rows) if ref.transposed else (rows, cols)
    u, w = (k[i], a_in[j]) if ref is opt.query else (a_in[j], q[i])  # (B, T) each
    step = (np.asarray(delta) / root)[:, None] * u
    if np.max(np.abs(step.real), initial=0.0) * np.max(np.abs(w), initial=0.0) > REWEIGHT_LIMIT:
        return _moved_scores_plain(layer, a_in, values, q, k, v, u, w, step)
    e = step[:, :, None] * w[:, None, :]  # (B, keys, queries)
    np.exp(e, out=e)
    scores = tr(k) @ q / root
    weights = softmax_keys(scores, opt.causal)
    e *= weights
    e /= np.sum(e, axis=1, keepdims=True)
    if not np.iscomplexobj(e):
        return activate(layer, a_in, np.matmul(v, e), values)
    # an imaginary step (never the plain route: its real part is 0) moves Im s by Im(step) ⊗ w alone
    spread_imag = np.abs(step.imag)[:, :, None] * np.abs(w)[:, None, :]
    spread_imag *= _spread(scores, opt.causal)
    return activate(layer, a_in, np.matmul(v, e), values, imag_noise=imag_noise(v, weights, spread_imag))


def _moved_scores_plain(layer: Layer, a_in, values, q, k, v, u, w, step) -> LayerTrace:
    """The same, for a step too large to reweight the base without overflow: each member's softmax from its scores,
    a quarter of the batch at a time (moved_numbers counts one token × token array a member)."""
    base, causal = tr(k) @ q / np.sqrt(q.shape[-2]), layer.options.causal
    z = np.empty((len(step),) + v.shape, dtype=np.result_type(step, v))
    for part in np.array_split(np.arange(len(step)), min(4, len(step))):
        z[part] = np.matmul(v, softmax_keys(base + step[part, :, None] * w[part, None, :], causal))
    return activate(layer, a_in, z, values)
