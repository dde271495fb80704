# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""CPU idle states: the cpuidle knob family, and the PM QoS holder behind aitune.kernel.cpuidle.

Two ways to keep CPUs out of deep idle states, whose exit costs about 2 us for C1, 10 us for C1E and 130 us for C6
(intel_idle tables):

* per CPU and state, ``/sys/devices/system/cpu/cpuN/cpuidle/stateK/disable``; the states are the driver's own, so
  they are read from the host, and a state is disabled when its exit latency is above the limit;
* a CPU latency PM QoS request: the cpuidle governor then skips every state that exits slower than the request.
  The request lasts only while a process holds ``/dev/cpu_dma_latency`` open, so the holder is a small systemd
  service; a process started outside systemd would not survive this run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from string import Template

from ansible_collections.aitune.kernel.plugins.module_utils._cpupower import run_plan, select_cpus
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CPU_DIR, format_cpulist
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    ValidationError, shown)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cpuidle import (
    state_knob)

CPUIDLE_DIR = CPU_DIR + '/cpuidle'
DRIVER_PATH = CPUIDLE_DIR + '/current_driver'
# current_governor is writable and only there with cpuidle_sysfs_switch before 5.7; current_governor_ro is always there.
GOVERNOR_PATHS = (CPUIDLE_DIR + '/current_governor_ro', CPUIDLE_DIR + '/current_governor')
# The haltpoll governor (drivers/cpuidle/governors/haltpoll.c) picks polling or its one halt state from its own poll
# window and the PM QoS request alone: it never reads the per-state disable files.
IGNORES_STATE_SWITCHES = ('haltpoll',)
PMQOS_DEVICE = '/dev/cpu_dma_latency'
PMQOS_UNIT = 'aitune-pmqos.service'
PMQOS_SUBSYSTEM = 'cpuidle'
# The kernel's own "no constraint" value for CPU latency QoS: 2000 s.
PMQOS_MAX_US = 2000000000
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


# -- planning --------------------------------------------------------------------------------------------------------
def _microseconds(option, value, high):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError('%s: expected a whole number of microseconds, got %s' % (option, shown(value)))
    if not 0 <= value <= high:
        raise ValidationError('%s: %d is out of range, expected 0 to %d microseconds' % (option, value, high))
    return value


class CpuidlePlan(object):
    """What one cpuidle run asks for, validated as a whole before anything is written.

    ``desired`` holds the state knobs for the engine, ``unsupported`` the settings with no knob on this host (name ->
    (reason, requested value)), ``units`` the holder unit set the cpuidle subsystem owns (None when systemd does not
    run here, so nothing about units changes), ``pm_qos`` the holder's part of the result.
    """

    def __init__(self, fs, params, systemd):
        self.fs = fs
        self.desired = {}
        self.unsupported = {}
        self.warnings = []
        limit = _microseconds('max_exit_latency_us', params.get('max_exit_latency_us'), EXIT_LATENCY_MAX_US)
        request = _microseconds('pm_qos_latency_us', params.get('pm_qos_latency_us'), PMQOS_MAX_US)
        self.cpus = select_cpus(fs, params.get('cpus'))
        self.driver = current_driver(fs)
        self.governor = current_governor(fs) if self.driver else None
        if limit is not None:
            self._plan_states(limit)

        self.pm_qos = {'requested': request, 'unit': PMQOS_UNIT, 'active': None, 'state': None, 'reason': None}
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

    def _plan_states(self, limit):
        if self.driver is None:
            self.unsupported['cpuidle.max_exit_latency_us'] = (NO_DRIVER, limit)
            return
        bare = []
        for cpu in sorted(self.cpus):
            states = [state for state in cpu_states(self.fs, cpu) if not state.is_poll]
            if not states:
                bare.append(cpu)
            for state in states:
                self.desired[state_knob(cpu, state.number).name] = state.latency_us > limit
        if self.governor in IGNORES_STATE_SWITCHES and any(self.desired.values()):
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

    def owned(self):
        return {'units': self.units} if self.units is not None else {}

    def result(self, engine):
        return {'driver': self.driver, 'governor': self.governor, 'pm_qos': self._pm_qos_outcome(engine)}

    def _pm_qos_outcome(self, engine):
        """The holder's state after the engine ran: active is what systemd says of the unit."""
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
)


def run(subsystem_run):
    """aitune.kernel.cpuidle: idle states above an exit latency off, and the PM QoS holder."""
    return run_plan(subsystem_run, lambda engine: CpuidlePlan(engine.fs, subsystem_run.params,
                                                              systemd=engine.systemctl is not None))
