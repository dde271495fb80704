# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Print, as JSON, everything on this guest that tuning could change, read from the kernel's own files and from the
configuration directories the collection writes to. The restore and kernels scenarios run it before the first apply,
after the apply and after aitune.kernel.restore, and tools/lab/faults.py around every crash fault (copied to the
guest; standard library only, run as root).

Nothing here comes from the collection: values are read from /proc, /sys, debugfs, cgroupfs and /dev/cpu_dma_latency,
files are listed with their content hash, services are read through /proc/PID.
"""

import glob
import hashlib
import json
import os
import re
import struct
import subprocess
import sys

DEBUG_SCHED = '/sys/kernel/debug/sched'
# debugfs' sched/debug is a dump of run-queue statistics, not a setting.
DEBUG_SCHED_SKIP = ('debug',)
CONFIG_DIRS = ('/etc/sysctl.d', '/etc/tmpfiles.d', '/etc/udev/rules.d', '/etc/systemd/system', '/etc/default',
               '/etc/sysconfig', '/etc/modprobe.d', '/etc/ansible', '/var/lib/aitune')
QUEUE_LEAVES = ('scheduler', 'nr_requests', 'read_ahead_kb', 'io_poll', 'io_poll_delay', 'nomerges', 'rq_affinity',
                'wbt_lat_usec', 'max_sectors_kb')
SERVICES = ('lab-agent.service', 'lab-batch.service', 'irqbalance.service')
POLICIES = {0: 'SCHED_OTHER', 1: 'SCHED_FIFO', 2: 'SCHED_RR', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE', 6: 'SCHED_DEADLINE'}


def read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace').strip()
    except OSError as exc:
        return '<%s>' % (os.strerror(exc.errno) if exc.errno else exc)


def values(pattern, skip=()):
    """Every readable regular file matching the glob, by path."""
    return {path: read(path) for path in sorted(glob.glob(pattern))
            if os.path.isfile(path) and os.path.basename(path) not in skip and os.access(path, os.R_OK)}


def sysctls():
    found = values('/proc/sys/kernel/sched_*')
    for name in ('numa_balancing', 'numa_balancing_promote_rate_limit_MBps', 'timer_migration'):
        found.update(values('/proc/sys/kernel/' + name))
    found.update(values('/proc/sys/vm/*'))
    return found


def debugfs():
    # Not mounted here if the guest had not mounted it: whether debugfs is mounted is part of the state (systemd mounts
    # it at boot on these guests, and tuning_facts must leave it as it found it).
    found = {'/sys/kernel/debug mounted': os.path.ismount('/sys/kernel/debug')}
    found.update(values(DEBUG_SCHED + '/*', skip=DEBUG_SCHED_SKIP))
    found.update(values(DEBUG_SCHED + '/numa_balancing/*'))
    return found


def memory():
    found = values('/sys/kernel/mm/transparent_hugepage/enabled')
    found.update(values('/sys/kernel/mm/transparent_hugepage/defrag'))
    found.update(values('/sys/kernel/mm/transparent_hugepage/khugepaged/defrag'))
    found.update(values('/sys/kernel/mm/hugepages/*/nr_hugepages'))
    found.update(values('/sys/kernel/mm/hugepages/*/nr_overcommit_hugepages'))
    found.update(values('/sys/devices/system/node/node*/hugepages/*/nr_hugepages'))
    return found


def block():
    found = {}
    for device in sorted(os.listdir('/sys/block')):
        if re.match(r'^(loop|ram|zram)', device):
            continue
        for leaf in QUEUE_LEAVES:
            found.update(values('/sys/block/%s/queue/%s' % (device, leaf)))
    return found


def power():
    cpu = '/sys/devices/system/cpu'
    found = values(cpu + '/cpuidle/current_driver')
    found.update(values(cpu + '/cpu*/cpuidle/state*/disable'))
    for leaf in ('scaling_governor', 'scaling_min_freq', 'energy_performance_preference', 'energy_perf_bias'):
        found.update(values(cpu + '/cpufreq/policy*/' + leaf))
    found.update(values(cpu + '/cpufreq/boost'))
    found.update(values(cpu + '/intel_pstate/*'))
    # Reading the device returns the CPU latency every PM QoS request together allows (2000000000: none).
    try:
        with open('/dev/cpu_dma_latency', 'rb') as handle:
            found['/dev/cpu_dma_latency'] = struct.unpack('i', handle.read(4))[0]
    except OSError as exc:
        found['/dev/cpu_dma_latency'] = '<%s>' % os.strerror(exc.errno)
    return found


# The x86 legacy interrupt controllers: which of them delivers the timer is decided anew at every boot (check_timer()
# tries the IO-APIC, then the local APIC's virtual wire, and a loaded host can fail the first test), so a reset can
# show the same IRQ 0 as 'IO-APIC 2-edge timer' in one boot and 'local-APIC 2-edge timer' in the next.
LEGACY_CHIPS = ('IO-APIC', 'local-APIC')


def irq_identities():
    """{IRQ number: what /proc/interrupts shows after the per-CPU counts}: the chip, the hardware IRQ number within
    its domain (for MSI, derived from the PCI address and the vector) and the actions, such as
    'PCI-MSI 65536-edge virtio0-config'. Unlike the number, which the kernel hands out in probe order, this names
    the same interrupt in every boot. A legacy chip is named as such (LEGACY_CHIPS)."""
    with open('/proc/interrupts') as handle:
        lines = handle.read().splitlines()
    cpus = len(lines[0].split())
    found = {}
    for line in lines[1:]:
        number, _sep, rest = line.partition(':')
        if number.strip().isdigit():
            words = rest.split()[cpus:]
            if words and words[0] in LEGACY_CHIPS:
                words[0] = 'legacy'
            found[number.strip()] = ' '.join(words)
    return found


def irqs():
    """The affinity of every IRQ, by its identity where it has a handler (so that a boot that numbers the IRQs
    otherwise compares them as they are), by number where it has none, and the default and workqueue masks."""
    named = irq_identities()
    found = {}
    for path, value in values('/proc/irq/*/smp_affinity_list').items():
        number = path.split('/')[3]
        key = 'irq %s' % named[number] if named.get(number) else path
        # Two IRQs that look the same (none on the lab's guests) stay apart by number.
        found[path if key in found else key] = value
    found.update(values('/proc/irq/default_smp_affinity'))
    found.update(values('/sys/devices/virtual/workqueue/cpumask'))
    return found


def cgroups():
    """The top of the cgroup tree, every aitune cgroup, and the controllers the root and system.slice hand down (the
    services' own cgroups come and go with the services; where they run is read from /proc/PID/cgroup)."""
    root = '/sys/fs/cgroup'
    found = {}
    for path, dirs, _files in os.walk(root):
        depth = path[len(root):].count('/')
        if depth >= 2:
            dirs[:] = []
        for name in dirs:
            if depth < 1 or 'aitune' in name:
                found[os.path.join(path, name)] = 'directory'
    for path in (root, root + '/system.slice'):
        found[path + '/cgroup.subtree_control'] = read(path + '/cgroup.subtree_control')
    return found


def process(pid):
    sched = read('/proc/%d/sched' % pid)
    policy = int(re.search(r'^policy\s*:\s*(\d+)', sched, re.M).group(1))
    priority = int(re.search(r'^prio\s*:\s*(\d+)', sched, re.M).group(1))
    status = read('/proc/%d/status' % pid)
    stat = read('/proc/%d/stat' % pid)
    fields = stat[stat.rindex(')') + 2:].split()
    return {
        'policy': POLICIES.get(policy, policy),
        # /proc/PID/sched's prio: 120 + nice for normal tasks, 99 - rt_priority for RT tasks.
        'prio': priority,
        'nice': int(fields[16]),
        'timerslack_ns': read('/proc/%d/timerslack_ns' % pid),
        'cgroup': read('/proc/%d/cgroup' % pid),
        'cpus_allowed': re.search(r'^Cpus_allowed_list:\s*(\S+)', status, re.M).group(1),
        'mems_allowed': re.search(r'^Mems_allowed_list:\s*(\S+)', status, re.M).group(1),
        'ioprio': subprocess.run(['ionice', '-p', str(pid)], capture_output=True, text=True,
                                 check=True).stdout.strip(),
    }


def services():
    found = {}
    for unit in SERVICES:
        show = subprocess.run(['systemctl', 'show', '--property=ActiveState,MainPID,DropInPaths,Slice', unit],
                              capture_output=True, text=True, check=True).stdout
        props = dict(line.split('=', 1) for line in show.splitlines() if '=' in line)
        entry = {'active': props.get('ActiveState'), 'slice': props.get('Slice'),
                 'drop_ins': props.get('DropInPaths', '').split()}
        if props.get('MainPID', '0') != '0':
            entry.update(process(int(props['MainPID'])))
        found[unit] = entry
    units = subprocess.run(['systemctl', 'list-units', '--all', '--plain', '--no-legend', 'aitune*'],
                           capture_output=True, text=True, check=True).stdout.split('\n')
    found['aitune units loaded'] = sorted(line.split()[0] for line in units if line.strip())
    return found


def files():
    found = {}
    for top in CONFIG_DIRS:
        for path, dirs, names in os.walk(top):
            dirs.sort()
            found[path] = 'directory'
            for name in sorted(names) + sorted(d for d in dirs if os.path.islink(os.path.join(path, d))):
                full = os.path.join(path, name)
                if os.path.islink(full):
                    found[full] = 'symlink to ' + os.readlink(full)
                else:
                    with open(full, 'rb') as handle:
                        found[full] = 'sha256 ' + hashlib.sha256(handle.read()).hexdigest()
    return found


def snapshot():
    return {'sysctl': sysctls(), 'debugfs': debugfs(), 'memory': memory(), 'block': block(), 'power': power(),
            'irq': irqs(), 'cgroup': cgroups(), 'services': services(), 'files': files()}


def main(argv):
    """Write the snapshot to the path given, or to stdout."""
    text = json.dumps(snapshot(), indent=1, sort_keys=True) + '\n'
    if len(argv) < 2:
        sys.stdout.write(text)
        return
    with open(argv[1] + '.tmp', 'w') as handle:
        handle.write(text)
    os.rename(argv[1] + '.tmp', argv[1])


if __name__ == '__main__':
    main(sys.argv)
