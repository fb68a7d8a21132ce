"""Many Xen hosts as one fleet: capacity facts, placement, evacuate/failover/balance plans, checks.

Only :mod:`facts` talks to a hypervisor (one libvirt pass on one host); the rest
is plain data in, plain data out, so the master's runner can plan with what the
hosts told it.
"""
