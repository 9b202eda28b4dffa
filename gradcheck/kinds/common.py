"""What the newer layer kinds (norms, gated recurrences, attention, embedding, dropout) share: reading their
`{kind: {...}}` mapping with located errors, and small numeric steps that work over leading batch axes."""

from __future__ import annotations

import numpy as np

from ..nodes import check_keys, expect_mapping, number
from ..yamlsrc import Node


def kind_options(key: str, index: int, mapping: dict[str, Node], keys: tuple, required: tuple = (),
                 outside: tuple = ("bias", "weight")) -> dict[str, Node]:
    """The `{key: {...}}` mapping of layer `index`: known keys only, the required ones present, and keys
    that belong inside it refused beside it (a located error at the misplaced key)."""
    for name in outside:
        if name in mapping:
            raise mapping[name].key_error(f'"{name}" does not go beside {key} (layer {index}): the {key} layer\'s '
                                          f"parameters go inside {key}: {{...}}: {', '.join(keys)}")
    spec_node = mapping[key]
    options = expect_mapping(spec_node, f"{key} of layer {index}")
    check_keys(options, keys, f"{key} of layer {index}")
    for name in required:
        if name not in options:
            raise spec_node.error(f'{key} of layer {index} needs "{name}"')
    return options


def epsilon(options: dict[str, Node], key: str, index: int, default: float = 1e-5) -> float:
    """The eps added to a variance: a positive number."""
    if "eps" not in options:
        return default
    return number(options["eps"], f"eps of the {key} in layer {index}", positive=True)


def tr(x):
    """Transpose of the last two axes (batch axes kept)."""
    return np.swapaxes(x, -1, -2)


def sigmoid(z):
    """Logistic function as (1 + tanh(z/2))/2: no overflow, and analytic for the complex step."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def blocks(x, parts: int) -> list:
    """x split into `parts` equal blocks of rows (the gates of a stacked pre-activation)."""
    return np.split(x, parts, axis=-2)
