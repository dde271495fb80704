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
from ansible_collections.aitune.kernel.plugins.module_utils._invariants import check_pools as check_memory_cap
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import HUGEPAGE_SIZES_KB, hugepage_knob, shown
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
# Where a hugetlbfs may be mounted: /dev/hugepages and its siblings such as /dev/hugepages1G (the places systemd and
# libhugetlbfs use), and below /mnt, /run and /srv, the trees meant for mounts and run-time files. Anywhere else a
# hugetlbfs would hide what the system keeps there.
MOUNT_ROOTS = ('/dev/hugepages', '/dev/hugepages<suffix>', '/mnt/...', '/run/...', '/srv/...')
_MOUNT_ALLOWED = re.compile(r'^(/dev/hugepages[A-Za-z0-9_]*(/.*)?|/(mnt|run|srv)/.+)$')
# Paths the collection or the system depends on: a mount may not be one, nor contain one (it would hide it).
MOUNT_PROTECTED = ('/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib64', '/mnt', '/opt', '/proc', '/root',
                   '/run', '/run/dbus', '/run/lock', '/run/systemd', '/run/udev', '/run/user', '/sbin', '/srv', '/sys',
                   '/tmp', '/usr', '/var', '/var/lib/aitune')
# Trees under /run that belong to the system's own services: nothing of the collection's is mounted inside them.
MOUNT_SYSTEM_TREES = ('/run/dbus', '/run/lock', '/run/systemd', '/run/udev', '/run/user')
# Mode bits a hugetlbfs root may not carry: setuid and setgid (a directory's setgid hands its group to every file
# made in it), and world-writable without the sticky bit (anyone could delete anyone's files).
MODE_SETID = 0o6000
MODE_STICKY = 0o1000
MODE_WORLD_WRITABLE = 0o002
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


def check_mount_path(path):
    """Refuse a mount point that is not plain, not under MOUNT_ROOTS, or that is or holds a MOUNT_PROTECTED path."""
    if not isinstance(path, str) or not MOUNT_PATH.match(path) or '..' in path:
        raise EngineError('hugepages: mount path %s must be absolute and use only letters, digits, "_" and "/"'
                          % shown(path))
    for protected in MOUNT_PROTECTED:
        if path == protected or protected.startswith(path + '/'):
            raise EngineError('hugepages: mount path %s is refused: a hugetlbfs there would hide %s, which the %s '
                              'depends on. Mount it at /dev/hugepages, /dev/hugepages<suffix> (such as '
                              '/dev/hugepages1G) or below /mnt, /run or /srv, such as /mnt/huge'
                              % (path, protected, 'collection' if protected == '/var/lib/aitune' else 'system'))
    for tree in MOUNT_SYSTEM_TREES:
        if path.startswith(tree + '/'):
            raise EngineError('hugepages: mount path %s is refused: %s belongs to the system\'s own services. Mount it '
                              'below /mnt, /run or /srv outside it, such as /run/hugepages' % (path, tree))
    if not _MOUNT_ALLOWED.match(path):
        raise EngineError('hugepages: mount path %s is refused: a hugetlbfs is mounted only at %s, never over a '
                          'directory the system keeps files in' % (path, ', '.join(MOUNT_ROOTS)))
    return path


def check_mount_mode(mode):
    """Refuse a mode that is not octal, carries setuid or setgid, or is world-writable without the sticky bit."""
    if not isinstance(mode, str) or not re.match(r'^[0-7]{3,4}$', mode):
        raise EngineError('hugepages: mount mode %s is not an octal mode such as 1770' % shown(mode))
    bits = int(mode, 8)
    if bits & MODE_SETID:
        raise EngineError('hugepages: mount mode %s is refused: it carries the %s bit, which a hugetlbfs root has no '
                          'use for; use 1770 (the default) or 0770'
                          % (mode, ' and '.join(name for bit, name in ((0o4000, 'setuid'), (0o2000, 'setgid'))
                                                if bits & bit)))
    if bits & MODE_WORLD_WRITABLE and not bits & MODE_STICKY:
        raise EngineError('hugepages: mount mode %s is refused: world-writable without the sticky bit lets any user '
                          'delete or replace the others\' hugepage files; use 1777 for a shared mount, or 1770 (the '
                          'default) for the owner and group alone' % mode)
    return mode


def mount_unit(mount):
    """``(unit name, unit content)`` for the mount; refuses paths and modes that are not safe (see check_mount_path
    and check_mount_mode). Called while deciding, before anything is written."""
    path = check_mount_path(mount['path'])
    check_mount_mode(mount['mode'])
    # systemd names a mount unit after its path with "/" turned into "-"; plain paths need no further escaping.
    unit = path.strip('/').replace('/', '-') + '.mount'
    return unit, MOUNT_UNIT.substitute(path=path, pagesize=mount['pagesize'], mode=mount['mode'],
                                       size_kb=HUGEPAGE_SIZES_KB[mount['pagesize']])


def check_options(params):
    """What can be refused from the options alone, before any subsystem of a profile run writes: the mount."""
    if params.get('mount') is not None:
        mount_unit(params['mount'])


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
    """The safety caps (rule hugepages-under-memory-cap of _invariants.RULES; memory checks the other side)."""
    check_memory_cap(engine.fs, pools, max_percent, at_boot)


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
