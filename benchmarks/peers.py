"""Time gradcheck against its peers on the same functions, in one run on one machine.

For every benchmark function (a spec plus the same objective written for each peer, built from the
spec's own numbers) this times gradcheck's full and fast checks, a naive per-entry numpy loop,
torch.autograd.gradcheck (slow and fast mode), jax's check_grads and scipy's check_grad, and
reports medians, ratios to gradcheck's full check, and the max relative error each numeric gradient
has against the same correct analytic gradient (see `max_rel_error`).

Per-entry methods whose single run would exceed the budget (--budget, default 60 s) are timed on a
random subset of entries and extrapolated linearly to all N; such rows are marked "est.".

    python benchmarks/peers.py            # all sizes, writes benchmarks/results.md
    python benchmarks/peers.py --quick    # smallest size, one repeat, prints only

To benchmark another function, write a builder returning a `Function` (spec text plus an
`objective_for(backend)` giving the objective in numpy, torch and jax) and add it to `FUNCTIONS`.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no accelerator probing noise; this is a CPU benchmark
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def pin_threads(argv: list[str]) -> int:
    """Apply --threads (default 1) through the environment, which numpy, torch and jax read once, on import.

    One thread each by default: on a shared 2-core machine a library running 2 threads loses far more
    to other load (a descheduled thread stalls its partner) than one running 1, which skews ratios.
    """
    threads = 1
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            threads = int(argv[i + 1])
        elif arg.startswith("--threads="):
            threads = int(arg.split("=", 1)[1])
    if threads > 0:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
        eigen = " --xla_cpu_multi_thread_eigen=false" if threads == 1 else ""
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + eigen +
                                   f" intra_op_parallelism_threads={threads}").strip()
    return threads


THREADS = pin_threads(sys.argv[1:]) if __name__ == "__main__" else 0

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's gradcheck, not an installed one
import gradcheck  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.md")
BUDGET_SECONDS = 60.0  # a per-entry method predicted to take longer is estimated from a subset
SUBSET_SECONDS = 8.0  # aim for subset runs of about this long
PILOT_ENTRIES = 48
SLOW_SECONDS = 20.0  # a run this long is timed once, and a first run this long is not repeated
NAIVE_STEP = 1e-5  # cs231n's h
FLOOR_PER_J = 1e-8  # the common metric's floor, per unit of max(1, |J|)


# ----------------------------------------------------------------------------- benchmark functions


@dataclass(frozen=True)
class Function:
    """One benchmark function: a spec, and the same objective for every backend."""

    label: str
    spec_text: str
    # backend ("numpy" | "torch" | "jax") -> objective(params: dict, data: dict) -> scalar;
    # raise KeyError for a backend the function has no version for (that peer's rows are skipped).
    objective_for: Callable[[str], Callable[[dict, dict], Any]]


def array_module(backend: str):
    """The numpy-like namespace of a backend, for objectives written once for all three."""
    return {"numpy": lambda: np, "torch": lambda: importlib.import_module("torch"),
            "jax": lambda: importlib.import_module("jax.numpy")}[backend]()


def mlp_objective(xp, p: dict, d: dict):
    """Two-layer MLP: tanh hidden, sigmoid output, binary cross-entropy averaged over the M columns."""
    a1 = xp.tanh(p["W1"] @ d["X"] + p["b1"])
    a2 = 1.0 / (1.0 + xp.exp(-(p["W2"] @ a1 + p["b2"])))
    y = d["Y"]
    return xp.sum(-y * xp.log(a2) - (1.0 - y) * xp.log1p(-a2)) / y.shape[1]


MLP_SPEC = """\
name: reference MLP D={D} H={H} M={M}
seed: 0
params:
  W1: {{shape: [{H}, {D}], std: 0.1}}
  b1: {{shape: [{H}, 1], std: 0.1}}
  W2: {{shape: [1, {H}], std: 0.1}}
  b2: {{shape: [1, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
  Y: {{shape: [1, {M}], init: binary}}
input: X
layers:
  - {{weight: W1, bias: b1, activation: tanh}}
  - {{weight: W2, bias: b2, activation: sigmoid}}
objective: {{loss: binary_cross_entropy, target: Y, reduce: mean}}
"""


def mlp(D: int, H: int, M: int) -> Function:
    """The reference two-layer MLP at one size; N = H·D + 2H + 1."""
    n = H * D + 2 * H + 1
    return Function(f"MLP, N = {n:,} (D={D}, H={H}, M={M})", MLP_SPEC.format(D=D, H=H, M=M),
                    lambda backend: functools.partial(mlp_objective, array_module(backend)))


def im2col_index(height: int, width: int, k: int) -> np.ndarray:
    """Rows of a flattened 1×H×W image under each k×k window: shape (k·k, H'·W'), valid positions."""
    rows = np.arange(height - k + 1)[:, None] * width + np.arange(width - k + 1)[None, :]
    taps = np.arange(k)[:, None] * width + np.arange(k)[None, :]
    return (taps.reshape(-1, 1) + rows.reshape(1, -1)).astype(np.int64)


def cnn_objective(xp, index, p: dict, d: dict):
    """conv (shared kernel, bias per filter) → tanh → dense → sigmoid → BCE mean, for any backend."""
    cols = d["X"][index]  # (k·k, P, M): every window of every image, gathered (im2col)
    z = xp.einsum("fk,kpm->fpm", p["K"], cols) + p["c"][:, :, None]
    a1 = xp.tanh(z).reshape(-1, cols.shape[-1])  # (F·P, M), filter-major as gradcheck lays it out
    a2 = 1.0 / (1.0 + xp.exp(-(p["W"] @ a1 + p["b"])))
    y = d["Y"]
    return xp.sum(-y * xp.log(a2) - (1.0 - y) * xp.log1p(-a2)) / y.shape[1]


CNN_SPEC = """\
name: conv net F={F} on 1x{S}x{S} images, M={M}
seed: 0
params:
  K: {{shape: [{F}, 9], std: 0.3}}
  c: {{shape: [{F}, 1], std: 0.1}}
  W: {{shape: [1, {flat}], std: 0.05}}
  b: {{shape: [1, 1], std: 0.1}}
data:
  X: {{shape: [{pixels}, {M}]}}
  Y: {{shape: [1, {M}], init: binary}}
input: X
layers:
  - conv: {{kernel: K, image: [1, {S}, {S}], size: [3, 3]}}
    bias: c
    activation: tanh
  - {{weight: W, bias: b, activation: sigmoid}}
objective: {{loss: binary_cross_entropy, target: Y, reduce: mean}}
"""


def cnn(F: int, S: int, M: int) -> Function:
    """A conv layer of F 3×3 filters on S×S images, then a dense sigmoid output."""
    flat = F * (S - 2) ** 2
    n = 9 * F + F + flat + 1
    index = im2col_index(S, S, 3)

    def objective_for(backend: str):
        xp = array_module(backend)
        idx = index if backend == "numpy" else xp.asarray(index)
        return functools.partial(cnn_objective, xp, idx)

    return Function(f"conv net, N = {n:,} (F={F}, 1×{S}×{S} images, M={M})",
                    CNN_SPEC.format(F=F, S=S, M=M, flat=flat, pixels=S * S), objective_for)


# N = 1,009; 8,449; 99,073; and a conv net with N = 1,649
FUNCTIONS = [mlp(16, 56, 64), mlp(64, 128, 64), mlp(256, 384, 64), cnn(8, 16, 16)]


# ----------------------------------------------------------------------------- one function, made concrete


@dataclass
class Case:
    """A function with its spec loaded: values split into params and data, flattened param vector."""

    function: Function
    spec: Any
    names: tuple[str, ...]
    params: dict
    data: dict
    objective: float
    analytic: np.ndarray  # gradcheck's backprop gradient, flattened in `names` order
    offsets: np.ndarray = field(init=False)

    def __post_init__(self):
        self.offsets = np.cumsum([0] + [self.params[n].size for n in self.names])

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def flat(self, params: dict) -> np.ndarray:
        return np.concatenate([np.asarray(params[n], dtype=float).reshape(-1) for n in self.names])

    def unflat(self, x) -> dict:
        """Param views into a flat vector (numpy or torch)."""
        return {n: x[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[n].shape)
                for i, n in enumerate(self.names)}

    def locate(self, k: int) -> tuple[str, int]:
        """(param name, flat index within it) of entry k of the flat vector."""
        i = int(np.searchsorted(self.offsets, k, side="right")) - 1
        return self.names[i], int(k - self.offsets[i])

    def sample(self, k: int, seed: int = 0) -> np.ndarray:
        """K distinct entries of the flat vector, sorted."""
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(self.size, size=min(k, self.size), replace=False))

    def entries_of(self, names) -> np.ndarray:
        """The flat entries of whole params."""
        return np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1])
                               for i, n in enumerate(self.names) if n in names])

    def whole_params(self, entries: np.ndarray) -> tuple[str, ...] | None:
        """The params whose entries are exactly `entries`, if they are whole params."""
        names = tuple(n for i, n in enumerate(self.names) if entries.size and
                      np.isin(np.arange(self.offsets[i], self.offsets[i + 1]), entries).all())
        return names if names and len(self.entries_of(names)) == entries.size else None


def make_case(function: Function) -> Case:
    spec = gradcheck.loads(function.spec_text, path=f"<{function.label}>")
    names = tuple(spec.param_names)
    params = {n: np.array(spec.values[n], dtype=np.float64) for n in names}
    data = {n: np.array(v, dtype=np.float64) for n, v in spec.values.items() if n not in params}
    grads = spec.gradient()
    analytic = np.concatenate([grads[n].reshape(-1) for n in names])
    return Case(function, spec, names, params, data, float(spec.objective()), analytic)


def max_rel_error(case: Case, numeric: np.ndarray, entries: np.ndarray | None = None) -> float:
    """The common metric: max over entries of |a − n| / max(|a|, |n|, 1e-8·max(1, |J|))."""
    a = case.analytic if entries is None else case.analytic[entries]
    floor = FLOOR_PER_J * max(1.0, abs(case.objective))
    scale = np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
    return float(np.max(np.abs(a - numeric) / scale))


# ----------------------------------------------------------------------------- peers


def load_peers() -> dict:
    """name -> module, or the reason it is unavailable (a string)."""
    peers = {}
    for name in ("torch", "jax", "scipy"):
        try:
            module = importlib.import_module(name)
            if name == "torch" and THREADS > 0:
                module.set_num_threads(THREADS)
            if name == "jax":
                module.config.update("jax_enable_x64", True)
                importlib.import_module("jax.test_util")
            if name == "scipy":
                importlib.import_module("scipy.optimize")
            peers[name] = module
        except Exception as exc:  # noqa: BLE001 - any import failure means: skip this peer
            peers[name] = f"{name} not available ({type(exc).__name__}: {exc})"
    return peers


@dataclass
class Outcome:
    """What one run of a method produced."""

    verdict: str = "—"
    numeric: np.ndarray | None = None  # the numeric gradient at the entries run (flat order)
    note: str = ""


@dataclass
class Method:
    """A way to check the gradient of a case; `run(case, entries)` does it (entries None = all)."""

    name: str
    peer: str | None  # the module it needs, if any
    run: Callable[[Case, np.ndarray | None], Outcome]
    # For methods whose cost grows with N: the entries a subset run uses (None: always run in full).
    # Called with the predicted full-run time (None for the pilot run that predicts it).
    subset: Callable[[Case, float | None], np.ndarray] | None = None
    backend: str | None = None  # the objective it needs
    # (numeric gradient at the entries run, or None when the method gives none; a note)
    numeric_of: Callable[[Case, Outcome, np.ndarray | None], tuple[np.ndarray | None, str]] | None = None


# gradcheck --------------------------------------------------------------------


def gradcheck_run(mode: str, method: str):
    def run(case: Case, entries):
        result = gradcheck.check(case.spec, mode=mode, method=method)
        return Outcome(result.status, _returned_numeric(case, result), f"tool's own max err {_tool_error(result)}")
    return run


def _returned_numeric(case: Case, result) -> np.ndarray | None:
    """The numeric gradient a full check returns with its verdict (ParamResult.entries), flattened."""
    by_name = {p.name: getattr(p, "entries", None) for p in result.params}
    if any(by_name.get(n) is None for n in case.names):
        return None
    return np.concatenate([np.asarray(by_name[n].numeric).reshape(-1) for n in case.names])


def _tool_error(result) -> str:
    errs = [p.backprop.max_rel_error for p in result.params if p.backprop.max_rel_error is not None]
    return f"{max(errs):.1e}" if errs else "n/a"


def gradcheck_numeric(method: str):
    """gradcheck's numeric gradient: the one its check returned, else recomputed (untimed) by its engine."""
    def numeric_of(case: Case, outcome: Outcome, entries) -> tuple[np.ndarray | None, str]:
        if outcome.numeric is not None:
            return outcome.numeric, ""
        try:
            batch_memory = importlib.import_module("gradcheck.options").BATCH_MEMORY
            numeric = importlib.import_module("gradcheck.numeric")
            Perturber = importlib.import_module("gradcheck.perturb").Perturber
        except (ImportError, AttributeError) as exc:
            return None, f"engine internals unavailable ({exc})"
        values = dict(case.spec.values)
        parts = []
        for name in case.names:
            perturber = Perturber(case.spec.model, values, name)
            batch = max(2, batch_memory // perturber.per_sample_bytes())
            with np.errstate(all="ignore"):
                parts.append(numeric.estimate(perturber, values[name], None, method, None, batch).values)
        return np.concatenate(parts), "numeric gradient recomputed by the engine, untimed"
    return numeric_of


def directional(case: Case, outcome: Outcome, entries) -> tuple[np.ndarray | None, str]:
    return None, "directional (no per-entry gradient)"


# naive numpy loop -------------------------------------------------------------------


def naive_run(case: Case, entries):
    """cs231n/UFLDL: for each entry, perturb by ±h, run the whole forward pass, restore."""
    f = case.function.objective_for("numpy")
    params = {n: v.copy() for n, v in case.params.items()}
    flat_views = {n: v.reshape(-1) for n, v in params.items()}
    entries = np.arange(case.size) if entries is None else entries
    numeric = np.empty(len(entries))
    for k, e in enumerate(entries):
        name, i = case.locate(int(e))
        x = flat_views[name]
        old = x[i]
        x[i] = old + NAIVE_STEP
        plus = f(params, case.data)
        x[i] = old - NAIVE_STEP
        minus = f(params, case.data)
        x[i] = old
        numeric[k] = (plus - minus) / (2 * NAIVE_STEP)
    return Outcome("—", numeric, f"h = {NAIVE_STEP:g}")


def own_numeric(case: Case, outcome: Outcome, entries) -> tuple[np.ndarray | None, str]:
    return outcome.numeric, ""


# torch --------------------------------------------------------------------------


def _torch_callable(case: Case, entries):
    """(fn, inputs) for torch.autograd.gradcheck: all params, or only `entries` with the rest held fixed."""
    import torch
    f = case.function.objective_for("torch")
    data = {n: torch.tensor(v, dtype=torch.float64) for n, v in case.data.items()}
    varied = case.names if entries is None else case.whole_params(entries)
    if varied is not None:  # params outside `varied` are inputs that do not require grad: not perturbed
        inputs = tuple(torch.tensor(case.params[n], dtype=torch.float64, requires_grad=n in varied)
                       for n in case.names)
        return (lambda *ps: f(dict(zip(case.names, ps)), data)), inputs
    base = torch.tensor(case.flat(case.params), dtype=torch.float64)
    index = torch.as_tensor(entries, dtype=torch.long)
    sub = base[index].clone().requires_grad_(True)
    return (lambda s: f(case.unflat(base.index_put((index,), s)), data)), (sub,)


def torch_run(fast: bool):
    def run(case: Case, entries):
        import torch
        fn, inputs = _torch_callable(case, entries)
        ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False, fast_mode=fast)
        return Outcome("pass" if ok else "fail")
    return run


def verdict_only(case: Case, outcome: Outcome, entries) -> tuple[np.ndarray | None, str]:
    return None, "pass/fail only, at its default tolerances"


# jax ------------------------------------------------------------------------------


def jax_run(case: Case, entries):
    import jax.numpy as jnp
    from jax.test_util import check_grads
    f = case.function.objective_for("jax")
    data = {n: jnp.asarray(v) for n, v in case.data.items()}
    args = tuple(jnp.asarray(case.params[n]) for n in case.names)
    try:
        check_grads(lambda *ps: f(dict(zip(case.names, ps)), data), args, order=1, modes=["rev"])
    except AssertionError:
        return Outcome("fail")
    return Outcome("pass")


# scipy --------------------------------------------------------------------------


def _scipy_callables(case: Case, entries):
    """(func, grad, x0) over the flat params, or over `entries` with the rest held fixed."""
    f = case.function.objective_for("numpy")
    buffer = case.flat(case.params)

    def func(x):
        if entries is None:
            return float(f(case.unflat(x), case.data))
        buffer[entries] = x
        return float(f(case.unflat(buffer), case.data))

    def grad(x):
        full = x if entries is None else _put(buffer, entries, x)
        g = case.spec.gradient(case.unflat(full))
        flat = np.concatenate([g[n].reshape(-1) for n in case.names])
        return flat if entries is None else flat[entries]

    x0 = case.flat(case.params)
    return func, grad, (x0 if entries is None else x0[entries])


def _put(buffer, entries, x):
    buffer[entries] = x
    return buffer


def scipy_run(case: Case, entries):
    from scipy.optimize import check_grad
    func, grad, x0 = _scipy_callables(case, entries)
    return Outcome(f"‖Δ‖₂ = {check_grad(func, grad, x0):.1e}")


def scipy_numeric(case: Case, outcome: Outcome, entries) -> tuple[np.ndarray | None, str]:
    """check_grad returns only a norm; its numeric gradient is approx_fprime at its default step."""
    import scipy.optimize as so
    from scipy.optimize import approx_fprime
    func, _, x0 = _scipy_callables(case, entries)
    epsilon = _check_grad_default_epsilon(so)
    numeric = approx_fprime(x0, func, epsilon)
    return numeric, f"forward differences, step {epsilon:.2g}"


def _check_grad_default_epsilon(so) -> float:
    import inspect
    return float(inspect.signature(so.check_grad).parameters["epsilon"].default)


def random_entries(case: Case, predicted: float | None) -> np.ndarray:
    """A few random entries for the pilot; then enough for a run of about SUBSET_SECONDS."""
    if predicted is None:
        return case.sample(PILOT_ENTRIES, seed=1)
    return case.sample(int(max(PILOT_ENTRIES, case.size * SUBSET_SECONDS / predicted)), seed=2)


def smaller_params(case: Case, predicted: float | None) -> np.ndarray:
    """Every param but the largest, which is held constant: no wrapper around the peer's own loop."""
    largest = max(case.names, key=lambda n: case.params[n].size)
    rest = [n for n in case.names if n != largest]
    entries = case.entries_of(rest) if rest else np.zeros(0, dtype=int)
    if not 0 < entries.size <= case.size // 2:
        return random_entries(case, predicted)
    return entries


METHODS = [
    Method("gradcheck full (central)", None, gradcheck_run("full", "central"), numeric_of=gradcheck_numeric("central")),
    Method("gradcheck full (richardson)", None, gradcheck_run("full", "richardson"), numeric_of=gradcheck_numeric("richardson")),
    Method("gradcheck full (complex-step)", None, gradcheck_run("full", "complex-step"),
           numeric_of=gradcheck_numeric("complex-step")),
    Method("gradcheck fast", None, gradcheck_run("fast", "central"), numeric_of=directional),
    Method("naive numpy loop (central)", None, naive_run, subset=random_entries, backend="numpy", numeric_of=own_numeric),
    Method("torch.autograd.gradcheck", "torch", torch_run(False), subset=smaller_params, backend="torch",
           numeric_of=verdict_only),
    Method("torch.autograd.gradcheck fast_mode", "torch", torch_run(True), backend="torch", numeric_of=verdict_only),
    Method("jax check_grads (rev, order 1)", "jax", jax_run, backend="jax", numeric_of=verdict_only),
    Method("scipy.optimize.check_grad", "scipy", scipy_run, backend="numpy", numeric_of=scipy_numeric),
]
REFERENCE = METHODS[0].name


# ----------------------------------------------------------------------------- timing


@dataclass
class Row:
    """One method on one case, measured."""

    method: str
    seconds: float | None = None
    runs: str = ""
    estimated: bool = False
    rel_error: float | None = None
    abs_error: float | None = None
    notes: str = ""
    verdict: str = ""
    skipped: str = ""


def timed(run: Callable[[], Outcome]) -> tuple[float, Outcome]:
    started = time.perf_counter()
    outcome = run()
    return time.perf_counter() - started, outcome


def repeats_for(seconds: float, quick: bool) -> int:
    """More repeats for quick methods, fewer for slow ones."""
    if quick:
        return 1
    return 5 if seconds < 2 else 3 if seconds < SLOW_SECONDS else 1


def measure(method: Method, case: Case, budget: float, quick: bool) -> Row:
    """Median time of `method` on `case`, extrapolated from a subset of entries when a full run is too long."""
    entries, times, outcome = None, [], None
    pilot_entries = method.subset(case, None) if method.subset else None
    if pilot_entries is not None and pilot_entries.size < case.size:
        # The pilot predicts a full run's time (and warms up, as the first call below does).
        pilot, _ = timed(lambda: method.run(case, pilot_entries))
        predicted = pilot * case.size / pilot_entries.size
        if predicted > budget:
            entries = method.subset(case, predicted)
        repeats = (1 if quick else 3) if entries is not None else repeats_for(predicted, quick)
        warm = None
    else:
        # First calls pay one-off costs (jax tracing, caches): timed runs start after this one,
        # unless it is slow enough to be the only run.
        warm, outcome = timed(lambda: method.run(case, None))
        repeats = repeats_for(warm, quick)
        if warm > SLOW_SECONDS:
            times, repeats, warm = [warm], 0, None
    for _ in range(repeats):
        seconds, outcome = timed(lambda: method.run(case, entries))
        times.append(seconds)
    return _row(method, case, entries, times, outcome, warm)


def _row(method: Method, case: Case, entries, times, outcome: Outcome, warm) -> Row:
    numeric, note = method.numeric_of(case, outcome, entries)
    rel = abs_ = None
    if numeric is not None:
        rel = max_rel_error(case, numeric, entries)
        abs_ = float(np.max(np.abs(numeric - (case.analytic if entries is None else case.analytic[entries]))))
    median = statistics.median(times)
    notes = [note, outcome.note]
    if warm is not None and warm > 3 * median:
        notes.append(f"first call {_seconds(warm)} not counted")
    if entries is None:
        return Row(method.name, median, f"{len(times)}", False, rel, abs_, _join(*notes), outcome.verdict)
    k = len(entries)
    fixed = sorted(set(case.names) - set(case.whole_params(entries) or case.names))
    which = (f"the {k:,} entries of every param but {', '.join(fixed)} (held constant)" if fixed
             else f"{k:,} random entries")
    over = "; errors over those entries" if rel is not None else ""
    notes.insert(0, f"timed on {which}, × N/{k:,}{over}")
    return Row(method.name, median * case.size / k, f"{len(times)} × {k:,} entries", True, rel, abs_,
               _join(*notes), outcome.verdict)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def benchmark(case: Case, peers: dict, budget: float, quick: bool, log) -> list[Row]:
    rows = []
    for method in METHODS:
        missing = _missing(method, case, peers)
        if missing:
            rows.append(Row(method.name, skipped=missing))
            log(f"  {method.name}: skipped ({missing})")
            continue
        row = measure(method, case, budget, quick)
        rows.append(row)
        log(f"  {method.name}: {_time(row)} {row.verdict} {_err(row.rel_error)}")
    return rows


def installed(peers: dict, name: str) -> bool:
    return isinstance(peers.get(name), types.ModuleType)


def _missing(method: Method, case: Case, peers: dict) -> str:
    if method.peer and not installed(peers, method.peer):
        return peers.get(method.peer) or f"{method.peer} not available"
    if method.backend:
        try:
            case.function.objective_for(method.backend)
        except KeyError:
            return f"no {method.backend} version of this function"
    return ""


def cross_check(case: Case, peers: dict) -> str:
    """gradcheck's backprop gradient (the reference for every error) against an independent autodiff."""
    if installed(peers, "torch"):
        torch = peers["torch"]
        fn, inputs = _torch_callable(case, None)
        grads = torch.autograd.grad(fn(*inputs), inputs)
        other = np.concatenate([g.detach().numpy().reshape(-1) for g in grads])
        return f"agrees with torch autograd to max rel {max_rel_error(case, other):.1e}"
    if installed(peers, "jax"):
        jax = peers["jax"]
        import jax.numpy as jnp
        f = case.function.objective_for("jax")
        data = {n: jnp.asarray(v) for n, v in case.data.items()}
        g = jax.grad(lambda ps: f(ps, data))({n: jnp.asarray(v) for n, v in case.params.items()})
        other = np.concatenate([np.asarray(g[n]).reshape(-1) for n in case.names])
        return f"agrees with jax.grad to max rel {max_rel_error(case, other):.1e}"
    return "not cross-checked (no torch or jax)"


# ----------------------------------------------------------------------------- report


def machine(peers: dict) -> str:
    cpu = platform.processor() or _cpu_model() or platform.machine()
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
                f"gradcheck {gradcheck.__version__}{source_revision()}"]
    for name in ("scipy", "torch", "jax"):
        module = peers.get(name)
        if installed(peers, name):
            count = module.get_num_threads() if name == "torch" else 0
            extra = f" ({count} intra-op thread{'s' if count != 1 else ''})" if name == "torch" else ""
            versions.append(f"{name} {module.__version__}{extra}")
        else:
            versions.append(f"{name} not installed")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    threads = (f"{THREADS} thread per library ({', '.join(THREAD_VARIABLES)}, torch.set_num_threads, "
               f"XLA intra-op)" if THREADS == 1 else f"{THREADS} threads per library" if THREADS > 1
               else "each library's default thread count")
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()} ({platform.machine()}); "
            f"{', '.join(versions)}; {threads}; {date}")


def source_revision() -> str:
    """ (git abc1234) for the checkout gradcheck was imported from, '+changes' if its package differs from it."""
    package = os.path.dirname(os.path.abspath(gradcheck.__file__))
    try:
        head = subprocess.run(["git", "-C", package, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", package, "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (git {head}{'+changes' if dirty else ''})"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _seconds(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def _time(row: Row) -> str:
    if row.seconds is None:
        return "—"
    return f"≈ {_seconds(row.seconds)} (est.)" if row.estimated else _seconds(row.seconds)


def _err(value: float | None) -> str:
    return f"{value:.1e}" if value is not None else "—"


def load_average() -> str:
    """The 1-minute load average: other work on a shared machine slows every row, torch's threads most."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "n/a"


def table(case: Case, rows: list[Row], cross: str, loads: tuple[str, str]) -> str:
    ref = next((r.seconds for r in rows if r.method == REFERENCE and r.seconds), None)
    lines = [f"### {case.function.label}", "",
             f"J = {case.objective:.10g}; reference gradient = gradcheck backprop, {cross}. "
             f"1-min load average {loads[0]} before these rows, {loads[1]} after.", "",
             "| method | median time | × gradcheck full | runs | max rel error | max abs error | verdict | notes |",
             "|---|---:|---:|---|---:|---:|---|---|"]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.method} | — | — | — | — | — | skipped | {r.skipped} |")
            continue
        ratio = f"{r.seconds / ref:.3g}×" if ref else "—"
        ratio = f"≈ {ratio}" if r.estimated else ratio
        lines.append(f"| {r.method} | {_time(r)} | {ratio} | {r.runs} | {_err(r.rel_error)} | {_err(r.abs_error)} "
                     f"| {r.verdict} | {r.notes} |")
    return "\n".join(lines)


def report(sections: list[str], peers: dict, command: str, budget: float, seconds: float) -> str:
    head = ["# gradcheck against its peers", "",
            f"Machine: {machine(peers)}.", "",
            f"Command: `{command}` (one run, {seconds / 60:.1f} min in all; every time below is a median over "
            f"`runs`).", "",
            "Max rel error is one metric for all: max over entries of |a − n| / max(|a|, |n|, "
            "1e-8·max(1, |J|)), a = gradcheck's backprop gradient, n = the method's numeric gradient. "
            "torch and jax return only pass/fail (at their default tolerances), gradcheck fast compares "
            "directional derivatives, so they have no per-entry error. gradcheck's error is computed on "
            "the numeric gradient its full check returns (ParamResult.entries); its own metric (floored "
            "by each entry's estimated numeric error, not by |J|) is in the notes. scipy's is computed from approx_fprime at check_grad's default step, outside "
            "the timing.", "",
            f"Rows marked est.: a single run was predicted to exceed {budget:g} s, so the method was timed "
            "on a subset of the entries (the same function, the other entries held fixed: random entries "
            "for the naive loop; for torch, every param but the largest, which is passed with "
            "requires_grad=False so that torch's own loop runs unchanged) and the median scaled by N/K; "
            "their errors are over that subset.", ""]
    return "\n".join(head + [s + "\n" for s in sections])


# ----------------------------------------------------------------------------- entry point


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: smallest function, one repeat, print only")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS,
                        help="seconds above which a per-entry method is estimated from a subset")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per library, applied before they load (0: their defaults)")
    parser.add_argument("--out", default=None, help=f"write the report here (default {RESULTS}; none with --quick)")
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else RESULTS)
    command = " ".join(["python", os.path.relpath(sys.argv[0])] + (argv if argv is not None else sys.argv[1:]))

    def log(message):
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    peers = load_peers()
    for name, module in peers.items():
        if not installed(peers, name):
            log(f"skipping {module}")
    sections = []
    for function in FUNCTIONS[:1] if args.quick else FUNCTIONS:
        log(function.label)
        case = make_case(function)
        cross = cross_check(case, peers)
        before = load_average()
        rows = benchmark(case, peers, args.budget, args.quick, log)
        sections.append(table(case, rows, cross, (before, load_average())))
    text = report(sections, peers, command, args.budget, time.perf_counter() - started)
    print(text)
    if out:
        kept = _kept_sections(out)
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + kept)
        log(f"wrote {out}")
    return 0


KEPT = "\n## Function families of issue 13"  # families.py's section of results.md, which this run does not remake


def _kept_sections(path: str) -> str:
    """What of the old report another benchmark wrote (from KEPT on), to put back after this run's report."""
    try:
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    except OSError:
        return ""
    at = old.find(KEPT)
    return "" if at < 0 else "\n" + old[at:].lstrip("\n")


if __name__ == "__main__":
    sys.exit(main())
