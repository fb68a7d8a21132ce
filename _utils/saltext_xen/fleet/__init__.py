"""Many Xen hosts as one fleet: capacity facts, placement, plans, moves, checks, the second-copy guard.

Only :mod:`facts` (one libvirt pass on one host) and :mod:`moves` (the steps of a
move, each on one host) talk to a hypervisor; the rest is plain data in, plain
data out, so the master's runner can plan with what the hosts told it.
"""
