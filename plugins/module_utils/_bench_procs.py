# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The processes the benchmark starts, and where they run.

Every process started here is tracked in a :class:`ProcessSet`, which kills and reaps all of them on the way out,
whatever the way out is; :class:`TerminationGuard` turns SIGTERM and SIGHUP into such a way out. A
:class:`Placement` puts one group of them (the workers, or the load) into a systemd slice through a transient scope,
or into a cgroup directory by writing their PIDs there.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time

from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError, read_text, systemd_is_pid1
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist


# ---------------------------------------------------------------------------------------------------------------------
# Processes

def process_start_time(pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), which tells a PID's process apart from a
    later one that reuses the number."""
    text = read_text('/proc/%d/stat' % pid)
    if not text:
        return None
    return int(text[text.rindex(')') + 2:].split()[19])


def process_exists(pid, start_time=None):
    """True while the process (and, with start_time, that very process) exists, zombies included."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_time is None:
        return True
    current = process_start_time(pid)
    return current is not None and current == start_time


class LineChannel(object):
    """Line reads from a child's stdout with a deadline, on the raw descriptor (select and buffered files do not
    mix)."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = b''

    def read_line(self, deadline):
        """The next line, None at end of file, or raises TimeoutError past ``deadline`` (time.monotonic())."""
        while b'\n' not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            ready, _w, _x = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _sep, self.buffer = self.buffer.partition(b'\n')
        return line.decode('utf-8', 'replace')


class Child(object):
    def __init__(self, proc, role, stderr_path):
        self.proc = proc
        self.pid = proc.pid
        self.role = role
        self.start_time = process_start_time(proc.pid)
        self.stderr_path = stderr_path
        self.channel = LineChannel(proc.stdout.fileno()) if proc.stdout is not None else None

    def send(self, message):
        """Write one JSON line (or a bare newline for None) to the child's stdin; False when it has gone."""
        data = b'\n' if message is None else (json.dumps(message) + '\n').encode('utf-8')
        try:
            self.proc.stdin.write(data)
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def read_message(self, deadline, what):
        try:
            line = self.channel.read_line(deadline)
        except TimeoutError:
            raise BenchError('%s (PID %d) did not answer in time while %s%s' % (
                self.role, self.pid, what, self.stderr_tail(prefix=': ')))
        if line is None:
            self.proc.poll()
            raise BenchError('%s (PID %d) exited (rc=%s) while %s%s' % (
                self.role, self.pid, self.proc.returncode, what, self.stderr_tail(prefix=': ')))
        try:
            return json.loads(line)
        except ValueError:
            raise BenchError('%s (PID %d) answered %r while %s' % (self.role, self.pid, line[:200], what))

    def stderr_tail(self, prefix=''):
        text = (read_text(self.stderr_path) or '').strip()
        return prefix + text[-800:] if text else ''

    def close_stdin(self):
        if self.proc.stdin is None:
            return
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass


class ProcessSet(object):
    """Every process the benchmark starts. ``close()`` (also on ``with`` exit) kills each one's process group, reaps
    it, and checks by PID and start time that none is left. Children start in their own session, so a group kill
    cannot reach this process, and a systemd-run scope ends with the process it runs."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.children = []
        self.lock = threading.Lock()
        self.counter = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, argv, role, pass_fds=(), stdin=True, stdout=True):
        with self.lock:
            self.counter += 1
            stderr_path = os.path.join(self.scratch, 'stderr-%d-%s' % (self.counter, role))
        with open(stderr_path, 'wb') as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=stderr,
                                    pass_fds=tuple(pass_fds), close_fds=True, start_new_session=True, bufsize=0)
        child = Child(proc, role, stderr_path)
        with self.lock:
            self.children.append(child)
        return child

    def stop(self, child, grace_s=2.0):
        """Wait up to ``grace_s`` for the child to exit by itself, then kill its process group, and reap it."""
        child.close_stdin()
        try:
            child.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self._kill(child)

    @staticmethod
    def _kill(child):
        if child.proc.returncode is None:
            for target in (lambda: os.killpg(child.pid, signal.SIGKILL), lambda: os.kill(child.pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                child.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for stream in (child.proc.stdin, child.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self):
        with self.lock:
            children = list(self.children)
        for child in children:
            child.close_stdin()
        for child in children:
            self._kill(child)

    def started(self):
        return [{'pid': child.pid, 'role': child.role} for child in self.children]

    def remaining(self):
        return [child.pid for child in self.children
                if child.proc.returncode is None or process_exists(child.pid, child.start_time)]


class TerminationGuard(object):
    """Turns SIGTERM and SIGHUP into an exception for the duration of a run, so the cleanup in ``finally`` runs
    when Ansible's task timeout or a cancelled job ends the module."""

    class Terminated(BaseException):
        pass

    def __init__(self):
        self.previous = {}

    def _raise(self, signum, _frame):
        raise TerminationGuard.Terminated('terminated by signal %d' % signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                self.previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


# ---------------------------------------------------------------------------------------------------------------------
# Placement

class Placement(object):
    """Where one group of processes (the workers, or the load) runs: a systemd slice through a transient scope, or a
    cgroup directory that their PIDs are written to, plus the settings each worker applies to itself."""

    def __init__(self, group, required, warnings):
        self.group = group
        self.required = required
        self.warnings = warnings
        self.method = None
        self.slice = None
        self.cgroup = None
        self.prefix = []
        self.skipped = []
        self.applied = {}

    def skip(self, what, reason):
        message = '%s placement %s skipped: %s' % (self.group, what, reason)
        if self.required:
            raise BenchError('%s placement %s is not possible: %s (set placement_required: false to run without it)'
                             % (self.group, what, reason))
        if message not in self.skipped:
            self.skipped.append(message)
            self.warnings.append(message)

    def note(self, message, role, pid):
        """What a process of the group said it applied to itself (its "ready" line), and what it could not."""
        for name, error in sorted((message.get('errors') or {}).items()):
            self.skip(name, '%s (PID %d): %s' % (role, pid, error))
        for name, value in (message.get('applied') or {}).items():
            self.applied[name] = format_cpulist(value) if name == 'cpus' else value

    def report(self):
        result = {'method': self.method, 'slice': self.slice, 'cgroup': self.cgroup, 'skipped': list(self.skipped)}
        result.update(self.applied)
        return result

    def resolve(self, slice_name, cgroup_dir, processes, python):
        """Pick the slice when systemd is PID 1, else the cgroup directory; probe that it works with a short-lived
        process, so a refusal shows before any measurement starts."""
        if not slice_name and not cgroup_dir:
            return
        systemd = systemd_is_pid1()
        if slice_name and (systemd or not cgroup_dir):
            if not systemd:
                self.skip('slice %s' % slice_name, 'systemd is not PID 1 on this host, so there is no slice to run in '
                          '(give a cgroup directory for such hosts)')
                return
            self._probe_slice(slice_name, processes, python)
            return
        if systemd:
            self.warnings.append('%s: writing PIDs into %s directly on a systemd host; systemd may move them back '
                                 'on its next reload (a slice is the systemd way)' % (self.group, cgroup_dir))
        self._probe_cgroup(cgroup_dir, processes, python)

    def _probe_slice(self, slice_name, processes, python):
        binary = shutil.which('systemd-run')
        if not binary:
            self.skip('slice %s' % slice_name, 'systemd-run is not on PATH')
            return
        prefix = [binary, '--scope', '--quiet', '--collect', '--slice=%s' % slice_name]
        if os.geteuid() != 0:
            prefix.insert(1, '--user')
        child = processes.start(prefix + ['--', python, '-c', 'pass'], 'slice-probe', stdin=False, stdout=False)
        try:
            rc = child.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        processes.stop(child, grace_s=0)
        if rc != 0:
            self.skip('slice %s' % slice_name, 'systemd-run could not start a scope in it (rc=%s)%s'
                      % (rc, child.stderr_tail(prefix=': ')))
            return
        self.method, self.slice, self.prefix = 'systemd-run', slice_name, prefix + ['--']

    def _probe_cgroup(self, cgroup_dir, processes, python):
        procs = os.path.join(cgroup_dir, 'cgroup.procs')
        if not os.path.isdir(cgroup_dir):
            self.skip('cgroup %s' % cgroup_dir, 'no such cgroup directory')
            return
        if not os.path.exists(procs):
            self.skip('cgroup %s' % cgroup_dir, 'it has no cgroup.procs, so it is not a cgroup')
            return
        child = processes.start([python, '-c', 'import sys\nsys.stdin.readline()\n'], 'cgroup-probe')
        try:
            error = move_to_cgroup(child.pid, cgroup_dir)
        finally:
            processes.stop(child, grace_s=1)
        if error:
            self.skip('cgroup %s' % cgroup_dir, error)
            return
        self.method, self.cgroup = 'cgroup.procs', cgroup_dir

    def place(self, child):
        """Moves a freshly started child into the cgroup, when that is the method."""
        if self.method != 'cgroup.procs':
            return
        error = move_to_cgroup(child.pid, self.cgroup)
        if error:
            self.skip('cgroup %s' % self.cgroup, error)


def move_to_cgroup(pid, cgroup_dir):
    """Writes the PID to the directory's cgroup.procs; returns None or the reason it failed."""
    path = os.path.join(cgroup_dir, 'cgroup.procs')
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, 'O_NOFOLLOW', 0))
        try:
            os.write(fd, ('%d\n' % pid).encode('ascii'))
        finally:
            os.close(fd)
    except OSError as exc:
        hint = ''
        if exc.errno == errno.EBUSY:
            hint = ' (a cgroup v2 directory with child cgroups cannot hold processes; use a leaf)'
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = ' (moving processes there needs root or delegation of that cgroup)'
        return 'writing PID %d to %s: %s%s' % (pid, path, os.strerror(exc.errno), hint)
    return None
