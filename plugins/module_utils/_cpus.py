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

from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError, shown

CPU_DIR = '/sys/devices/system/cpu'
ONLINE_PATH = CPU_DIR + '/online'
NODE_DIR = '/sys/devices/system/node'
INTERRUPTS_PATH = '/proc/interrupts'
MAX_CPUS = 8192

_RANGE = re.compile(r'^(\d+)(?:-(\d+))?$')


class HousekeepingError(ValidationError):
    """A CPU set that would leave the housekeeping CPUs without work or IRQs."""


def parse_cpulist(text, what='CPU list', online=None):
    """``"0-3,8"`` -> ``{0, 1, 2, 3, 8}``. Accepts an int or a list of ints too; refuses anything else clearly.
    ``online``: this host's online CPUs, named in the refusal of a CPU number beyond what a list may hold."""
    if isinstance(text, bool):
        raise ValidationError('%s: expected a CPU list such as "0-3,8", got %s' % (what, shown(text)))
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, (list, tuple)):
        text = ','.join(str(item) for item in text)
    if not isinstance(text, str):
        raise ValidationError('%s: expected a CPU list such as "0-3,8", got %s' % (what, shown(text)))
    cpus = set()
    for part in text.replace(' ', '').split(','):
        if part == '':
            continue
        match = _RANGE.match(part)
        if not match:
            raise ValidationError('%s: %s is not a CPU list such as "0-3,8"' % (what, shown(text)))
        low = _number(match.group(1), what, part, text, online)
        high = _number(match.group(2), what, part, text, online) if match.group(2) is not None else low
        if high < low:
            raise ValidationError('%s: %s is not a valid range in %s: it ends below where it starts'
                                  % (what, shown(part), shown(text)))
        if high >= MAX_CPUS:
            raise ValidationError('%s: %s is not a valid range in %s: CPU %d is beyond %s'
                                  % (what, shown(part), shown(text), high, _cpu_limits(online)))
        cpus.update(range(low, high + 1))
    return cpus


def _number(digits, what, part, text, online=None):
    """A CPU number of a list; one too long to be a CPU is refused before Python is asked to convert it."""
    if len(digits.lstrip('0')) > len(str(MAX_CPUS)):
        raise ValidationError('%s: %s is not a valid range in %s: CPU %s is beyond %s'
                              % (what, shown(part), shown(text), shown(digits), _cpu_limits(online)))
    return int(digits.lstrip('0') or '0')


def _cpu_limits(online):
    """The limits a CPU number is held to, for a refusal: this host's CPUs where known, and the parser's own."""
    parser = 'CPU %d, the highest CPU number a CPU list may name' % (MAX_CPUS - 1)
    if not online:
        return parser
    return "this host's CPUs %s (%d CPUs) and %s" % (format_cpulist(online), len(online), parser)


def format_cpulist(cpus):
    """``{0, 1, 2, 3, 8}`` -> ``"0-3,8"``, the form the kernel and systemd print."""
    ranges = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ','.join(str(low) if low == high else '%d-%d' % (low, high) for low, high in ranges)


def parse_cpumask(text, what='CPU mask'):
    """The kernel's hex mask (``"ff,00000001"``: 32-bit groups, most significant first) -> a CPU set.

    Each comma-separated group is one 32-bit word, as the kernel's bitmap_parse() reads it: ``"1,1"`` is CPUs 0 and 32,
    not 0x11.
    """
    if not isinstance(text, str):
        raise ValidationError('%s: expected a hex CPU mask such as "ff,00000001", got %s' % (what, shown(text)))
    groups = text.strip().split(',')
    if not all(re.match(r'^[0-9a-fA-F]{1,8}$', group) for group in groups):
        raise ValidationError('%s: %s is not a CPU mask such as "ff,00000001"' % (what, shown(text)))
    cpus = set()
    for index, group in enumerate(reversed(groups)):
        value = int(group, 16)
        cpus.update(index * 32 + bit for bit in range(32) if value >> bit & 1)
    return cpus


def format_cpumask(cpus, width_cpus):
    """A CPU set -> the kernel's hex mask for a kernel whose masks hold ``width_cpus`` CPUs (nr_cpu_ids).

    The text is the kernel's own (lib/vsprintf.c bitmap_string): 32-bit groups, most significant first, the lower
    groups 8 digits wide and the top group only as wide as its share of ``width_cpus`` needs. A 2-CPU kernel prints
    ``3``, a 40-CPU one ``ff,ffffffff``; a value written in that form reads back as the same text.
    """
    width = max(int(width_cpus), max(cpus) + 1 if cpus else 1, 1)
    groups = (width + 31) // 32
    top_digits = ((width - (groups - 1) * 32) + 3) // 4
    words = []
    for index in reversed(range(groups)):
        word = 0
        for cpu in cpus:
            if index * 32 <= cpu < index * 32 + 32:
                word |= 1 << (cpu - index * 32)
        words.append('%0*x' % (top_digits if index == groups - 1 else 8, word))
    return ','.join(words)


def mask_width(text):
    """The number of CPUs the layout of a kernel mask text holds, rounded up to whole hex digits: ``"3"`` -> 4,
    ``"ff,ffffffff"`` -> 40. Formatting a set with it reproduces the layout."""
    groups = text.strip().split(',')
    return (len(groups) - 1) * 32 + 4 * len(groups[0])


def online_cpus(fs):
    return parse_cpulist((fs.read_optional(ONLINE_PATH, follow=True) or '0').strip(), what=ONLINE_PATH)


def check_online(fs, cpus, what):
    """Refuse CPUs that are not online: pinning to an absent CPU fails later, far from the cause."""
    online = online_cpus(fs)
    outside = set(cpus) - online
    if outside:
        raise ValidationError('%s: CPU %s not online (online: %s, %d CPUs)'
                              % (what, format_cpulist(outside), format_cpulist(online), len(online)))
    if not cpus:
        raise ValidationError('%s: the CPU list is empty' % what)
    return set(cpus)


def host_cpulist(fs, text, what):
    """A CPU list given for this host: parsed, every CPU online, not empty. Refusals name this host's CPUs."""
    return check_online(fs, parse_cpulist(text, what=what, online=online_cpus(fs)), what)


def explicit_housekeeping(fs, text, default_words='leave the option out for the default'):
    """An explicitly given housekeeping set, a CPU word included (option_cpus). An empty one is refused, not read as
    "the default": an empty housekeeping set would leave the kernel nowhere for IRQs and its own threads."""
    if is_cpu_word(text):
        return CpuPartition(fs).cpus(text)
    if isinstance(text, str) and not text.replace(',', '').strip():
        raise ValidationError('housekeeping_cpus: an empty CPU list (%s) is refused: the kernel needs at least one '
                              'CPU for IRQs and its own threads; %s' % (shown(text), default_words))
    return host_cpulist(fs, text, 'housekeeping_cpus')


def numa_nodes(fs):
    """The NUMA node numbers, in order; none when the kernel shows no node directory (built without NUMA)."""
    try:
        names = fs.listdir(NODE_DIR)
    except Exception:  # pylint: disable=broad-except
        return []
    return sorted(int(name[4:]) for name in names if re.match(r'^node\d+$', name))


def numa_first_cpus(fs):
    """CPU 0 of each NUMA node: the CPU the node's kernel threads and timers favour. One node when there is no NUMA."""
    firsts = set()
    online = online_cpus(fs)
    for node in numa_nodes(fs):
        text = (fs.read_optional('%s/node%d/cpulist' % (NODE_DIR, node), follow=True) or '').strip()
        # A memory-only node (CXL, GPU memory) has no CPUs; an offline CPU can do no housekeeping.
        cpus = parse_cpulist(text) & online if text else set()
        if cpus:
            firsts.add(min(cpus))
    if not firsts:
        firsts.add(min(online) if online else 0)
    return firsts


# Words a CPU-list option may take instead of a list: that set of this host's partition (CpuPartition), so a mode's
# data can name "the latency CPUs" without reading the host first.
CPU_SET_WORDS = ('@housekeeping_cpus', '@latency_cpus', '@batch_cpus')


class PartitionUnsupported(Exception):
    """A CPU word names a set of a partition this host's shape cannot have. Not a ValidationError: the request is
    sound, this host cannot carry it, so what the option would set is reported unsupported with the reason."""


class CpuPartition(object):
    """This host's CPU partition, computed for every shape. Housekeeping: CPU 0 of each NUMA node. Latency: the upper
    half of the other CPUs, so batch work, IRQs and kernel threads keep the lower half. Batch: every CPU outside the
    latency set, housekeeping included.

    Where housekeeping takes every CPU (one CPU in all, or one per NUMA node, as on the lab's 2-node eevdf VM) no
    latency CPU can be carved out: the sets stay as computed (latency empty, batch every CPU) and ``reason`` says why,
    naming the shape. A set that would isolate or pin nothing is no partition, so the settings that name one are
    reported unsupported rather than applied over every CPU.
    """

    def __init__(self, fs):
        self.online = online_cpus(fs)
        self.housekeeping = numa_first_cpus(fs) & self.online
        others = sorted(self.online - self.housekeeping)
        self.latency = set(others[len(others) // 2:])
        self.batch = self.online - self.latency
        self.reason = None if self.latency else self._no_latency_reason()

    def _no_latency_reason(self):
        count = len(self.online)
        if count == 1:
            shape = 'this host has 1 CPU (%s), and it is the housekeeping CPU (CPU 0 of its NUMA node)' \
                % format_cpulist(self.online)
        else:
            shape = 'this host has %d CPUs (%s), %s housekeeping (CPU 0 of each of its %d NUMA nodes)' % (
                count, format_cpulist(self.online), 'both' if count == 2 else 'all %d' % count, len(self.housekeeping))
        return ('no CPU left for the latency set: %s; a latency/batch partition needs a CPU besides CPU 0 of each NUMA '
                'node' % shape)

    def sets(self):
        """``{word: CPUs}`` for CPU_SET_WORDS."""
        return dict(zip(CPU_SET_WORDS, (self.housekeeping, self.latency, self.batch)))

    def cpus(self, word):
        """The CPUs ``word`` names, or PartitionUnsupported with the reason."""
        if self.reason:
            raise PartitionUnsupported(self.reason)
        return set(self.sets()[word])

    def result(self):
        """The partition as a module reports it: each set as a CPU list, ``state`` (supported or unsupported) and
        ``reason``."""
        return {'housekeeping': format_cpulist(self.housekeeping), 'latency': format_cpulist(self.latency),
                'batch': format_cpulist(self.batch), 'state': 'unsupported' if self.reason else 'supported',
                'reason': self.reason}


def is_cpu_word(value):
    return isinstance(value, str) and value in CPU_SET_WORDS


def option_cpus(fs, text, what):
    """The CPUs of a CPU-list option: a CPU word resolved on this host's partition (PartitionUnsupported where the
    shape leaves none), else the list itself, checked as host_cpulist checks it."""
    if is_cpu_word(text):
        return CpuPartition(fs).cpus(text)
    return host_cpulist(fs, text, what)


# What /proc/interrupts prints between the counts and the action names (kernel/irq/proc.c show_interrupts): the
# chip, then the hwirq number when the IRQ has a domain (on x86 with the flow handler glued on: "5-edge"), then
# "Level"/"Edge" where the architecture shows the trigger (arm64: "GICv3  27 Level"), then "-<handler>" for an IRQ
# without a domain.
_HWIRQ = re.compile(r'^\d+(-\S+)?$')
_TRIGGER = re.compile(r'^(Level|Edge)(-\S+)?$')
_NO_DOMAIN_HANDLER = re.compile(r'^-\S+$')


def parse_interrupts(text):
    """``{irq number: [action names]}`` for the numbered lines of /proc/interrupts that have a handler.

    Lines such as ``LOC:`` (local timer) and ``NMI:`` are per-CPU architecture counters, not device IRQs, and are
    skipped; so is a numbered IRQ with no action. Shared IRQs list several actions, separated by ", ".
    """
    lines = text.splitlines()
    if not lines:
        return {}
    cpu_columns = len(lines[0].split())
    irqs = {}
    for line in lines[1:]:
        fields = line.split()
        if not fields or not fields[0].endswith(':') or not fields[0][:-1].isdigit():
            continue
        rest = fields[1 + cpu_columns:]
        if rest:
            rest = rest[1:]
        for pattern in (_HWIRQ, _TRIGGER, _NO_DOMAIN_HANDLER):
            if rest and pattern.match(rest[0]):
                rest = rest[1:]
        names = [name.strip() for name in ' '.join(rest).split(',') if name.strip()]
        if names:
            irqs[int(fields[0][:-1])] = names
    return irqs


def device_irq_actions(fs):
    """``{irq number: [action names]}`` for the device IRQs of this host (see parse_interrupts)."""
    return parse_interrupts(fs.read_optional(INTERRUPTS_PATH, follow=True) or '')


def device_irqs(fs):
    """``{irq number: device names}`` for the numbered, device-backed lines of /proc/interrupts; the names of a shared
    IRQ are joined with ", " as the kernel prints them."""
    return {irq: ', '.join(names) for irq, names in device_irq_actions(fs).items()}


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
    if explicit is not None:
        return explicit_housekeeping(fs, explicit)
    return numa_first_cpus(fs) | irq_serving_cpus(fs)


def guard_reserved(fs, reserved, what, housekeeping=None, allow=False):
    """Refuse to reserve ``reserved`` for latency work (pin, isolate, steer IRQs away) when that would leave the
    housekeeping CPUs without a single CPU of their own. ``allow`` is the explicit, documented override."""
    reserved = set(reserved)
    housekeeping = set(housekeeping) if housekeeping is not None else housekeeping_cpus(fs)
    online = online_cpus(fs)
    left = online - reserved
    # An offline CPU named as housekeeping does no housekeeping: only online ones count.
    if allow or ((housekeeping & online) - reserved and left):
        return
    raise HousekeepingError(
        '%s: reserving CPUs %s would leave no housekeeping CPU (housekeeping: %s; online: %s). The kernel needs CPUs '
        'for IRQs, kernel threads and everything else: NVIDIA inference profiles that isolated the housekeeping cores, '
        'CPU 0 included, cut H100 throughput from 148k to 50k tokens/s and raised TTFT p99 from 0.6 s to 6 s '
        '(nodewright-packages #95). Leave at least one housekeeping CPU out, or set allow_housekeeping_cpus: true if '
        'this host really has other CPUs for that work.'
        % (what, format_cpulist(reserved), format_cpulist(housekeeping), format_cpulist(online)))


# Boot parameters that take CPUs away from housekeeping: isolated from the scheduler's balancing (isolcpus), from the
# tick (nohz_full) or from RCU callback processing (rcu_nocbs).
BOOT_CPU_PARAMS = ('isolcpus', 'nohz_full', 'rcu_nocbs')
# The flags isolcpus takes before its CPU list (Documentation/admin-guide/kernel-parameters.txt). The kernel ignores
# the whole parameter when it meets an unknown flag, so one is refused here rather than passed on.
ISOLCPUS_FLAGS = ('nohz', 'domain', 'managed_irq')
_BOOT_RANGE = re.compile(r'^(\d+|N)(?:-(\d+|N))?(?::(\d+)/(\d+))?$')


def parse_boot_cpulist(text, last_cpu, what):
    """A CPU list as the kernel reads it on its command line (bitmap_parselist): plain ranges, ``N`` for the last CPU,
    ``all``, and the ``0-15:2/4`` form (2 CPUs out of every group of 4)."""
    if text == 'all':
        return set(range(last_cpu + 1))
    cpus = set()
    for part in text.split(','):
        match = _BOOT_RANGE.match(part)
        if not match:
            raise ValidationError('%s: %s is not a CPU list such as "2-7" or "2-15:2/4"' % (what, shown(text)))
        low, high = [last_cpu if end == 'N' else _number(end, what, part, text)
                     for end in (match.group(1), match.group(2) or match.group(1))]
        used, group = (_number(match.group(3), what, part, text), _number(match.group(4), what, part, text)) \
            if match.group(3) else (1, 1)
        if high >= MAX_CPUS:
            raise ValidationError('%s: %s is not a valid range in %s: CPU %d is beyond %s'
                                  % (what, shown(part), shown(text), high, _cpu_limits(set(range(last_cpu + 1)))))
        if high < low or not 0 < used <= group:
            raise ValidationError('%s: %s is not a valid range in %s' % (what, shown(part), shown(text)))
        cpus.update(cpu for cpu in range(low, high + 1) if (cpu - low) % group < used)
    return cpus


def boot_param_cpus(params, last_cpu):
    """``{parameter: CPU set}`` for the isolating parameters among ``params``, a command line or a list of words.

    ``isolcpus=managed_irq,domain,2-7`` gives ``{'isolcpus': {2, ..., 7}}``. A bare ``rcu_nocbs`` (offloading
    allowed, no CPU offloaded at boot) reserves nothing. Other parameters are ignored.
    """
    words = params.split() if isinstance(params, str) else list(params)
    found = {}
    for word in words:
        if not isinstance(word, str) or '=' not in word:
            continue
        key, value = word.split('=', 1)
        if key not in BOOT_CPU_PARAMS:
            continue
        what = '%s=%s' % (key, value)
        if key == 'isolcpus':
            parts = value.split(',')
            flags = []
            while parts and re.match(r'^[a-z_]+$', parts[0]) and parts[0] not in ('all',):
                flags.append(parts.pop(0))
            unknown = [flag for flag in flags if flag not in ISOLCPUS_FLAGS]
            if unknown:
                raise ValidationError('%s: unknown isolcpus flag %s (known: %s); the kernel would ignore the whole '
                                      'parameter' % (what, ', '.join(unknown), ', '.join(ISOLCPUS_FLAGS)))
            value = ','.join(parts)
        if not value:
            raise ValidationError('%s: no CPU list' % what)
        found[key] = found.get(key, set()) | parse_boot_cpulist(value, last_cpu, what)
    return found


def guard_boot_params(fs, params, housekeeping=None, allow=False):
    """Refuse boot parameters (``isolcpus``, ``nohz_full``, ``rcu_nocbs``) that would isolate every housekeeping CPU,
    before they reach the command line. Returns the CPUs they reserve. ``housekeeping`` and ``allow`` are as for
    guard_reserved; the default housekeeping set is CPU 0 of each NUMA node plus the CPUs serving device IRQs now."""
    online = online_cpus(fs)
    found = boot_param_cpus(params, max(online) if online else 0)
    reserved = set()
    for cpus in found.values():
        reserved |= cpus
    if reserved:
        what = 'boot parameters %s' % ' '.join('%s=%s' % (key, format_cpulist(found[key])) for key in sorted(found))
        guard_reserved(fs, reserved, what, housekeeping=housekeeping, allow=allow)
    return reserved
