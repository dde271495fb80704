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
        description: Mount point, an absolute path of letters, digits, C(_) and C(/) only, such as C(/dev/hugepages1G).
        type: str
        required: true
      pagesize:
        description: Page size of the mount.
        type: str
        choices: [2M, 1G]
        default: 2M
      mode:
        description: Octal permission of the mount point's root.
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

import re
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._engine import EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import HUGEPAGE_SIZES_KB, hugepage_knob
from ansible_collections.aitune.kernel.plugins.module_utils._module import build_module, exit_with_report, open_engine

MOUNT_PATH = re.compile(r'^(/[A-Za-z0-9_]+)+$')
MOUNT_UNIT = Template("""# Managed by aitune.kernel; removed by aitune.kernel.restore.
[Unit]
Description=hugetlbfs with ${pagesize} pages at ${path}
DefaultDependencies=no
Before=local-fs.target umount.target
Conflicts=umount.target
ConditionPathExists=/sys/kernel/mm/hugepages/hugepages-${size_kb}kB

[Mount]
What=hugetlbfs
Where=${path}
Type=hugetlbfs
Options=pagesize=${pagesize},mode=${mode}

[Install]
WantedBy=local-fs.target
""")


def mount_unit(mount):
    """``(unit name, unit content)`` for the mount; refuses paths that are not plain."""
    path = mount['path']
    if not MOUNT_PATH.match(path) or '..' in path:
        raise EngineError('hugepages: mount path %r must be absolute and use only letters, digits, "_" and "/"' % path)
    if not re.match(r'^[0-7]{3,4}$', mount['mode']):
        raise EngineError('hugepages: mount mode %r is not an octal mode' % mount['mode'])
    # systemd names a mount unit after its path with "/" turned into "-"; plain paths need no further escaping.
    unit = path.strip('/').replace('/', '-') + '.mount'
    return unit, MOUNT_UNIT.substitute(path=path, pagesize=mount['pagesize'], mode=mount['mode'],
                                       size_kb=HUGEPAGE_SIZES_KB[mount['pagesize']])


def mount_outcome(engine, mount, unit):
    if mount is None:
        return None
    outcome = {'path': mount['path'], 'unit': unit, 'state': 'applied', 'reason': None}
    if engine.systemctl is None:
        outcome.update(state='unsupported', reason='hugetlbfs mounts are installed as systemd mount units, and systemd '
                                                   'is not PID 1 here (or root is not /)')
    elif engine.check_mode:
        outcome['reason'] = 'check mode: not verified'
    elif not any(row[1] == mount['path'] and row[2] == 'hugetlbfs' for row in engine.kernel.mounts()):
        outcome.update(state='not_permitted', reason='%s started but the kernel shows no hugetlbfs at %s'
                                                     % (unit, mount['path']))
    return outcome


def meminfo_kb(engine):
    values = {}
    for line in (engine.fs.read_optional('/proc/meminfo', follow=True) or '').splitlines():
        match = re.match(r'^(\w+):\s+(\d+)', line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def check_pools(pools, at_boot):
    """Refuse duplicate or mixed (host-wide and per-node) pools of one size, and per-node boot reservations."""
    seen = set()
    for pool in pools:
        if pool['count'] < 0:
            raise EngineError('hugepages: count must not be negative, got %d for %s' % (pool['count'], pool['size']))
        if at_boot and pool['node'] is not None:
            raise EngineError('hugepages: per-node pools cannot be reserved at boot; drop node or at_boot')
        key = (pool['size'], pool['node'])
        if key in seen or (pool['size'], None) in seen or (pool['node'] is None and any(s == pool['size'] for s, n in seen)):
            raise EngineError('hugepages: the %s pool is given more than once, or both host-wide and per node' % pool['size'])
        seen.add(key)


def check_caps(engine, pools, max_percent, at_boot):
    """The safety caps: pools within max_percent of MemTotal, and runtime growth within MemAvailable."""
    meminfo = meminfo_kb(engine)
    total_kb = meminfo.get('MemTotal', 0)
    wanted_kb = sum(pool['count'] * HUGEPAGE_SIZES_KB[pool['size']] for pool in pools)
    if wanted_kb > total_kb * max_percent // 100:
        raise EngineError('hugepages: %d MiB of pools is above the cap of %d%% of MemTotal (%d MiB); nothing was '
                          'changed. Raise max_percent only if the host can live with that little free memory.'
                          % (wanted_kb // 1024, max_percent, total_kb * max_percent // 100 // 1024))
    if at_boot:
        return
    growth_kb = 0
    for pool in pools:
        knob = hugepage_knob(pool['size'], pool['node'])
        current = engine.fs.read_optional(knob.locations[0].path)
        if current is not None:
            growth_kb += max(0, pool['count'] - int(current.strip())) * HUGEPAGE_SIZES_KB[pool['size']]
    available_kb = meminfo.get('MemAvailable', 0)
    if growth_kb > available_kb:
        raise EngineError('hugepages: growing the pools takes %d MiB but only %d MiB is available; nothing was changed'
                          % (growth_kb // 1024, available_kb // 1024))


def boot_params(pools):
    params = []
    for pool in sorted(pools, key=lambda p: HUGEPAGE_SIZES_KB[p['size']]):
        params.extend(['hugepagesz=%s' % pool['size'], 'hugepages=%d' % pool['count']])
    return params


def main():
    module = build_module(dict(
        pools=dict(type='list', elements='dict', required=True, options=dict(
            size=dict(type='str', required=True, choices=sorted(HUGEPAGE_SIZES_KB)),
            count=dict(type='int', required=True),
            node=dict(type='int'),
        )),
        at_boot=dict(type='bool', default=False),
        max_percent=dict(type='int', default=50),
        mount=dict(type='dict', options=dict(
            path=dict(type='str', required=True),
            pagesize=dict(type='str', default='2M', choices=sorted(HUGEPAGE_SIZES_KB)),
            mode=dict(type='str', default='1770'),
        )),
    ))
    pools, at_boot, mount = module.params['pools'], module.params['at_boot'], module.params['mount']
    unit = None
    engine = open_engine(module)
    try:
        if not 1 <= module.params['max_percent'] <= 90:
            raise EngineError('hugepages: max_percent must be from 1 to 90, got %d' % module.params['max_percent'])
        check_pools(pools, at_boot)
        check_caps(engine, pools, module.params['max_percent'], at_boot)
        units = None
        if mount is not None:
            unit, content = mount_unit(mount)
            if engine.systemctl is None and module.params['strict']:
                raise EngineError('strict mode, nothing was changed: the hugetlbfs mount needs systemd as PID 1')
        if engine.systemctl is not None:
            units = ('hugepages', {unit: content} if mount is not None else {})
        params = boot_params(pools) if at_boot else []
        desired = {} if at_boot else {hugepage_knob(p['size'], p['node']).name: p['count'] for p in pools}
        report = engine.apply(desired, persist=module.params['persist'], strict=module.params['strict'],
                              cmdline=('hugepages.boot', 'hugepages', params) if at_boot else None, units=units)
    except (EngineError, FsError) as exc:
        engine.close()
        module.fail_json(msg=str(exc))
    shortfall = {}
    for name, entry in report.knobs.items():
        if entry['value'] is not None and int(entry['value']) < int(entry['desired']):
            shortfall[name] = int(entry['desired']) - int(entry['value'])
    exit_with_report(module, engine, report, boot=True, shortfall=shortfall, boot_params=params,
                     mount=mount_outcome(engine, mount, unit))


if __name__ == '__main__':
    main()
