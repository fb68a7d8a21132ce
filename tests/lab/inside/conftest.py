"""Fixtures for the inner lab suite: runs inside the lab's dom0 (real Xen 4.17, xen:///system).

Salt and the project are installed in /opt/salt the way a user installs them
(pip: Salt, then the project's wheel; Salt finds the modules through the
``salt.loader`` entry point). Nothing here points Salt at the source tree.
"""

import json
import os
import signal
import subprocess

import pytest
from labhelpers import GUEST_INITRD, SALT_CALL, URI, pv_xml, remove_guest
from labprogress import progress as _progress

PROJECT_SALT = "/lab/project/salt"


def pytest_configure(config):
    if not os.path.exists("/proc/xen") or not os.path.exists(GUEST_INITRD):
        raise pytest.UsageError("the inner lab suite runs only inside the lab's dom0 (tests/lab/run)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The lab's own tests carry the ``lab`` marker (run.sh selects ``-m "lab or needs_dm or needs_xen"``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.lab)


def pytest_sessionstart(session):
    # A crash (segfault) leaves every thread's stack in the results. (No periodic dumps:
    # faulthandler.dump_traceback_later crashed the interpreter in this dom0 once.)
    import faulthandler

    results = "/lab/results" if os.path.isdir("/lab/results") else "/tmp"
    session.config._lab_crash = open(os.path.join(results, "inner-crash.log"), "w")  # noqa: SIM115 (faulthandler writes to it for the whole session)
    faulthandler.enable(file=session.config._lab_crash, all_threads=True)


# --- Salt -----------------------------------------------------------------------


def _minion_config(base):
    for sub in ("cache", "pki", "sock", "srv/salt", "srv/pillar"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "minion").write_text(
        "\n".join(
            [
                "id: dom0lab",
                "file_client: local",
                f"cachedir: {base / 'cache'}",
                f"pki_dir: {base / 'pki'}",
                f"sock_dir: {base / 'sock'}",
                f"log_file: {base / 'minion.log'}",
                "log_level_logfile: info",
                "file_roots:",
                # the project's formulas, as an operator copies salt/ into file_roots
                f"  base: [{base / 'srv/salt'}, {PROJECT_SALT}]",
                "pillar_roots:",
                f"  base: [{base / 'srv/pillar'}]",
                # grains that only cost time in the lab (DNS lookups, lspci)
                "enable_fqdns_grains: false",
                "enable_gpu_grains: false",
                "xen:",
                "  libvirt:",
                f"    uri: {URI}",
                "",
            ]
        )
    )
    return base


@pytest.fixture(scope="session")
def salt_dir(tmp_path_factory):
    """A minion config directory: masterless, libvirt URI xen:///system, as an operator writes it."""
    return _minion_config(tmp_path_factory.mktemp("salt"))


@pytest.fixture(scope="session")
def cli_salt_dir(tmp_path_factory):
    """The same config for the salt-call CLI, with a cache of its own (it runs alongside the Caller)."""
    return _minion_config(tmp_path_factory.mktemp("salt-cli"))


@pytest.fixture(scope="session")
def caller(salt_dir, salt_call_list_bg):
    """salt.client.Caller on that config: the same loader as ``salt-call --local``."""
    import salt.client

    _progress("creating salt.client.Caller (Salt's minion start: slow under TCG)")
    signal.signal(signal.SIGALRM, _session_timeout)
    signal.alarm(int(os.environ.get("LAB_CALLER_TIMEOUT", "1200")))
    try:
        made = salt.client.Caller(c_path=str(salt_dir / "minion"))
    finally:
        signal.alarm(0)
    _progress("Caller ready")
    return made


def _session_timeout(signum, frame):
    raise TimeoutError("creating salt.client.Caller took longer than LAB_CALLER_TIMEOUT")


@pytest.fixture(scope="session")
def salt_call_list_bg(cli_salt_dir, conn):
    """``salt-call --local xen_guest.list`` started at once in the background, with guest
    ``labcli`` defined just before (dom0 has 2 vCPUs: the CLI's minutes-long start under
    TCG overlaps with the in-process tests)."""
    remove_guest(conn, "labcli")
    conn.defineXML(pv_xml("labcli"))
    cmd = [SALT_CALL, "-c", str(cli_salt_dir), "--local", "--out", "json", "--log-level", "quiet", "xen_guest.list"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield cmd, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    remove_guest(conn, "labcli")


@pytest.fixture(scope="session")
def salt_call(salt_dir):
    """Run ``salt-call --local ... --out json`` and return the parsed ``local`` result."""

    def run(*args, check=True, timeout=300):
        cmd = [SALT_CALL, "-c", str(salt_dir), "--local", "--out", "json", "--log-level", "quiet", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        try:
            return json.loads(proc.stdout)["local"]
        except (ValueError, KeyError):
            raise AssertionError(f"{' '.join(cmd)}: not JSON\n{proc.stdout}\n{proc.stderr}") from None

    return run


@pytest.fixture(autouse=True)
def _time_limit(request):
    """No test may hang the lab: SIGALRM after LAB_TEST_TIMEOUT seconds (default 600)."""
    limit = int(os.environ.get("LAB_TEST_TIMEOUT", "600"))

    def expired(signum, frame):
        raise TimeoutError(f"{request.node.nodeid} ran longer than {limit}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --- libvirt and guests ---------------------------------------------------------------


class _Reconnecting:
    """A libvirt connection that opens again after libvirtd restarted (test_connection_loss kills it)."""

    def __init__(self):
        import libvirt

        self._libvirt = libvirt
        self._conn = libvirt.open(URI)

    def __getattr__(self, name):
        try:
            alive = self._conn.isAlive()
        except self._libvirt.libvirtError:
            alive = False
        if not alive:
            self._conn = self._libvirt.open(URI)
        return getattr(self._conn, name)


@pytest.fixture(scope="session")
def conn():
    connection = _Reconnecting()
    yield connection
    connection.close()


@pytest.fixture
def define_guest(conn):
    """Define PV guests through libvirt directly (the fixture, not the code under test); removed afterwards."""
    names = []

    def define(name, **kwargs):
        remove_guest(conn, name)
        conn.defineXML(pv_xml(name, **kwargs))
        names.append(name)
        return name

    yield define
    for name in names:
        remove_guest(conn, name)
