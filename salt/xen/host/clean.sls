{#- Undo xen.host as far as it is safe: the host boots its own kernel again.

    Removes: the formula's own GRUB drop-in file (host:grub:dropin, when
    host:grub:dropin_is_own), then rebuilds the GRUB config; the change takes
    effect at the next reboot.
    Keeps: the package repository and the packages (guests and tools may still need
    them), the services, the libvirt-guests and xendomains settings (the services'
    own files, which the formula wrote whole), the image, save and boot directories
    and everything in them, and a GRUB file that is the distribution's own
    (/etc/default/grub on RedHat and Suse: edit it by hand; grub2-set-default chooses
    another entry). Nothing is rebooted.
    Nothing at all with xen:host:manage: false. #}
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as xen with context %}
{%- set grub = xen.host.grub %}

{%- if xen.host.manage and grub.dropin_is_own %}
xen-host-grub-dropin-absent:
  file.absent:
    - name: {{ grub.dropin | json }}

xen-host-grub-config-rebuilt-without-xen:
  cmd.run:
    - name: {{ grub.mkconfig | json }}
    - onchanges:
      - file: xen-host-grub-dropin-absent
{%- endif %}
