#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: block
short_description: Set block device queue settings (I/O scheduler, read-ahead, polling...) by rule, now and at boot
version_added: 0.1.0
description:
  - Selects disks under C(/sys/block) by name glob, transport, model and rotational flag, and sets the queue settings
    of each selected disk in C(/sys/block/<dev>/queue), reading every value back.
  - "Several rules can be given in O(devices), so one call manages every block rule of the host: the call is
    declarative, and rules left out of it are dropped from the udev rules file."
  - Partitions are never selected (their queue is the whole disk's). Virtual devices (loop, zram, device-mapper, md and
    others under C(/sys/devices/virtual/block)) are selected only by their exact name. Each device left out is listed
    in RV(skipped_devices) with the reason.
  - Persists through one udev rules file, C(/etc/udev/rules.d/90-aitune-block.rules), written from the rules (not
    from the device names found now), so a replacement disk that matches gets the same settings. Where udev runs, its
    rules are reloaded and the block devices replayed; elsewhere the rules act from the next boot (see RV(actions)).
  - Each setting ends as V(applied), V(unsupported) (the device's queue lacks it) or V(not_permitted) (read-only, or a
    write the kernel would ignore, such as C(io_poll) since 5.15 and C(io_poll_delay) since 6.4), with the reason.
  - Knobs are named C(block.<dev>.<setting>); the scheduler's knob is C(block.<dev>.elevator), the kernel's name for it,
    because it must be written (and restored) before the other settings of its queue.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  devices:
    description:
      - The rules, each a O(devices[].match) and the settings for the disks it selects.
      - Where several rules select one disk, later rules win for the settings they both give, as later udev
        assignments do.
      - An empty list sets nothing and, with O(persist), removes the rules file an earlier call wrote.
    type: list
    elements: dict
    required: true
    suboptions:
      match:
        description:
          - Which disks the rule selects. Every selector given must hold (they AND together); give at least one.
        type: dict
        required: true
        suboptions:
          name:
            description:
              - Kernel name glob (C(*), C(?), C([...])), such as C(nvme*) or C(sd[a-d]); C(*) selects every disk.
              - A name without glob characters also selects a virtual device (C(loop0), C(dm-0), C(md0), C(zram0)).
              - A name with C(/) or C(..) is refused.
            type: str
          transport:
            description:
              - The bus the disk hangs on, as udev sees it from the parent device (C(SUBSYSTEMS), C(DRIVERS)).
            type: str
            choices: [nvme, scsi, virtio]
          model:
            description:
              - Glob on the disk's model (C(/sys/block/<dev>/device/model), trailing padding ignored as udev does).
            type: str
          rotational:
            description:
              - The disk's C(queue/rotational) flag, V(true) for spinning disks and V(false) for solid state.
            type: bool
      scheduler:
        description:
          - I/O scheduler, one the selected disk lists in C(queue/scheduler) (V(none), V(mq-deadline), V(kyber),
            V(bfq)...). A scheduler a selected disk does not offer is refused before anything is written.
        type: str
      nr_requests:
        description:
          - Requests the queue may hold, from 4 to 65536; the device's tag depth or the scheduler may allow fewer, and
            the kernel rejects more.
        type: int
      read_ahead_kb:
        description:
          - Read-ahead in KiB, from 0 to 2097152.
        type: int
      io_poll:
        description:
          - Polled completions. Since 5.15 the kernel ignores writes (polled queues come from the driver, for NVMe
            C(nvme.poll_queues=)), so a value other than the current one is reported V(not_permitted) and left out of
            the rules file.
        type: bool
      io_poll_delay:
        description:
          - Hybrid polling delay in microseconds, V(-1) classic polling, V(0) adaptive. Hybrid polling was removed in
            6.4, where this is reported V(not_permitted).
        type: int
      nomerges:
        description:
          - Request merging, V(0) all, V(1) simple one-hit merges only, V(2) none.
        type: int
      rq_affinity:
        description:
          - Where completions run, V(0) any CPU, V(1) a CPU of the submitter's group, V(2) the submitting CPU.
        type: int
      wbt_lat_usec:
        description:
          - Writeback throttling latency target in microseconds; V(0) turns throttling off.
        type: int
      max_sectors_kb:
        description:
          - Largest request in KiB. Refused above a selected disk's C(max_hw_sectors_kb).
        type: int
notes:
  - The live values are recorded in C(/var/lib/aitune/baseline.json) before the first change, under the resolved
    C(/sys/devices/.../queue) path (C(/sys/block/<dev>) is a symlink, and writes never follow one).
    M(aitune.kernel.restore) with O(aitune.kernel.restore#module:scope=block) or V(all) puts them back and removes the
    rules file.
  - With O(persist=false) only the live values change, and the rules file an earlier call wrote is removed (put back
    to what was there before the collection first wrote it).
'''

EXAMPLES = r'''
- name: No scheduler and deep read-ahead on NVMe, mq-deadline on spinning disks, now and at boot
  aitune.kernel.block:
    devices:
      - match: {transport: nvme}
        scheduler: none
        read_ahead_kb: 4096
        nomerges: 1
      - match: {rotational: true}
        scheduler: mq-deadline

- name: One disk model only, and a loop device named exactly
  aitune.kernel.block:
    devices:
      - match: {model: 'SAMSUNG MZ*'}
        rq_affinity: 2
      - match: {name: loop0}
        read_ahead_kb: 128

- name: Preview the changes and the udev rules file
  aitune.kernel.block:
    devices:
      - match: {name: 'vd*'}
        scheduler: none
  check_mode: true
  diff: true
'''

RETURN = r'''
knobs:
  description: Outcome per knob (C(block.<dev>.<setting>)), each with C(state), C(path) (the resolved sysfs file),
    C(previous), C(desired), C(value), C(reason) and C(changed).
  returned: always
  type: dict
  sample:
    block.nvme0n1.elevator: {state: applied, path: /sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/queue/scheduler,
                             previous: mq-deadline, desired: none, value: none, reason: null, changed: true}
applied:
  description: Knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
unsupported:
  description: Knobs the device's queue does not have, with the reason.
  returned: always
  type: dict
not_permitted:
  description: Knobs that are read-only, or whose writes the kernel ignores, with the reason.
  returned: always
  type: dict
  sample: {block.nvme0n1.io_poll: 'since 5.15 the kernel ignores writes to io_poll; polled queues come from the driver'}
devices:
  description: The selected disks, each with C(entries) (indexes of the O(devices) rules that selected it),
    C(transport), C(model), C(rotational) and C(sysfs) (its resolved directory).
  returned: always
  type: dict
  sample:
    nvme0n1: {entries: [0], transport: nvme, model: Samsung SSD 980 PRO 1TB, rotational: false,
              sysfs: /sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1}
skipped_devices:
  description:
    - Devices a rule reached but that were left out, and exact names not present, with the reason.
    - Not named C(skipped), which Ansible reads as the task having been skipped.
  returned: always
  type: dict
  sample: {loop0: 'loop device (a file seen as a disk): name it exactly (name: loop0) to include it',
           nvme0n1p1: 'partition of nvme0n1: queue settings belong to the whole disk; match nvme0n1 instead'}
files:
  description: Managed files that changed, or would change in check mode (the udev rules file).
  returned: always
  type: list
  elements: str
  sample: [/etc/udev/rules.d/90-aitune-block.rules]
actions:
  description: What was done to make the rules act now (udevadm trigger), or that they act from the next boot.
  returned: always
  type: list
  elements: str
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('block')


if __name__ == '__main__':
    main()
