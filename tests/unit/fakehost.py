# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Fake hosts for the unit tests: a /proc, /sys and /etc tree under a temporary directory, and a small emulation of
the kernel's side of the files in it.

The trees are described in ``fixtures/trees/*.yml`` (``common.yml`` plus one file per kernel). ``FakeHost`` builds one
and offers what the tests need around it:

* ``FakeKernel`` stands in for the kernel behind the files. A kernel file is not a regular file: a write replaces the
  value, a bracketed list moves its brackets, writing one half of ``vm.dirty_ratio``/``vm.dirty_bytes`` zeroes the
  other, locked-down debugfs answers EPERM on open. The emulation sits at the system-call boundary (``os.open`` and
  ``os.write``) and only for paths inside the fake tree, so the engine under test runs unchanged.
* ``DebugfsMounter`` and ``FailingMounter`` play mount(8) for debugfs: mounting adds the line to the fake
  ``/proc/mounts`` and makes the debugfs files appear, unmounting takes both away again.
* ``snapshot()`` records every path, mode and content of the tree, so a test can prove that nothing changed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import os
import shutil
import stat

import yaml

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FAKE_ROOT_MARKER, FsError, NOT_PERMITTED

TREES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'trees')
KERNELS = ('5.10', '6.1', '6.12', '6.18')
# Trees of other builds of those kernels, made by name like them: Debian bookworm's 6.1 PREEMPT_RT kernel.
VARIANTS = ('6.1-rt',)
DEBUGFS = '/sys/kernel/debug'
DEBUGFS_MOUNT_LINE = 'debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0'
HUGEPAGE_SIZES_KB = (2048, 1048576)

# Writing one half of these pairs makes the kernel zero the other (mm/page-writeback.c).
_PAIRS = {
    '/proc/sys/vm/dirty_ratio': '/proc/sys/vm/dirty_bytes',
    '/proc/sys/vm/dirty_bytes': '/proc/sys/vm/dirty_ratio',
    '/proc/sys/vm/dirty_background_ratio': '/proc/sys/vm/dirty_background_bytes',
    '/proc/sys/vm/dirty_background_bytes': '/proc/sys/vm/dirty_background_ratio',
}


def load_tree_spec(kernel):
    """The merged description of the tree for ``kernel`` (one of KERNELS or VARIANTS). A tree's ``absent`` lists the
    common files its kernel is built without; its ``version`` is what /proc/version reads."""
    with open(os.path.join(TREES_DIR, 'common.yml')) as handle:
        common = yaml.safe_load(handle)
    with open(os.path.join(TREES_DIR, 'k%s.yml' % kernel.replace('.', '_').replace('-', '_'))) as handle:
        specific = yaml.safe_load(handle)
    files = dict(common['files'])
    files.update(specific.get('files') or {})
    for path in specific.get('absent') or ():
        del files[path]
    files['/proc/sys/kernel/osrelease'] = specific['osrelease'] + '\n'
    files['/proc/version'] = specific['version'] + '\n'
    return {
        'osrelease': specific['osrelease'],
        'dirs': list(common['dirs']),
        'mounts': list(common['mounts']),
        'files': files,
        'debugfs': dict(specific.get('debugfs') or {}),
        'debugfs_mounted': bool(specific.get('debugfs_mounted')),
        'debugfs_eperm': bool(specific.get('debugfs_eperm')),
    }


class FakeHost(object):
    """A fake root for ``kernel``; ``nodes`` NUMA nodes; debugfs mounted or not (default: as the YAML says)."""

    def __init__(self, base, kernel='6.12', nodes=1, debugfs_mounted=None, files=None, build=True):
        self.kernel_version = kernel
        self.spec = load_tree_spec(kernel)
        self.root = os.path.join(str(base), 'root')
        # What debugfs holds while it is not mounted: the kernel keeps the values, the mountpoint shows nothing.
        self.debugfs_store = os.path.join(str(base), 'debugfs-store')
        self.nodes = nodes
        self.mounted = self.spec['debugfs_mounted'] if debugfs_mounted is None else debugfs_mounted
        self.kernel = FakeKernel(self)
        if build:
            self._build(files)
        else:
            self.mounted = any(line.split()[1:2] == [DEBUGFS] for line in self.read('/proc/mounts').splitlines())

    def _build(self, files):
        os.makedirs(self.root)
        # The modules take no root other than / without it (_fsio.root_refusal).
        with open(os.path.join(self.root, FAKE_ROOT_MARKER), 'w') as handle:
            handle.write('a fake host tree for tests\n')
        os.makedirs(self.debugfs_store)
        for path in self.spec['dirs']:
            os.makedirs(self.path(path), exist_ok=True)
        all_files = dict(self.spec['files'])
        all_files.update(self._node_files())
        all_files.update(files or {})
        for path, content in all_files.items():
            self.write(path, content)
        for path, content in self.spec['debugfs'].items():
            self._write_at(self.debugfs_store, path, content)
        mounts = list(self.spec['mounts'])
        self.write('/proc/mounts', ''.join(line + '\n' for line in mounts))
        if self.mounted:
            self._show_debugfs()
            self.write('/proc/mounts', self.read('/proc/mounts') + DEBUGFS_MOUNT_LINE + '\n')

    # -- paths and contents --------------------------------------------------------------------------------------------
    def path(self, host_path):
        return os.path.join(self.root, host_path.lstrip('/'))

    def read(self, host_path):
        with open(self.path(host_path)) as handle:
            return handle.read()

    def value(self, host_path):
        return self.read(host_path).strip()

    def exists(self, host_path):
        return os.path.lexists(self.path(host_path))

    def write(self, host_path, content):
        self._write_at(self.root, host_path, content)

    @staticmethod
    def _write_at(root, host_path, content):
        target = os.path.join(root, host_path.lstrip('/'))
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        with open(target, 'w') as handle:
            handle.write(content)

    def mode(self, host_path):
        return stat.S_IMODE(os.lstat(self.path(host_path)).st_mode)

    def _node_files(self):
        files = {}
        if self.nodes < 2:
            return files
        files['/sys/devices/system/node/online'] = '0-%d\n' % (self.nodes - 1)
        for node in range(self.nodes):
            base = '/sys/devices/system/node/node%d' % node
            files[base + '/meminfo'] = ('Node %d MemTotal:       8193170 kB\nNode %d MemFree:        7009110 kB\n'
                                        'Node %d HugePages_Total:     0\nNode %d HugePages_Free:      0\n'
                                        % (node, node, node, node))
            for size in HUGEPAGE_SIZES_KB:
                for leaf in ('nr_hugepages', 'free_hugepages', 'surplus_hugepages'):
                    files['%s/hugepages/hugepages-%dkB/%s' % (base, size, leaf)] = '0\n'
        return files

    # -- debugfs -------------------------------------------------------------------------------------------------------
    def _show_debugfs(self):
        store = os.path.join(self.debugfs_store, DEBUGFS.lstrip('/'))
        if os.path.isdir(store):
            for name in os.listdir(store):
                shutil.move(os.path.join(store, name), os.path.join(self.path(DEBUGFS), name))

    def _hide_debugfs(self):
        store = os.path.join(self.debugfs_store, DEBUGFS.lstrip('/'))
        if not os.path.isdir(store):
            os.makedirs(store)
        mountpoint = self.path(DEBUGFS)
        for name in os.listdir(mountpoint):
            shutil.move(os.path.join(mountpoint, name), os.path.join(store, name))

    def debugfs_value(self, host_path):
        """A debugfs knob's value whether debugfs is mounted or not."""
        if self.mounted:
            return self.value(host_path)
        with open(os.path.join(self.debugfs_store, host_path.lstrip('/'))) as handle:
            return handle.read().strip()

    # -- whole-tree records --------------------------------------------------------------------------------------------
    def snapshot(self, ignore=()):
        """``{host path: description}`` for every entry of the tree: type, mode, and content digest or link target."""
        entries = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                host = '/' + os.path.relpath(full, self.root)
                if any(host == skip or host.startswith(skip + '/') for skip in ignore):
                    continue
                info = os.lstat(full)
                if stat.S_ISLNK(info.st_mode):
                    entries[host] = ('link', os.readlink(full))
                elif stat.S_ISDIR(info.st_mode):
                    entries[host] = ('dir', stat.S_IMODE(info.st_mode))
                else:
                    with open(full, 'rb') as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    entries[host] = ('file', stat.S_IMODE(info.st_mode), digest)
        return entries

    def values(self, paths):
        return {path: self.value(path) for path in paths}


class DebugfsMounter(object):
    """mount(8)/umount(8) for debugfs on a fake host, with the calls it got."""

    def __init__(self, host):
        self.host = host
        self.calls = []

    def mount_debugfs(self, host_path):
        self.calls.append(('mount', host_path))
        if host_path != self.host.path(DEBUGFS):
            raise FsError(NOT_PERMITTED, host_path, 'mount: %s: mount point does not exist' % host_path)
        self.host._show_debugfs()
        self.host.mounted = True
        self.host.write('/proc/mounts', self.host.read('/proc/mounts') + DEBUGFS_MOUNT_LINE + '\n')

    def umount(self, host_path):
        self.calls.append(('umount', host_path))
        lines = self.host.read('/proc/mounts').splitlines(True)
        lines = [line for line in lines if line.split()[1:2] != [DEBUGFS]]
        self.host.write('/proc/mounts', ''.join(lines))
        self.host._hide_debugfs()
        self.host.mounted = False


class FailingMounter(object):
    """A mounter on a host where mounting debugfs is refused (a container without CAP_SYS_ADMIN)."""

    def __init__(self):
        self.calls = []

    def mount_debugfs(self, host_path):
        self.calls.append(('mount', host_path))
        raise FsError(NOT_PERMITTED, host_path, 'mount -t debugfs debugfs %s: permission denied' % host_path)

    def umount(self, host_path):
        self.calls.append(('umount', host_path))
        raise FsError(NOT_PERMITTED, host_path, 'umount %s: not mounted' % host_path)


class FakeKernel(object):
    """The kernel's side of the fake tree's /proc and /sys files, at the os.open/os.write boundary.

    ``install(setattr_)`` takes a setter such as ``monkeypatch.setattr``. Rules:

    * a write replaces the value (the kernel parses the buffer; there is no file offset to speak of);
    * a bracketed list accepts only an offered word and moves the brackets to it, else EINVAL;
    * ``reject[path]`` is an errno raised for every write to ``path``; ``keep`` holds paths whose writes are accepted
      and ignored (a value the kernel clamps back);
    * writing one half of a dirty ratio/bytes pair zeroes the other half;
    * writing nr_hugepages spreads the pool over the NUMA nodes (or adds up the nodes), up to ``hugepage_capacity``;
    * with ``debugfs_eperm``, opening a file below /sys/kernel/debug gives EPERM, as under lockdown;
    * ``handlers[suffix]`` parses writes to files whose syntax is neither a number nor a bracketed list (CPU lists,
      masks): ``handler(host_path, text)`` returns what the file reads afterwards, or raises OSError;
    * ``cgroupfs``, when set, is the cgroup file systems' side (tests/unit/cgtree.py ``CgroupFS``): for paths it
      ``owns()``, mkdir creates a cgroup with its interface files, rmdir removes one (EBUSY while it holds tasks or
      child cgroups), writes go through its ``write(host_path, text)``, and fsync answers EINVAL, as on every kernel
      file system.
    """

    def __init__(self, host):
        self.host = host
        self.reject = {}
        self.keep = set()
        self.handlers = {}
        self.cgroupfs = None
        self.eperm_prefixes = [DEBUGFS + '/'] if host.spec['debugfs_eperm'] else []
        self.hugepage_capacity = {}
        self.writes = []
        self._real_open = os.open
        self._real_write = os.write
        self._real_mkdir = os.mkdir
        self._real_rmdir = os.rmdir
        self._real_fsync = os.fsync

    def install(self, setattr_):
        setattr_(os, 'open', self._open)
        setattr_(os, 'write', self._write)
        setattr_(os, 'mkdir', self._mkdir)
        setattr_(os, 'rmdir', self._rmdir)
        setattr_(os, 'fsync', self._fsync)

    def _cgroup_path(self, path, dir_fd):
        if self.cgroupfs is None or isinstance(path, int):
            return None
        host_path = self._host_path(path=os.fsdecode(path), dir_fd=dir_fd)
        return host_path if host_path and self.cgroupfs.owns(host_path) else None

    def _mkdir(self, path, mode=0o777, *, dir_fd=None):
        host_path = self._cgroup_path(path, dir_fd)
        self._real_mkdir(path, mode, dir_fd=dir_fd)
        if host_path:
            self.cgroupfs.created(host_path)

    def _rmdir(self, path, *, dir_fd=None):
        host_path = self._cgroup_path(path, dir_fd)
        if host_path:
            self.cgroupfs.removing(host_path)
        self._real_rmdir(path, dir_fd=dir_fd)

    def _fsync(self, fd):
        host_path = self._host_path(fd=fd) if self.cgroupfs is not None else None
        if host_path and self.cgroupfs.owns(host_path):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return self._real_fsync(fd)

    def _host_path(self, fd=None, path=None, dir_fd=None):
        try:
            if fd is not None:
                full = os.readlink('/proc/self/fd/%d' % fd)
            elif dir_fd is not None and not os.path.isabs(path):
                full = os.path.join(os.readlink('/proc/self/fd/%d' % dir_fd), path)
            else:
                full = os.path.abspath(path)
        except (OSError, TypeError):
            return None
        root = self.host.root
        if full != root and not full.startswith(root + '/'):
            return None
        return '/' + os.path.relpath(full, root)

    def _open(self, path, flags, mode=0o777, **kwargs):
        if self.eperm_prefixes and not isinstance(path, int):
            host_path = self._host_path(path=os.fsdecode(path), dir_fd=kwargs.get('dir_fd'))
            if host_path and any(host_path.startswith(prefix) for prefix in self.eperm_prefixes):
                if not os.path.isdir(self.host.path(host_path)):
                    raise OSError(errno.EPERM, os.strerror(errno.EPERM))
        return self._real_open(path, flags, mode, **kwargs)

    def _write(self, fd, data):
        host_path = self._host_path(fd=fd)
        if not host_path or not host_path.startswith(('/proc/', '/sys/')) or host_path == '/proc/mounts':
            return self._real_write(fd, data)
        text = bytes(data).decode('utf-8').strip()
        self.writes.append((host_path, text))
        if host_path in self.reject:
            code = self.reject[host_path]
            raise OSError(code, os.strerror(code))
        if host_path in self.keep:
            return len(data)
        if self.cgroupfs is not None and self.cgroupfs.owns(host_path):
            self.cgroupfs.write(host_path, text)
            return len(data)
        for suffix, handler in self.handlers.items():
            if host_path.endswith(suffix):
                self._replace(fd, handler(host_path, text))
                return len(data)
        current = self.host.read(host_path)
        if '[' in current:
            offered = [word.strip('[]') for word in current.split()]
            if text not in offered:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            new = ' '.join('[%s]' % word if word == text else word for word in offered)
        else:
            try:
                int(text, 10)
            except ValueError:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            new = text
        self._replace(fd, new)
        if host_path in _PAIRS and int(text, 10) != 0:
            self.host.write(_PAIRS[host_path], '0\n')
        if host_path.endswith('/nr_hugepages'):
            self._hugepages(fd, host_path, int(text, 10))
        return len(data)

    def _replace(self, fd, value):
        os.ftruncate(fd, 0)
        os.pwrite(fd, (value + '\n').encode('utf-8'), 0)

    def _hugepages(self, fd, host_path, count):
        size_dir = os.path.basename(os.path.dirname(host_path))
        capacity = self.hugepage_capacity.get(size_dir)
        if capacity is not None and count > capacity:
            count = capacity
            self._replace(fd, str(count))
        nodes = self.host.nodes
        if host_path.startswith('/sys/kernel/mm/hugepages/'):
            self.host.write(os.path.dirname(host_path) + '/free_hugepages', '%d\n' % count)
            if nodes >= 2:
                for node in range(nodes):
                    share = count // nodes + (1 if node < count % nodes else 0)
                    base = '/sys/devices/system/node/node%d/hugepages/%s/' % (node, size_dir)
                    self.host.write(base + 'nr_hugepages', '%d\n' % share)
                    self.host.write(base + 'free_hugepages', '%d\n' % share)
        else:
            self.host.write(os.path.dirname(host_path) + '/free_hugepages', '%d\n' % count)
            total = sum(int(self.host.value('/sys/devices/system/node/node%d/hugepages/%s/nr_hugepages'
                                            % (node, size_dir))) for node in range(nodes))
            base = '/sys/kernel/mm/hugepages/%s/' % size_dir
            self.host.write(base + 'nr_hugepages', '%d\n' % total)
            self.host.write(base + 'free_hugepages', '%d\n' % total)
