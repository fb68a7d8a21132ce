"""A dom0 stand-in and its LAN in network namespaces the tests create, and a stand-in NetworkManager.

Layout per test (nothing of this machine's own interfaces is touched)::

    netns HOST (a dom0 stand-in)          netns LAN (the switch and gateway)
      eth0 10.77.0.2/24, fd00:77::2/64  ==  peer0 10.77.0.1/24, fd00:77::1/64
        default via 10.77.0.1
      eth1 (no address)                 ==  peer1

:class:`NM` puts ``nmcli_standin.py`` on PATH as ``nmcli``, set up like a host where
NetworkManager runs eth0 with "Wired connection 1". The fixtures ``lab`` and ``nm``
(tests/functional/conftest.py) make them per test.
"""

import json
import os
import subprocess
import sys
import uuid

import pytest

from saltext_xen.networks import bridge_nm, bridges


def sh(*argv, check=True):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr}")
    return proc


class Lab:
    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        self.host = f"xt-host-{tag}"
        self.lan = f"xt-lan-{tag}"

    def up(self):
        for ns in (self.host, self.lan):
            proc = sh("ip", "netns", "add", ns, check=False)
            if proc.returncode != 0:
                pytest.skip(f"cannot create network namespaces here ({proc.stderr.strip()}); needs root and netns")
        for i in (0, 1):
            sh(
                "ip",
                "-n",
                self.host,
                "link",
                "add",
                f"eth{i}",
                "type",
                "veth",
                "peer",
                "name",
                f"peer{i}",
                "netns",
                self.lan,
            )
            sh("ip", "-n", self.host, "link", "set", f"eth{i}", "up")
            sh("ip", "-n", self.lan, "link", "set", f"peer{i}", "up")
        sh("ip", "-n", self.host, "link", "set", "lo", "up")
        sh("ip", "-n", self.lan, "addr", "add", "10.77.0.1/24", "dev", "peer0")
        sh("ip", "-n", self.lan, "addr", "add", "fd00:77::1/64", "dev", "peer0", "nodad")
        sh("ip", "-n", self.host, "addr", "add", "10.77.0.2/24", "dev", "eth0")
        sh("ip", "-n", self.host, "addr", "add", "fd00:77::2/64", "dev", "eth0", "nodad")
        sh("ip", "-n", self.host, "route", "add", "default", "via", "10.77.0.1")
        return self

    def down(self):
        for ns in (self.host, self.lan):
            sh("ip", "netns", "del", ns, check=False)

    def j(self, *argv):
        return json.loads(sh("ip", "-n", self.host, "-j", *argv).stdout or "[]")

    def link(self, name):
        found = [link for link in self.j("-d", "link", "show") if link["ifname"] == name]
        return found[0] if found else None

    def addrs(self, name):
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in self.j("addr", "show", "dev", name)
            for a in link["addr_info"]
            if a["scope"] == "global"
        ]

    def default_dev(self):
        return [r["dev"] for r in self.j("route", "show", "default")]

    def ping(self, target="10.77.0.1"):
        """Reachable when a TCP connect to a closed port is refused (the gateway answered with a reset)."""
        return sh(
            "ip", "netns", "exec", self.host, sys.executable, "-c", PROBE, target, "1", check=False
        ).stdout.split() == ["1", "0"]


# try ``count`` TCP connects to port 9 of the target: print how many were answered and how many timed out
PROBE = """
import socket, sys, time
target, count = sys.argv[1], int(sys.argv[2])
ok = lost = 0
for _ in range(count):
    try:
        socket.create_connection((target, 9), timeout=0.5).close()
        ok += 1
    except ConnectionRefusedError:
        ok += 1
    except OSError:
        lost += 1
    time.sleep(0.01)
print(ok, lost)
"""


def state(states, func, name, **kwargs):
    raw = getattr(states.xen_net, func)(name, **kwargs).raw
    if "result" not in raw:  # the loader wraps some returns in {state_id: ret}
        (raw,) = raw.values()
    return raw


STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nmcli_standin.py")
KEYDIR = "etc/NetworkManager/system-connections"
WIRED_UUID = "6f1c7c2e-2b6b-4d8e-9a57-0d5a3c2f0e01"
WIRED = f"""[connection]
id=Wired connection 1
uuid={WIRED_UUID}
type=ethernet
interface-name=eth0
autoconnect=true

[ipv4]
method=manual
address1=10.77.0.2/24,10.77.0.1

[ipv6]
method=manual
address1=fd00:77::2/64
"""


class NM:
    """The stand-in nmcli, set up like a host where NetworkManager runs eth0 with 'Wired connection 1'."""

    def __init__(self, lab, root, monkeypatch):
        self.lab, self.root = lab, root
        bindir = root / "bin"
        bindir.mkdir()
        (bindir / "nmcli").write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} "$@"\n')
        (bindir / "nmcli").chmod(0o755)
        self.state_file = root / "nmcli.json"
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("NMCLI_STANDIN_ROOT", str(root))
        monkeypatch.setenv("NMCLI_STANDIN_STATE", str(self.state_file))
        (root / KEYDIR).mkdir(parents=True)
        wired = root / KEYDIR / "Wired connection 1.nmconnection"
        wired.write_text(WIRED)
        wired.chmod(0o600)
        # eth0 already runs with this connection (the lab set its addresses): NM's memory says so
        self.state_file.write_text(json.dumps({"loaded": {}, "active": {WIRED_UUID: "eth0"}, "calls": []}))
        self.nmcli("connection", "reload")
        self.forget_calls()

    def nmcli(self, *argv):
        res = bridges.subprocess_runner(["ip", "netns", "exec", self.lab.host, "nmcli", *argv])
        assert res["retcode"] == 0, res["stderr"]
        return res["stdout"]

    def calls(self):
        """The nmcli calls that change something (reading ones left out)."""
        return [" ".join(c) for c in json.loads(self.state_file.read_text())["calls"] if "-t" not in c]

    def forget_calls(self):
        data = json.loads(self.state_file.read_text())
        data["calls"] = []
        self.state_file.write_text(json.dumps(data))

    def device(self, name):
        for line in self.nmcli("-t", "-f", "DEVICE,STATE,CONNECTION", "device").splitlines():
            fields = bridge_nm.split_terse(line)
            if fields[0] == name:
                return fields[1], fields[2]
        return None

    def keyfiles(self):
        return sorted(os.listdir(self.root / KEYDIR))
