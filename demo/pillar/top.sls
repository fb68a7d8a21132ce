base:
  '*':
    - xen.demo
