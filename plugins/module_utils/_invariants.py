# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Rules that span subsystems, checked whichever side changes.

A safety rule between two subsystems is only a rule if it holds in both directions: placement refuses SCHED_FIFO
while RT throttling is off, so sched may not switch throttling off while FIFO placement is in place either. Each rule
of RULES names its sides, the subsystem that can break it and the check that subsystem's room runs before it writes.
A side reads the other subsystem's part from the host as it is (the files the other room wrote, the live values),
so the rule holds across separate module calls and across a profile's subsystems alike.

This file sits below the subsystem rooms (_placement, _sched_memory, _irq, _cgroup, _hugepages), which call it; it
imports nothing of theirs.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    format_cpulist, guard_reserved, online_cpus, parse_cpumask)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import HUGEPAGE_SIZES_KB, ValidationError, hugepage_knob
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_irq import DEFAULT_AFFINITY_KNOB, WORKQUEUE_KNOB
from ansible_collections.aitune.kernel.plugins.module_utils._persist import DROPIN_LEAF, UNIT_DIR

RT_RUNTIME = '/proc/sys/kernel/sched_rt_runtime_us'
RT_PERIOD = '/proc/sys/kernel/sched_rt_period_us'
RT_RUNTIME_KNOB = 'sched.rt_runtime_us'
RT_POLICIES = ('fifo', 'rr')
MEMINFO = '/proc/meminfo'
MIN_FREE_KNOB = 'vm.min_free_kbytes'
MIN_FREE = '/proc/sys/vm/min_free_kbytes'
HUGEPAGES_DIR = '/sys/kernel/mm/hugepages'
# Hugepage pools and the kernel's free-memory reserve together may hold at most this share of MemTotal, the highest
# max_percent the hugepages module takes: the rest is what everything else on the host runs in.
MEMORY_CEILING_PERCENT = 90


class InvariantError(ValidationError):
    """A change that would break a rule between subsystems; nothing was written."""


# -- (a) RT placement needs RT throttling ------------------------------------------------------------------------------
def rt_throttling(fs):
    """``(runtime_us, period_us)`` of RT throttling, or raise when it does not keep a runaway RT thread in check."""
    runtime = (fs.read_optional(RT_RUNTIME) or '').strip()
    period = (fs.read_optional(RT_PERIOD) or '').strip()
    if not re.match(r'^-?\d+$', runtime) or not period.isdigit():
        raise InvariantError('cannot read RT throttling from %s and %s, so fifo and rr cannot be checked as safe; use '
                             'other, or a slice with a high cpu_weight, which protects as well' % (RT_RUNTIME, RT_PERIOD))
    if int(runtime) == -1 or int(runtime) >= int(period):
        raise InvariantError(
            'RT throttling is off (kernel.sched_rt_runtime_us is %s, kernel.sched_rt_period_us %s): a fifo or rr '
            'thread that spins would starve the whole host. Set aitune.kernel.sched rt_runtime_us below the period '
            '(950000 is the kernel default) first, or use a slice with a high cpu_weight, which protected the agent '
            'as well as SCHED_FIFO in the collection\'s measurements' % (runtime, period))
    return int(runtime), int(period)


def rt_placed_services(fs):
    """``{unit: (policy, drop-in path)}`` of the services the placement room placed with fifo or rr: its drop-ins
    (``/etc/systemd/system/<unit>.d/90-aitune.conf``) as they are on the host."""
    try:
        names = fs.listdir(UNIT_DIR)
    except Exception:  # pylint: disable=broad-except
        return {}
    placed = {}
    for name in sorted(names):
        if not name.endswith('.d'):
            continue
        path = '%s/%s/%s' % (UNIT_DIR, name, DROPIN_LEAF)
        match = re.search(r'^CPUSchedulingPolicy=(\S+)\s*$', fs.read_optional(path) or '', re.M)
        if match and match.group(1) in RT_POLICIES:
            placed[name[:-2]] = (match.group(1), path)
    return placed


def check_rt_placement(fs, unit):
    """The placement side: ``unit`` may run fifo or rr only while RT throttling is on."""
    try:
        return rt_throttling(fs)
    except InvariantError as exc:
        raise InvariantError('service %s: %s' % (unit, exc))


def check_rt_runtime(fs, desired):
    """The sched side: ``desired`` (``{knob name: value}``) may not switch RT throttling off (rt_runtime_us -1, or at
    least the period) while services are placed with fifo or rr."""
    if desired.get(RT_RUNTIME_KNOB) is None:
        return
    runtime = int(desired[RT_RUNTIME_KNOB])
    period = (fs.read_optional(RT_PERIOD) or '').strip()
    if runtime != -1 and not (period.isdigit() and runtime >= int(period)):
        return
    placed = rt_placed_services(fs)
    if placed:
        raise InvariantError(
            'rt_runtime_us %d would switch RT throttling off (kernel.sched_rt_period_us is %s) while %s placed with '
            'a real-time policy by aitune.kernel.placement (%s): a fifo or rr thread that spins would then starve the '
            'whole host. Keep rt_runtime_us below the period (950000 is the kernel default), or place those services '
            'with another policy first'
            % (runtime, period or 'unreadable', 'these services are' if len(placed) > 1 else 'this service is',
               '; '.join('%s: %s in %s' % (unit, policy, path) for unit, (policy, path) in sorted(placed.items()))))


# -- (b) IRQs and unbound workers keep a housekeeping CPU --------------------------------------------------------------
def check_irq_steering(fs, latency, housekeeping, what, allow=False):
    """The irq side: steering IRQs and workers onto ``housekeeping`` leaves ``latency`` (the other online CPUs) for
    latency work; those may not hold every CPU of the NUMA-first set (_cpus.guard_reserved)."""
    guard_reserved(fs, latency, what, housekeeping=housekeeping, allow=allow)


def steered_cpus(fs):
    """``{what: CPUs}`` for the workqueue mask and the default IRQ affinity where they are narrower than the online
    CPUs: steered, by aitune.kernel.irq or otherwise, onto those CPUs."""
    online = online_cpus(fs)
    steered = {}
    for knob in (WORKQUEUE_KNOB, DEFAULT_AFFINITY_KNOB):
        path = knob.locations[0].path
        text = (fs.read_optional(path, follow=True) or '').strip()
        try:
            cpus = parse_cpumask(text) & online if text else set()
        except ValidationError:
            continue
        if cpus and cpus != online:
            steered[path] = cpus
    return steered


def check_reservation(fs, reserved, what, allow=False):
    """The side of the CPU reservations (a service's CPUAffinity, a latency slice's AllowedCPUs): they may not take
    every CPU that IRQs or unbound kernel workers are steered to, or those would land on the latency work."""
    if allow:
        return
    reserved = set(reserved)
    for path, cpus in sorted(steered_cpus(fs).items()):
        if not cpus - reserved:
            raise InvariantError(
                '%s: reserving CPUs %s would take every CPU that %s steers IRQs or unbound kernel workers to (%s): '
                'they would then run on the latency work. Leave one of %s out, steer them elsewhere first with '
                'aitune.kernel.irq housekeeping_cpus, or set allow_housekeeping_cpus: true'
                % (what, format_cpulist(reserved), path, format_cpulist(cpus), format_cpulist(cpus)))


# -- (c) hugepages under the memory cap --------------------------------------------------------------------------------
def meminfo_kb(fs):
    values = {}
    for line in (fs.read_optional(MEMINFO, follow=True) or '').splitlines():
        match = re.match(r'^(\w+):\s+(\d+)', line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def live_pools_kb(fs):
    """The memory the host-wide hugepage pools hold now, in kB."""
    total = 0
    for size_kb in HUGEPAGE_SIZES_KB.values():
        text = (fs.read_optional('%s/hugepages-%dkB/nr_hugepages' % (HUGEPAGES_DIR, size_kb)) or '').strip()
        total += int(text) * size_kb if text.isdigit() else 0
    return total


def _min_free_kb(fs):
    text = (fs.read_optional(MIN_FREE) or '').strip()
    return int(text) if text.isdigit() else 0


def _over_ceiling(pools_kb, min_free_kb, total_kb, what):
    ceiling_kb = total_kb * MEMORY_CEILING_PERCENT // 100
    if pools_kb + min_free_kb > ceiling_kb:
        raise InvariantError(
            '%s: hugepage pools of %d MiB and vm.min_free_kbytes of %d MiB together take more than %d%% of MemTotal '
            '(%d MiB): the kernel could neither keep its free reserve nor run anything else; nothing was changed. '
            'Shrink the pools or min_free_kbytes'
            % (what, pools_kb // 1024, min_free_kb // 1024, MEMORY_CEILING_PERCENT, ceiling_kb // 1024))


def check_pools(fs, pools, max_percent, at_boot):
    """The hugepages side: the pools within ``max_percent`` of MemTotal, beside the kernel's free reserve
    (vm.min_free_kbytes) within MEMORY_CEILING_PERCENT, and runtime growth within MemAvailable."""
    meminfo = meminfo_kb(fs)
    total_kb = meminfo.get('MemTotal', 0)
    wanted_kb = sum(pool['count'] * HUGEPAGE_SIZES_KB[pool['size']] for pool in pools)
    if wanted_kb > total_kb * max_percent // 100:
        raise InvariantError('hugepages: %d MiB of pools is above the cap of %d%% of MemTotal (%d MiB); nothing was '
                             'changed. Raise max_percent only if the host can live with that little free memory.'
                             % (wanted_kb // 1024, max_percent, total_kb * max_percent // 100 // 1024))
    _over_ceiling(wanted_kb, _min_free_kb(fs), total_kb, 'hugepages')
    if at_boot:
        return
    growth_kb = 0
    for pool in pools:
        knob = hugepage_knob(pool['size'], pool['node'])
        current = fs.read_optional(knob.locations[0].path)
        if current is not None:
            growth_kb += max(0, pool['count'] - int(current.strip())) * HUGEPAGE_SIZES_KB[pool['size']]
    available_kb = meminfo.get('MemAvailable', 0)
    if growth_kb > available_kb:
        raise InvariantError('hugepages: growing the pools takes %d MiB but only %d MiB is available; nothing was '
                             'changed' % (growth_kb // 1024, available_kb // 1024))


def check_min_free(fs, desired):
    """The memory side: vm.min_free_kbytes may not grow so far that it and the hugepage pools on the host together
    pass MEMORY_CEILING_PERCENT of MemTotal."""
    if desired.get(MIN_FREE_KNOB) is None:
        return
    _over_ceiling(live_pools_kb(fs), int(desired[MIN_FREE_KNOB]), meminfo_kb(fs).get('MemTotal', 0), 'memory')


# -- the table ---------------------------------------------------------------------------------------------------------
Rule = namedtuple('Rule', 'name why sides')

RULES = (
    Rule('rt-placement-needs-rt-throttling',
         'a fifo or rr service that spins starves the host unless RT throttling (rt_runtime_us below the period) '
         'keeps it in check',
         {'placement': check_rt_placement, 'sched': check_rt_runtime}),
    Rule('irq-and-workqueue-keep-housekeeping',
         'device IRQs, the default IRQ affinity and the unbound workqueue mask need at least one CPU that is not '
         'reserved for latency work',
         {'irq': check_irq_steering, 'placement': check_reservation, 'cgroup': check_reservation}),
    Rule('hugepages-under-memory-cap',
         'hugepage pools stay within max_percent of MemTotal, and with the kernel\'s free reserve within %d%%'
         % MEMORY_CEILING_PERCENT,
         {'hugepages': check_pools, 'memory': check_min_free}),
)
