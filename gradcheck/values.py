"""The numbers of a spec: each declared name drawn from its own seeded stream, or read from its literal."""

from __future__ import annotations

import zlib

import numpy as np

from .errors import SpecError
from .model import Decl, Model


def draw_values(model: Model) -> dict[str, np.ndarray]:
    """The numbers for every declared name; each name draws from its own seeded stream."""
    values = {}
    for decl in model.decls:
        try:
            with np.errstate(all="ignore"):
                value = make_value(decl, model.seed)
        except (OverflowError, ValueError) as exc:  # e.g. uniform over a range wider than a float
            raise decl_error(decl, model, f"cannot draw {decl.name} ({decl.init}): {exc}") from None
        if not np.all(np.isfinite(value)):
            options = ", ".join(f"{k} {v:g}" for k, v in decl.options)
            raise decl_error(decl, model, f"drawing {decl.name} ({decl.init}{': ' + options if options else ''}) "
                                           f"gives values that are not finite; use a smaller scale")
        if decl.symmetric:  # drawn entry by entry, then made symmetric: the point lies in the space checked
            value = (value + value.T) / 2
        values[decl.name] = value
    for name, expression in model.data_defines:  # data computed from data: what layers may read
        with np.errstate(all="ignore"):
            values[name] = expression.evaluate(values)
    return values


def decl_error(decl: Decl, model: Model, message: str) -> SpecError:
    if decl.place is None:
        return SpecError(message, model.path, 1, 1)
    return decl.place.error(message)


def make_value(decl: Decl, seed: int) -> np.ndarray:
    """One declared matrix; a name's stream depends only on (seed, name), so adding names keeps others."""
    if decl.literal is not None:
        return np.array(decl.literal, dtype=float).reshape(decl.shape)
    rng = np.random.default_rng([seed, zlib.crc32(decl.name.encode())])
    opt = dict(decl.options)
    rows, cols = decl.shape
    if decl.init == "normal":
        return rng.normal(opt["mean"], opt["std"], size=decl.shape)
    if decl.init == "uniform":
        return rng.uniform(opt["low"], opt["high"], size=decl.shape)
    if decl.init == "zeros":
        return np.zeros(decl.shape)
    if decl.init == "ones":
        return np.ones(decl.shape)
    if decl.init == "eye":
        return np.eye(rows, cols)
    if decl.init == "binary":
        return (rng.random(decl.shape) < opt["p"]).astype(float)
    if decl.init == "spd":  # Q diag(λ) Qᵀ: symmetric, eigenvalues in [low, high], condition number <= high / low
        q, _ = np.linalg.qr(rng.standard_normal(decl.shape))
        value = (q * rng.uniform(opt["low"], opt["high"], size=rows)) @ q.T
        return (value + value.T) / 2
    out = np.zeros(decl.shape)  # onehot: each column a random one-hot vector
    out[rng.integers(0, rows, size=cols), np.arange(cols)] = 1.0
    return out
