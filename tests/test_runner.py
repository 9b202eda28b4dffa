"""-j N: worker processes with one BLAS thread each, results in path order, progress only on a terminal."""

import io
import json
import re

import pytest

from conftest import FIXTURES, SPECS, invoke
from gradcheck import runner
from gradcheck.batch import collect, execute
from gradcheck.formats import FORMAT_NAMES, reporter
from gradcheck.options import RunOptions

PATHS = [str(SPECS), str(FIXTURES / "wrong"), str(FIXTURES / "invalid")]


def without_seconds(report: str) -> dict:
    data = json.loads(report)
    for spec in data["specs"]:
        assert spec.pop("seconds") >= 0
    return data


@pytest.fixture(scope="module")
def reports():
    """The CLI's JSON report of PATHS with -j 1 and with -j 2, and both results rendered in every format."""
    one, two = invoke("run", "-j", "1", "--format", "json", *PATHS), invoke("run", "-j", "2", "--format", "json", *PATHS)
    rendered = {}
    for jobs in (1, 2):
        result = execute(PATHS, RunOptions(jobs=jobs))
        for fmt in FORMAT_NAMES:
            out = io.StringIO()
            reporter(fmt)(result, out)
            rendered[fmt, jobs] = out.getvalue()
    return one, two, rendered


@pytest.mark.slow
def test_jobs_2_gives_the_same_report_as_jobs_1(reports):
    one, two, _ = reports
    assert one.exit_code == two.exit_code == 1
    assert without_seconds(one.stdout) == without_seconds(two.stdout)
    specs = json.loads(two.stdout)["specs"]
    assert [s["path"] for s in specs] == collect(PATHS) and len(specs) > 40  # path order, whatever finished first
    assert {s["status"] for s in specs} == {"pass", "fail", "error"}  # bad files cost only their own row


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["human", "junit", "github"])
def test_jobs_2_renders_identically_in_every_format(reports, fmt):
    _, _, rendered = reports
    strip = lambda text: re.sub(r' time="[0-9.]+"', "", text)  # noqa: E731 - per-spec times differ run to run
    assert strip(rendered[fmt, 1]) == strip(rendered[fmt, 2]) and rendered[fmt, 2]


@pytest.mark.slow
def test_workers_limit_blas_threads_before_numpy_loads():
    seen = runner.run_all(runner.worker_environment, ["a", "b", "c"], jobs=2)
    assert len(seen) == 3
    for env in seen:
        assert env["numpy_loaded_before_limits"] is False
        assert all(env[var] == "1" for var in runner.BLAS_THREAD_VARS)


def test_jobs_0_means_one_per_cpu():
    assert runner.resolve_jobs(0) >= 1 and runner.resolve_jobs(3) == 3


def test_one_job_runs_in_process_and_reports_each_done():
    done = []
    results = runner.run_all(str.upper, ["a", "b"], jobs=1, on_done=done.append)
    assert results == ["A", "B"] and done == ["a", "b"]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    quiet = io.StringIO()
    with runner.progress(3, quiet) as advance:
        assert advance is None
    assert quiet.getvalue() == ""
    tty = FakeTerminal()
    with runner.progress(2, tty) as advance:
        advance("specs/one.yaml")
        advance("specs/two.yaml")
    assert "checking" in tty.getvalue()


def test_cli_progress_stays_off_stdout_and_off_a_non_terminal_stderr():
    result = invoke("run", "-j", "1", str(SPECS / "ufldl_ica_reconstruction.yaml"))
    assert result.stderr == "" and "checking" not in result.stdout


def test_progress_names_the_spec_being_checked_not_the_last_one_done():
    seen = []

    class Recorder:
        def __call__(self, path):
            seen.append(("done", path))

        def started(self, paths):
            seen.append(("running", tuple(paths)))

    runner.run_all(lambda path: path, ["a.yaml", "b.yaml"], 1, Recorder())
    assert seen == [("running", ("a.yaml",)), ("done", "a.yaml"), ("running", ("b.yaml",)), ("done", "b.yaml")]
    tty = FakeTerminal()
    with runner.progress(2, tty) as advance:
        advance.started(["specs/now_running.yaml"])
        advance.bar.refresh()
    assert "now_running.yaml" in tty.getvalue()
