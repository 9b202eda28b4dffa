"""Fast mode's joint directions: one random direction across every param at a time, d/dt J(θ + t·v) once per direction.

Each param p draws its own components v_p (the same seeded stream a per-param check draws from, mirrored for a
symmetric param), scaled by max(1, max|θ_p|) so that p moves by the step a per-param check would give it. Along
v = (v_p for every p) the numeric derivative n (with its error e, numeric.directional) is estimated once, and
backprop's value is A = Σ_p a_p with a_p = ⟨G_p, v_p⟩.

Per param, the joint value is read as p's own: analytic a_p against the numeric share n − (A − a_p), which is
the per-param derivative whenever the other params' backprop is right. The share's mismatch is the joint
mismatch n − A, so each param is judged against the same number at its own tolerance (gradcheck.verdict's
rule, with the joint error e as the floor). A param is vouched for only where the joint value resolves it: e
below rtol·|a_p| (or atol), so that a small param's error is not hidden in the noise of the large ones.
An `expect` E_p is read the same way: ⟨E_p, v_p⟩ against the same share (sound once backprop passes).

What the joint directions cannot settle falls back to the per-param check (check.py): every param when the
joint comparison fails or a step crossed a kink or left a domain (the mismatch is then not attributed), and
otherwise only the params the joint value does not resolve or whose expect disagrees.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from . import numeric, symmetric
from .options import FAST_DIRECTIONS
from .perturb_joint import along_joint
from .verdict import Comparison, compare


class Side:
    """What fast mode compares for one param: its analytic sides, in its own space, and its stream of directions."""

    def __init__(self, name: str, theta: np.ndarray, mirrored: bool, backprop: np.ndarray, expect, seed: int,
                 broken_expect: bool = False, bound=None):
        """`mirrored`: a symmetric param, its analytic sides G + Gᵀ − diag(G), dotted with symmetric.weights(v);
        `expect`: a comparable expect (right shape, finite) or None; `broken_expect`: one that cannot be compared
        (the per-param check reports it); `bound`: a function making backprop's round-off per entry
        (gradcheck.roundoff), called only where the joint comparison fails without it; None: none."""
        self.name, self.theta, self.mirrored, self.seed = name, theta, mirrored, seed
        self.bound = bound
        self.backprop, self.expect, self.broken_expect = backprop, expect, broken_expect
        self.directions = directions(name, theta.shape, mirrored, seed)
        # max(1, max|θ|): the step along v_p is eps times this, as in a per-param check
        self.scale = max(1.0, float(np.max(np.abs(theta)))) if theta.size else 1.0

    def move(self, v: np.ndarray) -> np.ndarray:
        """u_p: the param's component v_p times its scale (no copy when the scale is 1)."""
        return v if self.scale == 1.0 else self.scale * v

    def dot(self, analytic: np.ndarray, v: np.ndarray) -> float:
        """⟨analytic, u_p⟩ for the component v_p, the step's scale included."""
        weights = symmetric.weights(v) if self.mirrored else v
        return self.scale * float(np.dot(analytic.reshape(-1), weights.reshape(-1)))

    def rounding(self) -> np.ndarray:
        """The round-off of backprop's ⟨G, u_p⟩ along each direction (`rounding`, times the step's scale)."""
        if self.bound is None:
            return np.zeros(FAST_DIRECTIONS)
        return self.scale * rounding(self.bound(), self.name, self.theta.shape, self.mirrored, self.seed)


def rounding(bound: np.ndarray, name: str, shape, mirrored: bool, seed) -> np.ndarray:
    """Backprop's round-off along each of a param's directions, ⟨b, |v|⟩ with b its round-off per entry (the same
    seeded draws again: measured only where a comparison fails without it)."""
    b = bound.reshape(-1)
    return np.array([float(np.dot(b, np.abs(symmetric.weights(v) if mirrored else v).reshape(-1)))
                     for v in directions(name, shape, mirrored, seed)])


def directions(name: str, shape, mirrored: bool, seed: int):
    """A param's FAST_DIRECTIONS random directions, drawn one at a time from its own seeded stream (uniform, max |v|
    ≤ 1: 3× cheaper than normals at N = 1e6), so that only one is held at a time."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 2])
    for _ in range(FAST_DIRECTIONS):
        v = rng.uniform(-1.0, 1.0, shape)
        yield symmetric.direction(v) if mirrored else v


def joint(model, values, traces, sides: list[Side], settings) -> dict:
    """name -> (backprop, expect) comparisons for every param the joint directions vouch for; the rest are left out."""
    if not sides:
        return {}
    n, e = [], []
    shares = {s.name: [] for s in sides}  # a_p = ⟨G_p, u_p⟩ per direction
    expects = {s.name: [] for s in sides if s.expect is not None}  # ⟨E_p, u_p⟩
    for _ in range(FAST_DIRECTIONS):
        drawn = {s.name: next(s.directions) for s in sides}  # one joint direction held at a time
        moves = {s.name: s.move(drawn[s.name]) for s in sides}
        crossed = []

        def along(ts, moves=moves, crossed=crossed):
            dJ, cross, size = along_joint(model, values, traces, moves, ts)
            crossed.append(bool(np.any(cross)))
            return dJ, size

        value, error = numeric.directional(along, 0.0, settings.method, settings.eps)  # h = eps: scales are in u
        if any(crossed) or not (np.isfinite(value) and np.isfinite(error)):
            return {}  # a kink or a domain edge within the steps: the per-param checks judge
        n.append(value)
        e.append(error)
        for s in sides:
            shares[s.name].append(s.dot(s.backprop, drawn[s.name]))
            if s.expect is not None:
                expects[s.name].append(s.dot(s.expect, drawn[s.name]))
    n, e = np.array(n), np.array(e)
    shares = {name: np.array(a) for name, a in shares.items()}
    total = sum(shares.values())

    def judged(error):
        """Each param's (backprop, expect or None) comparison with its share, at the joint error `error`."""
        return {s.name: (_judge(shares[s.name], n - (total - shares[s.name]), error, settings),
                         None if s.expect is None else
                         _judge(np.array(expects[s.name]), n - (total - shares[s.name]), error, settings)[0])
                for s in sides}

    verdicts = judged(e)
    if not all(b.passed and (x is None or x.passed) for (b, _), x in verdicts.values()):
        # every param's backprop enters each share (n less the others' ⟨G, u⟩): its round-off joins the joint
        # error, measured only now (backward passes) that a comparison fails without it
        verdicts = judged(e + sum(s.rounding() for s in sides))
    if not all(b.passed for (b, _), _ in verdicts.values()):
        return {}  # backprop disagrees with the joint derivative: which param is wrong, only per-param checks tell
    found = {}
    for s in sides:
        (backprop, resolved), expect = verdicts[s.name]
        if resolved and not s.broken_expect and (expect is None or expect.passed):
            found[s.name] = (backprop, expect)
    return found


def _judge(analytic: np.ndarray, share: np.ndarray, error: np.ndarray, settings) -> tuple[Comparison, bool]:
    """(the verdict's comparison of a_p with its numeric share, whether the joint error e resolves p: e at most
    rtol·max(|a_p|, |share|), or atol)."""
    c = replace(compare(analytic, share, settings.rtol, settings.atol, error), worst_index=None)
    resolved = bool(np.all(error <= np.maximum(settings.rtol * np.maximum(np.abs(analytic), np.abs(share)),
                                               settings.atol)))
    return c, resolved


def note(count: int) -> str:
    """What a param vouched for by the joint directions says."""
    if count == 1:  # the joint direction is the param's own
        return f"fast mode: {FAST_DIRECTIONS} random directions of the spec's only param"
    return (f"fast mode: {FAST_DIRECTIONS} joint random directions across all {count} params (one derivative "
            f"of J per direction for all of them); analytic ⟨G, v⟩ of this param, numeric d/dt J(θ + t·v) less "
            f"the other params' backprop ⟨G, v⟩")
