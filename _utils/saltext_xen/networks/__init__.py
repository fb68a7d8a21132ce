"""Networks: host bridges (ip or NetworkManager), their boot-time files, libvirt networks.

Uses ``core`` only.
"""
