"""A stand-in for ``nmcli`` for the tests: this machine has no NetworkManager and must not get one.

It is NOT NetworkManager. It knows just enough for the bridge code: it reads
keyfiles from ``$NMCLI_STANDIN_ROOT/etc/NetworkManager/system-connections`` and
``.../run/NetworkManager/system-connections`` on ``connection reload``, and turns
``connection up`` / ``connection down`` into the equivalent ``ip`` commands in the
network namespace it runs in (the tests call it as ``ip netns exec NS nmcli ...``).
Like NetworkManager, activating a connection on a device first takes the device's
old connection off it, a bridge with ``autoconnect-slaves=1`` brings its ports up,
and a profile whose file is gone at reload is taken down. Its memory (loaded and
active connections, every call) is the JSON file ``$NMCLI_STANDIN_STATE``.

Knobs for the tests: ``NMCLI_STANDIN_DOWN=1`` answers like an nmcli whose
NetworkManager is not running (exit 8); ``NMCLI_STANDIN_UNMANAGED=eth1,...`` lists
devices shown as unmanaged; ``NMCLI_STANDIN_FAIL=port`` makes activating a bridge
port fail (exit 4) after the bridge itself came up; ``NMCLI_STANDIN_FAIL=addresses``
activates a plain NIC connection without ever putting its addresses on the NIC (like
a NetworkManager whose DHCP or address setup never finishes).

Supported: ``-t -f DEVICE,STATE,CONNECTION device``,
``-t -f NAME,UUID,TYPE,DEVICE,ACTIVE,FILENAME connection show``,
``connection reload``, ``connection up|down [uuid|id] X``.
"""

import configparser
import glob
import json
import os
import subprocess
import sys
import uuid as uuidlib

ROOT = os.environ.get("NMCLI_STANDIN_ROOT", "/nonexistent")
STATE = os.environ.get("NMCLI_STANDIN_STATE", "/nonexistent/nmcli.json")
DIRS = ("etc/NetworkManager/system-connections", "run/NetworkManager/system-connections")
TYPES = {"ethernet": "802-3-ethernet", "bridge": "bridge", "vlan": "vlan"}


class Failed(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def ip(*argv, check=True):
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise Failed(4, f"Error: Connection activation failed: ip {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def links():
    return {link["ifname"]: link for link in json.loads(ip("-j", "-d", "link", "show").stdout or "[]")}


def load_state():
    try:
        with open(STATE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"loaded": {}, "active": {}, "calls": []}


def save_state(state):
    with open(STATE + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1)
    os.replace(STATE + ".tmp", STATE)


def read_keyfiles():
    found = {}
    for directory in DIRS:
        for path in sorted(glob.glob(os.path.join(ROOT, directory, "*.nmconnection"))):
            ini = configparser.ConfigParser(interpolation=None)
            ini.read(path, encoding="utf-8")
            conn = {section: dict(ini[section]) for section in ini.sections()}
            conn["filename"] = path
            uuid = conn["connection"].get("uuid") or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, path))
            found[uuid] = conn
    return found


def esc(value):
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def find(state, words):
    if words[:1] in (["uuid"], ["id"]):
        key, value = words[0], words[1]
    else:
        key, value = "any", words[0]
    for uuid, conn in state["loaded"].items():
        if (key in ("uuid", "any") and uuid == value) or (key in ("id", "any") and conn["connection"]["id"] == value):
            return uuid
    raise Failed(10, f"Error: unknown connection '{value}'.")


def ip_config(dev, conn):
    for family in ("ipv4", "ipv6"):
        section = conn.get(family, {})
        for key in sorted(k for k in section if k.startswith("address")):
            addr, _, gateway = section[key].partition(",")
            ip("addr", "replace", addr, "dev", dev, *(["nodad"] if family == "ipv6" else []))
            if gateway:
                ip("-6" if family == "ipv6" else "-4", "route", "replace", "default", "via", gateway, "dev", dev)


def deactivate(state, uuid):
    dev = state["active"].pop(uuid, None)
    conn = state["loaded"].get(uuid) or state.get("gone", {}).get(uuid)
    if dev is None or conn is None:
        return
    info = conn["connection"]
    if info.get("type") == "bridge":
        for other in list(state["active"]):
            master = (state["loaded"].get(other) or {}).get("connection", {}).get("master")
            if master in (info.get("id"), dev, uuid):
                deactivate(state, other)
        ip("link", "del", dev, check=False)
    elif info.get("master"):
        ip("link", "set", "dev", dev, "nomaster", check=False)
    else:
        ip("addr", "flush", "dev", dev, "scope", "global", check=False)


def activate(state, uuid):
    conn = state["loaded"][uuid]
    info = conn["connection"]
    dev = info["interface-name"]
    for other, other_dev in list(state["active"].items()):
        if other_dev == dev and other != uuid:
            deactivate(state, other)
    have = links()
    mtu = conn.get("ethernet", {}).get("mtu")
    if info["type"] == "bridge":
        bridge = conn.get("bridge", {})
        stp = "1" if bridge.get("stp", "true") == "true" else "0"
        delay = str(int(bridge.get("forward-delay", 15)) * 100)
        if dev not in have:
            mac = ["address", bridge["mac-address"]] if bridge.get("mac-address") else []
            ip("link", "add", "name", dev, *mac, "type", "bridge", "stp_state", stp, "forward_delay", delay)
        else:
            ip("link", "set", "dev", dev, "type", "bridge", "stp_state", stp, "forward_delay", delay)
        if mtu:
            ip("link", "set", "dev", dev, "mtu", mtu)
        ip("link", "set", "dev", dev, "up")
        ip_config(dev, conn)
        state["active"][uuid] = dev
        if info.get("autoconnect-slaves") == "1":
            for port, port_conn in sorted(state["loaded"].items()):
                if port_conn["connection"].get("master") in (info["id"], dev, uuid):
                    activate(state, port)
        return
    if info.get("master"):
        if os.environ.get("NMCLI_STANDIN_FAIL") == "port":
            raise Failed(4, f"Error: Connection activation failed: port {dev} did not attach (stand-in told to fail)")
        if info["type"] == "vlan" and dev not in have:
            vlan = conn["vlan"]
            ip("link", "add", "link", vlan["parent"], "name", dev, "type", "vlan", "id", vlan["id"])
        ip("addr", "flush", "dev", dev, "scope", "global")
        master = info["master"]
        for other, other_conn in state["loaded"].items():
            if master in (other, other_conn["connection"]["id"]):
                master = other_conn["connection"]["interface-name"]
        ip("link", "set", "dev", dev, "master", master)
    else:
        if have.get(dev, {}).get("master"):
            ip("link", "set", "dev", dev, "nomaster")
        if os.environ.get("NMCLI_STANDIN_FAIL") != "addresses":
            ip_config(dev, conn)
    if mtu:
        ip("link", "set", "dev", dev, "mtu", mtu)
    ip("link", "set", "dev", dev, "up")
    state["active"][uuid] = dev


def main(argv):
    if os.environ.get("NMCLI_STANDIN_DOWN") == "1":
        print("Error: NetworkManager is not running.", file=sys.stderr)
        return 8
    state = load_state()
    state["calls"].append(argv)
    words = [w for w in argv if w not in ("-t",)]
    fields = None
    if words[:1] == ["-f"]:
        fields, words = words[1].split(","), words[2:]
    try:
        if words == ["device"] or words == ["device", "status"]:
            unmanaged = set(filter(None, os.environ.get("NMCLI_STANDIN_UNMANAGED", "").split(",")))
            by_dev = {dev: uuid for uuid, dev in state["active"].items()}
            for dev in links():
                if dev == "lo" or dev in unmanaged:
                    row = {"DEVICE": dev, "STATE": "unmanaged", "CONNECTION": ""}
                elif dev in by_dev:
                    row = {
                        "DEVICE": dev,
                        "STATE": "connected",
                        "CONNECTION": state["loaded"][by_dev[dev]]["connection"]["id"],
                    }
                else:
                    row = {"DEVICE": dev, "STATE": "disconnected", "CONNECTION": ""}
                print(":".join(esc(row[f]) for f in fields or ["DEVICE", "STATE", "CONNECTION"]))
        elif words[:2] == ["connection", "show"]:
            for uuid, conn in state["loaded"].items():
                info = conn["connection"]
                row = {
                    "NAME": info["id"],
                    "UUID": uuid,
                    "TYPE": TYPES.get(info["type"], info["type"]),
                    "DEVICE": state["active"].get(uuid, ""),
                    "ACTIVE": "yes" if uuid in state["active"] else "no",
                    "FILENAME": conn["filename"],
                }
                print(":".join(esc(row[f]) for f in fields or ["NAME", "UUID", "TYPE", "DEVICE"]))
        elif words[:2] == ["connection", "reload"]:
            new = read_keyfiles()
            state["gone"] = {u: c for u, c in state["loaded"].items() if u not in new}
            for uuid in list(state["active"]):
                if uuid not in new:
                    deactivate(state, uuid)
            state["loaded"] = new
            state.pop("gone")
        elif words[:2] == ["connection", "up"]:
            uuid = find(state, words[2:])
            try:
                activate(state, uuid)
            finally:
                save_state(state)
            print(
                f"Connection successfully activated (D-Bus active path: /org/freedesktop/NetworkManager/"
                f"ActiveConnection/{len(state['calls'])})"
            )
        elif words[:2] == ["connection", "down"]:
            uuid = find(state, words[2:])
            if uuid not in state["active"]:
                raise Failed(10, f"Error: '{words[-1]}' is not an active connection.")
            deactivate(state, uuid)
        else:
            raise Failed(2, f"Error: the stand-in nmcli does not know '{' '.join(argv)}'.")
    except Failed as exc:
        print(str(exc), file=sys.stderr)
        save_state(state)
        return exc.code
    save_state(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
