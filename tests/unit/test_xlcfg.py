"""xl.cfg and the tutorial's xm configs <-> the guest spec."""

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saltext_xen.guests import guest_spec, xlcfg
from tests.unit.test_guest_spec import specs

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "data" / "xen-configs"


def _read(name):
    spec, problems = xlcfg.parse((CONFIGS / name).read_text())
    assert problems == []
    return spec


def test_tutorial_newvm_two_disks_two_nics():
    spec = _read("newvm")
    assert spec["name"] == "newvm" and spec["uuid"] == "2aa1fae5-8550-affd-866f-27a9d6977d16"
    assert (spec["memory"], spec["maxmem"], spec["vcpus"]) == (512, 512, 2)
    assert spec["boot"]["bootloader"] == "/usr/bin/pygrub"
    assert [(d["source"], d["target"], d["readonly"]) for d in spec["disks"]] == [
        ("/dev/mapper/vol0-lv_for_newvm", "xvda", False),
        ("/var/lib/xen/p_w_picpaths/newvm-1.img", "xvdb", False),
    ]
    assert [(n["mac"], n["bridge"], n["script"]) for n in spec["nics"]] == [
        ("00:16:36:88:76:d4", "xenbr0", "vif-bridge"),
        ("00:16:36:77:66:d5", "xenbr0", "vif-bridge"),
    ]
    assert spec["graphics"] is None  # the vfb line is commented out


def test_tutorial_second_disk_on_sda():
    spec = _read("newvm-2disks")
    assert [d["target"] for d in spec["disks"]] == ["xvda", "sda"]


@pytest.mark.parametrize("name", ["newvm-clone", "newvm-lv", "vm02"])
def test_other_tutorial_configs_read(name):
    spec = _read(name)
    assert spec["disks"][0]["target"] == "xvda" and spec["disks"][0]["format"] == "raw"


def test_vnc_variants_display_listen_password():
    spec = _read("newvm-vnc")
    assert spec["graphics"] == {"type": "vnc", "display": 1, "listen": "0.0.0.0", "password": "123", "keymap": "en-us"}


def test_xm_hvm_guest():
    spec = _read("winxp-hvm")
    assert spec["type"] == "hvm" and spec["boot"]["order"] == ["cdrom", "hd"] and spec["boot"]["kernel"] is None
    assert spec["disks"][0]["source"] == "/dev/vol0/winxp"
    assert spec["disks"][1] == {
        "source": "/srv/iso/winxp.iso",
        "target": "hdc",
        "format": "raw",
        "readonly": True,
        "size": None,
        "device": "cdrom",
    }
    assert spec["nics"][0]["model"] == "rtl8139"
    assert spec["graphics"]["listen"] == "127.0.0.1" and spec["graphics"]["display"] is None


def test_vnc_on_every_address_without_password_is_refused():
    text = (CONFIGS / "newvm-vnc").read_text().replace(",vncpasswd=123", "")
    spec, problems = xlcfg.parse(text)
    assert spec is None
    assert len(problems) == 1 and problems[0].startswith("xen:guests:newvm:graphics:listen:")


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "tap:aio:/var/lib/xen/images/a.img,xvda,w",
            {
                "source": "/var/lib/xen/images/a.img",
                "target": "xvda",
                "format": "raw",
                "device": "disk",
                "readonly": False,
            },
        ),
        (
            "file:/srv/a.iso,hdc:cdrom,r",
            {"source": "/srv/a.iso", "target": "hdc", "format": "raw", "device": "cdrom", "readonly": True},
        ),
        (
            "phy:/dev/vol0/lv,xvdb,w",
            {"source": "/dev/vol0/lv", "target": "xvdb", "format": "raw", "device": "disk", "readonly": False},
        ),
        (
            "tap:qcow2:/srv/a.qcow2,xvdc,w",
            {"source": "/srv/a.qcow2", "target": "xvdc", "format": "qcow2", "device": "disk", "readonly": False},
        ),
        (
            "/dev/vg/guest-volume,raw,xvda,rw",
            {"source": "/dev/vg/guest-volume", "target": "xvda", "format": "raw", "device": "disk", "readonly": False},
        ),
        (
            "format=qcow2, vdev=xvdb, access=ro, target=/srv/a,b.qcow2",
            {"source": "/srv/a,b.qcow2", "target": "xvdb", "format": "qcow2", "device": "disk", "readonly": True},
        ),
    ],
)
def test_disk_strings(text, expected):
    assert xlcfg.disk_from_string(text) == expected


def test_syntax_errors_name_the_line():
    with pytest.raises(xlcfg.ConfigError, match="line 2"):
        xlcfg.load('name = "x"\nmemory = = 3\n')
    with pytest.raises(xlcfg.ConfigError, match="line 1"):
        xlcfg.load('disk = [ "a" "b" ]\n')


def test_python_list_syntax_with_trailing_commas_and_comments():
    settings_, _ = xlcfg.load(
        'vif = [ "mac=00:16:3e:00:00:01",  # first\n   "bridge=xenbr1", ]\nvcpus=2; memory="512"\n'
    )
    assert settings_ == {"vif": ["mac=00:16:3e:00:00:01", "bridge=xenbr1"], "vcpus": 2, "memory": "512"}


@settings(max_examples=300, deadline=None)
@given(specs())
def test_render_then_parse_loses_nothing(spec):
    back, problems, ignored = xlcfg.read(xlcfg.render(spec))
    assert problems == []
    assert ignored == {}  # every line this project writes is read back
    assert guest_spec.diff(spec, back) == {}
    assert back == spec


@pytest.mark.parametrize("name", ["newvm", "newvm-vnc", "winxp-hvm", "vm02"])
def test_tutorial_configs_survive_export_and_import(name):
    spec = _read(name)
    assert xlcfg.parse(xlcfg.render(spec)) == (spec, [])


def test_more_xm_era_spellings():
    text = """
name = "old"
builder = "linux"
memory = "256"
vcpus = "1"
bootloader = "/usr/bin/pygrub"
disk = [ 'file:/srv/old.img,ioemu:hda,w!', 'phy:/dev/cdrom,hdc:cdrom,r' ]
vif = [ '' ]
vfb = [ 'sdl=1' ]
"""
    spec, problems = xlcfg.parse(text)
    assert problems == []
    assert spec["type"] == "pv" and spec["memory"] == 256
    assert [(d["source"], d["target"], d["device"], d["readonly"]) for d in spec["disks"]] == [
        ("/srv/old.img", "hda", "disk", False),
        ("/dev/cdrom", "hdc", "cdrom", True),
    ]
    assert spec["nics"] == [{"mac": None, "bridge": "xenbr0", "network": None, "model": None, "script": None}]
    assert spec["graphics"] is None  # SDL only: no VNC


def test_xl_vfb_with_vnc_flag():
    spec, problems = xlcfg.parse('name = "x"\nvfb = [ "vnc=1,vnclisten=127.0.0.1,vncdisplay=3" ]\n')
    assert problems == [] and spec["graphics"]["display"] == 3
    spec, _ = xlcfg.parse('name = "x"\nvfb = [ "vnc=0" ]\n')
    assert spec["graphics"] is None


# --------------------------------------------------------------------------- parser robustness

_values = st.recursive(
    st.one_of(st.integers(-5, 10**6), st.text(max_size=30)),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)
_keys = st.sampled_from(
    [
        "name",
        "memory",
        "maxmem",
        "vcpus",
        "maxvcpus",
        "uuid",
        "type",
        "builder",
        "kernel",
        "ramdisk",
        "extra",
        "root",
        "bootloader",
        "boot",
        "disk",
        "vif",
        "vfb",
        "vnc",
        "vncdisplay",
        "vnclisten",
        "vncpasswd",
        "cdrom",
        "on_crash",
        "keymap",
        "localtime",
        "device_model",
    ]
)


def _literal(value):
    if isinstance(value, list):
        return "[ " + ", ".join(_literal(v) for v in value) + " ]"
    if isinstance(value, int):
        return str(value)
    return xlcfg._q(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=10))
def test_any_config_is_read_or_refused_in_words(settings_):
    """Whatever an xl/xm file holds, import gives a spec or a list of problems: never a traceback."""
    text = "".join(f"{k} = {_literal(v)}\n" for k, v in settings_.items())
    try:
        spec, problems = xlcfg.parse(text, name="fuzz")
    except xlcfg.ConfigError:
        return
    assert (spec is None) == bool(problems)
    assert all(isinstance(p, str) and p.startswith("xen:guests:fuzz") for p in problems)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_with_a_line_number(text):
    try:
        xlcfg.load(text)
    except xlcfg.ConfigError as exc:
        assert str(exc).startswith("line ")


# --------------------------------------------------------------------------- settings with no place in a spec
TUTORIAL_ERA = """# /etc/xen/oldvm, as xm-era hosts had them
name = "oldvm"
uuid = "8d2a6bd6-3e0e-4a8f-9b8d-2b0e2c3f0a09"
memory = 256
vcpus = 1
bootloader = "/usr/bin/pygrub"
localtime = 0
vncpasswd = "123"
vfb = [ "type=vnc,vncunused=1,vncpasswd=abc,keymap=en-us,xauthority=/root/.Xauthority" ]
disk = [ "tap:aio:/var/lib/xen/images/oldvm.img,xvda,w" ]
vif = [ "mac=00:16:3e:5a:10:09,bridge=xenbr0,vifname=oldvm.0,script=vif-bridge" ]
on_reboot = "restart"
on_crash = "restart"
"""


def test_settings_a_spec_has_no_place_for_are_named_not_dropped():
    spec, problems, ignored = xlcfg.read(TUTORIAL_ERA)
    assert problems == [] and spec["name"] == "oldvm"
    assert ignored == {
        "localtime": 0,
        "vncpasswd": "********",  # the vfb line's password is the one used; this one is not, and stays secret
        "vfb:0:xauthority": "/root/.Xauthority",
        "vif:0:vifname": "oldvm.0",
    }
    assert "123" not in repr(ignored) and "abc" not in repr(ignored)
    assert spec["graphics"]["password"] == "abc"


def test_the_tutorial_hvm_config_says_its_device_model_is_not_imported():
    _spec, problems, ignored = xlcfg.read((CONFIGS / "winxp-hvm").read_text())
    assert problems == []
    assert ignored == {"device_model": "/usr/lib64/xen/bin/qemu-dm"}  # type=ioemu of its vif is understood


@pytest.mark.parametrize("name", ["newvm", "newvm-vnc", "newvm-2disks", "newvm-clone", "newvm-lv", "vm02"])
def test_the_tutorial_pv_configs_are_read_whole(name):
    assert xlcfg.read((CONFIGS / name).read_text())[2] == {}


def test_parts_of_device_strings_and_second_framebuffers():
    text = (
        'name = "x"\nvnc = 1\nvnclisten = "127.0.0.1"\n'
        'vfb = [ "type=vnc,vncdisplay=1", "type=sdl,display=:0" ]\n'
        'disk = [ "format=raw,vdev=xvda,access=rw,script=block-iscsi,direct-io-safe,target=/srv/x.img" ]\n'
    )
    spec, problems, ignored = xlcfg.read(text)
    assert problems == [] and spec["graphics"]["display"] == 1
    assert ignored == {
        "vnc": 1,  # the vfb line is what counts for a pv guest
        "vnclisten": "127.0.0.1",
        "vfb:1": "type=sdl,display=:0",
        "disk:0:script": "block-iscsi",
        "disk:0:direct-io-safe": True,
    }
