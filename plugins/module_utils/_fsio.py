# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""File I/O under a configurable root, with the collection's safety rules built in.

Every path the engine touches is an absolute host path such as ``/proc/sys/vm/swappiness``. ``HostFS`` maps it under
``root`` (``/`` on a real host, a fake tree in unit tests) and enforces three rules:

* no ``..`` or empty components, so a knob or device name can never climb out of its directory;
* writes go only below an allowlist of roots (``WRITE_ROOTS``);
* knob reads and every write walk the path one component at a time with ``O_NOFOLLOW``, so a symlink planted anywhere
  on the way is refused instead of followed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import stat

# The only places the collection ever writes to. /sys/kernel/debug is below /sys, and is listed for the reader.
WRITE_ROOTS = (
    '/proc/sys',
    # IRQ affinities and the default affinity (the irq subsystem).
    '/proc/irq',
    '/sys',
    '/sys/kernel/debug',
    '/etc/sysctl.d',
    '/etc/tmpfiles.d',
    # The options of loadable modules (_persist.MODPROBE_FILE): only ever "options" lines, rendered from the state.
    '/etc/modprobe.d',
    '/etc/udev/rules.d',
    '/etc/systemd',
    '/etc/default/grub.d',
    # irqbalance's settings, owned files of kind "irqbalance" (_persist): the files alone, not their directories.
    '/etc/default/irqbalance',
    '/etc/sysconfig/irqbalance',
    '/etc/ansible/facts.d',
    '/var/lib/aitune',
    # The run lease (_lease): gone at reboot, as is every run that held it.
    '/run/aitune',
)

# The name of a temp file write_file_atomic writes beside the file it replaces: ``.NAME.aitune-PID.tmp``.
TEMP_FILE = '.%s.aitune-%d.tmp'
_TEMP_NAME = re.compile(r'^\.(.+)\.aitune-[0-9]+\.tmp$')

ABSENT = 'absent'
NOT_PERMITTED = 'not_permitted'
INVALID = 'invalid'
REFUSED = 'refused'
IO_ERROR = 'io_error'

_ERRNO_KIND = {
    errno.ENOENT: ABSENT,
    errno.ENOTDIR: ABSENT,
    errno.ENODEV: ABSENT,
    errno.EPERM: NOT_PERMITTED,
    errno.EACCES: NOT_PERMITTED,
    errno.EROFS: NOT_PERMITTED,
    errno.EINVAL: INVALID,
    errno.ERANGE: INVALID,
    errno.EBUSY: INVALID,
    errno.ELOOP: REFUSED,
}


class FsError(Exception):
    """An I/O failure, classified so callers can map it onto a knob outcome."""

    def __init__(self, kind, path, message):
        super(FsError, self).__init__(message)
        self.kind = kind
        self.path = path

    @classmethod
    def from_oserror(cls, path, action, exc):
        kind = _ERRNO_KIND.get(exc.errno, IO_ERROR)
        if kind == REFUSED:
            message = '%s %s: refused, a symlink stands on the path' % (action, path)
        else:
            message = '%s %s: %s' % (action, path, os.strerror(exc.errno))
        return cls(kind, path, message)


def check_path(path):
    """Return ``path`` normalised, or raise FsError for anything that is not a plain absolute path."""
    if not isinstance(path, str) or not path.startswith('/'):
        raise FsError(REFUSED, path, 'refused %r: not an absolute path' % (path,))
    parts = path.split('/')[1:]
    if path != '/' and any(part in ('', '.', '..') for part in parts):
        raise FsError(REFUSED, path, 'refused %r: empty, "." or ".." path component' % (path,))
    if '\0' in path or '\n' in path:
        raise FsError(REFUSED, path, 'refused %r: control character in path' % (path,))
    return path


# Directories that may be created, empty, on the way to an allowed root: a host without Ansible installed has no
# /etc/ansible for the local facts to go in, and a test's fake tree may have no /run for the run lease. Nothing is
# ever written in them but the allowed root itself.
CREATABLE_PARENTS = ('/etc/ansible', '/run')


def is_write_allowed(path):
    return any(path == top or path.startswith(top + '/') for top in WRITE_ROOTS)


def may_create_dir(path):
    return path in CREATABLE_PARENTS or is_write_allowed(path)


def normalize_root(root):
    """``root`` as one absolute path without "." or ".." parts or repeated slashes: ``//`` and ``/.`` are ``/``.
    (POSIX lets a path keep two leading slashes, and os.path.abspath does; Linux reads them as one.)"""
    path = os.path.abspath(root or '/')
    if path.startswith('//'):
        path = os.path.normpath('/' + path.lstrip('/'))
    return path


def is_real_root(root):
    """Whether ``root`` is this host's own root, however it is spelled: ``/``, ``//``, ``/.``, or a path that
    resolves to ``/`` (a symlink to it). Only then are commands run and filesystems mounted for it."""
    path = normalize_root(root)
    return path == '/' or os.path.realpath(path) == '/'


# The file that marks a directory as a fake host tree (tests/unit/fakehost.py and tools/fleet write it, nothing else
# does): a module refuses any root other than this host's own / that lacks it, so a real host whose inventory names a
# fake tree by mistake fails instead of tuning a copy while reporting success.
FAKE_ROOT_MARKER = '.aitune-fake-root'


def root_refusal(root):
    """Why ``root`` may not be used, or None. ``/`` (however it is spelled) is this host; any other root must be a
    directory holding FAKE_ROOT_MARKER as a regular file. A path that leads to ``/`` through a symlink is refused: it
    names a fake tree but would tune this host."""
    path = normalize_root(root)
    if path == '/':
        return None
    if is_real_root(path):
        return ('root %s leads to this host\'s / through a symlink: give / itself to tune this host, or the '
                'directory of a fake tree' % path)
    try:
        info = os.lstat(os.path.join(path, FAKE_ROOT_MARKER))
    except OSError:
        if not os.path.isdir(path):
            return 'root %s is not a directory: the fake tree it names is missing' % path
        return ('root %s is not a fake tree: it has no %s file. Leave root at / on a real host; only the unit tests '
                'and tools/fleet make fake trees' % (path, FAKE_ROOT_MARKER))
    if not stat.S_ISREG(info.st_mode):
        return 'root %s is not a fake tree: its %s is not a regular file' % (path, FAKE_ROOT_MARKER)
    return None


def _read_and_close(fd, path, limit, check=None):
    """Up to ``limit`` bytes of the open ``fd``, which is closed either way; ``check(stat)`` may refuse first."""
    try:
        if check is not None:
            check(os.fstat(fd))
        return os.read(fd, limit)
    except OSError as exc:
        raise FsError.from_oserror(path, 'reading', exc)
    finally:
        os.close(fd)


class HostFS(object):
    """Host paths under ``root``; see the module docstring for the rules.

    ``owner``: the only user whose files the collection's own state may be (read_trusted). Root (0) on the real root;
    on a fake tree (the unit tests) the owner of the tree's root directory, or this process's user where it has none.
    """

    def __init__(self, root='/', owner=None):
        self.root = normalize_root(root)
        if owner is None:
            owner = 0 if is_real_root(self.root) else _owner_of(self.root)
        self.owner = owner
        # A fake tree's kernel files are plain files (the fleet lab's, with no kernel behind them): write_value makes a
        # write replace the whole value there, as the kernel does.
        self.fake = not is_real_root(self.root)
        # In check mode of a call that plans several subsystems on one preview (_persist.PreviewState): the live values
        # its earlier subsystems would have written, by path, read in place of what the kernel holds now. Empty in
        # every run that writes.
        self.planned = {}

    # -- mapping -------------------------------------------------------------------------------------------------------
    def host_path(self, path):
        check_path(path)
        return os.path.join(self.root, path.lstrip('/')) if path != '/' else self.root

    def _check_writable(self, path):
        check_path(path)
        if not is_write_allowed(path):
            raise FsError(REFUSED, path, 'refused to write %s: outside the allowed roots %s' % (path, ', '.join(WRITE_ROOTS)))

    # -- component-wise, no-follow opening -----------------------------------------------------------------------------
    def _open_parent(self, path, create=False, dir_mode=0o755):
        """Open the directory that holds ``path`` without following any symlink below root; return (fd, leaf)."""
        parts = check_path(path).split('/')[1:]
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for depth, part in enumerate(parts[:-1]):
                try:
                    next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    # Only directories inside the allowed roots, and the few parents CREATABLE_PARENTS names, are ever created
                    # (/etc/default itself is not one).
                    if exc.errno == errno.ENOENT and create and may_create_dir('/' + '/'.join(parts[:depth + 1])):
                        os.mkdir(part, dir_mode, dir_fd=fd)
                        next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    elif exc.errno == errno.ENOTDIR and _is_link_at(fd, part):
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    else:
                        raise
                os.close(fd)
                fd = next_fd
        except Exception:
            os.close(fd)
            raise
        return fd, parts[-1]

    def _open(self, path, flags, action):
        try:
            dir_fd, leaf = self._open_parent(path)
            try:
                return os.open(leaf, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise FsError.from_oserror(path, action, exc)

    # -- reading -------------------------------------------------------------------------------------------------------
    def read(self, path, follow=False, limit=1 << 20):
        """Read a file as text. Knob files are read with ``follow=False``; informational files such as /proc/mounts
        (itself a symlink) may pass ``follow=True``."""
        if path in self.planned:
            return self.planned[path]
        if follow:
            try:
                with open(self.host_path(path), 'rb') as handle:
                    data = handle.read(limit)
            except OSError as exc:
                raise FsError.from_oserror(path, 'reading', exc)
        else:
            data = _read_and_close(self._open(path, os.O_RDONLY, 'reading'), path, limit)
        return data.decode('utf-8', 'replace')

    def read_bytes(self, path, limit):
        """Up to ``limit`` raw bytes of a file that holds binary data (a device such as /dev/cpu_dma_latency)."""
        return _read_and_close(self._open(path, os.O_RDONLY, 'reading'), path, limit)

    def read_optional(self, path, follow=False, default=None):
        try:
            return self.read(path, follow=follow)
        except FsError:
            return default

    def lexists(self, path):
        return os.path.lexists(self.host_path(path))

    def is_symlink(self, path):
        return os.path.islink(self.host_path(path))

    def is_dir(self, path):
        return os.path.isdir(self.host_path(path))

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.host_path(path)))
        except OSError as exc:
            raise FsError.from_oserror(path, 'listing', exc)

    def realpath(self, path):
        """Resolve symlinks (as found under /sys/block) and return the host path they lead to, kept inside root."""
        real = os.path.realpath(self.host_path(path))
        if real != self.root and not real.startswith(self.root.rstrip('/') + '/'):
            raise FsError(REFUSED, path, 'refused %s: it resolves outside %s' % (path, self.root))
        return '/' + os.path.relpath(real, self.root) if real != self.root else '/'

    def file_state(self, path):
        """Content and mode of a regular file, for the baseline: ``(exists, content, mode)``."""
        try:
            fd = self._open(path, os.O_RDONLY, 'reading')
        except FsError as exc:
            if exc.kind == ABSENT:
                return False, None, None
            raise
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return True, b''.join(chunks).decode('utf-8', 'replace'), mode

    def read_trusted(self, path, limit=1 << 20):
        """Read one of the collection's own state files, trusting it only as sshd's StrictModes trusts a key file:
        its directory and the file itself must belong to ``owner`` (root) and be writable by nobody else, and the file
        must be a regular file. Neither is followed through a symlink. Raises FsError ABSENT when the directory or the
        file is missing (a missing file in an untrusted directory is refused all the same: the collection would write
        there next) and REFUSED for an untrusted one."""
        directory = path.rsplit('/', 1)[0] or '/'
        try:
            dir_fd, leaf = self._open_parent(path)
        except OSError as exc:
            raise FsError.from_oserror(directory, 'opening', exc)
        try:
            self._check_trusted(directory, os.fstat(dir_fd))
            try:
                # O_NONBLOCK: a FIFO planted in place of the file must not hang the run before it is refused.
                fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError as exc:
                raise FsError.from_oserror(path, 'reading', exc)
        finally:
            os.close(dir_fd)
        return _read_and_close(fd, path, limit, lambda info: self._check_trusted_file(path, info)).decode(
            'utf-8', 'replace')

    def _check_trusted_file(self, path, info):
        if not stat.S_ISREG(info.st_mode):
            raise FsError(REFUSED, path, 'refused %s: it is not a regular file; %s' % (path, _TRUST_RULE))
        self._check_trusted(path, info)

    def _check_trusted(self, path, info):
        problems = []
        if info.st_uid != self.owner:
            problems.append('owned by uid %d, not %s' % (
                info.st_uid, 'root' if self.owner == 0 else 'uid %d (the owner of %s)' % (self.owner, self.root)))
        writable = [who for who, bit in (('group', stat.S_IWGRP), ('others', stat.S_IWOTH)) if info.st_mode & bit]
        if writable:
            problems.append('mode %04o is writable by %s' % (stat.S_IMODE(info.st_mode), ' and '.join(writable)))
        if problems:
            raise FsError(REFUSED, path, 'refused %s: %s; %s' % (path, ', and '.join(problems), _TRUST_RULE))

    # -- writing -------------------------------------------------------------------------------------------------------
    def write_value(self, path, value):
        """Write a value into an existing kernel file (sysfs, procfs, debugfs). Never creates, never follows."""
        self._check_writable(path)
        fd = self._open(path, os.O_WRONLY, 'writing')
        try:
            data = ('%s\n' % value).encode('utf-8')
            os.write(fd, data)
            # Only a plain file still holds the tail of a longer old value; a kernel file (and the unit tests' emulated
            # one, which leaves the offset alone) is never cut.
            if self.fake and os.lseek(fd, 0, os.SEEK_CUR) == len(data):
                os.ftruncate(fd, len(data))
        except OSError as exc:
            raise FsError.from_oserror(path, 'writing %r to' % (value,), exc)
        finally:
            os.close(fd)

    def write_file_atomic(self, path, content, mode=0o644, before_rename=None):
        """Replace a regular file atomically: temp file in the same directory, fsync, rename, fsync the directory.

        ``before_rename`` is called with the temp file's name after it is durable; crash tests use it to stop there.
        """
        self._check_writable(path)
        try:
            dir_fd, leaf = self._open_parent(path, create=True)
        except OSError as exc:
            raise FsError.from_oserror(path, 'opening the directory of', exc)
        tmp = TEMP_FILE % (leaf, os.getpid())
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                # A temp file left by a killed run of the same pid number: ours to replace.
                os.unlink(tmp, dir_fd=dir_fd)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
            try:
                os.fchmod(fd, mode)
                os.write(fd, content.encode('utf-8'))
                os.fsync(fd)
            finally:
                os.close(fd)
            if before_rename is not None:
                before_rename(tmp)
            _refuse_symlink_leaf(dir_fd, leaf)
            os.rename(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            _unlink_quietly(dir_fd, tmp)
            raise FsError.from_oserror(path, 'writing', exc)
        except BaseException:
            _unlink_quietly(dir_fd, tmp)
            raise
        finally:
            os.close(dir_fd)

    def _remove(self, path, remover, tolerated, allowed=None):
        """Run ``remover(leaf, dir_fd=...)`` in the no-follow parent of ``path``; errnos in ``tolerated`` mean False.
        ``allowed`` (a path predicate) widens the allowed roots for this removal."""
        if allowed is None or not allowed(check_path(path)):
            self._check_writable(path)
        try:
            dir_fd, leaf = self._open_parent(path)
        except OSError as exc:
            if exc.errno in tolerated:
                return False
            raise FsError.from_oserror(path, 'removing', exc)
        try:
            remover(leaf, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in tolerated:
                return False
            raise FsError.from_oserror(path, 'removing', exc)
        else:
            _fsync_dir(dir_fd, path)
            return True
        finally:
            os.close(dir_fd)

    def remove_file(self, path):
        """Remove a regular file; a missing file is fine. Returns True when something was removed."""
        return self._remove(path, os.unlink, (errno.ENOENT,))

    def make_dir(self, path, mode=0o755):
        """Create one directory (a cgroup, say) whose parent exists. Returns False when it was already there."""
        self._check_writable(path)
        try:
            dir_fd, leaf = self._open_parent(path)
        except OSError as exc:
            raise FsError.from_oserror(path, 'creating', exc)
        try:
            os.mkdir(leaf, mode, dir_fd=dir_fd)
            return True
        except OSError as exc:
            if exc.errno == errno.EEXIST and not _is_link_at(dir_fd, leaf):
                return False
            raise FsError.from_oserror(path, 'creating', exc)
        finally:
            os.close(dir_fd)

    def remove_dir(self, path):
        """Remove a directory the collection created; unlike remove_empty_dir, a refusal (EBUSY: a cgroup with tasks
        in it) is an error the caller reports. A missing directory is fine."""
        return self._remove(path, os.rmdir, (errno.ENOENT,))

    def remove_empty_dir(self, path):
        """Remove a directory if it is empty; one that holds anything, or is missing, is left alone. The parents
        CREATABLE_PARENTS names may go too: a write may have created them."""
        return self._remove(path, os.rmdir, (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST), allowed=may_create_dir)

    def same_file(self, fd, path):
        """True when the open ``fd`` is the file at ``path`` now (not one unlinked or replaced since it was opened)."""
        try:
            dir_fd, leaf = self._open_parent(path)
        except OSError:
            return False
        try:
            now = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return False
        finally:
            os.close(dir_fd)
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def sweep_temp_files(self, directory, is_target):
        """Remove the temp files (``.NAME.aitune-PID.tmp``) that killed writes left in ``directory`` and in the
        directories right below it (a drop-in's), where ``is_target`` accepts the file NAME stands for. Call only while
        holding the host lock: then no other run is half-way through a write, whatever PID a name carries (a killed
        run's PID may be reused by now). No symlink is followed, and only regular files go. Returns the paths removed."""
        removed = []
        for path in [directory] + self._subdirs(directory):
            removed.extend(self._sweep_dir(path, is_target))
        return removed

    def _open_dir(self, path):
        """A descriptor of the directory at ``path``, opened without following any symlink; None where there is none."""
        try:
            parent_fd, leaf = self._open_parent(path)
        except OSError:
            return None
        try:
            return os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
        except OSError:
            return None
        finally:
            os.close(parent_fd)

    def _subdirs(self, path):
        fd = self._open_dir(path)
        if fd is None:
            return []
        try:
            return ['%s/%s' % (path, name) for name in sorted(os.listdir(fd))
                    if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode)]
        finally:
            os.close(fd)

    def _sweep_dir(self, path, is_target):
        fd = self._open_dir(path)
        if fd is None:
            return []
        removed = []
        try:
            for name in sorted(os.listdir(fd)):
                match = _TEMP_NAME.match(name)
                if match and is_target('%s/%s' % (path, match.group(1))) \
                        and stat.S_ISREG(os.lstat(name, dir_fd=fd).st_mode):
                    os.unlink(name, dir_fd=fd)
                    removed.append('%s/%s' % (path, name))
            if removed:
                _fsync_dir(fd, path)
        except OSError as exc:
            raise FsError.from_oserror(path, 'removing temp files in', exc)
        finally:
            os.close(fd)
        return removed

    def open_lock_file(self, path):
        """Open (creating) a lock file with no-follow semantics and return its descriptor."""
        self._check_writable(path)
        try:
            dir_fd, leaf = self._open_parent(path, create=True, dir_mode=0o700)
        except OSError as exc:
            raise FsError.from_oserror(path, 'opening the directory of', exc)
        try:
            return os.open(leaf, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise FsError.from_oserror(path, 'opening', exc)
        finally:
            os.close(dir_fd)


_TRUST_RULE = ('aitune.kernel uses its state (/var/lib/aitune and the files in it) only while root alone can change '
               'it: find out how it came to be so, then give it back to root (chown root:root, chmod go-w) or move '
               'the file aside')


def _owner_of(root):
    try:
        return os.stat(root).st_uid
    except OSError:
        return os.geteuid()


def _fsync_dir(dir_fd, path):
    """Make the removal of ``path`` durable. Kernel file systems (cgroupfs, sysfs, procfs) answer EINVAL: there is
    nothing on a disk to sync, and the removal has already happened, so that is no failure."""
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise FsError.from_oserror(path, 'removing', exc)


def _is_link_at(dir_fd, name):
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _refuse_symlink_leaf(dir_fd, leaf):
    # rename() would replace a symlink itself rather than follow it, but a planted link is a sign of tampering.
    if _is_link_at(dir_fd, leaf):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))


def _unlink_quietly(dir_fd, name):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
