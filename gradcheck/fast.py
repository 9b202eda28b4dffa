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

import functools
import zlib
from dataclasses import dataclass, replace

import numpy as np

from . import numeric, symmetric
from .options import FAST_DIRECTIONS
from .perturb_joint import along_joint
from .verdict import Comparison, compare


@dataclass(frozen=True)
class Side:
    """What fast mode compares for one param: its unit directions and analytic sides, in its own space."""

    name: str
    theta: np.ndarray
    directions: list  # FAST_DIRECTIONS arrays of the param's shape (symmetric for a symmetric param)
    mirrored: bool  # a symmetric param: its analytic sides are G + Gᵀ − diag(G), dotted with symmetric.weights(v)
    backprop: np.ndarray
    expect: np.ndarray | None  # a comparable expect (right shape, finite), else None
    broken_expect: bool = False  # an expect that cannot be compared: the per-param check reports it

    @functools.cached_property
    def scale(self) -> float:
        """max(1, max|θ|): the step along v_p is eps times this, as in a per-param check."""
        return max(1.0, float(np.max(np.abs(self.theta)))) if self.theta.size else 1.0

    def move(self, k: int) -> np.ndarray:
        """u_p of joint direction k: v_p times the param's scale (no copy when the scale is 1)."""
        return self.directions[k] if self.scale == 1.0 else self.scale * self.directions[k]

    def dot(self, analytic: np.ndarray, k: int) -> float:
        """⟨analytic, v_p⟩ along direction k, the step's scale included."""
        v = self.directions[k]
        weights = symmetric.weights(v) if self.mirrored else v
        return self.scale * float(np.dot(analytic.reshape(-1), weights.reshape(-1)))


def directions(name: str, shape, mirrored: bool, seed: int) -> list:
    """A param's FAST_DIRECTIONS random directions, from its own seeded stream (uniform: 3× cheaper than normals)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 2])
    drawn = [rng.uniform(-1.0, 1.0, shape) for _ in range(FAST_DIRECTIONS)]
    return [symmetric.direction(v) for v in drawn] if mirrored else drawn


def evaluations(method: str) -> int:
    """Evaluations of J the joint directions make, whatever the number of params."""
    return FAST_DIRECTIONS * numeric.directional_evaluations(method)


def joint(model, values, traces, sides: list[Side], settings) -> dict:
    """name -> (backprop, expect) comparisons for every param the joint directions vouch for; the rest are left out."""
    if not sides:
        return {}
    n, e = [], []
    for k in range(FAST_DIRECTIONS):
        moves = {s.name: s.move(k) for s in sides}
        crossed = []

        def along(ts, moves=moves, crossed=crossed):
            dJ, cross, size = along_joint(model, values, traces, moves, ts)
            crossed.append(bool(np.any(cross)))
            return dJ, size

        value, error = numeric.directional(along, 0.0, settings.method, settings.eps)  # h = eps: scales are in v
        if any(crossed) or not (np.isfinite(value) and np.isfinite(error)):
            return {}  # a kink or a domain edge within the steps: the per-param checks judge
        n.append(value)
        e.append(error)
    n, e = np.array(n), np.array(e)
    shares = {s.name: np.array([s.dot(s.backprop, k) for k in range(FAST_DIRECTIONS)]) for s in sides}
    total = sum(shares.values())
    backprop = {name: _judge(a, n - (total - a), e, settings) for name, a in shares.items()}
    if not all(c.passed for c, _ in backprop.values()):
        return {}  # backprop disagrees with the joint derivative: which param is wrong, only per-param checks tell
    found = {}
    for s in sides:
        comparison, resolved = backprop[s.name]
        if not resolved or s.broken_expect:
            continue
        expect = None
        if s.expect is not None:
            expect, _ = _judge(np.array([s.dot(s.expect, k) for k in range(FAST_DIRECTIONS)]),
                               n - (total - shares[s.name]), e, settings)
            if not expect.passed:
                continue
        found[s.name] = (comparison, expect)
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
    return (f"fast mode: {FAST_DIRECTIONS} joint random directions across all {count} params (one derivative "
            f"of J per direction for all of them); analytic ⟨G, v⟩ of this param, numeric d/dt J(θ + t·v) less "
            f"the other params' backprop ⟨G, v⟩")
