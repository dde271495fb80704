# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The ``cpuidle.`` knobs: one idle state of one CPU switched off (a family), and the halt-polling windows, the haltpoll
governor's in a KVM guest and KVM's own on a hypervisor host (fixed knobs, module parameters). Part of the knob
registry (_registry.py); the planning behind aitune.kernel.cpuidle is in _cpuidle.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CPU_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    MODULE_DIR, PERSIST_MODPROBE, PERSIST_TMPFILES, Family, IntRange, Knob, Location, Switch, YesNo)


def state_path(cpu, state):
    return '%s/cpu%d/cpuidle/state%d/disable' % (CPU_DIR, cpu, state)


def state_knob(cpu, state):
    """``cpuidle.cpu<N>.state<K>.disable``: whether idle state K is off for CPU N."""
    cpu, state = int(cpu), int(state)
    return Knob('cpuidle.cpu%d.state%d.disable' % (cpu, state), 'max_exit_latency_us', Switch(),
                [Location(state_path(cpu, state))], PERSIST_TMPFILES,
                'Idle state %d disabled on CPU %d.' % (state, cpu),
                absent_note='needs a cpuidle driver with that idle state on this CPU')


FAMILIES = (
    Family(r'cpuidle\.cpu(\d{1,4})\.state(\d{1,2})\.disable', lambda match: state_knob(match.group(1), match.group(2)),
           'cpuidle.cpu0.state2.disable'),
)

# -- halt polling ----------------------------------------------------------------------------------------------------
# Both pollers keep a window per vCPU that grows from grow_start by the factor grow up to the global maximum, and
# shrinks by the factor shrink when a wake-up comes later than the maximum. The kernel takes any unsigned 32-bit value;
# the ranges here refuse what only does harm:
# * the maximum stops at 100 ms, 500 times the kernel default. A window is CPU time burnt on the chance of a wake-up,
#   and the kernel multiplies it by grow in 32 bits, so 100 ms x 16 is the most that cannot wrap around;
# * grow_start starts at 1: from 0 a window never grows away from 0, so polling would silently never start (set the
#   maximum to 0 to stop polling);
# * grow runs from 1 (the window stays at grow_start) to 16; shrink from 0 (back to no polling at once) to 16.
POLL_NS_MAX = 100000000
# guest_halt_poll_ns when nothing sets it (drivers/cpuidle/governors/haltpoll.c), and KVM's halt_poll_ns on x86.
HALTPOLL_DEFAULT_NS = 200000
POLL_FACTOR_MAX = 16
HALTPOLL_DIR = MODULE_DIR + '/haltpoll/parameters'
KVM_MODULE_DIR = MODULE_DIR + '/kvm'
KVM_DIR = KVM_MODULE_DIR + '/parameters'


def _halt_poll_knobs(prefix, directory, params, persist, absent_note):
    """One Knob per ``(option, parameter, validator, description)`` in ``params``, named ``<prefix>.<parameter>``."""
    return tuple(Knob('%s.%s' % (prefix, param), option, validator, [Location('%s/%s' % (directory, param))], persist,
                      description, absent_note=absent_note)
                 for option, param, validator, description in params)


# The haltpoll cpuidle governor (drivers/cpuidle/governors/haltpoll.c) is built in whenever the kernel has it
# (CONFIG_CPU_IDLE_GOV_HALTPOLL is a bool option), so its files are there from the first moment of boot, and the
# tmpfiles.d line reaches them.
HALTPOLL_KNOBS = _halt_poll_knobs('cpuidle.haltpoll', HALTPOLL_DIR, (
    ('guest_halt_poll_ns', 'guest_halt_poll_ns', IntRange(0, POLL_NS_MAX),
     'Longest time, in ns, an idle vCPU polls before it halts (haltpoll governor, KVM guest); 0 halts at once.'),
    ('grow', 'guest_halt_poll_grow', IntRange(1, POLL_FACTOR_MAX),
     'Factor by which a vCPU\'s poll window grows after a wake-up that came too late for it.'),
    ('grow_start', 'guest_halt_poll_grow_start', IntRange(1, POLL_NS_MAX),
     'The poll window, in ns, a vCPU grows to first from no polling.'),
    ('shrink', 'guest_halt_poll_shrink', IntRange(0, POLL_FACTOR_MAX),
     'Divisor of a vCPU\'s poll window after an idle period longer than the maximum; 0 drops it to no polling.'),
    ('allow_shrink', 'guest_halt_poll_allow_shrink', YesNo(),
     'Whether a vCPU\'s poll window shrinks at all; N keeps it at its peak once grown.'),
), PERSIST_TMPFILES, 'needs the haltpoll cpuidle governor (CONFIG_CPU_IDLE_GOV_HALTPOLL) in a kernel that has this '
                     'parameter')

# KVM's host-side polling (virt/kvm/kvm_main.c). kvm is a loadable module on hypervisor hosts, loaded by udev after
# the tmpfiles.d lines may already have run: its values persist in the modprobe.d file. Where kvm is built in, the
# room plans these knobs with the tmpfiles.d line instead (kvm_knobs).
KVM_PARAMS = (
    ('halt_poll_ns', 'halt_poll_ns', IntRange(0, POLL_NS_MAX),
     'Longest time, in ns, KVM polls on the host for a halted vCPU\'s wake-up before it schedules out; 0 never polls.'),
    ('grow', 'halt_poll_ns_grow', IntRange(1, POLL_FACTOR_MAX),
     'Factor by which a vCPU\'s host poll window grows after a wake-up that came too late for it.'),
    ('grow_start', 'halt_poll_ns_grow_start', IntRange(1, POLL_NS_MAX),
     'The host poll window, in ns, a vCPU grows to first from no polling.'),
    ('shrink', 'halt_poll_ns_shrink', IntRange(0, POLL_FACTOR_MAX),
     'Divisor of a vCPU\'s host poll window after a block longer than the maximum; 0 drops it to no polling.'),
)
KVM_ABSENT = 'needs the kvm module, which kvm_intel or kvm_amd loads on a hypervisor host'


def kvm_knobs(persist):
    """KVM's polling knobs persisting as ``persist``: the modprobe.d line for a loaded module, the tmpfiles.d line
    where kvm is built in (modprobe never sees a built-in module)."""
    return _halt_poll_knobs('cpuidle.kvm', KVM_DIR, KVM_PARAMS, persist, KVM_ABSENT)


KVM_KNOBS = kvm_knobs(PERSIST_MODPROBE)
KNOBS = {knob.name: knob for knob in HALTPOLL_KNOBS + KVM_KNOBS}
