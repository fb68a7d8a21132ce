"""The one way the library runs an OS command when Salt does not hand it one.

Library functions take a ``run(argv)`` callable returning Salt's ``cmd.run_all``
shape (``{"retcode", "stdout", "stderr"}``); the Salt layer passes
``cmd.run_all``, and this module's :func:`run_local` is the default elsewhere
(tests, grains, benches). No shell is involved: ``argv`` is a list.
"""

import subprocess


def run_local(argv):
    """Run ``argv`` here and return ``{"retcode", "stdout", "stderr"}``; a missing command is retcode 127."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return {"retcode": 127, "stdout": "", "stderr": f"{argv[0]}: command not found"}
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
