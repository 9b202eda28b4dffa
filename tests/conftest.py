"""Shared paths, specs and the CLI helper for the tests."""

from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOSTILE = Path(__file__).resolve().parent / "hostile"
BUNDLED = sorted(SPECS.glob("*.yaml"))

ICA = SPECS / "ufldl_ica_reconstruction.yaml"  # a small spec that passes
PAGE_TYPO = FIXTURES / "wrong" / "ufldl_ica_page_typo.yaml"
WRONG = FIXTURES / "wrong" / "two_layer_db2_typo_square.yaml"  # a wrong expect, shapes agreeing
SHAPE_WRONG = FIXTURES / "wrong" / "two_layer_db2_typo.yaml"  # a wrong expect of the wrong shape
INVALID = FIXTURES / "invalid" / "unknown_activation.yaml"
UNKNOWN_KEY = FIXTURES / "invalid" / "unknown_key.yaml"
YAML_SYNTAX = FIXTURES / "invalid" / "yaml_syntax.yaml"


def invoke(*args, **kwargs):
    """`gradcheck ARGS...` through click's CliRunner (paths may be Path objects; kwargs go to invoke: env=, ...)."""
    from gradcheck.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def first_line_tag(path: Path, tag: str) -> str:
    """The text after `# <tag>:` on a fixture's first line."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = f"# {tag}:"
    assert first.startswith(prefix), f"{path} must start with '{prefix}'"
    return first[len(prefix):].strip()


# W used twice: every perturbation is a dense pass of two 200x150x800 products, 60,000 times (many
# minutes) -- a runaway spec for timeout and interrupt tests.
SLOW = """\
params:
  W: {shape: [200, 150]}
data:
  x: {shape: [150, 800]}
input: x
layers:
  - {weight: W, activation: tanh}
  - {weight: W.T}
"""
