"""``xen.orch.maintenance`` rendered as the master's orchestrate would: the steps, their order,
and the orchestrate pillar checked before anything runs."""


def _high(modules, pillar):
    high = modules.state.show_sls("xen.orch.maintenance", pillar=pillar)
    assert isinstance(high, dict), high
    return high


def _requires(high, sid):
    (fun,) = [key for key in high[sid] if not key.startswith("__")]
    args = {k: v for arg in high[sid][fun] if isinstance(arg, dict) for k, v in arg.items()}
    return [next(iter(r.values())) for r in args.get("require", [])], args


def test_evacuate_then_xen_host_then_verify_without_a_reboot(modules):
    high = _high(modules, {"host": "xen02", "fleet": "xen*"})
    assert sorted(high) == [
        "xen-maintenance-xen02-evacuated",
        "xen-maintenance-xen02-fleet-verified",
        "xen-maintenance-xen02-host-applied",
    ]
    _none, evacuate = _requires(high, "xen-maintenance-xen02-evacuated")
    assert (evacuate["name"], evacuate["host"], evacuate["tgt"]) == ("xen.evacuate", "xen02", "xen*")
    needs, applied = _requires(high, "xen-maintenance-xen02-host-applied")
    assert needs == ["xen-maintenance-xen02-evacuated"] and (applied["tgt"], applied["sls"]) == ("xen02", "xen.host")
    needs, _verify = _requires(high, "xen-maintenance-xen02-fleet-verified")
    assert needs == ["xen-maintenance-xen02-host-applied"]


def test_reboot_true_reboots_and_waits_for_the_minion_before_verifying(modules):
    high = _high(modules, {"host": "xen02", "reboot": True, "wait": 600})
    needs, rebooted = _requires(high, "xen-maintenance-xen02-rebooted")
    assert needs == ["xen-maintenance-xen02-host-applied"] and rebooted["name"] == "system.reboot"
    needs, back = _requires(high, "xen-maintenance-xen02-back")
    assert needs == ["xen-maintenance-xen02-rebooted"]
    assert (back["name"], back["id_list"], back["timeout"]) == ("salt/minion/xen02/start", ["xen02"], 600)
    needs, _verify = _requires(high, "xen-maintenance-xen02-fleet-verified")
    assert needs == ["xen-maintenance-xen02-back"]


def test_a_missing_host_or_a_wrong_setting_fails_one_state_naming_each_and_does_nothing(modules):
    high = _high(modules, {"reboot": "yes", "wait": 0})
    assert list(high) == ["xen-maintenance-settings-checked"]
    _none, checked = _requires(high, "xen-maintenance-settings-checked")
    assert checked["result"] is False
    assert checked["comment"] == (
        "host: expected the minion id of the Xen host to maintain, got null; "
        'reboot: expected true or false, got "yes"; '
        "wait: expected a whole number of seconds of at least 1, got 0; nothing was done"
    )
