"""The lab tier: real Xen 4.17 + a Debian dom0 under QEMU (TCG), the project tested inside it.

One session fixture builds the dom0 image (cached under .lab/), boots it once with
``tests/lab/run`` and reads back the inner results; each test below asserts that
one group of inner tests passed and shows the inner failures when not.
``XEN_LAB=1`` runs the tier (``.ci/run`` sets it); without it the tier is skipped and
says so. Once asked for, a lab that cannot boot fails.
"""

import os
import pathlib
import subprocess
import sys
import time

import pytest

from tests.lab import labresults

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INNER_GROUPS = sorted(p.stem for p in (HERE / "inside").glob("test_*.py"))

pytestmark = pytest.mark.skipif(
    os.environ.get("XEN_LAB", "0") != "1",
    reason="real-Xen lab tier not requested: XEN_LAB=1 runs it (about 25 min on 2 cores; .ci/run does)",
)


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory):
    """Build (or reuse) the image, boot the lab once, return (Results, run output, run dir)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = pathlib.Path(os.environ.get("XEN_LAB_OUT") or (ROOT / ".lab" / "runs" / f"pytest-{stamp}-{os.getpid()}"))
    timeout = int(os.environ.get("XEN_LAB_TIMEOUT", "3000")) + 1500  # image build on top
    proc = subprocess.run(
        [str(HERE / "run"), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    (out / "run.log").write_text(proc.stdout)
    sys.stderr.write(proc.stdout[-4000:])
    results_dir = out / "results"
    if not results_dir.is_dir():
        pytest.fail(
            f"the lab did not run (tests/lab/run exited {proc.returncode}):\n{proc.stdout[-6000:]}", pytrace=False
        )
    return labresults.Results(results_dir), proc, out


def _check(results, cases, what):
    if not cases:
        pytest.fail(
            f"{what}: no results came back from dom0\n{results.summary()}\n--- lab.log tail ---\n" + results.log_tail(),
            pytrace=False,
        )
    bad = [c for c in cases if c.outcome in ("failed", "error")]
    if bad:
        pytest.fail(
            f"{what}: {len(bad)} of {len(cases)} failed in dom0\n" + results.describe_failures(bad), pytrace=False
        )
    skipped = [f"{c.nodeid}: {c.message}" for c in cases if c.outcome == "skipped"]
    if skipped:
        pytest.fail(f"{what}: skipped in dom0, where they exist to run:\n" + "\n".join(skipped), pytrace=False)


def test_lab_booted_and_runner_finished(lab_run):
    """dom0 booted under Xen, ran every selected test within the budget and powered off with the results."""
    results, proc, _out = lab_run
    assert results.exit_code is not None, f"dom0's runner left no exit code\n{proc.stdout[-6000:]}"
    assert not results.missing, f"{results.missing}\n{proc.stdout[-6000:]}"
    assert not results.interrupted, f"{results.interrupted}\n{results.summary()}"
    assert not results.not_reached, f"tests never reached in dom0: {results.not_reached}"


@pytest.mark.parametrize("group", INNER_GROUPS)
def test_inner_group(lab_run, group):
    """Every test in tests/lab/inside/<group>.py passed inside dom0."""
    results, _, _ = lab_run
    _check(results, results.group("inner", group), f"tests/lab/inside/{group}.py")


def test_project_tests_needing_dm_or_xen(lab_run):
    """The project's own tests marked needs_dm / needs_xen / lab pass inside dom0."""
    results, _, _ = lab_run
    cases = results.group("project")
    if not cases:
        pytest.skip("no project test carries the needs_dm, needs_xen or lab marker yet")
    bad = [c for c in cases if c.outcome in ("failed", "error")]
    assert not bad, results.describe_failures(bad)
    skipped = [f"{c.nodeid}: {c.message}" for c in cases if c.outcome == "skipped"]
    assert not skipped, "skipped in the lab, where they exist to run:\n" + "\n".join(skipped)
