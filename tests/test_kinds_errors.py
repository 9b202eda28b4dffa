"""Every new layer-kind key ends in a located message (file:line:col) when it is wrong, and the schema
built from the kinds table accepts the bundled specs that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.kinds import KINDS
from gradcheck.kinds.attention import KEYS as ATTENTION_KEYS
from gradcheck.kinds.dropout import KEYS as DROPOUT_KEYS
from gradcheck.kinds.embedding import KEYS as EMBEDDING_KEYS
from gradcheck.kinds.gated import KEYS as GATED_KEYS
from gradcheck.kinds.norm import KEYS as NORM_KEYS
from gradcheck.schema import load_schema
from gradcheck.yamlsrc import parse_yaml

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
params:
  W: {shape: [4, 3]}
  g: {shape: [4, 1]}
  gw: {shape: [3, 4]}
  Wx: {shape: [8, 2]}
  Wh: {shape: [8, 2]}
  Gx: {shape: [6, 2]}
  Gh: {shape: [6, 2]}
  Wq: {shape: [2, 3]}
  Wk: {shape: [2, 3]}
  Wk4: {shape: [4, 3]}
  Wv: {shape: [5, 3]}
  E: {shape: [3, 6]}
data:
  X: {shape: [3, 5]}
  S: {shape: [2, 5]}
  T: [[0, 1, 5, 2, 2]]
  Tbad: [[0, 1.5, 5, 2, 2]]
  Tbig: [[0, 1, 6, 2, -1]]
input: X
layers:
"""


@pytest.mark.parametrize("layers, line, col, fragment", [
    ("  - layernorm: {gain: g, bais: g}\n", 22, 26, 'unknown key "bais" in layernorm of layer 1 (did you mean "bias"?)'),
    ("  - layernorm: {gain: gw}\n", 22, 23, "gain gw of layer 1 has shape (3, 4), which does not broadcast onto z"),
    ("  - layernorm: {eps: -1}\n", 22, 22, "eps of the layernorm in layer 1 must be positive"),
    ("  - layernorm: {gain: gg}\n", 22, 23, 'the gain of layer 1: undefined name "gg" (did you mean "g"?)'),
    ("  - layernorm: [g]\n", 22, 16, "layernorm of layer 1 must be a mapping, not a list"),
    ("  - layernorm: {gain: g}\n    bias: g\n", 23, 5, '"bias" does not go beside layernorm (layer 1): the layernorm layer\'s parameters go inside'),
    ("  - layernorm: {}\n    activation: sofmax\n", 23, 17, 'no such activation: "sofmax" (did you mean "softmax"?)'),
    ("  - {layernorm: {}, dropout: {rate: 0.1}}\n", 22, 21, 'layer 1 has both "layernorm" and "dropout"'),
    ("  - batchnorm: {eps: 0}\n", 22, 22, "eps of the batchnorm in layer 1 must be positive"),
    ("  - {weight: W}\n  - batchnorm: {gain: W}\n", 23, 23, "gain W of layer 2 has shape (4, 3), which does not broadcast"),
    ("  - dropout: {}\n", 22, 14, 'dropout of layer 1 needs "rate"'),
    ("  - dropout: {rate: 1}\n", 22, 21, "the dropout rate of layer 1 must be from 0 up to (not including) 1, not 1"),
    ("  - dropout: {rate: 0.5, mask: X}\n", 22, 26, 'unknown key "mask" in dropout of layer 1; allowed: rate'),
    ("  - attention: {query: Wq, key: Wk}\n", 22, 16, 'attention of layer 1 needs "value"'),
    ("  - attention: {query: Wq, key: Wk4, value: Wv}\n", 22, 33,
     "shape mismatch in layer 1: key projection Wk4 gives 4 rows but query projection Wq gives 2"),
    ("  - attention: {query: gw, key: Wk, value: Wv}\n", 22, 24,
     "shape mismatch in layer 1: query projection gw has shape (3, 4) but the layer's input has shape (3, 5)"),
    ("  - attention: {query: Wq, key: Wk, value: Wv, causal: yes please}\n", 22, 56,
     "causal of layer 1 must be true or false"),
    ("  - attention: {query: Wq, key: Wk, value: Wv}\n    bias: W\n", 23, 5, '"bias" does not go beside attention (layer 1)'),
    ("  - lstm: {input_weight: Wx, hidden_weight: Wh}\n", 22, 11, 'lstm of layer 1 needs "steps"'),
    ("  - lstm: {input_weight: Wx, hidden_weight: Wh, steps: 2}\n", 22, 56,
     "2 steps of input_weight Wx (8, 2) read 2·2 = 4 rows, but the layer's input has shape (3, 5)"),
    ("  - embedding: {tabel: E}\n", 22, 17, 'unknown key "tabel" in embedding of layer 1 (did you mean "table"?)'),
    ("  - {weight: W}\n  - embedding: {table: E}\n", 23, 5,
     "an embedding layer reads integer indices: it must be the first layer of its term"),
])
def test_new_kind_load_errors_are_located(layers, line, col, fragment):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(BASE + layers, "t.yaml")
    e = info.value
    assert fragment in e.message, e.message
    assert (e.file, e.line, e.col) == ("t.yaml", line, col), e.message


SEQ = BASE.replace("  X: {shape: [3, 5]}", "  X: {shape: [4, 5]}")


@pytest.mark.parametrize("layers, line, col, fragment", [
    ("  - lstm: {input_weight: Wx, hidden_weight: Gh, steps: 2}\n", 22, 45,
     "hidden_weight Gh has shape (6, 2); the lstm layer needs (4·hidden, hidden), its 4 gates stacked, e.g. (8, 2)"),
    ("  - lstm: {input_weight: Gx, hidden_weight: Wh, steps: 2}\n", 22, 26,
     "input_weight Gx has shape (6, 2) but hidden_weight Wh has 8 rows (4 gates of 2)"),
    ("  - lstm: {input_weight: Wx, hidden_weight: Wh, steps: 2, cell_init: W}\n", 22, 70,
     "cell_init W of layer 1 has shape (4, 3), which does not broadcast onto z of shape (2, 5)"),
    ("  - gru: {input_weight: Gx, hidden_weight: Gh, steps: 2, cell_init: g}\n", 22, 58,
     'unknown key "cell_init" in gru of layer 1 (did you mean "init"?)'),
    ("  - gru: {input_weight: Gx, hidden_weight: Gh, steps: 2, output: first}\n", 22, 66,
     'output must be "last" (h_T) or "all" (h_1..h_T stacked), not "first"'),
    ("  - gru: {input_weight: Gx, hidden_weight: Gh, steps: 2, init: W}\n", 22, 64,
     "init W of layer 1 has shape (4, 3), which does not broadcast onto z of shape (2, 5)"),
    ("  - gru: {input_weight: Gx, hidden_weight: Wh, steps: 2}\n", 22, 44,
     "hidden_weight Wh has shape (8, 2); the gru layer needs (3·hidden, hidden)"),
])
def test_gated_load_errors_are_located(layers, line, col, fragment):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(SEQ + layers, "t.yaml")
    e = info.value
    assert fragment in e.message, e.message
    assert (e.file, e.line, e.col) == ("t.yaml", line, col), e.message


@pytest.mark.parametrize("name, line, fragment", [
    ("Tbad", 18, "entry [0, 1] is 1.5"),
    ("Tbig", 19, "entry [0, 2] is 6 (and 1 more)"),
])
def test_bad_indices_are_located_at_their_declaration(name, line, fragment):
    text = BASE.replace("input: X", f"input: {name}") + "  - embedding: {table: E}\n"
    result = gradcheck.check(gradcheck.loads(text, "t.yaml"))
    assert result.status == "error"
    assert (result.error.line, result.error.col) == (line, 9), result.message
    assert f"{name} holds the indices of layer 1 (embedding, E, identity): whole numbers from 0 to 5" in result.message
    assert fragment in result.message


def test_indices_from_a_param_are_refused():
    text = BASE.replace("input: X", "input: W") + "  - embedding: {table: E}\n"
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(text, "t.yaml")
    assert (info.value.line, info.value.col) == (22, 5)
    assert "the term's input a data name (not a param" in info.value.message


def test_good_indices_pass_and_repeat():
    text = BASE.replace("input: X", "input: T") + "  - embedding: {table: E}\n"
    assert gradcheck.check(gradcheck.loads(text, "t.yaml")).status == "pass"


def test_dropout_mask_is_fixed_by_the_seed():
    text = "seed: {seed}\nparams: {{W: {{shape: [40, 50]}}}}\ninput: W\nlayers: [{{dropout: {{rate: 0.25}}}}]\n"
    masks = [gradcheck.loads(text.format(seed=s)).model.terms[0].layers[0].options.mask for s in (1, 1, 2)]
    assert np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[0], masks[2])
    assert set(np.unique(masks[0])) == {0.0, 1 / 0.75}
    assert abs(np.mean(masks[0] == 0) - 0.25) < 0.03  # 2,000 draws: the rate within a few standard errors


def test_another_seed_draws_another_mask_and_still_passes():
    spec = gradcheck.load(ROOT / "specs" / "dropout.yaml")
    other = spec.reseeded(11)
    masks = [s.model.terms[0].layers[1].options.mask for s in (spec, other, spec.reseeded(spec.model.seed))]
    assert not np.array_equal(masks[0], masks[1]) and np.array_equal(masks[0], masks[2])
    assert gradcheck.check(spec, seed=11).status == "pass"


def test_schema_holds_each_kind_and_its_keys():
    layer = load_schema()["$defs"]["layer"]["properties"]
    keys = {"layernorm": NORM_KEYS, "batchnorm": NORM_KEYS, "lstm": GATED_KEYS,
            "gru": tuple(k for k in GATED_KEYS if k != "cell_init"), "attention": ATTENTION_KEYS,
            "embedding": EMBEDDING_KEYS, "dropout": DROPOUT_KEYS}
    for kind, allowed in keys.items():
        assert layer[kind] == KINDS[kind].schema
        assert set(layer[kind]["properties"]) == set(allowed), kind


@pytest.mark.parametrize("name", ["layer_norm", "batch_norm", "lstm", "gru", "attention", "embedding", "dropout"])
def test_schema_accepts_the_bundled_spec(name):
    jsonschema = pytest.importorskip("jsonschema")
    path = ROOT / "specs" / f"{name}.yaml"
    jsonschema.Draft202012Validator(load_schema()).validate(plain(parse_yaml(path.read_text(encoding="utf-8"), str(path))))


def plain(node):
    """The located tree as plain data, with the loader's own scalars (1e-5 is a number)."""
    if isinstance(node.value, dict):
        return {k: plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [plain(v) for v in node.value]
    return node.value


def test_schema_refuses_an_unknown_key_inside_a_kind():
    jsonschema = pytest.importorskip("jsonschema")
    spec = {"params": {"W": {"shape": [2, 2]}}, "input": "W", "layers": [{"layernorm": {"gian": "W"}}]}
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(spec)


@pytest.mark.parametrize("name, kind, words", [
    ("layer_norm", "layernorm", "x̂ ∘ mean(d ∘ x̂)"), ("batch_norm", "batchnorm", "(the batch)"),
    ("lstm", "lstm", "f_(t+1) ∘ dc_(t+1)"), ("gru", "gru", "dh ∘ u + Whᵀ dAh"),
    ("attention", "attention", "dS = A ∘ (dA − 1 (1ᵀ(A ∘ dA)))"), ("embedding", "embedding", "O_kᵀ"),
    ("dropout", "dropout", "δ ∘ M / (1 − rate)"),
])
def test_explain_says_plainly_no_closed_form_and_prints_the_standard_backward_once(name, kind, words):
    from gradcheck.explain import explain
    ex = explain(gradcheck.load(ROOT / "specs" / f"{name}.yaml").model)
    note = ex.terms[0].note
    assert f"{kind} layer: no closed form in the expression language; its standard backward" in note
    assert words in note
    assert all(text is None for text in ex.params.values())
    assert all("standard backward" not in n and "no closed form" in n for n in ex.notes.values())


MAXPOOL_BEFORE_DENSE = """\
params: {W: {shape: [2, 4]}}
data: {x: {shape: [16, 3]}}
input: x
layers:
  - {maxpool: {size: [2, 2], image: [1, 4, 4]}}
  - {weight: W, activation: tanh}
objective: sum
"""
SPEC_OF_KIND = {"conv": "conv1d_edge_detector", "maxpool": MAXPOOL_BEFORE_DENSE, "recurrent": "rnn_sequence",
                "layernorm": "layer_norm", "batchnorm": "batch_norm", "lstm": "lstm", "gru": "gru",
                "attention": "attention", "embedding": "embedding", "dropout": "dropout"}


@pytest.mark.parametrize("kind", sorted(SPEC_OF_KIND))
def test_explain_of_every_layer_kind_without_symbols_says_so_for_every_param_it_touches(kind):
    """Issue 11: a layer kind prints its standard closed form or says plainly that none is printed; every kind
    without symbols is listed here (the first assert), each in a spec explain runs on."""
    from gradcheck.explain import explain
    assert set(SPEC_OF_KIND) == {name for name, k in KINDS.items() if not k.closed_form}
    source = SPEC_OF_KIND[kind]
    spec = (gradcheck.loads(source, "k.yaml") if "\n" in source else gradcheck.load(ROOT / "specs" / f"{source}.yaml"))
    ex = explain(spec.model)
    article = "an" if kind[0] in "aeiou" or kind == "lstm" else "a"
    plainly = f"is {article} {kind} layer: no closed form in the expression language"
    assert plainly in ex.terms[0].note
    touched = [p for p in spec.param_names if ex.params[p] is None]
    assert touched and all(plainly in ex.notes[p] for p in touched)


def test_explain_of_a_dense_network_prints_a_closed_form_for_every_param():
    from gradcheck.explain import explain
    assert KINDS["dense"].closed_form
    ex = explain(gradcheck.load(ROOT / "specs" / "two_layer_network.yaml").model)
    assert ex.params and all(text for text in ex.params.values())
