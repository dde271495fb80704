#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: restore
short_description: Put a host back exactly as it was before aitune.kernel changed it
version_added: 0.1.0
description:
  - Writes back every original live value recorded in C(/var/lib/aitune/baseline.json) and reads it back.
  - Returns each managed persistence file to its original content; a managed file that did not exist before the
    first change is removed. Boot parameters are taken out of the grub drop-in, and RV(reboot_required) says whether
    the running command line still carries them.
  - Entries are dropped from the baseline once restored, so a second run reports no change.
  - Any restore also removes the record of the mode, the local fact C(/etc/ansible/facts.d/aitune.fact), and the
    facts directories its first write created. The host no longer holds the whole mode, so the next tune run applies
    it again.
  - Where tuned runs and the restore changed settings or files that tuned's profile writes too, tuned is asked to
    apply its profile again afterwards (RV(tuned)), so that C(tuned-adm verify) holds on the restored host.
  - With O(scope=all), once every original is back, the collection's own state goes too (the baseline, state and
    lock files, the benchmark's calibration file and the directory C(/var/lib/aitune)), so a restored host keeps
    nothing of the collection's. The baseline stays while any original could not be put back.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.attributes
  - aitune.kernel.common.run_lease
options:
  scope:
    description:
      - V(all) restores everything; a subsystem name restores only the knobs and file entries of that subsystem.
    type: str
    default: all
    choices: [all, block, cgroup, cpufreq, cpuidle, hugepages, irq, memory, placement, sched]
  keep_calibration:
    description:
      - With O(scope=all), keep M(aitune.kernel.latency_bench)'s calibration file
        (C(/var/lib/aitune/bench-calibration.json)), so a later benchmark does the same work per step. The benchmark
        role keeps it between its arms; a user's restore removes it.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Undo everything the collection changed on this host
  aitune.kernel.restore:

- name: Preview what restoring the memory settings would change
  aitune.kernel.restore:
    scope: memory
  check_mode: true
  diff: true
'''

RETURN = r'''
knobs:
  description: Per restored knob, C(state) (V(applied) once the original is read back), C(path), C(previous) (the
    value before the restore), C(desired) (the recorded original), C(value), C(reason) and C(changed).
  returned: always
  type: dict
  sample:
    sched.autogroup: {state: applied, path: /proc/sys/kernel/sched_autogroup_enabled, previous: '0', desired: '1',
                      value: '1', reason: null, changed: true}
applied:
  description: Knobs that hold their original value again.
  returned: always
  type: list
  elements: str
unsupported:
  description: Recorded knobs that are gone from the running kernel (for example after booting another kernel); their
    originals stay in the baseline. An IRQ whose identity no IRQ or several IRQs have now, or one recorded by number
    in an earlier boot, is here too with the reason, and nothing is written for it; its original leaves the baseline,
    as nothing could put it back later.
  returned: always
  type: dict
  sample: {irq.mlx5_comp0@pci:0000:3b:00.2.affinity: 'cannot restore: IRQ mlx5_comp0@pci:0000:3b:00.2 is gone ...'}
not_permitted:
  description: Recorded knobs the kernel would not let the module put back; their originals stay in the baseline,
    except those of IRQs the kernel manages now or does not let user space move, which it never will.
  returned: always
  type: dict
dirs:
  description: Directories the collection had created (cgroups without systemd), each V(removed) or why it was kept.
  returned: always
  type: dict
actions:
  description: What was done to make the file changes act now (systemctl daemon-reload, stopped units, udev trigger).
  returned: always
  type: list
  elements: str
file_changes:
  description: Per file put back or removed, V(updated) (its original content is back), V(removed) or V(created).
  returned: always
  type: dict
  sample: {/etc/sysctl.d/90-aitune.conf: removed, /etc/ansible/facts.d/aitune.fact: removed}
files:
  description: Managed files that were put back or removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/sysctl.d/90-aitune.conf]
reboot_required:
  description: True when the running kernel still carries boot parameters that the restore took out.
  returned: always
  type: bool
bootloader:
  description: What was run to regenerate the boot configuration, when boot parameters were removed.
  returned: always
  type: str
kernel:
  description: The running kernel release.
  returned: always
  type: str
tuned:
  description:
    - What was asked of a running tuned once every original and file was back; null where tuned does not run.
    - tuned keeps a record of what it applied and checks it in C(tuned-adm verify). A restore changes values and
      files behind its back (it removes C(/etc/sysctl.d/90-aitune.conf), which tuned's C(reapply_sysctl) had applied
      over its own values), so verify fails until tuned applies its profile again.
    - C(profile) and C(profile_mode) are tuned's, and C(subsystems) lists those this restore changed that tuned's
      profile writes too.
    - C(action) is V(reapplied) (C(command) ran), V(would reapply) (check mode), V(not needed) (the restore changed
      nothing tuned writes) or V(failed). A failure never fails the restore. It warns, with C(reason) saying why,
      and the command to run by hand.
    - C(command) is what was (or would be) run, C(tuned-adm profile NAME...), or C(tuned-adm auto_profile) for a
      tuned in auto mode, which C(tuned-adm profile) would switch to manual.
  returned: always
  type: dict
  sample: {profile: throughput-performance, profile_mode: manual, subsystems: [memory, sched], action: reapplied,
           command: tuned-adm profile throughput-performance,
           reason: 'tuned applied its profile again over the restored values, so tuned-adm verify holds'}
'''

from ansible_collections.aitune.kernel.plugins.module_utils._knobs import SUBSYSTEMS
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module, exit_with_result
from ansible_collections.aitune.kernel.plugins.module_utils._restore import run_restore


def main():
    module = build_module(dict(scope=dict(type='str', default='all', choices=['all'] + list(SUBSYSTEMS)),
                               keep_calibration=dict(type='bool', default=False)),
                          apply_options=False, leased=True)
    exit_with_result(module, run_restore)


if __name__ == '__main__':
    main()
