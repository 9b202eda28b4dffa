"""Located errors for checks that cannot give a verdict: NaN/Inf, non-analytic steps, stencils across edges.

Each names the param, entry and layer at fault, at its place in the spec file, so a refusal reads like
any other spec error rather than as a failed gradient.
"""

from __future__ import annotations

import numpy as np

from . import hazards, network, numeric
from .kinds import KINDS
from .errors import SpecError, TopOfFile
from .model import Model
from .merges import MERGES
from .results import Settings


def non_finite_error(model: Model, exc: network.NonFinite, values) -> SpecError:
    """Where the first NaN/Inf appeared and, re-run with numpy errors raised, which operation made it."""
    where = exc.where
    found = hazards.operation(model, values, where)
    backward = where is None and found is not None and found.where is not None
    if backward:
        where = found.where
    place = getattr(where, "place", None) or model.places.get("params")
    label = getattr(where, "label", None)
    at = f" in {label}" if label and hasattr(where, "index") else ""
    if backward:
        at = f" in the backward pass, in {label if hasattr(where, 'index') else 'the objective ' + label}"
    cause = exc.cause or (found.text if found else "log or sqrt of a negative, or overflow?")
    message = f"non-finite value (NaN or Inf) first appeared{at}: {exc.what} ({cause})"
    if place is None:
        return SpecError(message, model.path, 1, 1)
    return place.error(message)


def outside_domain_error(exc: network.OutsideDomain) -> SpecError:
    """A whole-matrix activation (or a merge) outside its domain at the spec's values, at that activation (merge)."""
    layer = exc.layer
    place = layer.place if exc.merge else (layer.activation.place or layer.place)
    return place.error(f"{layer.label}: {exc.what}; no gradient to check here (another seed or init, e.g. spd)")


def refuse_non_analytic(model: Model) -> None:
    """The complex step needs every operation to be holomorphic; name the first that is not."""
    for term in model.terms:
        for layer in term.layers:
            row = layer.activation.row
            if layer.merge is not None and not MERGES[layer.merge].analytic:
                raise layer.place.error(f"complex-step needs every operation to be analytic; the merge "
                                        f"{layer.merge} of {layer.label} is not: use --method central or richardson")
            if not KINDS[layer.kind].analytic:
                raise layer.place.error(f"complex-step needs every operation to be analytic; {layer.label} is a "
                                        f"{layer.kind} layer, which is not: use --method central or richardson")
            if not row.analytic:
                what = f"custom f = {layer.activation.f_text}" if row.name == "custom" else row.name
                place = layer.activation.place or layer.place
                raise place.error(f"complex-step needs every operation to be analytic; {what} in {layer.label} "
                                  f"is not: use --method central or richardson")


def refuse_unreliable_stencil(model: Model, values, name: str, index, settings: Settings) -> None:
    """An error naming param, entry and layer when the failing entry's stencil straddles a kink or domain edge."""
    if index is None:
        return
    found = hazards.stencil(model, values, name, tuple(index), settings.eps, settings.rtol, settings.method)
    if found:
        raise decl_place(model, name).error(found)


def require_usable_steps(model: Model, name: str, theta: np.ndarray, settings: Settings) -> None:
    """A real step so small that θ ± h rounds back to θ would divide by zero: say so, at the param."""
    if settings.method == "complex-step":  # an imaginary step never rounds into θ
        return
    h = numeric.steps(theta, settings.eps, settings.method)
    frozen = (theta + h) == theta
    if frozen.any():
        bad = tuple(int(i) for i in np.argwhere(frozen)[0])
        raise decl_place(model, name).error(
            f"the finite-difference step for {name}{list(bad)} rounds to nothing (θ = {theta[bad]:.6g}, step "
            f"{h[bad]:.2g}): eps is too small for float64; use eps >= 1e-12 or so")


def require_finite_estimate(model: Model, name: str, est: numeric.Estimate, values, settings: Settings) -> None:
    """A NaN/Inf numeric derivative: the layer the stencil left the domain in, else what probably happened."""
    bad = ~np.isfinite(est.values)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(est.entries[np.argmax(bad)]), values[name].shape))
        found = hazards.stencil(model, values, name, index, settings.eps, settings.rtol, settings.method)
        raise decl_place(model, name).error(found or (
            f"the numeric gradient of {name} at {list(index)} is not finite: moving {name} by the step "
            f"leaves the domain of an activation (log or sqrt near 0?) or overflows"))


def decl_place(model: Model, name: str):
    """Where param `name` is declared (the top of the file when the declaration has no place)."""
    decl = next(d for d in model.decls if d.name == name)
    return decl.place if decl.place is not None else TopOfFile(model.path)
