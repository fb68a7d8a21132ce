"""The formula applied from a real master: guests from pillar, idempotent and honest."""

import json


def _guest_pillar(tmp_path):
    return {
        "xen": {
            "guests": {
                "web1": {
                    "memory": 256,
                    "vcpus": 1,
                    "bootloader": "pygrub",
                    "disks": [{"source": str(tmp_path / "web1.img"), "size": "1G"}],
                    "nics": [{"bridge": "xenbr0", "mac": "00:16:3e:aa:00:01"}],
                }
            }
        }
    }


def _apply(salt_cli, minion, pillar, *extra):
    ret = salt_cli.run("state.apply", "xen.guests", f"pillar={json.dumps(pillar)}", *extra, minion_tgt=minion.id)
    assert ret.returncode in (0, 1), ret
    return {state["__id__"]: state for state in ret.data.values()}


def test_guest_from_pillar_test_mode_then_apply_then_nothing_left(salt_cli, sync_minion, synced, tmp_path):
    pillar = _guest_pillar(tmp_path)

    predicted = _apply(salt_cli, sync_minion, pillar, "test=True")["xen-guest-web1-running"]
    assert predicted["result"] is None
    assert predicted["changes"]
    assert not (tmp_path / "web1.img").exists(), "test=True must not touch anything"
    assert "web1" not in salt_cli.run("xen_guest.list", minion_tgt=sync_minion.id).data

    applied = _apply(salt_cli, sync_minion, pillar)["xen-guest-web1-running"]
    assert applied["result"] is True, applied["comment"]
    assert applied["changes"] == predicted["changes"], "test=True predicts the real run"
    assert (tmp_path / "web1.img").stat().st_blocks == 0, "the new image is sparse"
    assert salt_cli.run("xen_guest.list", "state=running", minion_tgt=sync_minion.id).data.count("web1") == 1

    again = _apply(salt_cli, sync_minion, pillar)["xen-guest-web1-running"]
    assert again["result"] is True
    assert again["changes"] == {}, "second apply changes nothing"


def test_bad_pillar_names_the_key_and_changes_nothing(salt_cli, sync_minion, synced, tmp_path):
    pillar = _guest_pillar(tmp_path)
    pillar["xen"]["guests"]["web1"]["memory"] = "5l2"
    pillar["xen"]["guests"]["web2"] = pillar["xen"]["guests"].pop("web1")
    state = _apply(salt_cli, sync_minion, pillar)["xen-guest-web2-running"]
    assert state["result"] is False
    assert "xen:guests:web2:memory" in state["comment"]
    assert "5l2" in state["comment"]
    assert "web2" not in salt_cli.run("xen_guest.list", minion_tgt=sync_minion.id).data
