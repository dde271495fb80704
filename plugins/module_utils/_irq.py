# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""IRQ steering: device IRQs, the default IRQ affinity and the unbound workqueue mask, kept on the housekeeping CPUs.

An interrupt that lands on a CPU running latency-critical work preempts it for the handler and its softirq; so do the
kernel's unbound workqueue workers. This module_utils moves both onto the housekeeping CPUs and makes that survive a
reboot: through irqbalance's banned-CPUs setting where irqbalance is installed (it would otherwise move the IRQs back
within seconds), else through a oneshot systemd unit that re-applies the affinity by device name at boot.

Knob families (a knob's name alone rebuilds it, for restore and drift):

* ``irq.<identity>.affinity``: ``/proc/irq/<N>/smp_affinity_list`` of the IRQ that has that identity now (its action
  names, qualified by its device where they are not enough; _knobs_irq.IrqTable), a CPU list. Live only: the
  boot-time re-application works from device names too, never from numbers.
* ``irq.<N>.affinity``: the numbered form earlier versions recorded; restored only within the boot that recorded it.
* ``irq.default_affinity``: ``/proc/irq/default_smp_affinity``, the mask IRQs requested later start with.
* ``workqueue.cpumask``: ``/sys/devices/virtual/workqueue/cpumask``, where unbound kernel workers may run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import os
import re

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    CpuPartition, PartitionUnsupported, device_irq_actions, explicit_housekeeping, format_cpulist, format_cpumask,
    numa_first_cpus, online_cpus, parse_cpulist)
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import INVALID, IO_ERROR, NOT_PERMITTED, FsError, HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._invariants import check_irq_steering
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    ValidationError, shown)
from ansible_collections.aitune.kernel.plugins.module_utils._persist import UNIT_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_irq import (
    DEFAULT_AFFINITY_KNOB, IRQ_DIR, WORKQUEUE_KNOB, IrqTable, affinity_irq, identity_name, refusal_reason)
from ansible_collections.aitune.kernel.plugins.module_utils._report import UNSUPPORTED
from ansible_collections.aitune.kernel.plugins.module_utils._run import run_engine

POSSIBLE_PATH = '/sys/devices/system/cpu/possible'
ISOLATED_PATH = '/sys/devices/system/cpu/isolated'
NOHZ_FULL_PATH = '/sys/devices/system/cpu/nohz_full'

IRQBALANCE_BINARIES = ('/usr/sbin/irqbalance', '/usr/bin/irqbalance')
# Debian and Ubuntu read /etc/default/irqbalance, RHEL and Fedora /etc/sysconfig/irqbalance (the unit's
# EnvironmentFile=). Both are owned files of kind "irqbalance" in _persist.
IRQBALANCE_DEBIAN = '/etc/default/irqbalance'
IRQBALANCE_RHEL = '/etc/sysconfig/irqbalance'
IRQBALANCE_UNITS = ('/lib/systemd/system/irqbalance.service', '/usr/lib/systemd/system/irqbalance.service')
BANNED_CPULIST = 'IRQBALANCE_BANNED_CPULIST'
BANNED_CPUS = 'IRQBALANCE_BANNED_CPUS'
_BANNED_LINE = re.compile(r'^\s*(?:export\s+)?(%s|%s)=' % (BANNED_CPULIST, BANNED_CPUS))

BOOT_UNIT = 'aitune-irq-affinity.service'
PERSIST_IRQBALANCE = 'irqbalance'
PERSIST_UNIT = 'unit'
PERSIST_NO = 'none'

# Globs over IRQ action names such as nvme0q3, mlx5_comp7@pci:0000:3b:00.0 or virtio3-rx. The characters are the ones
# such names use plus the glob operators * ? [ ], which mean the same in fnmatch and in a POSIX shell "case" pattern:
# the boot unit matches with the latter, so nothing here may need quoting there.
DEVICE_GLOB = re.compile(r'^[A-Za-z0-9_.:@+*?\[\]-]{1,64}$')


class IrqHostFS(HostFS):
    """HostFS that tells a refused IRQ affinity write for what it is.

    The kernel answers a write to the affinity of an IRQ it does not let user space move with EIO (kernel-managed,
    per-CPU and IRQF_NOBALANCING IRQs), and a move its interrupt chip cannot make with EINVAL or ENOSPC. The engine
    treats those errors as fatal for any knob; for an IRQ they are the kernel's answer about that one IRQ, so they
    become not_permitted with the reason for that kind of IRQ (_knobs_irq.refusal_reason), and the run goes on.
    """

    def write_value(self, path, value):
        try:
            super(IrqHostFS, self).write_value(path, value)
        except FsError as exc:
            irq = affinity_irq(path)
            if exc.kind in (IO_ERROR, INVALID) and irq is not None:
                raise FsError(NOT_PERMITTED, path, '%s (%s)' % (refusal_reason(self, irq, exc), exc))
            raise


# -- reading the host ------------------------------------------------------------------------------------------------
def check_devices(devices):
    """Refuse device globs that are not plain names with glob operators."""
    bad = [glob for glob in devices if not isinstance(glob, str) or not DEVICE_GLOB.match(glob)]
    if bad:
        raise ValidationError('devices: %s: a device is a name or glob such as nvme* or mlx5_comp*, made of letters, '
                              'digits, "_.:@+-" and the glob characters "*?[]" (64 at most)'
                              % ', '.join(shown(glob) for glob in bad))
    return list(devices)


def matching_irqs(fs, globs):
    """``{irq: [action names]}`` of the IRQs with an action name that one of ``globs`` matches."""
    matched = {}
    for irq, names in sorted(device_irq_actions(fs).items()):
        if any(fnmatch.fnmatchcase(name, glob) for name in names for glob in globs):
            matched[irq] = names
    return matched


def kernel_cpu_width(fs):
    """nr_cpu_ids, the width of the kernel's CPU masks: one past the highest possible CPU."""
    text = (fs.read_optional(POSSIBLE_PATH, follow=True) or '').strip()
    cpus = parse_cpulist(text) if text else online_cpus(fs)
    return max(cpus) + 1 if cpus else 1


def _cpus_from(fs, path):
    text = (fs.read_optional(path, follow=True) or '').strip()
    try:
        return parse_cpulist(text) if text else set()
    except ValidationError:
        return set()


def irqbalance_file(fs):
    """The settings file of an installed irqbalance, or None when irqbalance is not installed."""
    present = [path for path in (IRQBALANCE_DEBIAN, IRQBALANCE_RHEL) if fs.lexists(path)]
    if not present and not any(fs.lexists(path) for path in IRQBALANCE_BINARIES):
        return None
    for unit in IRQBALANCE_UNITS:
        match = re.search(r'^EnvironmentFile=-?(\S+)', fs.read_optional(unit, follow=True) or '', re.M)
        if match and match.group(1) in (IRQBALANCE_DEBIAN, IRQBALANCE_RHEL) \
                and (match.group(1) in present or not present):
            return match.group(1)
    if present:
        return present[0]
    if fs.is_dir('/etc/sysconfig') and not fs.lexists('/etc/debian_version'):
        return IRQBALANCE_RHEL
    return IRQBALANCE_DEBIAN


def irqbalance_content(original, banned, width):
    """``original`` (the file before the collection first changed it) with the banned-CPUs settings set.

    Both spellings are set to the same CPUs: irqbalance before 1.8 knows only the hex mask IRQBALANCE_BANNED_CPUS,
    1.8 and 1.9 prefer the mask when both are set (logging that it is deprecated), later ones read the list. An
    existing line is replaced where it stands; a later duplicate, which would win, is dropped.
    """
    values = {BANNED_CPULIST: format_cpulist(banned), BANNED_CPUS: format_cpumask(banned, width)}
    lines = []
    done = set()
    for line in (original or '').splitlines():
        match = _BANNED_LINE.match(line)
        if not match:
            lines.append(line)
        elif match.group(1) not in done:
            lines.append('%s=%s' % (match.group(1), values[match.group(1)]))
            done.add(match.group(1))
    missing = [key for key in (BANNED_CPULIST, BANNED_CPUS) if key not in done]
    if missing:
        lines.append('# Set by aitune.kernel.irq_affinity: the latency CPUs, where irqbalance puts no IRQ. '
                     'aitune.kernel.restore puts the original file back.')
        lines.extend('%s=%s' % (key, values[key]) for key in missing)
    return '\n'.join(lines) + '\n'


def _systemd_exec_arg(text):
    """One ExecStart= argument: double-quoted, with systemd's own expansions of "%" and "$" escaped."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('%', '%%').replace('$', '$$')


def boot_script(globs, housekeeping):
    """The POSIX shell loop the boot unit runs.

    Each action of an IRQ has a directory /proc/irq/<N>/<action name>, the same names /proc/interrupts prints, so a
    "case" over those names matches the globs the way fnmatch does here, with no parsing of /proc/interrupts' columns.
    A refused write (a managed IRQ) prints its error to the journal and the loop goes on.
    """
    return ('for d in /proc/irq/[0-9]*/*/; do n=${d%%/}; case ${n##*/} in %s) echo %s > ${n%%/*}/smp_affinity_list;; '
            'esac; done; exit 0' % ('|'.join(globs), format_cpulist(housekeeping)))


def boot_unit(globs, housekeeping):
    """The oneshot unit that steers the matched IRQs again at every boot, where no irqbalance does it."""
    return '\n'.join([
        '# Managed by aitune.kernel (irq_affinity); aitune.kernel.restore stops and removes it.',
        '[Unit]',
        'Description=Steer the IRQs of %s onto housekeeping CPUs %s' % (' '.join(globs), format_cpulist(housekeeping)),
        # After drivers built as modules have loaded and requested their IRQs: those in modules-load.d, and those
        # udev loads for the devices it finds at boot (NVMe, virtio and NIC drivers on generic kernels).
        'After=systemd-modules-load.service systemd-udev-trigger.service local-fs.target',
        'ConditionPathIsDirectory=/proc/irq',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        # The events of the boot's device scan are done once udev's queue is empty: a driver module's load returns
        # only after its probe, asynchronous parts included, has requested its IRQs. A timeout steers what is there.
        'ExecStartPre=-/bin/udevadm settle --timeout=60',
        'ExecStart=/bin/sh -c %s' % _systemd_exec_arg(boot_script(globs, housekeeping)),
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
    ])


# -- the plan --------------------------------------------------------------------------------------------------------
class IrqPlan(object):
    """What one aitune.kernel.irq run asks of the engine, decided from the host as found, before anything is written.

    The default housekeeping set is CPU 0 of each NUMA node, not _cpus.housekeeping_cpus(): that one adds the CPUs
    serving device IRQs today, which on a VM that spreads its IRQs is every CPU, and steering onto every CPU would
    change nothing. The guard is given the same NUMA-first set: the latency CPUs may not swallow all of them.

    Where the housekeeping set is every online CPU (one CPU per NUMA node, or a CPU word of a partition this host's
    shape cannot have) there is no CPU to steer away from: what the run would set is reported unsupported
    (``unsupported``, knob -> reason) and nothing is written. Steering onto every CPU would only rewrite affinities to
    no purpose, and record them for restore.
    """

    def __init__(self, fs, devices=(), housekeeping=None, default_affinity=False, workqueue=False, allow=False,
                 persist=True, systemd=False):
        self.fs = fs
        self.globs = check_devices(devices or [])
        online = online_cpus(fs)
        no_steering = None
        if housekeeping is None:
            self.housekeeping = numa_first_cpus(fs) & online
        else:
            try:
                self.housekeeping = explicit_housekeeping(fs, housekeeping)
            except PartitionUnsupported as exc:
                self.housekeeping, no_steering = online, str(exc)
        self.latency = online - self.housekeeping
        if not self.latency and no_steering is None:
            # The default set is every CPU exactly where the partition has no latency set: its reason names the shape.
            no_steering = CpuPartition(fs).reason if housekeeping is None else (
                'housekeeping_cpus %s is every online CPU: no CPU is left to steer IRQs and unbound workers away from'
                % format_cpulist(self.housekeeping))
        self.width = kernel_cpu_width(fs)
        self.matched = matching_irqs(fs, self.globs) if self.globs else {}
        self.warnings = []
        if self.globs and not self.matched:
            self.warnings.append('devices %s matched no IRQ in /proc/interrupts' % ', '.join(self.globs))
        # Each matched IRQ by its identity, the name that finds it again after its number moved; an IRQ that has
        # none (a name a knob cannot carry, twins nothing tells apart) is unsupported with the reason.
        self.knob_names = {}
        unnamed = {}
        for irq, (identity, reason) in sorted(IrqTable(fs).identities(self.matched).items()):
            if identity is None:
                unnamed['irq.%d.affinity' % irq] = reason
            else:
                self.knob_names[irq] = identity_name(identity)

        names = sorted(self.knob_names.values())
        names += [knob.name for knob, wanted in ((DEFAULT_AFFINITY_KNOB, default_affinity), (WORKQUEUE_KNOB, workqueue))
                  if wanted]
        self.desired = {}
        self.unsupported = dict(unnamed)
        self.files = {}
        self.persistence = PERSIST_NO
        if no_steering:
            self.unsupported.update(dict.fromkeys(names, no_steering))
            self.persistent = False
            return
        if self.globs or default_affinity or workqueue:
            # Rule irq-and-workqueue-keep-housekeeping (_invariants.RULES); placement and cgroup check the other side.
            check_irq_steering(fs, self.latency, numa_first_cpus(fs) & online,
                               'irq: steering IRQs and workers onto CPUs %s' % format_cpulist(self.housekeeping),
                               allow=allow)

        cpulist = format_cpulist(self.housekeeping)
        mask = format_cpumask(self.housekeeping, self.width)
        self.desired = dict.fromkeys(self.knob_names.values(), cpulist)
        if default_affinity:
            self.desired[DEFAULT_AFFINITY_KNOB.name] = mask
        if workqueue:
            self.desired[WORKQUEUE_KNOB.name] = mask

        if persist and self.globs:
            self._plan_persistence(systemd)
        self.persistent = bool(persist and (not self.globs or self.persistence != PERSIST_NO))

    def _plan_persistence(self, systemd):
        path = irqbalance_file(self.fs)
        if path is not None:
            self.persistence = PERSIST_IRQBALANCE
            # irqbalance stops banning isolated and nohz_full CPUs by itself once it is given a banned set.
            banned = self.latency | _cpus_from(self.fs, ISOLATED_PATH) | _cpus_from(self.fs, NOHZ_FULL_PATH)
            if banned:
                self.files[path] = irqbalance_content(self._original(path), banned, self.width)
        elif systemd:
            self.persistence = PERSIST_UNIT
            self.files['%s/%s' % (UNIT_DIR, BOOT_UNIT)] = boot_unit(self.globs, self.housekeeping)

    def _original(self, path):
        """The file as it was before the collection first changed it: from the baseline if recorded, else as it is."""
        recorded = Baseline(self.fs).files().get(path)
        if recorded is not None:
            return recorded['content'] if recorded['existed'] else ''
        return self.fs.read_optional(path) or ''

    def explain(self, report):
        """Give refused IRQs their reason, and return the ``irqs`` result: per IRQ number (as this run found it), its
        devices, the knob that names it, and its affinities."""
        irqs = {}
        for irq, names in self.matched.items():
            name = self.knob_names.get(irq, 'irq.%d.affinity' % irq)
            entry = report.knobs.get(name)
            if entry is None:
                continue
            if entry['state'] == 'not_permitted' and self._read_only(entry['path']):
                entry['reason'] = '%s (%s is read-only)' % (refusal_reason(self.fs, irq), entry['path'])
            effective = self.fs.read_optional('%s/%d/effective_affinity_list' % (IRQ_DIR, irq))
            irqs[str(irq)] = {'devices': names, 'knob': name, 'before': entry['previous'], 'after': entry['value'],
                              'state': entry['state'], 'effective': effective.strip() if effective else None}
        return irqs

    def _read_only(self, path):
        try:
            return path is not None and not os.lstat(self.fs.host_path(path)).st_mode & 0o222
        except OSError:
            return False

    def result(self):
        return {'housekeeping_cpus': format_cpulist(self.housekeeping), 'latency_cpus': format_cpulist(self.latency),
                'persistence': self.persistence, 'persistent': self.persistent}


# -- the module's options and run --------------------------------------------------------------------------------------
ARGUMENT_SPEC = dict(
    devices=dict(type='list', elements='str', default=[]),
    housekeeping_cpus=dict(type='str'),
    default_affinity=dict(type='bool', default=False),
    workqueue=dict(type='bool', default=False),
    allow_housekeeping_cpus=dict(type='bool', default=False),
)


def run(subsystem_run):
    """aitune.kernel.irq: device IRQs, the default affinity and the workqueue mask on the housekeeping CPUs."""
    params = subsystem_run.params

    def body(engine):
        plan = IrqPlan(engine.fs, devices=params['devices'], housekeeping=params['housekeeping_cpus'],
                       default_affinity=params['default_affinity'], workqueue=params['workqueue'],
                       allow=params['allow_housekeeping_cpus'], persist=params['persist'],
                       systemd=engine.systemctl is not None)
        if params['strict'] and plan.unsupported:
            raise ValidationError('strict mode, nothing was changed: ' + '; '.join(
                '%s is unsupported: %s' % item for item in sorted(plan.unsupported.items())))
        report = engine.apply(plan.desired, persist=params['persist'], strict=params['strict'],
                              files=('irq', plan.files))
        for name, reason in sorted(plan.unsupported.items()):
            report.record(name, UNSUPPORTED, reason=reason)
        for warning in plan.warnings:
            subsystem_run.warn(warning)
        extra = plan.result()
        extra['irqs'] = plan.explain(report)
        return report, extra
    # The kernel's refusal to move one IRQ is an answer about that IRQ, not a failed run: IrqHostFS says so.
    return run_engine(subsystem_run, body, fs_class=IrqHostFS)
