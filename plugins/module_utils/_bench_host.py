# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The host as the latency benchmark sees it: the /proc counters taken around a measurement window (run-queue wait,
context switches, CPU pressure, steal), what the host is (CPUs, kernel, init, cgroup mount), and the checks of the
options that name its CPUs, slices and cgroups.

CPU lists are read and written by _cpus and systemd as PID 1 is recognised by _systemd, as everywhere else in the
collection. ``BenchError``, raised by every room of the benchmark for a benchmark that cannot run as asked, is defined
here, in the room all the others build on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import platform
import re
import struct
import time

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import ONLINE_PATH, format_cpulist, parse_cpulist
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import systemd_is_init

SLICE_NAME = re.compile(r'^[A-Za-z0-9:_.-]{1,240}\.slice$')
CGROUP_ROOT = '/sys/fs/cgroup'


class BenchError(Exception):
    """A benchmark that cannot run as asked, with a message meant for the playbook's user."""

    def __init__(self, message, results=None):
        super(BenchError, self).__init__(message)
        self.results = results


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


class LiveFiles(object):
    """This host's files behind ``read_optional``, the one method of _fsio.HostFS that the shared readers called here
    need. /proc and /sys files are read as open() reads them, links followed."""

    @staticmethod
    def read_optional(path, follow=True, default=None):
        text = read_text(path)
        return default if text is None else text


# ---------------------------------------------------------------------------------------------------------------------
# Input validation

def check_range(limits, name, value, shown_as=None):
    """Refuses a number outside ``limits[name]``, a ``(lowest, highest)`` pair that both ends belong to. None is an
    unset option and passes. ``shown_as`` is the name the refusal gives, where a person sets the option under another
    name (bench_plan names the inventory variable)."""
    if value is None:
        return
    shown = shown_as or name
    try:
        # Text is read as a number: the benchmark role's settings arrive as text from a command line's -e.
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise BenchError('%s must be a number, got %s' % (shown, value))
    low, high = limits[name]
    if not low <= number <= high:
        # A whole number reads as one, also where the option's type made a float of it (700, not 700.0).
        given = int(value) if isinstance(value, float) and value.is_integer() else value
        raise BenchError('%s must be between %s and %s, got %s' % (shown, low, high, given))


def parse_cpu_list(text, what='CPU list'):
    """``"2-5,8"`` -> ``[2, 3, 4, 5, 8]``, read as _cpus reads every CPU list; a BenchError for anything else, a list
    without a CPU included."""
    try:
        cpus = parse_cpulist(text, what=what)
    except ValueError as exc:
        # _cpus refuses with its ValidationError, a ValueError; here the refusal is the benchmark's own error.
        raise BenchError(str(exc))
    if not cpus:
        raise BenchError('%s: %r names no CPU' % (what, text))
    return sorted(cpus)


def online_cpus():
    """The online CPUs, sorted; where /sys does not say, the CPUs this process may run on."""
    try:
        cpus = parse_cpulist((read_text(ONLINE_PATH) or '').strip(), what=ONLINE_PATH)
    except ValueError:
        cpus = None
    return sorted(cpus or os.sched_getaffinity(0))


def validate_cpus(text, what='cpus'):
    """The CPUs an option such as ``cpus`` names, sorted; each must be online now."""
    cpus = parse_cpu_list(text, what)
    online = online_cpus()
    missing = [cpu for cpu in cpus if cpu not in online]
    if missing:
        raise BenchError('%s %r names CPUs that are not online: %s (online: %s)' % (
            what, text, format_cpulist(missing), format_cpulist(online)))
    return cpus


def validate_slice(name, what='slice'):
    if name is None:
        return None
    if not SLICE_NAME.match(name) or '..' in name:
        raise BenchError('%s %r is not a systemd slice name (letters, digits, ":", "_", ".", "-", ending in .slice)'
                         % (what, name))
    return name


def validate_cgroup(path, what='cgroup'):
    """An existing cgroup directory under /sys/fs/cgroup, as a normalised absolute path."""
    if path is None:
        return None
    if not path.startswith('/') or '\x00' in path:
        raise BenchError('%s %r must be an absolute path under %s' % (what, path, CGROUP_ROOT))
    parts = path.split('/')
    if '..' in parts or '.' in parts:
        raise BenchError('%s %r must not contain "." or ".." components' % (what, path))
    normal = os.path.normpath(path)
    real = os.path.realpath(normal)
    if not (normal + '/').startswith(CGROUP_ROOT + '/') or not (real + '/').startswith(CGROUP_ROOT + '/') \
            or real == CGROUP_ROOT:
        raise BenchError('%s %r is not a cgroup directory below %s' % (what, path, CGROUP_ROOT))
    return normal


# ---------------------------------------------------------------------------------------------------------------------
# Reading the kernel's counters

def parse_schedstat(text):
    """``/proc/<pid>/task/<tid>/schedstat``: (time on CPU ns, run-queue wait ns, timeslices)."""
    fields = text.split()
    return int(fields[0]), int(fields[1]), int(fields[2])


def parse_ctxt_switches(text):
    """(voluntary, nonvoluntary) context switches from a ``/proc/<pid>/status`` text."""
    voluntary = nonvoluntary = 0
    for line in text.splitlines():
        if line.startswith('voluntary_ctxt_switches:'):
            voluntary = int(line.split()[1])
        elif line.startswith('nonvoluntary_ctxt_switches:'):
            nonvoluntary = int(line.split()[1])
    return voluntary, nonvoluntary


def parse_pressure(text):
    """``{'some': {'avg10': .., 'avg60': .., 'avg300': .., 'total': ..}, 'full': {...}}`` from a PSI file."""
    result = {}
    for line in (text or '').splitlines():
        words = line.split()
        if not words:
            continue
        values = {}
        for word in words[1:]:
            key, _sep, value = word.partition('=')
            values[key] = int(value) if key == 'total' else float(value)
        result[words[0]] = values
    return result


def parse_proc_stat_cpu(text):
    """(steal ticks, all ticks) from the aggregate ``cpu`` line of ``/proc/stat``. guest time is already part of
    user time, so the total stops at steal."""
    for line in text.splitlines():
        if line.startswith('cpu '):
            fields = [int(v) for v in line.split()[1:]]
            fields += [0] * (8 - len(fields))
            return fields[7], sum(fields[:8])
    raise ValueError('no aggregate cpu line in /proc/stat')


def parse_proc_stat_busy(text):
    """CPU ticks spent running tasks (user, nice and system, summed over the CPUs) from the aggregate ``cpu`` line of
    ``/proc/stat``. Interrupt time is left out: it is charged to no process, so it could not be told apart."""
    for line in text.splitlines():
        if line.startswith('cpu '):
            fields = [int(v) for v in line.split()[1:4]]
            return sum(fields)
    raise ValueError('no aggregate cpu line in /proc/stat')


def parse_process_stat(text):
    """(parent PID, CPU ticks) from a ``/proc/<pid>/stat`` text: user and system time of the process and of the
    children it has reaped (a tool that finished before the window's last reading still counts as the benchmark's).
    The command name may hold spaces and parentheses, so the fields are counted from its last ``)``."""
    fields = text[text.rindex(')') + 2:].split()
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def process_cpu_ticks(pids):
    """CPU ticks used so far by the given processes (all their threads), summed; a process gone counts 0."""
    total = 0
    for pid in pids:
        text = read_text('/proc/%d/stat' % pid)
        try:
            total += parse_process_stat(text)[1] if text else 0
        except (ValueError, IndexError):
            continue
    return total


def read_counter(path):
    """The 8-byte native-endian count a batch job keeps in ``path``, or None before it wrote one."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(8)
    except (IOError, OSError):
        return None
    return struct.unpack('=Q', data)[0] if len(data) == 8 else None


def own_cpu_ticks(root_pid=None):
    """CPU ticks used so far by this process and every process below it (the workers, the hogs, the tools): what the
    benchmark itself costs, to be told apart from foreign work."""
    root_pid = os.getpid() if root_pid is None else root_pid
    children, ticks = {}, {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        text = read_text('/proc/%s/stat' % name)
        if not text:
            continue
        try:
            parent, used = parse_process_stat(text)
        except (ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(name))
        ticks[int(name)] = used
    total, queue = 0, [root_pid]
    while queue:
        pid = queue.pop()
        total += ticks.get(pid, 0)
        queue.extend(children.get(pid, ()))
    return total


def parse_cgroup_v2_path(text):
    """The unified-hierarchy path from a ``/proc/<pid>/cgroup`` text, or None."""
    for line in (text or '').splitlines():
        if line.startswith('0::'):
            return line[3:].strip() or '/'
    return None


def cgroup2_mount():
    """Where the unified cgroup hierarchy is mounted (``/sys/fs/cgroup`` or, on hybrid hosts,
    ``/sys/fs/cgroup/unified``), or None."""
    for line in (read_text('/proc/self/mountinfo') or '').splitlines():
        left, _sep, right = line.partition(' - ')
        if right.split(' ')[:1] == ['cgroup2']:
            fields = left.split()
            if fields[3] == '/':
                return fields[4]
    return None


def thread_counters(pids):
    """Summed run-queue wait, timeslices and context switches over every thread of the given processes."""
    wait_ns = slices = voluntary = nonvoluntary = 0
    for pid in pids:
        task_dir = '/proc/%d/task' % pid
        try:
            tids = os.listdir(task_dir)
        except OSError:
            continue
        for tid in tids:
            schedstat = read_text('%s/%s/schedstat' % (task_dir, tid))
            status = read_text('%s/%s/status' % (task_dir, tid))
            if schedstat:
                _on_cpu, waited, count = parse_schedstat(schedstat)
                wait_ns += waited
                slices += count
            if status:
                vol, nonvol = parse_ctxt_switches(status)
                voluntary += vol
                nonvoluntary += nonvol
    return {'runq_wait_ns': wait_ns, 'timeslices': slices, 'voluntary': voluntary, 'nonvoluntary': nonvoluntary}


def host_snapshot(pids=(), cgroup_pressure=None):
    snapshot = {'t_ns': time.monotonic_ns(), 'threads': thread_counters(pids),
                'psi': parse_pressure(read_text('/proc/pressure/cpu')).get('some'),
                'cgroup_psi': parse_pressure(read_text(cgroup_pressure)).get('some') if cgroup_pressure else None}
    stat = read_text('/proc/stat')
    snapshot['steal'] = parse_proc_stat_cpu(stat) if stat else None
    snapshot['busy'] = parse_proc_stat_busy(stat) if stat else None
    snapshot['own'] = own_cpu_ticks()
    return snapshot


def counter_metrics(before, after, steps):
    """Per-step and per-window metrics from two snapshots around the measurement window."""
    window_us = (after['t_ns'] - before['t_ns']) / 1000.0
    metrics = {}
    threads_b, threads_a = before['threads'], after['threads']
    if steps:
        metrics['runq_delay_per_step_us'] = round(
            (threads_a['runq_wait_ns'] - threads_b['runq_wait_ns']) / 1000.0 / steps, 3)
        metrics['vcsw_per_1k_steps'] = round((threads_a['voluntary'] - threads_b['voluntary']) * 1000.0 / steps, 2)
        metrics['ivcsw_per_1k_steps'] = round(
            (threads_a['nonvoluntary'] - threads_b['nonvoluntary']) * 1000.0 / steps, 2)
    metrics.update(system_metrics(before, after, window_us))
    return metrics


def foreign_cpu_pct(before, after, all_ticks):
    """The share of all CPU time in the window that processes other than the benchmark's ran (the noise monitor), or
    None without the counters."""
    if before.get('busy') is None or after.get('busy') is None or 'own' not in before or not all_ticks:
        return None
    foreign = (after['busy'] - before['busy']) - (after['own'] - before['own'])
    return round(max(0.0, foreign * 100.0 / all_ticks), 3)


def system_metrics(before, after, window_us=None):
    if window_us is None:
        window_us = (after['t_ns'] - before['t_ns']) / 1000.0
    metrics = {'psi_cpu_some_avg10': None, 'psi_cpu_some_pct': None, 'cgroup_psi_cpu_some_avg10': None,
               'cgroup_psi_cpu_some_pct': None, 'steal_pct': None, 'foreign_cpu_pct': None}
    for key, prefix in (('psi', 'psi'), ('cgroup_psi', 'cgroup_psi')):
        if before.get(key) and after.get(key) and window_us > 0:
            metrics[prefix + '_cpu_some_avg10'] = after[key].get('avg10')
            metrics[prefix + '_cpu_some_pct'] = round(
                (after[key]['total'] - before[key]['total']) * 100.0 / window_us, 3)
    if before.get('steal') and after.get('steal'):
        ticks = after['steal'][1] - before['steal'][1]
        metrics['steal_pct'] = round((after['steal'][0] - before['steal'][0]) * 100.0 / ticks, 3) if ticks else 0.0
        metrics['foreign_cpu_pct'] = foreign_cpu_pct(before, after, ticks)
    load = (read_text('/proc/loadavg') or '').split()
    for index, name in enumerate(('loadavg_1', 'loadavg_5', 'loadavg_15')):
        metrics[name] = float(load[index]) if len(load) > index else None
    return metrics


# ---------------------------------------------------------------------------------------------------------------------
# The host itself

def systemd_is_pid1():
    return systemd_is_init(LiveFiles())


def cgroup_pressure_path(pid, cgroup_dir=None):
    """The cpu.pressure file of the process's cgroup: ``cgroup_dir``'s, where the process was placed by writing its PID
    there, else that of the cgroup /proc/<pid>/cgroup names below the cgroup2 mount; None where there is none."""
    if cgroup_dir:
        path = os.path.join(cgroup_dir, 'cpu.pressure')
        if os.path.exists(path):
            return path
    mount = cgroup2_mount()
    relative = parse_cgroup_v2_path(read_text('/proc/%d/cgroup' % pid))
    if mount and relative and relative != '/':
        path = os.path.join(mount, relative.lstrip('/'), 'cpu.pressure')
        if os.path.exists(path):
            return path
    return None


def host_info():
    online = online_cpus()
    model = None
    for line in (read_text('/proc/cpuinfo') or '').splitlines():
        if line.startswith('model name'):
            model = line.split(':', 1)[1].strip()
            break
    driver = (read_text('/sys/devices/system/cpu/cpuidle/current_driver') or '').strip() or None
    return {
        'nproc': len(online),
        'cpus_online': format_cpulist(online),
        'cpus_allowed': format_cpulist(os.sched_getaffinity(0)),
        'cpu_model': model,
        'kernel': platform.release(),
        'cpuidle_driver': None if driver == 'none' else driver,
        'systemd_pid1': systemd_is_pid1(),
        'cgroup2_mount': cgroup2_mount(),
        'python': platform.python_version(),
        'euid': os.geteuid(),
    }


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
