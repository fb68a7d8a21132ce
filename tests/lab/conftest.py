"""The lab tier: tests/lab/inside/ runs inside the lab's dom0 only, never on this host."""

collect_ignore = ["inside"]
