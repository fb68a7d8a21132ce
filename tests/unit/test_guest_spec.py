"""The guest spec: what an operator writes in pillar, what they are told when it is wrong."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.guests import guest_spec

# ----------------------------------------------------------------- strategies (shared with the
# domain_xml and xlcfg round-trip tests)
_seg = st.text(alphabet=string.ascii_lowercase + string.digits + "_.-", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
paths = st.lists(_seg, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
block_paths = st.tuples(_seg, _seg).map(lambda p: f"/dev/{p[0]}/{p[1]}")
words = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
cmdline_text = st.text(alphabet=string.ascii_letters + string.digits + ' =/._-"\\', min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and s
)
macs = st.tuples(*[st.integers(0, 255)] * 5).filter(any).map(lambda t: "00:" + ":".join(f"{b:02x}" for b in t))


@st.composite
def guest_data(draw, gtype=None):
    """Pillar-shaped data for one valid guest."""
    gtype = gtype or draw(st.sampled_from(guest_spec.TYPES))
    memory = draw(st.integers(1, 65536))
    vcpus = draw(st.integers(1, 16))
    data = {
        "type": gtype,
        "memory": memory,
        "maxmem": memory + draw(st.integers(0, 4096)),
        "vcpus": vcpus,
        "maxvcpus": vcpus + draw(st.integers(0, 8)),
        "on_poweroff": draw(st.sampled_from(guest_spec.EVENT_CHOICES["on_poweroff"])),
        "on_reboot": draw(st.sampled_from(guest_spec.EVENT_CHOICES["on_reboot"])),
        "on_crash": draw(st.sampled_from(guest_spec.EVENT_CHOICES["on_crash"])),
        "autostart": draw(st.booleans()),
    }
    if draw(st.booleans()):
        data["uuid"] = str(draw(st.uuids()))
    boot = {}
    if gtype == "hvm":
        boot["order"] = draw(st.lists(st.sampled_from(guest_spec.BOOT_DEVICES), min_size=1, max_size=4, unique=True))
    elif gtype == "pvh" or draw(st.booleans()):
        boot["kernel"] = draw(paths)
        if draw(st.booleans()):
            boot["ramdisk"] = draw(paths)
        if draw(st.booleans()):
            boot["cmdline"] = draw(cmdline_text)
    else:
        boot["bootloader"] = draw(st.sampled_from(["pygrub", "/usr/bin/pygrub", "/usr/lib/xen/bin/pygrub"]))
    data["boot"] = boot
    n_disks = draw(st.integers(0, 4))
    prefixes = ["xvd", "hd"] if gtype == "hvm" else ["xvd", "sd", "hd"]
    idx = draw(st.lists(st.integers(0, 27), min_size=n_disks, max_size=n_disks, unique=True))
    disks = []
    for i in idx:
        device = draw(st.sampled_from(["disk", "disk", "cdrom"]))
        disk = {"target": guest_spec.target_name(draw(st.sampled_from(prefixes)), i), "device": device}
        if device == "cdrom":
            disk["source"] = draw(st.one_of(st.none(), paths))
        else:
            disk["source"] = draw(st.one_of(paths, block_paths))
            disk["format"] = draw(st.sampled_from(guest_spec.FORMATS))
            disk["readonly"] = draw(st.booleans())
            if draw(st.booleans()):
                disk["size"] = draw(st.integers(1, 4 * 1024 * 1024))
        disks.append(disk)
    data["disks"] = disks
    nic_macs = draw(st.lists(macs, max_size=3, unique=True))
    nics = []
    for mac in nic_macs:
        nic = {"mac": mac}
        if draw(st.booleans()):
            nic["bridge"] = draw(words)
        else:
            nic["network"] = draw(words)
        if draw(st.booleans()):
            nic["model"] = draw(st.sampled_from(["netfront", "e1000", "rtl8139"]))
        if draw(st.booleans()):
            nic["script"] = draw(st.sampled_from(["vif-bridge", "/etc/xen/scripts/vif-route"]))
        nics.append(nic)
    data["nics"] = nics
    if draw(st.booleans()):
        password = draw(
            st.one_of(st.none(), st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8))
        )
        listen = draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "192.168.0.10"])) if password else "127.0.0.1"
        data["graphics"] = {
            "display": draw(st.one_of(st.none(), st.integers(0, 99))),
            "listen": listen,
            "password": password,
            "keymap": draw(st.sampled_from([None, "en-us", "de"])),
        }
    if draw(st.booleans()):
        if gtype == "hvm":
            data["install"] = {"iso": draw(paths)}
        elif "kernel" not in boot:
            data["install"] = {"location": "http://192.168.0.254/pub", "kickstart": "http://192.168.0.254/pub/ks.cfg"}
    return data


@st.composite
def specs(draw):
    name = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
    spec, problems = guest_spec.validate(name, draw(guest_data()))
    assert problems == []
    return spec


# ----------------------------------------------------------------- examples
def test_tutorial_vm02_gets_defaults():
    spec, problems = guest_spec.validate(
        "vm02", {"memory": 512, "vcpus": 2, "disks": ["/var/lib/xen/images/vm02.img"], "nics": [{"bridge": "xenbr0"}]}
    )
    assert problems == []
    assert spec["type"] == "pv"
    assert spec["maxmem"] == 512 and spec["maxvcpus"] == 2
    assert spec["boot"]["bootloader"] == "/usr/bin/pygrub"
    assert spec["disks"] == [
        {
            "source": "/var/lib/xen/images/vm02.img",
            "target": "xvda",
            "format": "raw",
            "readonly": False,
            "size": None,
            "device": "disk",
        }
    ]
    assert spec["nics"] == [{"mac": None, "bridge": "xenbr0", "network": None, "model": None, "script": None}]
    assert spec["graphics"] is None
    assert (spec["on_poweroff"], spec["on_reboot"], spec["on_crash"]) == ("destroy", "restart", "restart")
    assert spec["autostart"] is False and spec["uuid"] is None and spec["install"] is None


def test_memory_typo_is_named_with_its_key_path():
    spec, problems = guest_spec.validate("vm02", {"memory": "5l2"})
    assert spec is None
    assert problems == ["xen:guests:vm02:memory: expected MiB as an integer, got '5l2'"]


def test_every_problem_is_reported_at_once():
    _, problems = guest_spec.validate(
        "vm02",
        {
            "memory": 1024,
            "maxmem": 512,
            "vcpus": 4,
            "maxvcpus": 2,
            "memroy": 1,
            "disks": [{"source": "/a.img", "target": "xvda"}, {"source": "/b.img", "target": "xvda"}],
            "nics": [
                {"mac": "01:00:5e:00:00:01"},
                {"mac": "00:16:3e:00:00:01"},
                {"mac": "00:16:3E:00:00:01"},
                {"mac": "zz"},
            ],
            "graphics": {"listen": "0.0.0.0"},
            "on_crash": "explode",
        },
    )
    text = "\n".join(problems)
    assert "xen:guests:vm02:maxmem: maxmem (512 MiB) is below memory (1024 MiB)" in problems
    assert "xen:guests:vm02:maxvcpus: maxvcpus (2) is below vcpus (4)" in problems
    assert "xen:guests:vm02:memroy: unknown key" in text
    assert "xen:guests:vm02:disks:1:target: xvda is already used by disk 0" in text
    assert "xen:guests:vm02:nics:0:mac: '01:00:5e:00:00:01' is a multicast address" in text
    assert "xen:guests:vm02:nics:2:mac: 00:16:3e:00:00:01 is already used by NIC 1" in text
    assert "xen:guests:vm02:nics:3:mac: expected a MAC" in text
    assert "xen:guests:vm02:graphics:listen:" in text and "needs a password" in text
    assert "xen:guests:vm02:on_crash: expected one of destroy, restart" in text
    assert len(problems) == 9


def test_sizes_accept_units():
    spec, problems = guest_spec.validate(
        "vm02", {"memory": "1G", "maxmem": "2GiB", "disks": [{"source": "/x.img", "size": "8G"}]}
    )
    assert problems == []
    assert (spec["memory"], spec["maxmem"], spec["disks"][0]["size"]) == (1024, 2048, 8192)


def test_vnc_is_local_by_default_and_password_is_bounded():
    spec, _ = guest_spec.validate("vm02", {"graphics": "vnc"})
    assert spec["graphics"] == {"type": "vnc", "display": None, "listen": "127.0.0.1", "password": None, "keymap": None}
    _, problems = guest_spec.validate("vm02", {"graphics": {"password": "far-too-long"}})
    assert problems == [
        "xen:guests:vm02:graphics:password: VNC uses only the first 8 characters of a password; give at most 8"
    ]
    spec, problems = guest_spec.validate(
        "vm02", {"graphics": {"listen": "0.0.0.0", "password": "123", "display": "01"}}
    )
    assert problems == [] and spec["graphics"]["display"] == 1


def test_hvm_cdrom_shortcut_becomes_a_disk_and_boots_first():
    spec, problems = guest_spec.validate(
        "win", {"type": "hvm", "boot": {"cdrom": "/srv/iso/w.iso"}, "disks": [{"source": "/dev/vol0/win"}]}
    )
    assert problems == []
    assert spec["boot"]["order"] == ["cdrom", "hd"]
    assert spec["disks"][1] == {
        "source": "/srv/iso/w.iso",
        "target": "hdc",
        "format": "raw",
        "readonly": True,
        "size": None,
        "device": "cdrom",
    }


def test_pv_sda_and_xvda_are_different_disks_but_not_on_hvm():
    _, problems = guest_spec.validate(
        "newvm", {"disks": [{"source": "/a", "target": "xvda"}, {"source": "/b", "target": "sda"}]}
    )
    assert problems == []
    _, problems = guest_spec.validate(
        "w", {"type": "hvm", "disks": [{"source": "/a", "target": "xvda"}, {"source": "/b", "target": "hda"}]}
    )
    assert problems == ["xen:guests:w:disks:1:target: hda is already used by disk 0 (xvda)"]


def test_install_needs_what_it_uses():
    _, problems = guest_spec.validate("vm02", {"install": {"kickstart": "http://x/ks.cfg"}})
    assert problems == [
        "xen:guests:vm02:install:location: a network install needs the install tree's URL "
        "(http://, ftp://, file:// or a directory)"
    ]
    _, problems = guest_spec.validate("vm02", {"type": "pv", "install": {"iso": "/srv/x.iso"}})
    assert problems == ["xen:guests:vm02:install:method: installing from an ISO needs an hvm guest (type: hvm)"]
    spec, problems = guest_spec.validate(
        "vm02", {"install": {"location": "ftp://192.168.0.254/pub", "ks": "ftp://192.168.0.254/pub/ks.cfg"}}
    )
    assert problems == []
    assert spec["install"]["kernel_path"] == "images/xen/vmlinuz"
    assert spec["install"]["initrd_path"] == "images/xen/initrd.img"


def test_validate_disk_and_nic_alone():
    disk, problems = guest_spec.validate_disk({"source": "/var/lib/xen/images/d.qcow2"}, "xen:guests:vm02:disks:1")
    assert problems == [] and disk["format"] == "qcow2" and disk["target"] is None
    nic, problems = guest_spec.validate_nic({"mac": "00-16-3E-AA-BB-CC", "network": "default"}, "p")
    assert problems == [] and nic == {
        "mac": "00:16:3e:aa:bb:cc",
        "bridge": None,
        "network": "default",
        "model": None,
        "script": None,
    }
    _, problems = guest_spec.validate_nic({"bridge": "xenbr0", "network": "default"}, "p")
    assert problems == ["p: give either bridge ('xenbr0') or network ('default'), not both"]


def test_diff_masks_the_vnc_password():
    old, _ = guest_spec.validate("vm02", {"graphics": {"password": "123"}})
    new, _ = guest_spec.validate("vm02", {"graphics": {"password": "456"}, "memory": 1024, "maxmem": 1024})
    changes = guest_spec.diff(old, new)
    assert changes["graphics:password"] == {"old": "********", "new": "changed"}
    assert changes["memory"] == {"old": 512, "new": 1024}
    assert "123" not in repr(changes) and "456" not in repr(changes)
    none, _ = guest_spec.validate("vm02", {})
    assert guest_spec.diff(none, old)["graphics:type"] == {"old": None, "new": "vnc"}
    assert guest_spec.diff(none, old)["graphics:password"] == {"old": None, "new": "********"}
    assert "123" not in repr(guest_spec.masked(old))


def test_adopt_keeps_existing_uuid_and_macs():
    wanted, _ = guest_spec.validate("vm02", {"nics": [{"bridge": "xenbr0"}]})
    existing = dict(
        wanted, uuid="5c9d6d60-6f2b-4a39-9a47-30b3f3c3a002", nics=[dict(wanted["nics"][0], mac="00:16:3e:02:00:01")]
    )
    adopted = guest_spec.adopt(wanted, existing)
    assert guest_spec.diff(existing, adopted) == {}
    fresh = guest_spec.fill_new(wanted, taken_macs=["00:16:3e:02:00:01"])
    assert fresh["uuid"] and fresh["nics"][0]["mac"].startswith("00:16:3e:")


@settings(max_examples=200, deadline=None)
@given(specs())
def test_validating_a_spec_again_changes_nothing(spec):
    again, problems = guest_spec.validate(spec["name"], guest_spec.to_data(spec))
    assert problems == []
    assert again == spec
    assert guest_spec.diff(spec, again) == {}


def test_a_mac_given_to_two_guests_is_named():
    spec, _ = guest_spec.validate("vm02", {"nics": [{"mac": "00:16:3E:02:00:01"}]})
    others = {"vm02": {"nics": [{"mac": "00:16:3e:02:00:01"}]}, "newvm": {"nics": [{"mac": "00-16-3e-02-00-01"}]}}
    assert guest_spec.mac_clashes("vm02", spec, guest_spec.mac_owners(others)) == [
        "xen:guests:vm02:nics:0:mac: 00:16:3e:02:00:01 is also given to guest newvm"
    ]
    assert guest_spec.mac_clashes("vm02", spec, guest_spec.mac_owners({"newvm": {"nics": "bad"}})) == []


_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 70000), st.text(max_size=12), st.floats(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                list(guest_spec.TOP_KEYS)
                + list(guest_spec.DISK_KEYS)
                + list(guest_spec.NIC_KEYS)
                + list(guest_spec.GRAPHICS_KEYS)
                + list(guest_spec.BOOT_KEYS)
                + list(guest_spec.INSTALL_KEYS)
                + ["junk"]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(list(guest_spec.TOP_KEYS) + ["junk"]), _junk, max_size=8))
def test_any_pillar_data_gives_a_spec_or_problems_never_a_traceback(data):
    spec, problems = guest_spec.validate("vm02", data)
    assert (spec is None) == bool(problems)
    assert all(p.startswith("xen:guests:vm02") for p in problems)
