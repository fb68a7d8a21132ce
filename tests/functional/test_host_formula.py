"""salt/xen/host renders what each OS family needs: the repository, the packages, Xen as the
default GRUB entry with dom0's share, the services, what the guests go through when dom0 shuts
down, and the reboot as a change; it refuses a CPU that cannot run Xen and wrong settings."""

import json
import subprocess

import pytest

# grains as the four platforms report them (only os_family chooses the parameters file)
PLATFORMS = {
    "debian12": {"os_family": "Debian", "os": "Debian", "osrelease": "12", "osfinger": "Debian-12"},
    "ubuntu2404": {"os_family": "Debian", "os": "Ubuntu", "osrelease": "24.04", "osfinger": "Ubuntu-24.04"},
    "rocky9": {"os_family": "RedHat", "os": "Rocky", "osrelease": "9.4", "osfinger": "Rocky Linux-9"},
    "leap15": {"os_family": "Suse", "os": "Leap", "osrelease": "15.6", "osfinger": "Leap-15"},
}
CMDLINE = '"dom0_mem=1024M,max:1024M dom0_max_vcpus=2"'


@pytest.fixture
def grains(loaders, monkeypatch):
    grains = loaders.opts["grains"]
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "pae", "vmx"])
    monkeypatch.setitem(grains, "xen", {"dom0": False, "reboot_required": False, "reboot_reason": None})
    return grains


@pytest.fixture
def on(grains, monkeypatch):
    """Render as the named platform: ``on("rocky9", dom0=True)``."""

    def set_platform(name, dom0=False, **xen):
        for key, value in PLATFORMS[name].items():
            monkeypatch.setitem(grains, key, value)
        monkeypatch.setitem(grains, "xen", {"dom0": dom0, "reboot_required": False, "reboot_reason": None, **xen})

    return set_platform


def _render(modules, sls="xen.host", pillar=None):
    rendered = modules.state.show_sls(sls, pillar=pillar)
    assert isinstance(rendered, dict), rendered
    return rendered


def _state(rendered, state_id):
    """``(function, {argument: value})`` of one rendered state."""
    for module, body in rendered[state_id].items():
        if module.startswith("__"):
            continue
        args = {}
        fun = None
        for item in body:
            if isinstance(item, str):
                fun = f"{module}.{item}"
            else:
                args.update(item)
        if isinstance(args.get("order"), int):  # the order Salt numbers every state with
            del args["order"]
        return fun, args
    raise AssertionError(f"{state_id} has no state function")


def _settings(contents):
    return dict(line.split("=", 1) for line in contents.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("platform", ["debian12", "ubuntu2404"])
def test_debian_and_ubuntu_boot_xen_from_a_drop_in_and_need_no_repository(modules, on, platform):
    on(platform)
    states = _render(modules)
    assert "xen-host-repo-present" not in states
    fun, args = _state(states, "xen-host-packages-installed")
    assert fun == "pkg.installed"
    assert {"xen-system-amd64", "libvirt-daemon-system", "libvirt-daemon-driver-xen"} <= set(args["pkgs"])
    fun, args = _state(states, "xen-host-grub-boots-xen")
    assert (fun, args["name"], args["makedirs"]) == ("file.managed", "/etc/default/grub.d/zz-salt-xen.cfg", True)
    assert _settings(args["contents"]) == {
        "GRUB_CMDLINE_XEN_DEFAULT": CMDLINE,
        "GRUB_DEFAULT": '"${GRUB_DISTRIBUTOR} GNU/Linux, with Xen hypervisor"',
    }
    assert _state(states, "xen-host-grub-config-rebuilt") == (
        "cmd.run",
        {
            "name": "update-grub",
            "onchanges": [{"file": "xen-host-grub-boots-xen"}, {"pkg": "xen-host-packages-installed"}],
        },
    )
    assert "xen-host-grub-default-is-xen" not in states


@pytest.mark.parametrize("platform, title", [("debian12", "Debian"), ("ubuntu2404", "Ubuntu")])
def test_the_drop_in_names_the_entry_update_grub_makes(modules, on, tmp_path, platform, title):
    """grub-mkconfig sources /etc/default/grub, then the drop-ins: GRUB_DEFAULT comes out as the Xen title."""
    on(platform)
    _fun, args = _state(_render(modules), "xen-host-grub-boots-xen")
    (tmp_path / "grub").write_text(f"GRUB_DEFAULT=0\nGRUB_DISTRIBUTOR={title}\n")
    (tmp_path / "zz-salt-xen.cfg").write_text(args["contents"])
    out = subprocess.run(
        ["sh", "-c", '. ./grub; . ./zz-salt-xen.cfg; printf "%s|%s" "$GRUB_DEFAULT" "$GRUB_CMDLINE_XEN_DEFAULT"'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"{title} GNU/Linux, with Xen hypervisor|dom0_mem=1024M,max:1024M dom0_max_vcpus=2"


def test_rhel_family_gets_the_virtualization_sig_repository_before_its_packages(modules, on):
    on("rocky9")
    states = _render(modules)
    fun, args = _state(states, "xen-host-repo-present")
    assert fun == "pkgrepo.managed"
    assert args["name"] == "centos-virt-xen"
    assert "/SIGs/$releasever-stream/virt/$basearch/xen/" in args["baseurl"]
    assert args["gpgcheck"] == 1 and args["gpgkey"].endswith("RPM-GPG-KEY-CentOS-SIG-Virtualization")
    assert args["require_in"] == [{"pkg": "xen-host-packages-installed"}]
    assert {"xen", "xen-hypervisor", "libvirt-daemon-xen"} <= set(
        _state(states, "xen-host-packages-installed")[1]["pkgs"]
    )


def test_the_repository_comes_from_the_map_and_can_point_at_a_mirror(modules, on):
    on("rocky9")
    pillar = {"xen": {"lookup": {"host": {"repo": {"baseurl": "http://mirror.lan/xen/el9/"}}}}}
    _fun, args = _state(_render(modules, pillar=pillar), "xen-host-repo-present")
    assert args["baseurl"] == "http://mirror.lan/xen/el9/"
    assert args["name"] == "centos-virt-xen"


@pytest.mark.parametrize("platform", ["rocky9", "leap15"])
def test_rhel_and_suse_set_grub_keys_and_the_saved_default_entry(modules, on, platform):
    on(platform)
    states = _render(modules)
    if platform == "leap15":
        assert "xen-host-repo-present" not in states
    fun, args = _state(states, "xen-host-grub-boots-xen")
    assert (fun, args["name"]) == ("file.keyvalue", "/etc/default/grub")
    assert args["key_values"] == {"GRUB_CMDLINE_XEN_DEFAULT": CMDLINE, "GRUB_DEFAULT": "saved"}
    assert args["append_if_not_found"] is True
    assert _state(states, "xen-host-grub-config-rebuilt")[1]["name"] == "grub2-mkconfig -o /boot/grub2/grub.cfg"
    fun, args = _state(states, "xen-host-grub-default-is-xen")
    assert fun == "cmd.run"
    assert "grub2-set-default" in args["name"]
    assert args["unless"].startswith("grub2-editenv list")
    assert args["require"] == [{"cmd": "xen-host-grub-config-rebuilt"}]


def test_grub2_set_default_picks_the_first_xen_entry_of_grub_cfg(modules, on, tmp_path):
    """The RHEL/SUSE command, run against a grub.cfg of ours with an echo in place of grub2-set-default."""
    on("rocky9")
    command = _state(_render(modules), "xen-host-grub-default-is-xen")[1]["name"]
    cfg = tmp_path / "grub.cfg"
    cfg.write_text(
        "menuentry 'Rocky Linux (5.14.0) 9.4' --class rocky {\n}\n"
        "menuentry 'Rocky Linux GNU/Linux, with Xen hypervisor' --class xen {\n}\n"
        "submenu 'Advanced options for Rocky Linux GNU/Linux (with Xen hypervisor)' {\n"
        "\tmenuentry 'Rocky Linux GNU/Linux, with Xen 4.18 and Linux 5.14' {\n\t}\n}\n"
    )
    run = command.replace("/boot/grub2/grub.cfg", str(cfg)).replace("grub2-set-default", "echo")
    out = subprocess.run(["sh", "-c", run], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (0, "Rocky Linux GNU/Linux, with Xen hypervisor\n")
    cfg.write_text("menuentry 'Rocky Linux (5.14.0) 9.4' --class rocky {\n}\n")
    out = subprocess.run(["sh", "-c", run], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (1, "")  # no Xen entry: the state fails instead of choosing entry 0


@pytest.mark.parametrize(
    "platform, now, under_xen",
    [
        ("debian12", ["libvirtd"], ["xen", "xendomains", "libvirt-guests"]),
        ("ubuntu2404", ["libvirtd"], ["xen", "xendomains", "libvirt-guests"]),
        ("rocky9", ["libvirtd"], ["xencommons", "xendomains", "libvirt-guests"]),
        ("leap15", ["libvirtd"], ["xencommons", "xendomains", "libvirt-guests"]),
    ],
)
def test_services_that_need_xen_start_only_once_the_host_runs_as_dom0(modules, on, platform, now, under_xen):
    on(platform)
    before = _render(modules)
    on(platform, dom0=True)
    after = _render(modules)
    for name in now:
        for states in (before, after):
            assert _state(states, f"xen-host-service-{name}-running")[1]["enable"] is True
    for name in under_xen:
        assert _state(before, f"xen-host-service-{name}-enabled")[0] == "service.enabled"
        assert f"xen-host-service-{name}-running" not in before
        fun, args = _state(after, f"xen-host-service-{name}-running")
        assert (fun, args["enable"]) == ("service.running", True)
    assert sorted(s for s in after if s.startswith("xen-host-service-")) == sorted(
        f"xen-host-service-{name}-running" for name in now + under_xen
    )


@pytest.mark.parametrize(
    "platform, libvirt_guests, xendomains",
    [
        ("debian12", "/etc/default/libvirt-guests", "/etc/default/xendomains"),
        ("ubuntu2404", "/etc/default/libvirt-guests", "/etc/default/xendomains"),
        ("rocky9", "/etc/sysconfig/libvirt-guests", "/etc/sysconfig/xendomains"),
        ("leap15", "/etc/sysconfig/libvirt-guests", "/etc/sysconfig/xendomains"),
    ],
)
def test_guests_are_saved_by_libvirt_guests_and_xendomains_keeps_to_etc_xen_auto(
    modules, on, platform, libvirt_guests, xendomains
):
    on(platform)
    states = _render(modules)
    fun, args = _state(states, "xen-host-guests-on-shutdown-libvirt")
    assert (fun, args["name"]) == ("file.managed", libvirt_guests)
    assert args["require"] == [{"pkg": "xen-host-packages-installed"}]
    settings = _settings(args["contents"])
    assert settings["URIS"] == "xen:///system"
    assert (settings["ON_SHUTDOWN"], settings["ON_BOOT"]) == ("suspend", "start")
    assert (settings["PARALLEL_SHUTDOWN"], settings["SHUTDOWN_TIMEOUT"]) == ("2", "300")
    fun, args = _state(states, "xen-host-guests-on-shutdown-xendomains")
    assert (fun, args["name"]) == ("file.managed", xendomains)
    settings = _settings(args["contents"])
    assert settings["XENDOMAINS_AUTO"] == "/etc/xen/auto"
    assert settings["XENDOMAINS_AUTO_ONLY"] == "true"
    # never saves or restores, and never shuts down every domain: libvirt's guests are not its own
    assert (settings["XENDOMAINS_SAVE"], settings["XENDOMAINS_RESTORE"]) == ("", "false")
    assert settings["XENDOMAINS_SHUTDOWN_ALL"] == ""
    assert "xen-host-guests-on-shutdown-noted" not in states


def test_host_wide_shutdown_leaves_guests_off_at_boot_but_autostart(modules, on):
    on("debian12")
    states = _render(modules, pillar={"xen": {"host": {"on_shutdown": "shutdown"}}})
    settings = _settings(_state(states, "xen-host-guests-on-shutdown-libvirt")[1]["contents"])
    assert (settings["ON_SHUTDOWN"], settings["ON_BOOT"]) == ("shutdown", "ignore")
    assert "xen-host-guests-on-shutdown-noted" not in states


@pytest.mark.parametrize(
    "guest, why",
    [
        ({"on_host_shutdown": "shutdown"}, "vm9 (on_host_shutdown: shutdown)"),
        ({"pci": ["0000:03:00.0"]}, "vm9 (PCI devices)"),
        ({"pci": ["0000:03:00.0"], "on_host_shutdown": "save"}, "vm9 (PCI devices)"),
    ],
)
def test_a_guest_that_must_be_shut_down_makes_libvirt_guests_shut_down_all_and_says_so(modules, on, guest, why):
    on("rocky9")
    pillar = {"xen": {"guests": {"vm9": guest, "vm2": {"on_host_shutdown": "save"}}}}
    states = _render(modules, pillar=pillar)
    contents = _state(states, "xen-host-guests-on-shutdown-libvirt")[1]["contents"]
    assert (_settings(contents)["ON_SHUTDOWN"], _settings(contents)["ON_BOOT"]) == ("shutdown", "ignore")
    assert f"# Shut down, not saved, because of: {why}\n" in contents
    text = _state(states, "xen-host-guests-on-shutdown-noted")[1]["text"]
    assert why in text and "every guest is shut down" in text


def test_a_host_not_running_xen_says_reboot_required_as_a_change(modules, on):
    on("debian12")
    fun, args = _state(_render(modules), "xen-host-reboot-required")
    assert fun == "cmd.run"
    assert "onchanges" not in args  # every run says it until the host runs Xen
    said = _said(args)
    assert said["reboot_required"] == {"old": False, "new": True}
    assert said["reason"] == "this host does not run under the Xen hypervisor yet"


def test_the_grain_s_reason_is_the_state_s_reason(modules, on):
    on("rocky9", dom0=True, reboot_required=True, reboot_reason="Xen 4.18 is installed but Xen 4.17.3 is running")
    _fun, args = _state(_render(modules), "xen-host-reboot-required")
    assert "onchanges" not in args
    assert _said(args)["reason"] == "Xen 4.18 is installed but Xen 4.17.3 is running"


@pytest.mark.parametrize("platform", ["debian12", "rocky9"])
def test_on_a_dom0_a_reboot_is_required_only_when_grub_changed(modules, on, platform):
    on(platform, dom0=True)
    _fun, args = _state(_render(modules), "xen-host-reboot-required")
    wanted = [{"cmd": "xen-host-grub-config-rebuilt"}]
    if platform == "rocky9":
        wanted.append({"cmd": "xen-host-grub-default-is-xen"})
    assert args["onchanges"] == wanted
    assert _said(args)["reason"] == "GRUB changed: Xen's command line or default entry"


def _said(args):
    (env,) = args["env"]
    assert args["stateful"] == [{"test_name": args["name"]}]
    return json.loads(env["XEN_HOST_REBOOT"])


def test_the_host_reboots_only_when_pillar_says_so_and_last(modules, on):
    on("debian12")
    assert "xen-host-rebooted" not in _render(modules)
    states = _render(modules, pillar={"xen": {"host": {"reboot": True}}})
    body = states["xen-host-rebooted"]["module"]
    assert {"system.reboot": [{"at_time": 1}]} in body
    assert {"onchanges": [{"cmd": "xen-host-reboot-required"}]} in body
    assert {"order": "last"} in body


def test_dom0_memory_and_cpus_come_from_pillar(modules, on):
    on("leap15")
    pillar = {
        "xen": {
            "host": {"dom0_mem": "2G", "dom0_max_vcpus": 4},
            "lookup": {"host": {"grub": {"xen_cmdline_extra": "loglvl=all"}}},
        }
    }
    _fun, args = _state(_render(modules, pillar=pillar), "xen-host-grub-boots-xen")
    assert args["key_values"]["GRUB_CMDLINE_XEN_DEFAULT"] == '"dom0_mem=2048M,max:2048M dom0_max_vcpus=4 loglvl=all"'


@pytest.mark.parametrize("vcpus", [0, 2.5, True, "2"])
def test_dom0_max_vcpus_is_a_whole_number(modules, on, vcpus):
    on("debian12")
    states = _render(modules, pillar={"xen": {"host": {"dom0_max_vcpus": vcpus}}})
    assert list(states) == ["xen-host-settings-checked"]
    assert (
        "xen:host:dom0_max_vcpus: expected a whole number of at least 1"
        in states["xen-host-settings-checked"]["test"][0]["name"]
    )


def test_wrong_settings_are_all_named_and_nothing_is_rendered(modules, on):
    on("debian12")
    pillar = {
        "xen": {
            "host": {"dom0_mem": "lots", "dom0_max_vcpus": 0, "reboot": "yes", "on_shutdown": "hibernate"},
            "guests": {"vm9": {"on_host_shutdown": "pause"}},
        }
    }
    states = _render(modules, pillar=pillar)
    assert list(states) == ["xen-host-settings-checked"]
    fun, args = _state(states, "xen-host-settings-checked")
    assert fun == "test.configurable_test_state"
    assert (args["result"], args["allow_test_mode_failure"]) == (False, True)
    for path in (
        "xen:host:dom0_mem",
        "xen:host:dom0_max_vcpus",
        "xen:host:reboot",
        "xen:host:on_shutdown",
        "xen:guests:vm9:on_host_shutdown",
    ):
        assert path + ": expected" in args["name"]
    assert args["name"].endswith("nothing was installed")


def test_cpu_without_pae_installs_nothing(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "vmx"])
    states = _render(modules)
    assert list(states) == ["xen-host-cpu-checked"]
    assert "lacks pae" in states["xen-host-cpu-checked"]["test"][0]["name"]


def test_cpu_without_vmx_or_svm_is_told_hvm_guests_cannot_run(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "cpu_flags", ["fpu", "pae"])
    assert "xen-host-cpu-hvm-noted" in _render(modules)


@pytest.mark.parametrize("family, removed", [("Debian", True), ("RedHat", False), ("Suse", False)])
def test_clean_removes_only_the_formulas_own_grub_file(modules, grains, monkeypatch, family, removed):
    monkeypatch.setitem(grains, "os_family", family)
    states = modules.state.show_sls("xen.host.clean")
    assert isinstance(states, dict), states
    if removed:
        assert states["xen-host-grub-dropin-absent"]["file"][0] == {"name": "/etc/default/grub.d/zz-salt-xen.cfg"}
        assert set(states) == {"xen-host-grub-dropin-absent", "xen-host-grub-config-rebuilt-without-xen"}
    else:
        assert states == {}  # /etc/default/grub is the distribution's own file: kept


def test_directories_come_from_the_map_and_pillar_overrides_them(modules, grains, monkeypatch):
    monkeypatch.setitem(grains, "os_family", "Debian")
    states = modules.state.show_sls("xen.host", pillar={"xen": {"install": {"boot_dir": "/srv/xen/boot"}}})
    assert states["xen-host-dir-boot-present"]["file"][0] == {"name": "/srv/xen/boot"}
    assert states["xen-host-dir-images-present"]["file"][0] == {"name": "/var/lib/xen/images"}
    assert states["xen-host-dir-save-present"]["file"][0] == {"name": "/var/lib/xen/save"}


def test_a_libvirt_guest_with_an_xl_config_in_etc_xen_auto_is_refused(modules, on, tmp_path):
    """Both libvirt-guests and xendomains would act on it: the formula says which file to remove."""
    on("debian12")
    pillar = {
        "xen": {
            "lookup": {"host": {"xendomains": {"auto_dir": str(tmp_path)}}},
            "guests": {"vm02": {"memory": 512}, "vm03": {"memory": 512}},
        }
    }
    assert "xen-host-guests-one-keeper-checked" not in _render(modules, pillar=pillar)
    (tmp_path / "vm02.cfg").write_text('name = "vm02"\n')
    (tmp_path / "other.cfg").write_text('name = "other"\n')  # an xl guest of xendomains' own: fine
    states = _render(modules, pillar=pillar)
    fun, args = _state(states, "xen-host-guests-one-keeper-checked")
    assert (fun, args["result"], args["allow_test_mode_failure"]) == ("test.configurable_test_state", False, True)
    assert f"xen:guests: {tmp_path}/vm02.cfg; remove their xl configs from {tmp_path}" in args["comment"]
    settings = _settings(_state(states, "xen-host-guests-on-shutdown-xendomains")[1]["contents"])
    assert settings["XENDOMAINS_AUTO"] == str(tmp_path)
