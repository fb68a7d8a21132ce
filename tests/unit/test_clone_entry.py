"""A xen:clones entry is checked whole, by key path, before any state runs (saltext_xen.guests.clone_entry)."""

from saltext_xen.guests import clone_entry


def test_a_good_entry_has_no_problems_and_memory_reads_as_under_xen_guests():
    entry = {"source": "vm03", "disks": {"xvda": "//srv/xen//newvm03.img"}, "memory": "2G", "vcpus": "2"}
    assert clone_entry.problems("newvm03", entry) == []
    values, found = clone_entry.settings("newvm03", "vm03", entry)
    assert found == []
    assert values["memory"] == 2048 and values["vcpus"] == 2 and values["disks"] == {"xvda": "/srv/xen/newvm03.img"}


def test_every_problem_is_named_by_its_key_path_at_once():
    entry = {
        "source": "vm05",
        "memory": "2GB",
        "vcpus": 0,
        "sise": 1,
        "start": "yes",
        "disks": {"xvda": "newvm05.img", "floppy": "/srv/f.img"},
        "bridge": "xenbr-too-long-1",
        "force": "no",
        "timeout": "30s",
        "ensure": "gone",
    }
    found = clone_entry.problems("newvm05", entry)
    expected = [
        "xen:clones:newvm05:start: no longer a key; say ensure: running",
        "xen:clones:newvm05:sise: unknown key (",
        "xen:clones:newvm05:ensure: expected one of defined, running, absent, got 'gone'",
        "xen:clones:newvm05:memory: expected a whole number of MiB, got '2GB'",
        "xen:clones:newvm05:vcpus: expected a whole number of at least 1, got 0",
        "xen:clones:newvm05:bridge: expected a bridge name of at most 15 characters",
        "xen:clones:newvm05:disks:xvda: expected an absolute path (starting with /), got 'newvm05.img'",
        "xen:clones:newvm05:disks:floppy: not a disk target",
        "xen:clones:newvm05:force: expected true or false, got 'no'",
        "xen:clones:newvm05:timeout: expected a whole number of at least 1, got '30s'",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in found), (start, found)
    assert len(found) == len(expected), found


def test_the_source_is_required_not_itself_and_not_removed_elsewhere_in_pillar():
    clones = {
        "nosource": {"disks": {}},
        "self": {"source": "self"},
        "gone": {"source": "vm06"},
        "after": {"source": "dropped"},
        "dropped": {"source": "vm03", "ensure": "Absent"},
        "loop1": {"source": "loop2"},
        "loop2": {"source": "loop3"},
        "loop3": {"source": "loop1"},
        "kept": {"source": "vm03"},
    }
    guests = {"vm06": {"ensure": "absent"}, "kept": {"ensure": "absent"}}
    found = {name: clone_entry.problems(name, entry, clones, guests) for name, entry in clones.items()}
    assert found["nosource"] == ["xen:clones:nosource:source: expected the name of the guest to clone, got None"]
    assert found["self"] == ["xen:clones:self:source: a guest cannot be a clone of itself (self)"]
    assert found["gone"] == ["xen:clones:gone:source: vm06 is removed by xen:guests:vm06:ensure: absent"]
    assert found["after"] == ["xen:clones:after:source: dropped is removed by xen:clones:dropped:ensure: absent"]
    assert found["dropped"] == []
    assert found["loop1"] == ["xen:clones:loop1:source: loop2 is itself (through xen:clones) a clone of loop1"]
    assert found["kept"] == ["xen:clones:kept: xen:guests:kept:ensure: absent removes the guest this clone makes"]


def test_entries_and_sections_of_the_wrong_shape():
    assert clone_entry.problems("x", ["vm03"]) == [
        "xen:clones:x: expected a mapping with at least source: GUEST, got a list"
    ]
    assert clone_entry.problems("x", {"source": "vm03", "disks": ["/a.img"]})[0].startswith(
        "xen:clones:x:disks: expected a mapping of disk targets to paths"
    )
    assert clone_entry.formula(["newvm03"])["problems"] == [
        "xen:clones: expected a mapping of new guest names to clone settings (source, disks, ...), got a list"
    ]
    assert clone_entry.problems("x", {"source": "vm03"}, ensure="bogus") == [
        "xen:ensure:clones: expected one of defined, running, absent, got 'bogus'"
    ]


def test_names_yaml_reads_as_numbers_sort_with_the_others_and_are_refused_with_a_hint():
    clones = {"b": {"source": "vm03"}, 10: {"source": "vm03"}, "a": {"source": "vm03"}, 2: {"source": "vm03"}}
    got = clone_entry.formula(clones)
    assert [item["name"] for item in got["clones"]] == [10, 2, "a", "b"]
    assert got["clones"][0]["problems"] == [
        "xen:clones:10: expected a guest name (a name of digits is quoted: '10'), got 10"
    ]
    assert got["clones"][2]["problems"] == []


def test_requisites_follow_the_source_and_the_name_in_pillar():
    clones = {
        "c1": {"source": "vm03"},
        "c2": {"source": "c1", "ensure": "running"},
        "c3": {"source": "bad"},
        "bad": {"source": "vm03", "memory": "lots"},
        "c4": {"source": "vm04"},
        "c5": {"source": "vm03", "ensure": "absent"},
    }
    guests = {"vm03": {"ensure": "Stopped"}, "c2": None, "vm04": {"ensure": "sideways"}}
    got = {item["name"]: item for item in clone_entry.formula(clones, guests)["clones"]}
    assert got["c1"]["require"] == [{"xen_guest": "xen-guest-vm03-stopped"}] and got["c1"]["ensure"] == "defined"
    assert got["c2"]["require"] == [{"xen_guest": "xen-clone-c1-cloned"}]
    assert got["c2"]["require_in"] == [{"xen_guest": "xen-guest-c2-running"}] and got["c2"]["ensure"] == "running"
    assert got["c3"]["require"] == [{"test": "xen-clone-bad-checked"}]
    assert got["c4"]["require"] == [{"test": "xen-guest-vm04-checked"}]
    assert got["c5"]["ensure"] == "absent" and got["c5"]["require"] == []
    assert got["bad"]["ensure"] is None and got["bad"]["problems"]
    assert clone_entry.formula(clones, guests)["include_guests"] is True
    assert clone_entry.formula({"c1": {"source": "vm03"}}, {})["include_guests"] is False


def test_arguments_of_a_direct_call_are_named_by_key_alone():
    values, found = clone_entry.settings("-bad", "vm05", {"memory": 512, "start": "true", "crash_consistent": None})
    assert found == ["name: expected a guest name starting with a letter or digit, got '-bad'"]
    assert values["start"] is True and values["crash_consistent"] is False and values["memory"] == 512
