#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: hugepages
short_description: Reserve 2M and 1G hugepage pools, at runtime or at boot
version_added: 0.1.0
description:
  - At runtime, writes each pool's size to sysfs, then reads back what the kernel actually allocated. The kernel may
    give fewer pages than asked when memory is fragmented; such a pool is reported V(not_permitted) with its
    RV(shortfall).
  - Runtime pools persist as C(w) lines in C(/etc/tmpfiles.d/aitune.conf), so they are asked for again at boot.
  - With O(at_boot), the pools are reserved on the kernel command line instead (C(hugepagesz=) and C(hugepages=) in
    C(/etc/default/grub.d/90-aitune.cfg)), which is the reliable way to get 1G pages; RV(reboot_required) tells when
    the running kernel does not have them yet.
  - Refuses, with no write, a request above O(max_percent) of MemTotal, and at runtime a growth larger than
    MemAvailable.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  pools:
    description:
      - The pools to hold. A size given without O(pools[].node) is the host-wide pool; with it, that NUMA node's pool.
        One size cannot be given both ways.
    type: list
    elements: dict
    required: true
    suboptions:
      size:
        description: Page size.
        type: str
        required: true
        choices: [2M, 1G]
      count:
        description: Number of pages the pool should hold.
        type: int
        required: true
      node:
        description: NUMA node of the pool. Not with O(at_boot).
        type: int
  at_boot:
    description:
      - Reserve through the kernel command line at the next boot instead of at runtime.
    type: bool
    default: false
  max_percent:
    description:
      - Refuse requests whose pools together exceed this share of MemTotal.
      - Whatever this is, the pools and the kernel's free reserve (C(vm.min_free_kbytes)) together may not pass 90% of
        MemTotal; M(aitune.kernel.memory) refuses a C(min_free_kbytes) that would pass it beside the pools the host
        holds.
    type: int
    default: 50
  mount:
    description:
      - A hugetlbfs file system for applications that map hugepages through files (DPDK, some inference runtimes).
      - Installed as a systemd mount unit in C(/etc/systemd/system), enabled and started, so it comes back at boot;
        without systemd as PID 1 it is reported V(unsupported). Omitting it removes a mount this module installed.
    type: dict
    suboptions:
      path:
        description:
          - Mount point, an absolute path of letters, digits, C(_) and C(/) only, such as C(/dev/hugepages1G).
          - It must be C(/dev/hugepages), a sibling such as C(/dev/hugepages1G) or a path below either, or a path
            below C(/mnt), C(/run) or C(/srv), such as C(/mnt/huge), the places meant for mounts. Anywhere else a
            hugetlbfs would hide the files the system keeps there.
          - Refused even there, before anything is written, is a path that is or holds one the system or the collection
            depends on (C(/), C(/etc), C(/usr), C(/var), C(/var/lib/aitune), C(/proc), C(/sys), C(/dev), C(/run),
            C(/run/systemd), C(/boot), C(/home), C(/root), C(/tmp), C(/mnt), C(/srv) and a few others), and a path
            inside the system's own trees under C(/run) (C(/run/systemd), C(/run/udev), C(/run/user), C(/run/lock),
            C(/run/dbus)).
        type: str
        required: true
      pagesize:
        description: Page size of the mount.
        type: str
        choices: [2M, 1G]
        default: 2M
      mode:
        description:
          - Octal permission of the mount point's root, 3 or 4 digits.
          - Refused, before anything is written, are the setuid and setgid bits (V(4770), V(2770), V(7777)), and a
            world-writable mode without the sticky bit (V(0777)), with which any user could delete the others' files. V(1777) is
            the mode for a mount every user shares.
        type: str
        default: '1770'
'''

EXAMPLES = r'''
- name: Hold 1024 2M pages for an inference server, now and after every boot
  aitune.kernel.hugepages:
    pools:
      - size: 2M
        count: 1024

- name: Reserve 16 1G pages per NUMA node at runtime, where memory still allows
  aitune.kernel.hugepages:
    pools:
      - {size: 1G, count: 16, node: 0}
      - {size: 1G, count: 16, node: 1}

- name: Reserve 32 1G pages at boot (needs a reboot)
  aitune.kernel.hugepages:
    pools:
      - {size: 1G, count: 32}
    at_boot: true
  register: huge

- name: A 1G hugetlbfs mount for the inference runtime
  aitune.kernel.hugepages:
    pools:
      - {size: 1G, count: 8}
    mount:
      path: /dev/hugepages1G
      pagesize: 1G

- name: Tell the operator
  ansible.builtin.debug:
    msg: "Reboot to get the 1G pool"
  when: huge.reboot_required
'''

RETURN = r'''
knobs:
  description: Outcome per pool knob (C(hugepages.2M), C(hugepages.1G.node1) ...), each with C(state), C(path),
    C(previous), C(desired), C(value), C(reason) and C(changed). Empty with O(at_boot).
  returned: always
  type: dict
  sample:
    hugepages.2M: {state: applied, path: /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages, previous: '0',
                   desired: '1024', value: '1024', reason: null, changed: true}
applied:
  description: Pools that now hold the requested number of pages.
  returned: always
  type: list
  elements: str
unsupported:
  description: Pools this kernel or CPU cannot have (no 1G pages, no such node), with the reason.
  returned: always
  type: dict
not_permitted:
  description: Pools the kernel refused or filled only in part, with the reason.
  returned: always
  type: dict
shortfall:
  description: Pages asked for but not allocated, per pool.
  returned: always
  type: dict
  sample: {hugepages.1G: 3}
mount:
  description: The hugetlbfs mount, with C(path), C(unit), C(state) (V(applied) once the kernel shows it mounted,
    V(unsupported), V(not_permitted)) and C(reason). Null without O(mount).
  returned: always
  type: dict
  sample: {path: /dev/hugepages1G, unit: dev-hugepages1G.mount, state: applied, reason: null}
boot_params:
  description: The hugepage parameters the kernel command line should carry, with O(at_boot).
  returned: always
  type: list
  elements: str
  sample: [hugepagesz=1G, hugepages=32]
files:
  description: Managed persistence files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
reboot_required:
  description: True when the running kernel command line lacks the requested boot parameters.
  returned: always
  type: bool
bootloader:
  description: What was run to regenerate the boot configuration, when boot parameters changed.
  returned: always
  type: str
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('hugepages')


if __name__ == '__main__':
    main()
