"""Load the second-order sections of a spec: `hessian:` and `hvp:` formulas, each a located error when wrong.

`hessian: {p: ...}` is for a column-vector param p (n×1): an n×n formula for ∂²J/∂p². `hvp: {p: ...}` is for
any param: H·V for a direction V of p's shape, written with the name V, which exists only there.
"""

from __future__ import annotations

from .errors import SpecError, excerpt
from .expr import Expression
from .model import SecondFormula
from .nodes import expect_mapping, place_of
from .shapes import fmt_shape
from .suggest import did_you_mean

SECTIONS = ("hessian", "hvp")
DIRECTION = "V"  # the direction of an hvp formula
DIRECTIONS = 2  # random directions V per hvp formula (gradcheck.second draws them)
GRADIENT_EVALUATIONS = 3  # one backprop gradient costs about a forward and a backward pass: ~3 evaluations of J


def probes(formula: SecondFormula, shape) -> int:
    """Directions a formula's gradients are differenced along: n unit columns for a Hessian, else DIRECTIONS."""
    return int(shape[0]) if formula.section == "hessian" else DIRECTIONS


def compared_numbers(formula: SecondFormula, shape) -> int:
    """Entries a formula is compared at, per direction: n² for a Hessian, the param's size for H·V."""
    return int(shape[0]) ** 2 if formula.section == "hessian" else int(shape[0]) * int(shape[1])


def second_formulas(loader) -> tuple[SecondFormula, ...]:
    """Every hessian and hvp formula, in file order within each section (after define, so defines are known)."""
    out = []
    for section in SECTIONS:
        if section not in loader.top:
            continue
        for name, node in expect_mapping(loader.top[section], section).items():
            out.append(_formula(loader, section, name, node))
    return tuple(out)


def _formula(loader, section: str, name: str, node) -> SecondFormula:
    shape = _param_shape(loader, section, name, node)
    known, shapes = set(loader.shapes), dict(loader.shapes)
    if section == "hvp":
        if DIRECTION in loader.shapes:
            raise node.key_error(f'hvp: "{DIRECTION}" names the direction of an hvp formula, but the spec declares '
                                 f'{DIRECTION} under {loader.kinds[DIRECTION]}: rename that one')
        known.add(DIRECTION)
        shapes[DIRECTION] = shape
    e = loader.expression(node, known, f"{section} {name}")
    got = loader.sized_shape(e, shapes, f"{section} {name}")
    want = (shape[0], shape[0]) if section == "hessian" else shape
    if got != want:
        what = (f"the Hessian of {name}, a {fmt_shape(shape)} param, is {fmt_shape(want)}" if section == "hessian"
                else f"H·V has {name}'s shape, {fmt_shape(want)}")
        raise node.error(f"{section} {name}: the formula has shape {fmt_shape(got)}, but {what}")
    return SecondFormula(section, name, e, place_of(node))


def _param_shape(loader, section: str, name: str, node) -> tuple[int, int]:
    """The shape of the param a formula is for; a located error for a name that is not a param (or, under
    hessian, not a column vector)."""
    if loader.kinds.get(name) != "params":
        what = f"is {loader.kinds[name]}, not a param" if name in loader.kinds else "is not a declared param"
        params = [n for n, k in loader.kinds.items() if k == "params"]
        raise node.key_error(f'{section}: "{excerpt(name)}" {what}{did_you_mean(name, params)}; params: '
                             f'{", ".join(params)}')
    shape = loader.shapes[name]
    if section == "hessian" and shape[1] != 1:
        raise node.key_error(f'hessian: {name} has shape {fmt_shape(shape)}, not a column vector (n×1); the Hessian '
                             f'of a matrix param is checked through its products: use hvp: {{{name}: ...}} (H·V for '
                             f'a direction V of {name}\'s shape)')
    return shape


def parsed_outside_hvp(parse, known: set[str], what: str) -> Expression:
    """parse(known) for any expression but an hvp formula; one that reads the direction V (which the spec does
    not declare) is refused by name rather than as an undefined name."""
    try:
        return parse(known)
    except SpecError as first:
        if DIRECTION in known:
            raise
        try:
            e = parse(known | {DIRECTION})
        except SpecError:
            raise first from None  # another problem of the text: its own message, suggestions without V
        if DIRECTION in e.names:
            raise e.error(f'undefined name "{DIRECTION}" in {what}: {DIRECTION} is the direction of an hvp formula '
                          f'and exists only inside hvp:', DIRECTION) from None
        raise
