#!/bin/sh
# Runs inside the lab's dom0 (started by /usr/local/sbin/lab-run from the image),
# with the payload disk mounted on /lab. Installs the project wheel into the
# Salt venv the way a user would, runs the inner suite and the project's
# lab-marked tests, and leaves junit XML + logs in /lab/results.
# Progress goes to the console as "LAB-STEP ..." lines (the host prints them).
set -u
R=/lab/results
mkdir -p "$R"
export PATH=/opt/salt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
step() { echo "LAB-STEP $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

step "runner started at uptime $(now)s"
{
  echo "uptime_at_start=$(now)"
  uname -a
  xl info 2>&1 | grep -E "^(xen_version|xen_caps|total_memory|free_memory|nr_cpus)"
  ls /opt/salt/lib/python3*/site-packages | grep -E '^salt-[0-9].*-info$'
} > "$R/versions.txt" 2>&1

# Every run boots a fresh copy of the image with a cold page cache: read the Python
# trees in the background now, while waiting for the toolstack.
( find /opt/salt /usr/lib/python3 /usr/lib/python3.11 -name '*.pyc' -print0 2>/dev/null \
    | xargs -0 cat > /dev/null 2>&1 ) &

# xenconsoled --log=guest writes guest consoles here, but does not create the directory.
mkdir -p /var/log/xen/console

# Xen's toolstack and libvirtd are started by systemd; wait until both answer.
i=0
until xl list >/dev/null 2>&1 && virsh -q -c xen:///system list >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 120 ]; then
    step "ERROR: xl or libvirt (xen:///system) did not come up in 240s"
    xl list > "$R/xl-list.err" 2>&1
    virsh -c xen:///system list > "$R/virsh.err" 2>&1
    journalctl -b --no-pager > "$R/journal.log" 2>&1
    exit 97
  fi
  sleep 2
done
step "xl and libvirt ready at uptime $(now)s"

# The project, installed as a user would: its wheel into the Salt venv, offline.
# (Its dependencies are in the image already: --no-deps spares pip minutes of resolving under TCG.)
if ! pip install --no-index --no-deps --disable-pip-version-check /lab/wheels/saltext_xen-*.whl \
      > "$R/pip-install.log" 2>&1; then
  step "ERROR: pip install of the project wheel failed"
  tail -20 "$R/pip-install.log"
  exit 96
fi
step "project wheel installed at uptime $(now)s"

# knobs from the host (tests/lab/run writes them): LAB_BUDGET, LAB_TEST_TIMEOUT
[ -f /lab/inside/env ] && . /lab/inside/env
extra=""
[ -s /lab/inside/pytest-args ] && extra=$(cat /lab/inside/pytest-args | tr '\n' ' ')

# One pytest process for everything: starting Python and importing Salt cost a minute
# or more each under TCG. First the lab's own tests (the guest module first: everything
# else builds on it), then the project's tests that skip elsewhere for lack of
# device-mapper or Xen (only the files that use those markers are collected).
cd /lab || exit 95
inner="inside/test_guest_module.py $(cd inside && ls test_*.py | grep -vx test_guest_module.py | sed 's|^|inside/|' | tr '\n' ' ')"
project=$(cd /lab/project && grep -rlE "needs_dm|needs_xen|mark\.lab" tests --include='test_*.py' \
  | grep -v '^tests/lab/' | sort | sed 's|^|project/|' | tr '\n' ' ')
step "running the lab tests: $inner and the project's needs_dm/needs_xen/lab tests in: $project"
# A budget: past it pytest gets SIGINT, stops, and still writes its junit XML (the tests
# not reached are then missing from the report, which fails the run: never a silent pass).
# No third-party plugins: importing them costs minutes under TCG.
# shellcheck disable=SC2086
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 PYTHONPATH=/lab/inside timeout -s INT -k 60 "${LAB_BUDGET:-2400}" \
  python -m pytest -c /lab/inside/pytest.ini --rootdir=/lab -p labprogress \
  -o junit_family=xunit1 -rfEs -v --junitxml="$R/lab.xml" --durations=25 \
  -m "lab or needs_dm or needs_xen" $extra $inner $project > "$R/lab.log" 2>&1
rc=$?
if [ "$rc" = 124 ] || { [ "$rc" = 2 ] && grep -q "KeyboardInterrupt" "$R/lab.log"; }; then
  echo "LAB: the tests were stopped after ${LAB_BUDGET:-2400}s (LAB_BUDGET)" | tee -a "$R/lab.log" > "$R/lab-interrupted"
fi
if [ "$rc" = 5 ] && [ -n "$extra" ]; then
  # the caller's -k/-m chose none of the tests on purpose (tests/lab/run -- -k ...)
  echo "$extra" > "$R/lab-deselected"
  rc=0
fi
step "lab tests exit $rc at uptime $(now)s: $(tail -n 1 "$R/lab.log")"

# Diagnostics for the report.
journalctl -b --no-pager > "$R/journal.log" 2>&1
mkdir -p "$R/var-log-xen" "$R/var-log-libvirt"
cp -r /var/log/xen/. "$R/var-log-xen/" 2>/dev/null
cp -r /var/log/libvirt/. "$R/var-log-libvirt/" 2>/dev/null
xl dmesg > "$R/xl-dmesg.log" 2>&1
systemd-analyze blame > "$R/systemd-blame.txt" 2>&1
systemd-analyze critical-chain lab-run.service > "$R/systemd-critical-chain.txt" 2>&1
echo "uptime_at_end=$(now)" >> "$R/versions.txt"

[ "$rc" = 0 ]
