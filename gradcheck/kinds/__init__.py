"""The layer kinds, one module each, with everything about the kind in that module: its spec parser,
its schema fragment, forward and backward, its footprint, its discrete state (for kinks), whether the
complex step may pass through it, whether the perturber may carry row patches through it, the rows a moved param entry touches (patch), its batched forward with one param entry moved per member (moved), whether a
loss may be fused with its activation, and its
symbolic rows for `explain` (or `closed_form = False`).

Adding a layer kind is one module beside these and one entry in KINDS below; a kind that lacks an
attribute fails when this package is imported.
"""

from __future__ import annotations

from .conv import Conv
from .dense import Dense
from .maxpool import MaxPool
from .recurrent import Recurrent
from .attention import Attention
from .dropout import Dropout
from .embedding import Embedding
from .gated import GRU, LSTM
from .norm import BatchNorm, LayerNorm

REQUIRED = ("key", "schema", "parse", "forward", "backward", "state", "footprint", "analytic", "row_patch", "patch", "moved",
            "fusable", "closed_form", "sym_z", "sym_backward")


def register(*kinds) -> dict:
    """name -> kind, refusing a kind that leaves out something the engine, explain or the schema needs."""
    table = {}
    for kind in kinds:
        missing = [name for name in REQUIRED if not hasattr(kind, name)]
        if missing:
            raise TypeError(f"layer kind {kind.__name__} lacks {', '.join(missing)}")
        if kind.closed_form and (kind.sym_z is None or kind.sym_backward is None):
            raise TypeError(f"layer kind {kind.__name__} says it has a closed form but gives no symbols")
        table["dense" if kind.key is None else kind.key] = kind
    return table


KINDS = register(Dense, Conv, MaxPool, Recurrent, LayerNorm, BatchNorm, LSTM, GRU, Attention, Embedding, Dropout)
KEYED = tuple(name for name, kind in KINDS.items() if kind.key is not None)  # kinds named by their key in a layer


def no_closed_form(layer, standard: bool = False) -> str:
    """What explain says of a layer kind without symbols: plainly that it prints no closed form, and (once, under
    the table: `standard`) the kind's standard backward in words where the kind gives one."""
    article = "an" if layer.kind in ("attention", "embedding", "lstm") else "a"  # as the name is said
    text = f"{layer.label} is {article} {layer.kind} layer: no closed form in the expression language"
    words = getattr(KINDS[layer.kind], "standard", None) if standard else None
    return text + (f"; its standard backward, as a spec's define can write it: {words}" if words else "")
