"""pytest plugin: one LAB-STEP line per test on dom0's console, the gist of each failure too.

The host prints these live (tests/lab/run), so a run that dies later still shows what happened.
Loaded once for the whole run in dom0 (`-p labprogress` in inside/run.sh); it also writes the
selected tests to /lab/results/selected.txt, which the host compares with the junit report.
"""

import os

RESULTS = "/lab/results"


def progress(text):
    """One line on dom0's console (the host shows it live as a LAB-STEP line)."""
    try:
        with open("/dev/console", "w") as console:
            console.write(f"LAB-STEP {text}\n")
    except OSError:
        pass


def pytest_collection_finish(session):
    progress(f"{len(session.items)} tests selected in {session.config.rootpath}")
    # the host compares this list with the junit report: a test never reached is a failure
    if os.path.isdir(RESULTS):
        with open(os.path.join(RESULTS, "selected.txt"), "w") as out:
            out.writelines(item.nodeid + "\n" for item in session.items)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        progress(f"{report.outcome:7s} {report.nodeid} ({report.when}, {report.duration:.0f}s)")
    if report.failed:
        text = str(report.longrepr).splitlines()
        for line in [t for t in text if t.startswith("E ")][:12] or text[-12:]:
            progress(f"    {line[:300]}")
