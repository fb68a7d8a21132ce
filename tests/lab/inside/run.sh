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
  /opt/salt/bin/python -c 'import salt.version; print("salt", salt.version.__version__)'
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
{
  t=$(now); /opt/salt/bin/python -c pass; echo "python -c pass: $(echo "$(now) - $t" | bc 2>/dev/null || echo "$t -> $(now)")"
  t=$(now); /opt/salt/bin/python -c 'import salt.client'; echo "import salt.client: $t -> $(now)"
} >> "$R/versions.txt" 2>&1
step "probes: $(tail -n 2 "$R/versions.txt" | tr '\n' ' ')"

# The project, installed as a user would: its wheel into the Salt venv, offline.
if ! pip install --no-index --find-links /lab/wheels --find-links /opt/lab-wheels \
      --disable-pip-version-check saltext-xen > "$R/pip-install.log" 2>&1; then
  step "ERROR: pip install of the project wheel failed"
  tail -20 "$R/pip-install.log"
  exit 96
fi
step "project wheel installed at uptime $(now)s"

# knobs from the host (tests/lab/run writes them): LAB_PROJECT_BUDGET, LAB_TEST_TIMEOUT
[ -f /lab/inside/env ] && . /lab/inside/env
extra=""
[ -s /lab/inside/pytest-args ] && extra=$(cat /lab/inside/pytest-args | tr '\n' ' ')
cd /lab/inside || exit 95
# the guest module first (everything else builds on it), then the other groups
order="test_guest_module.py $(ls test_*.py | grep -vx test_guest_module.py | tr '\n' ' ')"
# shellcheck disable=SC2086
# No third-party plugins for the inner suite: importing them costs minutes under TCG.
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -p no:cacheprovider -o junit_family=xunit1 -rfEs -v \
  --junitxml="$R/inner.xml" --durations=20 $extra $order > "$R/inner.log" 2>&1
rc_inner=$?
if [ "$rc_inner" = 5 ] && [ -n "$extra" ]; then
  # the caller's -k/-m chose none of the inner tests on purpose (tests/lab/run -- -k ...)
  echo "$extra" > "$R/inner-deselected"
  rc_inner=0
fi
step "inner suite exit $rc_inner at uptime $(now)s: $(tail -n 1 "$R/inner.log")"

# The project's own tests that skip elsewhere for lack of device-mapper or Xen:
# only the files that use the markers are collected (collecting everything costs minutes here).
cd /lab/project || exit 95
files=$(grep -rlE "needs_dm|needs_xen|mark\.lab" tests --include='test_*.py' | grep -v '^tests/lab/' | sort)
if [ "${LAB_PROJECT_BUDGET:-1200}" = 0 ]; then
  echo '<?xml version="1.0"?><testsuites><testsuite name="project" tests="0"/></testsuites>' > "$R/project.xml"
  echo "LAB: the project's lab-marked tests were not run (LAB_PROJECT_BUDGET=0)" | tee "$R/project.log" > "$R/project-interrupted"
  rc_project=0
elif [ -n "$files" ]; then
  step "project tests marked needs_dm/needs_xen/lab in: $(echo $files | tr '\n' ' ')"
  # shellcheck disable=SC2086
  # A budget: past it pytest gets SIGINT, stops, and still writes its junit XML (the
  # tests not reached are then missing from the report, which fails the group).
  XEN_LAB=0 PYTHONPATH=/lab/inside timeout -s INT -k 60 "${LAB_PROJECT_BUDGET:-1200}" \
    python -m pytest -p labprogress -p no:cacheprovider -o junit_family=xunit1 -rfEs -v \
    -m "lab or needs_dm or needs_xen" --junitxml="$R/project.xml" $files > "$R/project.log" 2>&1
  rc_project=$?
  if [ "$rc_project" = 124 ] || [ "$rc_project" = 2 ]; then
    echo "LAB: the project's lab-marked tests were stopped after ${LAB_PROJECT_BUDGET:-1200}s (LAB_PROJECT_BUDGET)" \
      | tee -a "$R/project.log" > "$R/project-interrupted"
  fi
  [ "$rc_project" = 5 ] && rc_project=0   # none selected: reported as "no tests", not a failure
else
  echo '<?xml version="1.0"?><testsuites><testsuite name="project" tests="0"/></testsuites>' > "$R/project.xml"
  echo "no project test uses the needs_dm, needs_xen or lab markers" > "$R/project.log"
  rc_project=0
fi
step "project lab-marked tests exit $rc_project at uptime $(now)s: $(tail -n 1 "$R/project.log")"

# Diagnostics for the report.
journalctl -b --no-pager > "$R/journal.log" 2>&1
mkdir -p "$R/var-log-xen" "$R/var-log-libvirt"
cp -r /var/log/xen/. "$R/var-log-xen/" 2>/dev/null
cp -r /var/log/libvirt/. "$R/var-log-libvirt/" 2>/dev/null
xl dmesg > "$R/xl-dmesg.log" 2>&1
systemd-analyze blame > "$R/systemd-blame.txt" 2>&1
systemd-analyze critical-chain lab-run.service > "$R/systemd-critical-chain.txt" 2>&1
echo "uptime_at_end=$(now)" >> "$R/versions.txt"

[ "$rc_inner" = 0 ] && [ "$rc_project" = 0 ]
