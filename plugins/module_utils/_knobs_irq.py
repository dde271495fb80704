# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``irq.`` and ``workqueue.`` knob families: each IRQ's affinity, the default affinity of new IRQs and the CPUs of
unbound workqueues. Part of the knob registry (_registry.py); the planning behind aitune.kernel.irq is in _irq.py.

IRQ numbers are handed out as drivers ask for them, so they move across a reboot whenever a driver built as a module
loads in another order (nvme0q2 was IRQ 35 and became 34). An IRQ's affinity knob is therefore named after its
identity, ``irq.<identity>.affinity``, and the identity is resolved to the IRQ's number at every run (plan, verify,
restore, drift):

* the IRQ's action names, as /proc/interrupts and /sys/kernel/irq/<N>/actions show them (several, for a shared IRQ,
  sorted and joined with ","): ``irq.nvme0q2.affinity``, ``irq.uhci_hcd:usb1,virtio3.affinity``;
* where other IRQs of the host have the same actions, ``~`` and where the IRQ is: the PCI device whose MSI vector it
  is (its /sys/bus/pci/devices/<device>/msi_irqs/<N>), else its interrupt chip (/sys/kernel/irq/<N>/chip_name), and
  ``#`` with its hardware IRQ number (/sys/kernel/irq/<N>/hwirq) where that is still not enough:
  ``irq.xhci_hcd~0000:00:14.0.affinity``, ``irq.i8042~IO-APIC#12.affinity``.

An identity that no IRQ has any more, or that more than one has, is never written: the setting is unsupported with a
reason naming it. ``irq.<N>.affinity``, the numbered form earlier versions recorded, stays readable so their state
still restores, but only within the boot that recorded it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import errno
import os
import re
import time

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    format_cpulist, format_cpumask, mask_width, parse_cpulist, parse_cpumask)
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    ABSENT, INVALID, IO_ERROR, NOT_PERMITTED, FsError)
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import DEBUGFS
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_NONE, PERSIST_TMPFILES, Family, Knob, Location, ValidationError)

IRQ_DIR = '/proc/irq'
SYS_IRQ_DIR = '/sys/kernel/irq'
PCI_DEVICES_DIR = '/sys/bus/pci/devices'
IRQ_DEBUG_DIR = DEBUGFS + '/irq/irqs'
STAT_PATH = '/proc/stat'
DEFAULT_AFFINITY_PATH = IRQ_DIR + '/default_smp_affinity'
WORKQUEUE_CPUMASK_PATH = '/sys/devices/virtual/workqueue/cpumask'


# -- validators ------------------------------------------------------------------------------------------------------
class CpuList(object):
    """A CPU list such as ``0-3,8``; canonical in the kernel's own ranges form, as smp_affinity_list prints it."""

    kind = 'cpulist'

    def describe(self):
        return 'a CPU list such as "0-3,8"'

    def canonical(self, name, value, raw_current=None):
        cpus = parse_cpulist(value, what=name)
        if not cpus:
            raise ValidationError('%s: the CPU list is empty; the kernel refuses to leave an IRQ with no CPU' % name)
        return format_cpulist(cpus)

    def current(self, raw):
        try:
            return format_cpulist(parse_cpulist(raw.strip()))
        except ValidationError:
            return raw.strip()


class CpuMask(object):
    """A hex CPU mask such as ``ff,00000001``. Values compare as CPU sets: the canonical text is the set written in the
    layout of the kernel's current text (its width is the kernel's nr_cpu_ids), which is how the kernel prints it."""

    kind = 'cpumask'

    def describe(self):
        return 'a hex CPU mask such as "ff,00000001"'

    def canonical(self, name, value, raw_current=None):
        cpus = parse_cpumask(value, what=name)
        if not cpus:
            raise ValidationError('%s: the CPU mask is empty; the kernel needs at least one CPU there' % name)
        width = mask_width(raw_current) if raw_current and raw_current.strip() else max(cpus) + 1
        beyond = {cpu for cpu in cpus if cpu >= width}
        if beyond:
            raise ValidationError('%s: CPU %s is beyond the CPUs this kernel has (its mask reads %r)'
                                  % (name, format_cpulist(beyond), raw_current.strip()))
        return format_cpumask(cpus, width)

    def current(self, raw):
        try:
            return format_cpumask(parse_cpumask(raw), mask_width(raw))
        except ValidationError:
            return raw.strip()


# -- identities ------------------------------------------------------------------------------------------------------
# One action name, a chip name or a PCI address: the characters real names use (nvme0q2, virtio0-input.0,
# mlx5_comp0@pci:0000:3b:00.2, ahci[0000:00:17.0], ACPI:Ged, IO-APIC, PCI-MSIX-0000:00:03.0). ",", "~" and "#" are
# left out: they join the parts of an identity. A name with anything else (a blank, as in "PCIe PME") names no knob.
_PART = r'[A-Za-z0-9_][A-Za-z0-9_.:@+\[\]-]{0,63}'
PART = re.compile('^%s$' % _PART)
IDENTITY = r'%s(?:,%s){0,7}(?:~%s(?:#\d{1,10})?)?' % (_PART, _PART, _PART)
_NUMBERED = re.compile(r'^\d+$')
_DEBUG_FLAG = re.compile(r'\b(IRQD_[A-Z_]+|_IRQ_[A-Z_]+)\b')


def identity_name(identity):
    return 'irq.%s.affinity' % identity


def split_identity(identity):
    """``(actions, where, hwirq)`` of an identity: its sorted action names, and its qualifier's parts (or None)."""
    actions, _sep, qualifier = identity.partition('~')
    where, _sep, hwirq = qualifier.partition('#')
    return actions.split(','), where or None, hwirq or None


class IrqTable(object):
    """The IRQs of the host as one run finds them: their actions (from /proc/irq/<N>/), the PCI device each MSI vector
    belongs to, their chip and hardware IRQ number. Read lazily and once per table: a table is made per resolution,
    so what it says is the host as it is now."""

    def __init__(self, fs):
        self.fs = fs
        self._numbers = None
        self._actions = {}
        self._owners = None

    def numbers(self):
        if self._numbers is None:
            try:
                entries = self.fs.listdir(IRQ_DIR)
            except FsError:
                entries = []
            self._numbers = sorted(int(entry) for entry in entries if _NUMBERED.match(entry))
        return self._numbers

    def has_action(self, irq, action):
        return self.fs.is_dir('%s/%d/%s' % (IRQ_DIR, irq, action))

    def actions(self, irq):
        """The sorted action names of ``irq``: the directories in /proc/irq/<N>/, one per action with a name."""
        if irq not in self._actions:
            base = '%s/%d' % (IRQ_DIR, irq)
            try:
                entries = self.fs.listdir(base)
            except FsError:
                entries = []
            self._actions[irq] = sorted(entry for entry in entries if self.fs.is_dir('%s/%s' % (base, entry)))
        return self._actions[irq]

    def owners(self):
        """``{irq: PCI address}`` of the MSI and MSI-X vectors, from each device's msi_irqs directory."""
        if self._owners is None:
            self._owners = {}
            try:
                devices = self.fs.listdir(PCI_DEVICES_DIR)
            except FsError:
                devices = []
            for device in devices:
                try:
                    vectors = self.fs.listdir('%s/%s/msi_irqs' % (PCI_DEVICES_DIR, device))
                except FsError:
                    continue
                for vector in vectors:
                    if _NUMBERED.match(vector):
                        self._owners[int(vector)] = device
        return self._owners

    def _sys(self, irq, leaf):
        text = self.fs.read_optional('%s/%d/%s' % (SYS_IRQ_DIR, irq, leaf))
        return text.strip() if text and text.strip() else None

    def where(self, irq):
        """Where the IRQ is: the PCI device it is an MSI vector of, else its interrupt chip."""
        return self.owners().get(irq) or self._sys(irq, 'chip_name')

    def hwirq(self, irq):
        return self._sys(irq, 'hwirq')

    # -- naming ----------------------------------------------------------------------------------------------------
    def identities(self, irqs):
        """``{irq: (identity, None) or (None, reason)}`` for ``irqs``: each one's actions, qualified only as far as
        other IRQs of the host with the same actions make it necessary."""
        groups = {}
        for irq in self.numbers():
            names = self.actions(irq)
            if names:
                groups.setdefault(tuple(names), []).append(irq)
        named = {}
        for irq in irqs:
            names = self.actions(irq)
            bad = [name for name in names if not PART.match(name)]
            if not names:
                named[irq] = (None, 'IRQ %d has no action with a name in %s/%d/' % (irq, IRQ_DIR, irq))
            elif bad or len(names) > 8:
                named[irq] = (None, 'IRQ %d: its action name %r cannot name a setting (a knob name takes letters, '
                                    'digits and "_.:@+[]-" only, 8 actions at most)' % (irq, (bad or names)[0]))
            else:
                named[irq] = self._qualified(irq, names, groups[tuple(names)])
        return named

    def _qualified(self, irq, names, group):
        actions = ','.join(names)
        if len(group) == 1:
            identity = actions
        else:
            where = self.where(irq)
            others = [self.where(other) for other in group if other != irq]
            hwirq = self.hwirq(irq)
            if where and PART.match(where) and where not in others:
                identity = '%s~%s' % (actions, where)
            elif where and PART.match(where) and hwirq and hwirq.isdigit() and len(hwirq) <= 10 and not any(
                    self.where(other) == where and self.hwirq(other) == hwirq for other in group if other != irq):
                identity = '%s~%s#%s' % (actions, where, hwirq)
            else:
                return None, ('IRQ %d: IRQs %s all have the action(s) %s, and neither their device nor their chip '
                              'and hardware IRQ number tell them apart, so no name finds IRQ %d again after a reboot'
                              % (irq, ', '.join(str(other) for other in group), actions, irq))
        if _NUMBERED.match(identity):
            return None, 'IRQ %d: its action name %r is a number, which would read as an IRQ number' % (irq, identity)
        return identity, None

    def resolve(self, identity):
        """``(irq, None)`` for the one IRQ that has ``identity`` now, or ``(None, reason)`` when none has it or several
        have it: then nothing may be written for it, least of all to another device's IRQ."""
        actions, where, hwirq = split_identity(identity)
        wanted = sorted(actions)
        found = [irq for irq in self.numbers()
                 if self.has_action(irq, wanted[0]) and self.actions(irq) == wanted]
        named = ', '.join(wanted)
        if where is not None:
            found = [irq for irq in found
                     if self.where(irq) == where and (hwirq is None or self.hwirq(irq) == hwirq)]
            named = '%s on %s%s' % (named, where, ' (hardware IRQ %s)' % hwirq if hwirq else '')
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, ('IRQ %s is gone: no IRQ has the action(s) %s now (its device was removed, its driver is not '
                          'loaded, or it has another name); nothing was written to any other IRQ' % (identity, named))
        return None, ('IRQ %s is ambiguous: IRQs %s all have the action(s) %s now; nothing was written to any of them'
                      % (identity, ', '.join(str(irq) for irq in found), named))


# -- why the kernel refuses to move an IRQ ---------------------------------------------------------------------------
MANAGED_REASON = ('kernel-managed IRQ: the kernel spreads the IRQs of multi-queue devices (NVMe and others) over the '
                  'CPUs itself and refuses changes from user space. To keep managed IRQs off the latency CPUs, boot '
                  'with isolcpus=managed_irq,<latency CPUs>')
LIKELY_MANAGED_REASON = ('kernel-managed IRQ, most likely: it is an MSI vector of %s and the kernel refuses to move it '
                         '(debugfs %s/%d, which shows the IRQD_AFFINITY_MANAGED flag, could not be read). The kernel '
                         'spreads the IRQs of multi-queue devices over the CPUs itself; to keep managed IRQs off the '
                         'latency CPUs, boot with isolcpus=managed_irq,<latency CPUs>')
PER_CPU_REASON = ('per-CPU IRQ: it is delivered on each CPU by design and has no affinity to change; no boot '
                  'parameter moves it')
NO_BALANCING_REASON = ('IRQ requested with IRQF_NOBALANCING: its driver keeps it where it is and the kernel refuses '
                       'moves from user space; isolcpus=managed_irq does not apply to it')
TIMER_REASON = ('the timer IRQ: requested with IRQF_NOBALANCING and IRQF_TIMER, so the kernel refuses moves from user '
                'space; on x86 the per-CPU local APIC timers take over from it early in boot, so it brings no work '
                'onto the latency CPUs')
UNMOVABLE_REASON = ('the kernel refuses moves of this IRQ from user space: a per-CPU IRQ or one its driver requested '
                    'with IRQF_NOBALANCING (debugfs %s/%d would tell which); isolcpus=managed_irq does not apply to it')
NO_AFFINITY_REASON = ('the kernel refuses moves of this IRQ from user space, though debugfs shows it neither managed, '
                      'per-CPU nor IRQF_NOBALANCING: its interrupt chip cannot set an affinity; isolcpus=managed_irq '
                      'does not apply to it')
CHIP_REASON = ('the interrupt chip cannot deliver this IRQ there: no vector is free on those CPUs, or the chip cannot '
               'route it to them')


def debug_flags(fs, irq):
    """The IRQ's state flags from debugfs (IRQD_AFFINITY_MANAGED, IRQD_PER_CPU, IRQD_NO_BALANCING, ...), or None
    where debugfs is not mounted or not readable (lockdown)."""
    text = fs.read_optional('%s/%d' % (IRQ_DEBUG_DIR, irq))
    return set(_DEBUG_FLAG.findall(text)) if text else None


def refusal_reason(fs, irq, error=None):
    """Why the kernel will not set the affinity of ``irq`` from user space, as far as this host lets it be told:
    debugfs shows the kernel's own flags; without it, an MSI vector that refuses is taken for a managed one (only
    those are managed), the timer for the timer, and any other for a per-CPU or IRQF_NOBALANCING one. ``error``: the
    FsError of the refused write (None for a file the kernel made read-only)."""
    if error is not None and (error.kind == INVALID or os.strerror(errno.ENOSPC) in str(error)):
        return CHIP_REASON
    flags = debug_flags(fs, irq)
    if flags is not None:
        if 'IRQD_AFFINITY_MANAGED' in flags:
            return MANAGED_REASON
        if 'IRQD_PER_CPU' in flags or '_IRQ_PER_CPU' in flags or '_IRQ_PER_CPU_DEVID' in flags:
            return PER_CPU_REASON
    table = IrqTable(fs)
    if table.actions(irq) == ['timer']:
        return TIMER_REASON
    if flags is not None:
        return NO_BALANCING_REASON if 'IRQD_NO_BALANCING' in flags else NO_AFFINITY_REASON
    owner = table.owners().get(irq)
    if owner:
        return LIKELY_MANAGED_REASON % (owner, IRQ_DEBUG_DIR, irq)
    return UNMOVABLE_REASON % (IRQ_DEBUG_DIR, irq)


_AFFINITY_PATH = re.compile(r'^%s/(\d+)/smp_affinity(?:_list)?$' % IRQ_DIR)


def affinity_irq(path):
    """The IRQ number of an affinity file's path, or None for any other path."""
    match = _AFFINITY_PATH.match(path or '')
    return int(match.group(1)) if match else None


def boot_time(fs):
    """When this boot began, in seconds since the epoch (/proc/stat btime), or None where that cannot be read."""
    for line in (fs.read_optional(STAT_PATH, follow=True) or '').splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == 'btime' and fields[1].isdigit():
            return int(fields[1])
    return None


def recorded_this_boot(fs, recorded_at):
    """Whether a baseline or state entry stamped ``recorded_at`` (_baseline.now_iso) was made in the running boot."""
    booted = boot_time(fs)
    try:
        stamp = calendar.timegm(time.strptime(recorded_at or '', '%Y-%m-%dT%H:%M:%SZ'))
    except ValueError:
        return False
    return booted is not None and stamp >= booted


# -- knobs -----------------------------------------------------------------------------------------------------------
class _IrqKnob(Knob):
    """An IRQ's affinity. The kernel's refusal to move an IRQ is final for restore: it manages that IRQ now (or its
    driver pins it), so there is nothing a later restore could put back; so is an IRQ that is gone. Only a move the
    chip cannot make (CPUs offline, no vector free) may work later, and keeps its original."""

    def refused(self, fs, path, error):
        irq = affinity_irq(path)
        if irq is not None and error.kind == ABSENT:
            # Freed with its device: the number may go to another device later, which must not get this original.
            return 'cannot restore: IRQ %d is gone (%s); nothing was written' % (irq, error), True
        if irq is None or error.kind not in (IO_ERROR, NOT_PERMITTED, INVALID):
            return super(_IrqKnob, self).refused(fs, path, error)
        reason = refusal_reason(fs, irq, error)
        return 'cannot restore IRQ %d: %s (%s)' % (irq, reason, error), reason != CHIP_REASON


class IrqIdentityKnob(_IrqKnob):
    """The affinity of the IRQ with an identity; its file is found at each run (IrqTable.resolve)."""

    dynamic = True

    def __init__(self, identity):
        self.identity = identity
        super(IrqIdentityKnob, self).__init__(
            identity_name(identity), 'devices', CpuList(), [Location('%s/<N>/smp_affinity_list' % IRQ_DIR)],
            PERSIST_NONE, 'CPUs that the IRQ of %s may be delivered to.' % identity,
            absent_note='no IRQ has that identity now')

    def locate(self, fs, recorded_path=None, recorded_at=None):
        irq, reason = IrqTable(fs).resolve(self.identity)
        if reason:
            return None, reason
        return '%s/%d/smp_affinity_list' % (IRQ_DIR, irq), None


class NumberedIrqKnob(_IrqKnob):
    """``irq.<N>.affinity``, as earlier versions recorded IRQs: by number, which holds only within one boot. Where a
    run of this version has recorded the same IRQ by identity since, the numbered original is the older one."""

    restore_last = True

    def __init__(self, irq):
        self.irq = int(irq)
        super(NumberedIrqKnob, self).__init__(
            'irq.%d.affinity' % self.irq, 'devices', CpuList(),
            [Location('%s/%d/smp_affinity_list' % (IRQ_DIR, self.irq))], PERSIST_NONE,
            'CPUs that IRQ %d may be delivered to.' % self.irq,
            absent_note='the IRQ is gone (its device was removed, or the numbers changed at boot), or the kernel '
                        'was built without SMP')

    def locate(self, fs, recorded_path=None, recorded_at=None):
        if recorded_at is not None and not recorded_this_boot(fs, recorded_at):
            return None, ('IRQ %d was recorded by number at %s, before this boot began (or when is not known): IRQ '
                          'numbers change at boot, so IRQ %d may now belong to another device, and nothing was '
                          'written to it' % (self.irq, recorded_at, self.irq))
        return recorded_path, None


def irq_affinity_knob(irq):
    """The numbered knob of IRQ ``irq`` (state of earlier versions; new runs name IRQs by identity)."""
    return NumberedIrqKnob(irq)


DEFAULT_AFFINITY_KNOB = Knob(
    'irq.default_affinity', 'default_affinity', CpuMask(), [Location(DEFAULT_AFFINITY_PATH)], PERSIST_TMPFILES,
    'The affinity that IRQs requested from now on start with.', absent_note='needs CONFIG_SMP')
WORKQUEUE_KNOB = Knob(
    'workqueue.cpumask', 'workqueue', CpuMask(), [Location(WORKQUEUE_CPUMASK_PATH)], PERSIST_TMPFILES,
    'CPUs that unbound kernel workqueue workers may run on.', absent_note='added in 4.2')

FAMILIES = (
    # Numbers first: an identity is never all digits (IrqTable.identities).
    Family(r'irq\.(\d{1,5})\.affinity', lambda match: irq_affinity_knob(match.group(1)), 'irq.24.affinity'),
    Family(r'irq\.(?!\d+\.affinity$)(%s)\.affinity' % IDENTITY, lambda match: IrqIdentityKnob(match.group(1)),
           'irq.nvme0q2.affinity'),
    Family(r'irq\.default_affinity', lambda match: DEFAULT_AFFINITY_KNOB, 'irq.default_affinity'),
    Family(r'workqueue\.cpumask', lambda match: WORKQUEUE_KNOB, 'workqueue.cpumask'),
)
