"""How fast hostile and oversized inputs are handled (medians of repeated runs, in one process).

    python benchmarks/hostile_inputs.py

Measures: the worst-case 1 MB YAML (a flat flow list of ~330,000 numbers) through PyYAML's pure
Python parser and through gradcheck's reader (libyaml events for every file), a whole
load-and-check of that file, and the time to refuse each file of the hostile corpus.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradcheck.guard import check_one  # noqa: E402
from gradcheck.yamlsrc import PYTHON_PARSER_BYTES, parse_yaml  # noqa: E402


def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def python_events(text: str) -> None:
    loader = yaml.SafeLoader(text)
    while loader.check_event():
        loader.get_event()


def main() -> None:
    text = "params: {W: [[1.0]]}\ninput: W\ndata: {x: [" + "1, " * 330_000 + "1]}\n"
    print(f"worst-case file: {len(text):,} bytes (libyaml for every file; a refused file up to "
          f"{PYTHON_PARSER_BYTES:,} bytes is re-read by the Python parser for its message; "
          f"libyaml present: {yaml.__with_libyaml__})")
    pure = median_seconds(lambda: python_events(text), repeat=3)
    ours = median_seconds(lambda: parse_yaml(text, "wide.yaml"))
    print(f"  PyYAML pure-Python events only : {pure:6.2f} s (median of 3)")
    print(f"  gradcheck located nodes        : {ours:6.2f} s (median of 5)   ratio {pure / ours:.1f}x")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wide.yaml"
        path.write_text(text)
        whole = median_seconds(lambda: check_one(str(path)))
        print(f"  load and check (check_one)     : {whole:6.2f} s (median of 5)")
    corpus = sorted((ROOT / "tests" / "hostile").iterdir())
    per_file = {p.name: median_seconds(lambda p=p: check_one(str(p))) for p in corpus}
    slowest = sorted(per_file.items(), key=lambda kv: -kv[1])[:3]
    print(f"hostile corpus: {len(corpus)} files, median refusal {statistics.median(per_file.values()) * 1000:.1f} ms, "
          f"slowest " + ", ".join(f"{name} {t * 1000:.0f} ms" for name, t in slowest))


if __name__ == "__main__":
    main()
