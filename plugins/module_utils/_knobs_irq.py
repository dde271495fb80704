# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``irq.`` and ``workqueue.`` knob families: each IRQ's affinity, the default affinity of new IRQs and the CPUs of
unbound workqueues. Part of the knob registry (_registry.py); the planning behind aitune.kernel.irq is in _irq.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    format_cpulist, format_cpumask, mask_width, parse_cpulist, parse_cpumask)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_NONE, PERSIST_TMPFILES, Family, Knob, Location, ValidationError)

IRQ_DIR = '/proc/irq'
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


# -- knobs -----------------------------------------------------------------------------------------------------------
def irq_affinity_knob(irq):
    irq = int(irq)
    return Knob('irq.%d.affinity' % irq, 'devices', CpuList(), [Location('%s/%d/smp_affinity_list' % (IRQ_DIR, irq))],
                PERSIST_NONE, 'CPUs that IRQ %d may be delivered to.' % irq,
                absent_note='the IRQ is gone (its device was removed, or the numbers changed at boot), or the kernel '
                            'was built without SMP')


DEFAULT_AFFINITY_KNOB = Knob(
    'irq.default_affinity', 'default_affinity', CpuMask(), [Location(DEFAULT_AFFINITY_PATH)], PERSIST_TMPFILES,
    'The affinity that IRQs requested from now on start with.', absent_note='needs CONFIG_SMP')
WORKQUEUE_KNOB = Knob(
    'workqueue.cpumask', 'workqueue', CpuMask(), [Location(WORKQUEUE_CPUMASK_PATH)], PERSIST_TMPFILES,
    'CPUs that unbound kernel workqueue workers may run on.', absent_note='added in 4.2')

FAMILIES = (
    Family(r'irq\.(\d{1,5})\.affinity', lambda match: irq_affinity_knob(match.group(1)), 'irq.24.affinity'),
    Family(r'irq\.default_affinity', lambda match: DEFAULT_AFFINITY_KNOB, 'irq.default_affinity'),
    Family(r'workqueue\.cpumask', lambda match: WORKQUEUE_KNOB, 'workqueue.cpumask'),
)
