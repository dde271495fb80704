# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Block devices in a fake host: the symlinked /sys/block layout of ``fixtures/trees/block_devices.yml``, and the
kernel's side effect of switching an I/O scheduler.

The YAML trees of FakeHost hold plain files only; real /sys/block entries are symlinks into /sys/devices, which is
the point of these tests (HostFS writes refuse to walk through a symlink), so this builder makes the links itself.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import yaml

from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR

LAYOUT = os.path.join(TREES_DIR, 'block_devices.yml')


def load_layout():
    with open(LAYOUT) as handle:
        return yaml.safe_load(handle)


def _link(host, link_path, target):
    """A relative symlink at ``link_path`` to ``target`` (both host paths), as sysfs makes them."""
    full = host.path(link_path)
    if not os.path.isdir(os.path.dirname(full)):
        os.makedirs(os.path.dirname(full))
    os.symlink(os.path.relpath(target, os.path.dirname(link_path)), full)


def build_block_devices(host, writable=(), only=None, udev=True):
    """Add the layout's disks to ``host``; ``writable`` lists read-only queue files to make writable, ``only`` limits
    the disks, ``udev`` gives the host an /etc/udev/rules.d as udev's package does. Returns ``{disk: resolved sysfs
    directory}``."""
    layout = load_layout()
    if udev:
        os.makedirs(host.path('/etc/udev/rules.d'), exist_ok=True)
    read_only = [name for name in layout['read_only'] if name not in writable]
    os.makedirs(host.path('/sys/block'), exist_ok=True)
    os.makedirs(host.path('/sys/class/block'), exist_ok=True)
    for parent, info in layout['parents'].items():
        os.makedirs(host.path(parent), exist_ok=True)
        for leaf, content in (info.get('files') or {}).items():
            host.write('%s/%s' % (parent, leaf), content)
        for key in ('subsystem', 'driver'):
            if info.get(key):
                os.makedirs(host.path(info[key]), exist_ok=True)
                _link(host, '%s/%s' % (parent, key), info[key])
    dirs = {}
    for name, disk in layout['disks'].items():
        if only is not None and name not in only:
            continue
        base = disk['dir']
        queue = dict(layout['queue_defaults'])
        queue.update(disk.get('queue') or {})
        for leaf, content in queue.items():
            if content is None:
                continue
            host.write('%s/queue/%s' % (base, leaf), content)
            if leaf in read_only:
                os.chmod(host.path('%s/queue/%s' % (base, leaf)), 0o444)
        host.write(base + '/uevent', 'DEVNAME=%s\nDEVTYPE=disk\n' % name)
        for leaf, content in (disk.get('files') or {}).items():
            host.write('%s/%s' % (base, leaf), content)
        if disk.get('parent'):
            _link(host, base + '/device', disk['parent'])
        _link(host, '/sys/block/' + name, base)
        _link(host, '/sys/class/block/' + name, base)
        for number, part in enumerate(disk.get('partitions') or [], 1):
            host.write('%s/%s/partition' % (base, part), '%d\n' % number)
            host.write('%s/%s/uevent' % (base, part), 'DEVNAME=%s\nDEVTYPE=partition\n' % part)
            _link(host, '/sys/class/block/' + part, '%s/%s' % (base, part))
        dirs[name] = base
    return dirs


class ElevatorEffects(object):
    """What the kernel does besides moving the brackets when a queue's scheduler changes (block/elevator.c): the
    queue gets a fresh nr_requests, its tag depth without a scheduler and 2 * min(depth, 128) with one.

    Installed over FakeKernel's os.write; ``switches`` records each change, in order.
    """

    def __init__(self, host):
        self.host = host
        self.depth = {disk['dir']: disk.get('nr_tags') for disk in load_layout()['disks'].values()}
        self.switches = []

    def install(self, setattr_):
        inner = os.write

        def write(fd, data):
            written = inner(fd, data)
            path = self.host.kernel._host_path(fd=fd)
            if path and path.endswith('/queue/scheduler'):
                self._switched(path[:-len('/queue/scheduler')], bytes(data).decode('utf-8').strip())
            return written

        setattr_(os, 'write', write)

    def _switched(self, device_dir, scheduler):
        depth = self.depth.get(device_dir)
        self.switches.append((device_dir, scheduler))
        if depth is None:
            return
        requests = depth if scheduler == 'none' else 2 * min(depth, 128)
        with open(self.host.path(device_dir + '/queue/nr_requests'), 'w') as handle:
            handle.write('%d\n' % requests)
