#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: memory
short_description: Set virtual memory, writeback and transparent hugepage knobs
version_added: 0.1.0
description:
  - Sets C(vm.*) sysctls and the transparent hugepage (THP) policy, reads each value back, and persists them in the
    collection's managed C(/etc/sysctl.d/90-aitune.conf) and C(/etc/tmpfiles.d/aitune.conf).
  - THP values are checked against the list the running kernel offers in its own file.
  - The kernel keeps either a dirty ratio or a dirty byte count, and zeroes the other when one is written. The module
    records both halves before changing either, so M(aitune.kernel.restore) puts back whichever was in use.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.apply
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  swappiness:
    description: C(vm.swappiness), from 0 to 200.
    type: int
  thp_enabled:
    description: Transparent hugepages policy, such as V(always), V(madvise) or V(never), as the kernel offers it.
    type: str
  thp_defrag:
    description: THP direct compaction policy, such as V(defer+madvise) or V(madvise), as the kernel offers it.
    type: str
  khugepaged_defrag:
    description: Whether khugepaged compacts memory to collapse pages into hugepages.
    type: bool
  dirty_ratio:
    description: C(vm.dirty_ratio), percent of available memory at which writers block. Excludes O(dirty_bytes).
    type: int
  dirty_bytes:
    description: C(vm.dirty_bytes), at least 8192. Excludes O(dirty_ratio).
    type: int
  dirty_background_ratio:
    description: C(vm.dirty_background_ratio). Excludes O(dirty_background_bytes).
    type: int
  dirty_background_bytes:
    description: C(vm.dirty_background_bytes). Excludes O(dirty_background_ratio).
    type: int
  zone_reclaim_mode:
    description: C(vm.zone_reclaim_mode) bitmask from 0 to 7; only on NUMA kernels.
    type: int
  min_free_kbytes:
    description: C(vm.min_free_kbytes).
    type: int
  compaction_proactiveness:
    description: C(vm.compaction_proactiveness), from 0 to 100 (kernel 5.9 and later).
    type: int
  watermark_scale_factor:
    description: C(vm.watermark_scale_factor), from 1 to 3000.
    type: int
  stat_interval:
    description: C(vm.stat_interval) in seconds.
    type: int
'''

EXAMPLES = r'''
- name: Keep inference weights in memory and take THP only where the application asks
  aitune.kernel.memory:
    swappiness: 10
    thp_enabled: madvise
    thp_defrag: defer+madvise

- name: Cap dirty page cache in bytes, as large-memory hosts prefer
  aitune.kernel.memory:
    dirty_bytes: 268435456
    dirty_background_bytes: 67108864
'''

RETURN = r'''
knobs:
  description: Outcome per abstract knob name (C(vm.swappiness), C(thp.enabled) and so on), each with C(state),
    C(path), C(previous), C(desired), C(value), C(reason) and C(changed).
  returned: always
  type: dict
  sample:
    vm.swappiness: {state: applied, path: /proc/sys/vm/swappiness, previous: '60', desired: '10', value: '10',
                    reason: null, changed: true}
applied:
  description: Memory knobs whose live value now equals the requested one.
  returned: always
  type: list
  elements: str
  sample: [thp.enabled, vm.swappiness]
unsupported:
  description: Requested knobs this kernel lacks, such as C(vm.zone_reclaim_mode) without NUMA, with the reason.
  returned: always
  type: dict
not_permitted:
  description: Requested knobs the kernel refused (read-only C(/proc/sys) in a container, for one), with the reason.
  returned: always
  type: dict
files:
  description: Managed persistence files that changed, or would change in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/sysctl.d/90-aitune.conf, /etc/tmpfiles.d/aitune.conf]
kernel:
  description: The running kernel release.
  returned: always
  type: str
'''

from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import run_subsystem_module


def main():
    run_subsystem_module('memory')


if __name__ == '__main__':
    main()
