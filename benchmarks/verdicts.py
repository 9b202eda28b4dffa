"""Verdict quality over every spec we know the right answer for (issue 10).

    python benchmarks/verdicts.py [--json RUN.json] [-j N]

Runs `gradcheck run --format json` over the bundled specs (`specs/`), `tests/fixtures/wrong/`,
`tests/fixtures/kinks/` and `tests/verdicts/**`, and prints:

- false alarms: correct specs that did not pass (fail or error);
- misses: wrong specs that passed. A spec is *wrong* when a folder of its path is named `wrong`
  or `diagnosis` (their first line names the param, `# expect-fail: <param>`); wrong specs that
  erred, or failed on another param as well, are listed too;
- numeric-error calibration: where a JSON comparison carries `numeric_error` (the estimated error
  of the numeric derivative at the worst entry), the median and worst of
  |analytic − numeric| / numeric_error over the comparisons of correct specs, and how often it
  exceeds 1. Without that key: "n/a: no numeric_error yet".

Run from the repository root, so that this checkout's gradcheck is used. `--json` reads a saved
run instead of running one. Not a test: it reports, it asserts nothing (exit status 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["specs", "tests/fixtures/wrong", "tests/fixtures/kinks", "tests/verdicts"]


def spec_files() -> list[Path]:
    files = []
    for folder in SOURCES:
        files += sorted((ROOT / folder).rglob("*.yaml"))
    return files


def is_wrong(path: str) -> bool:
    return any(part in ("wrong", "diagnosis") for part in Path(path).parts)


def culprit(path: str) -> str | None:
    try:
        first = (ROOT / path).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    return first.split(":", 1)[1].strip() if first.startswith("# expect-fail:") else None


def run_json(files: list[Path], jobs: int) -> tuple[list[dict], str]:
    """One `gradcheck run --format json` over every file; per file if the batch run gives no JSON."""
    rels = [str(f.relative_to(ROOT)) for f in files]
    base = [sys.executable, "-m", "gradcheck", "run", "--format", "json", "-j", str(jobs)]
    done = subprocess.run(base + rels, cwd=ROOT, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)["specs"], " ".join(["gradcheck run --format json -j", str(jobs), *SOURCES])
    except (json.JSONDecodeError, KeyError):
        pass
    specs = []
    for rel in rels:  # a crash of the whole run: one process per file, so one file costs only its row
        one = subprocess.run(base + [rel], cwd=ROOT, capture_output=True, text=True)
        try:
            specs += json.loads(one.stdout)["specs"]
        except (json.JSONDecodeError, KeyError):
            specs.append({"path": rel, "status": "crash", "message": (one.stderr or one.stdout).strip()[:300],
                          "params": []})
    return specs, "gradcheck run --format json FILE (one process per file; the batch run gave no JSON)"


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for module in ("gradcheck", "numpy"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except Exception:  # noqa: BLE001 - a header, never a crash
            parts.append(f"{module} ?")
    return ", ".join(parts)


def worst(spec: dict) -> str:
    """The key figure of a spec's verdict: its error message, or its failing params with their errors."""
    if spec.get("status") in ("error", "crash"):
        return (spec.get("message") or "").splitlines()[0][:160] if spec.get("message") else "no message"
    bits = []
    for p in spec.get("params", []):
        if p.get("status") == "pass":
            continue
        sides = []
        for side in ("backprop", "expect"):
            c = p.get(side)
            if c and c.get("max_rel_error") is not None:
                sides.append(f"{side} {c['max_rel_error']:.1e}")
            elif c and c.get("message"):
                sides.append(f"{side}: {c['message'][:60]}")
        kinks = p.get("kinks")
        bad = [k for k in p.get("kink_entries") or [] if k.get("status") == "fail"]
        if bad:
            k = bad[0]
            sides.append(f"{len(bad)} failing kink(s), e.g. {k.get('index')}: analytic {k.get('analytic'):.6g} "
                         f"outside the one-sided slopes [{k.get('left'):.6g}, {k.get('right'):.6g}]")
        bits.append(f"{p['name']} ({', '.join(sides)}{f', {kinks} kinks' if kinks else ''})")
    return "fails " + "; ".join(bits) if bits else spec.get("status", "?")


def calibration(correct: list[dict]) -> list[str]:
    ratios = []
    for spec in correct:
        for p in spec.get("params", []):
            for side in ("backprop", "expect"):
                c = p.get(side)
                if not c or "numeric_error" not in c:
                    continue
                a, n, e = c.get("analytic"), c.get("numeric"), c.get("numeric_error")
                if a is None or n is None or e is None:
                    continue
                ratios.append(abs(a - n) / e if e > 0 else (0.0 if a == n else float("inf")))
    if not ratios:
        return ["numeric-error calibration: n/a: no numeric_error yet"]
    over = sum(r > 1 for r in ratios)
    return [f"numeric-error calibration over {len(ratios)} comparisons of correct specs: "
            f"|analytic - numeric| / numeric_error median {statistics.median(ratios):.3g}, worst {max(ratios):.3g}, "
            f"> 1 in {over} ({100 * over / len(ratios):.0f}%)"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="read a saved `gradcheck run --format json` report instead of running")
    parser.add_argument("-j", "--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.json:
        specs, how = json.loads(Path(args.json).read_text(encoding="utf-8"))["specs"], f"read from {args.json}"
    else:
        specs, how = run_json(spec_files(), args.jobs)
    seconds = time.perf_counter() - started

    print(f"command: python {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}")
    print(f"runs: {how}")
    print(f"date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"machine: {platform.platform()}, {platform.machine()}, {platform.processor() or '?'}")
    print(f"versions: {versions()}")
    print()

    correct = [s for s in specs if not is_wrong(s["path"])]
    wrong = [s for s in specs if is_wrong(s["path"])]
    alarms = [s for s in correct if s.get("status") != "pass"]
    misses = [s for s in wrong if s.get("status") == "pass"]
    wrong_errors = [s for s in wrong if s.get("status") not in ("pass", "fail")]
    misplaced = []
    for s in wrong:
        if s.get("status") != "fail":
            continue
        want = culprit(s["path"])
        failing = {p["name"] for p in s.get("params", []) if p.get("status") != "pass"}
        if want is not None and failing != {want}:
            misplaced.append((s, want, failing))

    print(f"{len(specs)} specs: {len(correct)} correct, {len(wrong)} wrong; {seconds:.1f} s")
    print()
    print(f"false alarms (correct specs that did not pass): {len(alarms)} of {len(correct)}")
    for s in alarms:
        print(f"  {s['status'].upper():5}  {s['path']}: {worst(s)}")
    print()
    print(f"misses (wrong specs that passed): {len(misses)} of {len(wrong)}")
    for s in misses:
        print(f"  PASS   {s['path']} (wrong param: {culprit(s['path'])})")
    print()
    print(f"wrong specs that were an error instead of a fail: {len(wrong_errors)} of {len(wrong)}")
    for s in wrong_errors:
        print(f"  {s['status'].upper():5}  {s['path']}: {worst(s)}")
    print()
    print(f"wrong specs failing on other params than the wrong one: {len(misplaced)} of {len(wrong)}")
    for s, want, failing in misplaced:
        print(f"  FAIL   {s['path']}: wrong param {want}, failing {', '.join(sorted(failing))}: {worst(s)}")
    print()
    for line in calibration(correct):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
