# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The hugepages subsystem: pool sizes checked against the host's memory, boot reservations, the hugetlbfs mount."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._engine import EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import HUGEPAGE_SIZES_KB, hugepage_knob
from ansible_collections.aitune.kernel.plugins.module_utils._run import run_engine

ARGUMENT_SPEC = dict(
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
)

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


def apply_hugepages(run):
    """Size the pools (now, or at boot through the kernel command line) and install the mount; returns the result."""
    params = run.params
    pools, at_boot, mount = params['pools'], params['at_boot'], params['mount']

    def body(engine):
        if not 1 <= params['max_percent'] <= 90:
            raise EngineError('hugepages: max_percent must be from 1 to 90, got %d' % params['max_percent'])
        check_pools(pools, at_boot)
        check_caps(engine, pools, params['max_percent'], at_boot)
        unit = units = None
        if mount is not None:
            unit, content = mount_unit(mount)
            if engine.systemctl is None and params['strict']:
                raise EngineError('strict mode, nothing was changed: the hugetlbfs mount needs systemd as PID 1')
        if engine.systemctl is not None:
            units = ('hugepages', {unit: content} if mount is not None else {})
        boot = boot_params(pools) if at_boot else []
        desired = {} if at_boot else {hugepage_knob(p['size'], p['node']).name: p['count'] for p in pools}
        report = engine.apply(desired, persist=params['persist'], strict=params['strict'],
                              cmdline=('hugepages.boot', 'hugepages', boot) if at_boot else None, units=units)
        shortfall = {}
        for name, entry in report.knobs.items():
            if entry['value'] is not None and int(entry['value']) < int(entry['desired']):
                shortfall[name] = int(entry['desired']) - int(entry['value'])
        return report, dict(shortfall=shortfall, boot_params=boot, mount=mount_outcome(engine, mount, unit))

    return run_engine(run, body, boot=True)
