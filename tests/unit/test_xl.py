"""Parsing what Xen's xl toolstack prints, and reading log tails."""

from saltext_xen.host import xl

UPTIME = """\
Name                                ID Uptime
Domain-0                             0  3 days,  4:05:06
vm02                                 1  1 day,  0:00:10
newvm                                7  2:03:04
tiny                                 9  0:07
"""


def test_uptime_parses_days_hours_minutes_seconds():
    assert xl.parse_uptime(UPTIME) == {
        "Domain-0": ((3 * 24 + 4) * 60 + 5) * 60 + 6,
        "vm02": 24 * 3600 + 10,
        "newvm": 2 * 3600 + 3 * 60 + 4,
        "tiny": 7,
    }


def test_info_parses_key_value_lines():
    text = (
        "host                   : xen1\n"
        "xen_version            : 4.17.3\n"
        "xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_64\n"
    )
    assert xl.parse_info(text) == {
        "host": "xen1",
        "xen_version": "4.17.3",
        "xen_caps": "xen-3.0-x86_64 hvm-3.0-x86_64",
    }


def test_tail_reads_only_the_last_lines(tmp_path):
    log = tmp_path / "xl-vm02.log"
    log.write_text("".join(f"line {i}\n" for i in range(50000)))
    assert xl.tail(str(log), 3) == "line 49997\nline 49998\nline 49999"


def test_log_files_of_one_guest_from_xl_libvirt_and_console(tmp_path):
    xen, libxl = tmp_path / "xen", tmp_path / "libxl"
    (xen / "console").mkdir(parents=True)
    libxl.mkdir()
    (xen / "xl-vm02.log").write_text("x")
    (libxl / "vm02.log").write_text("l")
    (xen / "console" / "guest-vm02.log").write_text("y")
    (xen / "xl-vm03.log").write_text("z")
    assert xl.log_files("vm02", log_dir=str(xen), libxl_log_dir=str(libxl)) == [
        str(xen / "xl-vm02.log"),
        str(libxl / "vm02.log"),
        str(xen / "console" / "guest-vm02.log"),
    ]
    assert len(xl.log_files(log_dir=str(xen), libxl_log_dir=str(libxl))) == 3
