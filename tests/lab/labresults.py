"""Read what the lab brought back (junit XML files from inside dom0) and summarise it.

Used by ``tests/lab/run`` (``python labresults.py RESULTS_DIR``) and by ``test_lab.py``.
Plain Python: the host runs it with any Python 3.
"""

import argparse
import pathlib
import sys
import xml.etree.ElementTree as ET

# inside/run.sh runs everything in one pytest process and writes lab.xml; its cases are
# grouped back into the lab's own tests and the project's tests by their module path.
SUITES = {
    "inner": "tests/lab/inside (the lab's own tests)",
    "project": "the project's tests marked for the lab (needs_dm, needs_xen, lab)",
}


def suite_of(classname):
    return "project" if classname.startswith("project.") else "inner"  # rootdir /lab: project/tests/... vs inside/...


def classname_of(nodeid):
    """``inside/test_x.py::Cls::test_y[1]`` -> (``inside.test_x.Cls``, ``test_y[1]``), as junit names it."""
    parts = nodeid.split("::")
    module = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    return ".".join([module.replace("/", ".")] + parts[1:-1]), parts[-1]


class Case:
    def __init__(self, suite, classname, name, outcome, message="", text="", seconds=0.0):
        self.suite = suite
        self.classname = classname
        self.name = name
        self.outcome = outcome  # passed, failed, error, skipped
        self.message = message
        self.text = text
        self.seconds = seconds

    @property
    def module(self):
        """``test_guest_lifecycle`` for classname ``test_guest_lifecycle`` or ``tests.x.test_y.Class``."""
        parts = self.classname.split(".")
        for part in parts:
            if part.startswith("test_"):
                return part
        return parts[-1] if parts else ""

    @property
    def nodeid(self):
        return f"{self.classname}::{self.name}"


def read_junit(path):
    cases = []
    root = ET.parse(path).getroot()
    for tc in root.iter("testcase"):
        outcome, message, text = "passed", "", ""
        for child in tc:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = child.get("message", "")
                text = child.text or ""
                if outcome != "skipped":
                    break
        classname = tc.get("classname", "")
        cases.append(
            Case(suite_of(classname), classname, tc.get("name", ""), outcome, message, text, float(tc.get("time") or 0))
        )
    return cases


class Results:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.cases = []
        self.missing = []
        path = self.dir / "lab.xml"
        if path.is_file():
            try:
                self.cases = read_junit(path)
            except ET.ParseError as exc:
                self.missing.append(f"{path.name} is not valid XML: {exc}")
        else:
            self.missing.append(f"{path.name} was not written")
        # tests pytest selected but never reported (stopped by the budget, or a crash)
        self.not_reached = []
        selected = self.dir / "selected.txt"
        if selected.is_file() and not self.missing:
            seen = {(c.classname, c.name) for c in self.cases}
            self.not_reached = [n for n in selected.read_text().split() if classname_of(n) not in seen]
        flag = self.dir / "lab-interrupted"
        self.interrupted = flag.read_text().strip() if flag.is_file() else ""
        code = self.dir / "exit-code"
        self.exit_code = code.read_text().strip() if code.is_file() else None
        # measured figures the tests wrote (labhelpers.figure), one per line
        figures = self.dir / "figures.txt"
        self.figures = figures.read_text().splitlines() if figures.is_file() else []

    def log_tail(self, lines=40):
        path = self.dir / "lab.log"
        if not path.is_file():
            return f"({path.name} missing)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def group(self, suite, module=None):
        return [c for c in self.cases if c.suite == suite and (module is None or c.module == module)]

    def describe_failures(self, cases):
        out = []
        for c in cases:
            if c.outcome in ("failed", "error"):
                text = c.text.strip().splitlines()
                out.append(f"--- {c.outcome.upper()}: {c.nodeid}\n    {c.message}\n" + "\n".join(text[-30:]))
        return "\n".join(out)

    def ok(self):
        if self.exit_code is None or self.missing or self.interrupted or self.not_reached:
            return False
        # in the lab nothing may skip: these tests exist to run where the fast tiers skip
        if any(c.outcome in ("failed", "error", "skipped") for c in self.cases):
            return False
        return bool(self.group("inner")) or (self.dir / "lab-deselected").is_file()

    def summary(self):
        lines = []
        for suite, what in SUITES.items():
            cases = self.group(suite)
            counts = {}
            for c in cases:
                counts[c.outcome] = counts.get(c.outcome, 0) + 1
            text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tests"
            secs = sum(c.seconds for c in cases)
            lines.append(f"{suite:8s} {text} in {secs:.0f}s  - {what}")
        for m in self.missing:
            lines.append(f"missing: {m}")
        if self.interrupted:
            lines.append(f"interrupted: {self.interrupted}")
        for nodeid in self.not_reached:
            lines.append(f"not reached: {nodeid}")
        lines.append(f"runner exit code in dom0: {self.exit_code}")
        lines.extend(f"figure: {line}" for line in self.figures)
        skipped = [c for c in self.cases if c.outcome == "skipped"]
        for c in skipped:
            lines.append(f"skipped: {c.nodeid}: {c.message}")
        failures = self.describe_failures(self.cases)
        if failures:
            lines.append(failures)
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--timings", default="")
    args = parser.parse_args(argv)
    res = Results(args.results)
    print("==================== lab results ====================")
    print(res.summary())
    if args.timings:
        print(f"timings: {args.timings}")
    if not res.ok():
        if not res.cases:
            print("---- tail of lab.log ----")
            print(res.log_tail())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
