# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""CPU sets: the kernel's list and mask notations, the online CPUs, and the housekeeping guard.

Anything that isolates or pins CPUs (a slice's AllowedCPUs, a service's CPUAffinity, IRQ affinity, the workqueue
mask, isolcpus/nohz_full/rcu_nocbs) passes through ``guard_reserved`` first. The guard exists because of a real
regression: NVIDIA's tuned-based inference profiles set ``isolcpus`` over the housekeeping cores, CPU 0 included, and on
an H100 host that cut throughput from 148k to 50k tokens/s and raised TTFT p99 from 0.6 s to 6 s
(nodewright-packages #95). The kernel needs somewhere to run IRQs, kernel threads and everything that is not the
latency work; a tuning tool must never take that away by accident.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError

ONLINE_PATH = '/sys/devices/system/cpu/online'
NODE_DIR = '/sys/devices/system/node'
INTERRUPTS_PATH = '/proc/interrupts'
MAX_CPUS = 8192

_RANGE = re.compile(r'^(\d+)(?:-(\d+))?$')


class HousekeepingError(ValidationError):
    """A CPU set that would leave the housekeeping CPUs without work or IRQs."""


def parse_cpulist(text, what='CPU list'):
    """``"0-3,8"`` -> ``{0, 1, 2, 3, 8}``. Accepts an int or a list of ints too; refuses anything else clearly."""
    if isinstance(text, bool):
        raise ValidationError('%s: expected a CPU list such as "0-3,8", got %r' % (what, text))
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, (list, tuple)):
        text = ','.join(str(item) for item in text)
    if not isinstance(text, str):
        raise ValidationError('%s: expected a CPU list such as "0-3,8", got %r' % (what, text))
    cpus = set()
    for part in text.replace(' ', '').split(','):
        if part == '':
            continue
        match = _RANGE.match(part)
        if not match:
            raise ValidationError('%s: %r is not a CPU list such as "0-3,8"' % (what, text))
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low or high >= MAX_CPUS:
            raise ValidationError('%s: %r is not a valid range in %r' % (what, part, text))
        cpus.update(range(low, high + 1))
    return cpus


def format_cpulist(cpus):
    """``{0, 1, 2, 3, 8}`` -> ``"0-3,8"``, the form the kernel and systemd print."""
    ranges = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ','.join(str(low) if low == high else '%d-%d' % (low, high) for low, high in ranges)


def parse_cpumask(text):
    """The kernel's hex mask (``"ff,00000001"``: 32-bit groups, most significant first) -> a CPU set."""
    digits = text.strip().replace(',', '')
    if not re.match(r'^[0-9a-fA-F]+$', digits):
        raise ValidationError('%r is not a CPU mask' % (text,))
    value = int(digits, 16)
    return {bit for bit in range(value.bit_length()) if value >> bit & 1}


def format_cpumask(cpus, width_cpus):
    """A CPU set -> the kernel's hex mask, padded to the groups needed for ``width_cpus`` CPUs."""
    value = 0
    for cpu in cpus:
        value |= 1 << cpu
    groups = max(1, (max(width_cpus, 1) + 31) // 32)
    text = '%0*x' % (groups * 8, value)
    return ','.join(text[i:i + 8] for i in range(0, len(text), 8))


def online_cpus(fs):
    return parse_cpulist((fs.read_optional(ONLINE_PATH, follow=True) or '0').strip(), what=ONLINE_PATH)


def check_online(fs, cpus, what):
    """Refuse CPUs that are not online: pinning to an absent CPU fails later, far from the cause."""
    online = online_cpus(fs)
    outside = set(cpus) - online
    if outside:
        raise ValidationError('%s: CPU %s not online (online: %s)' % (what, format_cpulist(outside), format_cpulist(online)))
    if not cpus:
        raise ValidationError('%s: the CPU list is empty' % what)
    return set(cpus)


def numa_first_cpus(fs):
    """CPU 0 of each NUMA node: the CPU the node's kernel threads and timers favour. One node when there is no NUMA."""
    firsts = set()
    try:
        nodes = [name for name in fs.listdir(NODE_DIR) if re.match(r'^node\d+$', name)]
    except Exception:  # pylint: disable=broad-except
        nodes = []
    for node in nodes:
        text = (fs.read_optional('%s/%s/cpulist' % (NODE_DIR, node), follow=True) or '').strip()
        if text:
            firsts.add(min(parse_cpulist(text)))
    if not firsts:
        online = online_cpus(fs)
        firsts.add(min(online) if online else 0)
    return firsts


def device_irqs(fs):
    """``{irq number: device names}`` for the numbered, device-backed lines of /proc/interrupts."""
    text = fs.read_optional(INTERRUPTS_PATH, follow=True) or ''
    lines = text.splitlines()
    if not lines:
        return {}
    cpu_columns = len(lines[0].split())
    irqs = {}
    for line in lines[1:]:
        fields = line.split()
        if not fields or not fields[0].rstrip(':').isdigit():
            continue
        rest = fields[1 + cpu_columns:]
        # After the counts come the chip, the hwirq/trigger and then the device action names.
        irqs[int(fields[0].rstrip(':'))] = ' '.join(rest[2:]) if len(rest) > 2 else ' '.join(rest)
    return irqs


def irq_serving_cpus(fs):
    """The CPUs that device IRQs are delivered to now (their effective affinity, where the kernel reports it)."""
    serving = set()
    for irq in device_irqs(fs):
        for leaf in ('effective_affinity_list', 'smp_affinity_list'):
            text = fs.read_optional('/proc/irq/%d/%s' % (irq, leaf), follow=True)
            if text and text.strip():
                serving |= parse_cpulist(text.strip())
                break
    return serving & online_cpus(fs)


def housekeeping_cpus(fs, explicit=None):
    """The housekeeping set: ``explicit`` when given, else CPU 0 of each NUMA node plus the CPUs serving IRQs now."""
    if explicit not in (None, '', []):
        return check_online(fs, parse_cpulist(explicit, what='housekeeping_cpus'), 'housekeeping_cpus')
    return numa_first_cpus(fs) | irq_serving_cpus(fs)


def guard_reserved(fs, reserved, what, housekeeping=None, allow=False):
    """Refuse to reserve ``reserved`` for latency work (pin, isolate, steer IRQs away) when that would leave the
    housekeeping CPUs without a single CPU of their own. ``allow`` is the explicit, documented override."""
    reserved = set(reserved)
    housekeeping = set(housekeeping) if housekeeping is not None else housekeeping_cpus(fs)
    online = online_cpus(fs)
    left = online - reserved
    if allow or (housekeeping - reserved and left):
        return
    raise HousekeepingError(
        '%s: reserving CPUs %s would leave no housekeeping CPU (housekeeping: %s; online: %s). The kernel needs CPUs '
        'for IRQs, kernel threads and everything else: NVIDIA inference profiles that isolated the housekeeping cores, '
        'CPU 0 included, cut H100 throughput from 148k to 50k tokens/s and raised TTFT p99 from 0.6 s to 6 s '
        '(nodewright-packages #95). Leave at least one housekeeping CPU out, or set allow_housekeeping_cpus: true if '
        'this host really has other CPUs for that work.'
        % (what, format_cpulist(reserved), format_cpulist(housekeeping), format_cpulist(online)))
