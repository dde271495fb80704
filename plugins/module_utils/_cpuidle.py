# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""CPU idle states: the cpuidle knob family, the PM QoS holder and the halt-polling windows behind
aitune.kernel.cpuidle.

Two ways to keep CPUs out of deep idle states, whose exit costs about 2 us for C1, 10 us for C1E and 130 us for C6
(intel_idle tables):

* per CPU and state, ``/sys/devices/system/cpu/cpuN/cpuidle/stateK/disable``; the states are the driver's own, so
  they are read from the host, and a state is disabled when its exit latency is above the limit;
* a CPU latency PM QoS request: the cpuidle governor then skips every state that exits slower than the request.
  The request lasts only while a process holds ``/dev/cpu_dma_latency`` open, so the holder is a small systemd
  service; a process started outside systemd would not survive this run.

And one way to make the wake-up from idle itself cheaper on virtual machines: poll for a while before halting, so a
wake-up that comes soon finds the vCPU running. In a KVM guest the haltpoll governor polls for up to its window
(``/sys/module/haltpoll/parameters``); on a KVM host, KVM polls for a halted vCPU (``/sys/module/kvm/parameters``). Both
pay in CPU time: a polling vCPU is a busy host CPU.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._cpupower import run_plan, select_cpus
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CPU_DIR, format_cpulist
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_MODPROBE, PERSIST_TMPFILES, ValidationError, shown)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cpuidle import (
    HALTPOLL_DEFAULT_NS, HALTPOLL_DIR, HALTPOLL_KNOBS, KVM_KNOBS, KVM_MODULE_DIR, kvm_knobs, state_knob)
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import (
    PMQOS_DEVICE, PMQOS_MAX_US, describe_tuned, pm_qos_in_force, processes, tuned_facts)
from ansible_collections.aitune.kernel.plugins.module_utils._run import knob_options

CPUIDLE_DIR = CPU_DIR + '/cpuidle'
DRIVER_PATH = CPUIDLE_DIR + '/current_driver'
# current_governor is writable and only there with cpuidle_sysfs_switch before 5.7; current_governor_ro is always there.
GOVERNOR_PATHS = (CPUIDLE_DIR + '/current_governor_ro', CPUIDLE_DIR + '/current_governor')
# The haltpoll governor (drivers/cpuidle/governors/haltpoll.c) picks polling or its one halt state from its own poll
# window and the PM QoS request alone: it never reads the per-state disable files.
HALTPOLL = 'haltpoll'
HALTPOLL_WINDOW = 'cpuidle.haltpoll.guest_halt_poll_ns'
IGNORES_STATE_SWITCHES = (HALTPOLL,)
# Only a loaded module has an initstate file; a built-in one shows its parameters alone.
KVM_INITSTATE = KVM_MODULE_DIR + '/initstate'
PMQOS_UNIT = 'aitune-pmqos.service'
PMQOS_SUBSYSTEM = 'cpuidle'
# Exit latencies are in microseconds; nothing real comes near an hour.
EXIT_LATENCY_MAX_US = 3600 * 1000000
NO_DRIVER = ('no cpuidle driver on this host (%s is absent or says none): the CPUs have no idle states to limit'
             % DRIVER_PATH)


# -- the PM QoS holder -----------------------------------------------------------------------------------------------
# The request lives exactly as long as the descriptor stays open. The shell opens the device as fd 3, writes the value,
# and exec hands fd 3 on to sleep, which holds it until systemd stops the service. The kernel reads a write of exactly
# 4 bytes as a binary s32 and anything else as hex text, so a decimal such as "100\n" would be misread; the value is
# written in the documented 10-character hex form, as printf's only argument (no "%" or "$" that systemd would expand).
PMQOS_UNIT_TEMPLATE = Template("""# Managed by aitune.kernel; removed by aitune.kernel.restore.
[Unit]
Description=CPU latency PM QoS request of ${latency_us} us, held while this service runs
Documentation=https://docs.kernel.org/power/pm_qos_interface.html
ConditionPathExists=${device}

[Service]
Type=simple
ExecStart=/bin/sh -c 'exec 3>${device} && printf ${hex_value} >&3 && exec sleep infinity'
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
""")


def pmqos_unit(latency_us, device=PMQOS_DEVICE):
    """The holder unit's content for a request of ``latency_us`` microseconds."""
    return PMQOS_UNIT_TEMPLATE.substitute(latency_us=int(latency_us), device=device,
                                          hex_value='0x%08x' % int(latency_us))


# -- reading the host ------------------------------------------------------------------------------------------------
class IdleState(object):
    def __init__(self, number, name, latency_us):
        self.number = number
        self.name = name
        self.latency_us = latency_us

    @property
    def is_poll(self):
        # state0 is the polling loop on x86 (and the shallowest state elsewhere): turning it off saves nothing.
        return self.number == 0 or self.name == 'POLL'


def current_driver(fs):
    """The cpuidle driver's name, or None when there is none."""
    text = (fs.read_optional(DRIVER_PATH) or '').strip()
    return text if text and text != 'none' else None


def current_governor(fs):
    """The cpuidle governor's name, or None when the kernel does not show one."""
    for path in GOVERNOR_PATHS:
        text = (fs.read_optional(path) or '').strip()
        if text:
            return text
    return None


def cpu_states(fs, cpu):
    """The idle states of one CPU, shallowest first; empty when the CPU shows none."""
    base = '%s/cpu%d/cpuidle' % (CPU_DIR, cpu)
    try:
        names = fs.listdir(base)
    except FsError:
        return []
    states = []
    for entry in names:
        match = re.match(r'^state(\d{1,2})$', entry)
        if not match:
            continue
        values = {leaf: (fs.read_optional('%s/%s/%s' % (base, entry, leaf)) or '').strip()
                  for leaf in ('name', 'latency')}
        if not values['latency'].isdigit():
            continue
        states.append(IdleState(int(match.group(1)), values['name'] or entry, int(values['latency'])))
    return sorted(states, key=lambda state: state.number)


def polling_values(fs, knobs):
    """``{kernel parameter: value}`` of halt-polling knobs as the kernel shows them, numbers as integers and Y/N as
    booleans (None where a file is unreadable), or None when none of their files is there."""
    values = {}
    for knob in knobs:
        path = knob.locations[0].path
        if not fs.lexists(path):
            continue
        text = knob.current(fs.read_optional(path) or '')
        param = path.rsplit('/', 1)[1]
        if knob.validator.kind == 'bool':
            values[param] = {'Y': True, 'N': False}.get(text)
        else:
            values[param] = int(text) if text.isdigit() else None
    return values or None


# -- planning --------------------------------------------------------------------------------------------------------
def _microseconds(option, value, high):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError('%s: expected a whole number of microseconds, got %s' % (option, shown(value)))
    if not 0 <= value <= high:
        raise ValidationError('%s: %d is out of range, expected 0 to %d microseconds' % (option, value, high))
    return value


def _polling_request(params, option, knobs):
    """``{knob name: canonical value}`` for the suboptions of ``option`` that are set, each checked against its knob's
    range (a refusal names the suboption as the user wrote it): bad input is refused on every host, whether it has the
    knob or not."""
    options = params.get(option) or {}
    return {knob.name: knob.validator.canonical('%s.%s' % (option, knob.option), options[knob.option])
            for knob in knobs if options.get(knob.option) is not None}


def check_options(params):
    """What can be refused from the options alone, before any subsystem of a profile run writes: every value out of
    its range."""
    _microseconds('max_exit_latency_us', params.get('max_exit_latency_us'), EXIT_LATENCY_MAX_US)
    _microseconds('pm_qos_latency_us', params.get('pm_qos_latency_us'), PMQOS_MAX_US)
    _polling_request(params, 'haltpoll', HALTPOLL_KNOBS)
    _polling_request(params, 'kvm', KVM_KNOBS)


def haltpoll_unused_reason(fs, driver, governor):
    """Why the haltpoll governor's parameters would change nothing here, or None when that governor picks the idle
    states. Its parameters exist wherever the kernel has it (common distribution kernels build it in), guest
    or not."""
    if governor == HALTPOLL:
        return None
    if not fs.lexists(HALTPOLL_DIR):
        return ('this kernel has no haltpoll cpuidle governor (%s is absent): it is built only for KVM guests '
                '(CONFIG_CPU_IDLE_GOV_HALTPOLL)' % HALTPOLL_DIR)
    return ('the haltpoll cpuidle governor is not in use here (driver %s, governor %s), so its parameters would change '
            'nothing. It runs only in a KVM guest, with the cpuidle-haltpoll driver, which loads where the host hints '
            'dedicated CPUs (KVM_HINTS_REALTIME) or with cpuidle_haltpoll.force=1, and not with idle= on the command '
            'line' % (driver or 'none', governor or 'none'))


def kvm_absent_reason(fs):
    """Why KVM's polling cannot be set here, or None when kvm is loaded or built in."""
    if fs.lexists(KVM_MODULE_DIR):
        return None
    return ('KVM is not loaded here (%s is absent): its halt polling is a hypervisor host\'s, for the KVM guests it '
            'runs (load kvm_intel or kvm_amd first). Inside a guest, the haltpoll option sets the guest\'s own polling'
            % KVM_MODULE_DIR)


class CpuidlePlan(object):
    """What one cpuidle run asks for, validated as a whole before anything is written.

    ``desired`` holds the knobs for the engine (idle-state switches, polling windows) and ``knobs`` those the plan
    built for this host (KVM's, persisting as kvm is loaded or built in); ``unsupported`` the settings with no knob on
    this host, or whose knob would change nothing (name -> (reason, requested value)); ``units`` the holder unit set
    the cpuidle subsystem owns (None when systemd does not run here, so nothing about units changes); ``pm_qos`` the
    holder's part of the result.
    """

    def __init__(self, fs, params, systemd):
        self.fs = fs
        self.desired = {}
        self.knobs = {}
        self.unsupported = {}
        self.warnings = []
        check_options(params)
        limit = params.get('max_exit_latency_us')
        request = params.get('pm_qos_latency_us')
        self.cpus, no_cpus = select_cpus(fs, params.get('cpus'))
        self.driver = current_driver(fs)
        self.governor = current_governor(fs) if self.driver else None
        if limit is not None and no_cpus:
            self.unsupported['cpuidle.max_exit_latency_us'] = (no_cpus, limit)
        elif limit is not None:
            self._plan_states(limit)
        polls = self._plan_haltpoll(_polling_request(params, 'haltpoll', HALTPOLL_KNOBS))
        self._plan_kvm(_polling_request(params, 'kvm', KVM_KNOBS))

        self.pm_qos = {'requested': request, 'unit': PMQOS_UNIT, 'active': None, 'state': None, 'reason': None,
                       'in_force_us': None}
        # The subsystem owns its whole unit set: a run without a request takes an earlier holder away.
        self.units = (PMQOS_SUBSYSTEM, {}) if systemd else None
        if request is None:
            return
        reason = None
        if not systemd:
            reason = ('the PM QoS request must be held by a systemd service (a process started outside systemd would '
                      'not outlive this run), and systemd is not PID 1 here, or root is not /')
        elif self.driver is None:
            reason = NO_DRIVER
        elif not fs.lexists(PMQOS_DEVICE):
            reason = '%s is absent: this kernel has no CPU latency PM QoS (CONFIG_CPU_IDLE)' % PMQOS_DEVICE
        if reason:
            self.pm_qos.update(state='unsupported', reason=reason)
            self.unsupported['cpuidle.pm_qos'] = (reason, request)
        else:
            self.units = (PMQOS_SUBSYSTEM, {PMQOS_UNIT: pmqos_unit(request)})
            self._warn_lower_limit(request)
            window = self.desired.get(HALTPOLL_WINDOW) if polls else None
            if window is not None and int(window) < HALTPOLL_DEFAULT_NS and request == 0:
                # haltpoll_select() polls without a limit while the CPU latency request is 0, so a window below the
                # kernel's default, meant to cap the host CPU that polling costs, caps nothing. A window at or above
                # the default (the balanced mode's, which aggressive inherits) loses nothing under the holder.
                self.warnings.append('with pm_qos_latency_us 0 the haltpoll governor polls for as long as a CPU is '
                                     'idle: the poll window of %s ns set here caps nothing until the PM QoS holder is '
                                     'gone' % window)

    def _warn_lower_limit(self, request):
        """Another holder of /dev/cpu_dma_latency asking for less than ``request`` wins: the kernel keeps the lowest
        request, so this run's request reads as applied while the CPUs are held shallower than it asks."""
        in_force = pm_qos_in_force(self.fs)
        if in_force is None or in_force >= request:
            return
        tuned = tuned_facts(self.fs, processes(self.fs))
        holder = ('%s, whose profile holds the device open (its cpu plugin\'s force_latency)' % describe_tuned(tuned)
                  if tuned['running'] else 'another process holding %s open' % PMQOS_DEVICE)
        self.warnings.append('the CPU latency limit in force is %d us, below the %d us this run requests: %s asks '
                             'for less, and the kernel keeps the lowest request, so idle states stay limited to %d us '
                             'while it holds it' % (in_force, request, holder, in_force))

    def _plan_states(self, limit):
        if self.driver is None:
            self.unsupported['cpuidle.max_exit_latency_us'] = (NO_DRIVER, limit)
            return
        bare = []
        switches = {}
        for cpu in sorted(self.cpus):
            states = [state for state in cpu_states(self.fs, cpu) if not state.is_poll]
            if not states:
                bare.append(cpu)
            for state in states:
                switches[state_knob(cpu, state.number).name] = state.latency_us > limit
        self.desired.update(switches)
        if self.governor in IGNORES_STATE_SWITCHES and any(switches.values()):
            # The switches land and read back, so they count as applied; the user must still learn that they do
            # nothing here (measured: idle wake p50 x0.944 with state1 off on the development machines).
            self.warnings.append(
                'the %s cpuidle governor picks idle states without reading the per-state disable files: the states '
                'above %d us are switched off and read back so, but idle CPUs still enter them. Only a PM QoS request '
                '(pm_qos_latency_us) limits idle states under this governor' % (self.governor, limit))
        if bare:
            self.unsupported['cpuidle.max_exit_latency_us'] = (
                'CPU %s shows no idle state but polling under the %s driver' % (format_cpulist(bare), self.driver),
                limit)

    def _plan_haltpoll(self, requested):
        """Plan the haltpoll governor's values; returns whether that governor is in use and they are planned."""
        if not requested:
            return False
        reason = haltpoll_unused_reason(self.fs, self.driver, self.governor)
        if reason:
            self.unsupported.update((name, (reason, value)) for name, value in requested.items())
            return False
        self.desired.update(requested)
        return True

    def _plan_kvm(self, requested):
        if not requested:
            return
        reason = kvm_absent_reason(self.fs)
        if reason:
            self.unsupported.update((name, (reason, value)) for name, value in requested.items())
            return
        persist = PERSIST_MODPROBE if self.fs.lexists(KVM_INITSTATE) else PERSIST_TMPFILES
        self.knobs.update((knob.name, knob) for knob in kvm_knobs(persist) if knob.name in requested)
        self.desired.update(requested)

    def owned(self):
        owned = {'knobs': self.knobs} if self.knobs else {}
        if self.units is not None:
            owned['units'] = self.units
        return owned

    def result(self, engine):
        return {'driver': self.driver, 'governor': self.governor, 'pm_qos': self._pm_qos_outcome(engine)}

    def _pm_qos_outcome(self, engine):
        """The holder's state after the engine ran: active is what systemd says of the unit, in_force_us what the
        kernel holds, every holder's request together."""
        self.pm_qos['in_force_us'] = pm_qos_in_force(self.fs)
        systemctl = engine.systemctl
        if systemctl is None:
            return self.pm_qos
        self.pm_qos['active'] = systemctl.is_active(PMQOS_UNIT)
        if self.pm_qos['requested'] is None or self.pm_qos['state'] == 'unsupported':
            return self.pm_qos
        if self.pm_qos['active']:
            self.pm_qos['state'] = 'applied'
        elif engine.check_mode:
            self.pm_qos.update(state='applied', reason='check mode: would be installed and started')
        else:
            self.pm_qos.update(state='not_permitted', reason='%s is installed but not active; see journalctl -u %s'
                                                             % (PMQOS_UNIT, PMQOS_UNIT))
        return self.pm_qos


# -- the module's options and run --------------------------------------------------------------------------------------
ARGUMENT_SPEC = dict(
    cpus=dict(type='str'),
    max_exit_latency_us=dict(type='int'),
    pm_qos_latency_us=dict(type='int'),
    haltpoll=dict(type='dict', options=knob_options(HALTPOLL_KNOBS)),
    kvm=dict(type='dict', options=knob_options(KVM_KNOBS)),
)


def run(subsystem_run):
    """aitune.kernel.cpuidle: idle states above an exit latency off, the PM QoS holder and the halt-polling windows."""
    return run_plan(subsystem_run, lambda engine: CpuidlePlan(engine.fs, subsystem_run.params,
                                                              systemd=engine.systemctl is not None))
