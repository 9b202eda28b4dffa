"""Shared paths for the tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
