"""The xen grain's facts, read from a host's files laid out under a temporary root."""

import pytest

from saltext_xen.host import facts

XL_INFO = (
    "host                   : xen1\n"
    "xen_version            : 4.17.3\n"
    "xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_64 hvm-3.0-x86_32p\n"
)


def lay_out(root, files):
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(root)


def dom0(root, extra="", boot=("xen-4.17-amd64.gz",)):
    files = {
        "/sys/hypervisor/type": "xen\n",
        "/proc/xen/capabilities": "control_d\n",
        "/sys/hypervisor/version/major": "4\n",
        "/sys/hypervisor/version/minor": "17\n",
        "/sys/hypervisor/version/extra": f"{extra}\n",
        "/proc/cpuinfo": "processor : 0\nflags : fpu pae lm\n",
    }
    files.update({f"/boot/{name}": "" for name in boot})
    return lay_out(root, files)


def xl_says(text, retcode=0):
    return lambda argv: {"retcode": retcode, "stdout": text, "stderr": ""}


def test_a_dom0_running_the_installed_xen(tmp_path, monkeypatch):
    monkeypatch.setattr(facts.shutil, "which", lambda cmd: f"/usr/sbin/{cmd}")
    got = facts.read(xl_says(XL_INFO), root=dom0(tmp_path, extra=".3"))
    assert got == {
        "hypervisor": "xen",
        "dom0": True,
        "version": "4.17.3",
        "capabilities": ["hvm", "pv", "pvh"],
        "toolstack": "xl",
        "installed": "4.17",
        "reboot_required": False,
        "reboot_reason": None,
    }


def test_xen_installed_but_not_booted_needs_a_reboot(tmp_path, monkeypatch):
    monkeypatch.setattr(facts.shutil, "which", lambda cmd: None)
    root = lay_out(
        tmp_path,
        {"/proc/cpuinfo": "flags : fpu vmx pae\n", "/boot/xen-4.17-amd64.gz": "", "/boot/vmlinuz-6.1.0": ""},
    )
    got = facts.read(xl_says(""), root=root)
    assert got["hypervisor"] is None and got["dom0"] is False and got["version"] is None
    assert got["capabilities"] == ["hvm", "pvh"], "the CPU can run HVM guests once Xen runs"
    assert got["reboot_required"] is True
    assert got["reboot_reason"] == "Xen 4.17 is installed but this host did not boot it"


def test_a_newer_xen_installed_than_the_one_running_needs_a_reboot(tmp_path, monkeypatch):
    monkeypatch.setattr(facts.shutil, "which", lambda cmd: f"/usr/sbin/{cmd}")
    root = dom0(tmp_path, extra=".3", boot=("xen-4.17.3.gz", "xen-4.19.1.gz", "xen.gz"))
    got = facts.read(xl_says(XL_INFO), root=root)
    assert got["installed"] == "4.19.1"
    assert got["reboot_reason"] == "Xen 4.19.1 is installed but Xen 4.17.3 is running"


def test_a_domu_is_not_dom0_and_asks_no_xl(tmp_path, monkeypatch):
    monkeypatch.setattr(facts.shutil, "which", lambda cmd: None)
    root = lay_out(tmp_path, {"/sys/hypervisor/type": "xen\n", "/proc/xen/capabilities": "\n"})

    def no_xl(argv):
        raise AssertionError("xl asked in a domU")

    got = facts.read(no_xl, root=root)
    assert got["dom0"] is False and got["capabilities"] == ["pv"] and got["reboot_required"] is False


@pytest.mark.parametrize(
    ("names", "newest"),
    [
        (["xen-4.17-amd64.gz", "xen-4.17-amd64.efi"], "4.17"),
        (["xen-4.9.2.gz", "xen-4.17.1.gz"], "4.17.1"),
        (["xen.gz", "xen-syms-4.17"], None),
    ],
)
def test_installed_version_reads_debian_and_rhel_image_names(tmp_path, names, newest):
    root = lay_out(tmp_path, {f"/boot/{name}": "" for name in names})
    assert facts.installed_version(root) == newest


def test_the_grain_loads_through_salt_and_never_fails(tmp_path):
    import salt.config
    import salt.loader

    from tests.conftest import ROOT

    opts = salt.config.minion_config(None)
    opts.update({"module_dirs": [str(ROOT)], "cachedir": str(tmp_path), "extension_modules": str(tmp_path / "ext")})
    funcs = salt.loader.grain_funcs(opts)
    grain = funcs["xen.xen"]()
    assert set(grain["xen"]) >= {"dom0", "version", "capabilities", "reboot_required"}
