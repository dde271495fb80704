# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Where and how a systemd service runs: its slice, scheduling class, nice, timer slack, CPUs, NUMA policy and I/O
class, set through one drop-in per service, and read back from the kernel once the service runs.

Why: host-wide knobs moved the agent's wake latency very little in the collection's measurements; placing the
latency-critical service moved it a lot (cgroup weight, then class, slack and CPUs; FIELD_NOTES section 4).

The drop-ins (``/etc/systemd/system/<unit>.d/90-aitune.conf``) are files the ``placement`` subsystem owns as one set:
each run names every service it places, so a service left out loses its drop-in. systemd is reloaded when they change;
a running service takes a new placement only when it restarts, which this module does only when asked.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.aitune.kernel.plugins.module_utils._cgroup import slice_stem
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    PartitionUnsupported, format_cpulist, guard_reserved, option_cpus, parse_cpulist)
from ansible_collections.aitune.kernel.plugins.module_utils._engine import EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError
from ansible_collections.aitune.kernel.plugins.module_utils._invariants import (  # noqa: F401 pylint: disable=unused-import
    RT_PERIOD, RT_POLICIES, RT_RUNTIME, check_reservation, check_rt_placement, rt_throttling)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError, shown
from ansible_collections.aitune.kernel.plugins.module_utils._persist import (
    DROPIN_LEAF, UNIT_DIR, State, dropin_path, owned_file_kind, FILE_DROPIN)
from ansible_collections.aitune.kernel.plugins.module_utils._report import APPLIED, UNSUPPORTED, Report
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import Systemctl
from ansible_collections.aitune.kernel.plugins.module_utils._run import run_engine

SUBSYSTEM = 'placement'
# A plain service name, a template instance allowed: vllm.service, agent-runner.service, worker@1.service.
SERVICE_NAME = re.compile(r'^[A-Za-z0-9_.:-]+(@[A-Za-z0-9_.:-]*)?\.service$')
# A template itself (getty@.service): a drop-in for it applies to every instance, running or started later.
TEMPLATE_NAME = re.compile(r'^[A-Za-z0-9_.:-]+@\.service$')
POLICIES = ('other', 'batch', 'idle', 'fifo', 'rr')
NUMA_POLICIES = ('default', 'preferred', 'bind', 'interleave', 'local')
NUMA_POLICIES_WITH_MASK = ('preferred', 'bind', 'interleave')
IO_CLASSES = ('realtime', 'best-effort', 'idle')
NODE_ONLINE = '/sys/devices/system/node/online'
TIMER_SLACK_MAX = (1 << 32) - 1
# sched_setscheduler(2) numbers, as /proc/PID/stat shows the policy.
POLICY_NUMBERS = {0: 'other', 1: 'fifo', 2: 'rr', 3: 'batch', 5: 'idle', 6: 'deadline'}

# The drop-in's settings in the order they are written: (option, systemd setting).
SETTINGS = (
    ('slice', 'Slice'),
    ('cpu_scheduling_policy', 'CPUSchedulingPolicy'),
    ('cpu_scheduling_priority', 'CPUSchedulingPriority'),
    ('nice', 'Nice'),
    ('timer_slack_ns', 'TimerSlackNSec'),
    ('cpu_affinity', 'CPUAffinity'),
    ('numa_policy', 'NUMAPolicy'),
    ('numa_mask', 'NUMAMask'),
    ('io_scheduling_class', 'IOSchedulingClass'),
)
OPTIONS = tuple(option for option, dummy in SETTINGS)


class PlacementSystemctl(Systemctl):
    """systemctl plus what placement reads: a service's main PID."""

    def main_pid(self, unit):
        rc, out, dummy = self.module.run_command([self.binary, 'show', '--property=MainPID', '--value', unit])
        text = out.strip() if rc == 0 else ''
        return int(text) if text.isdigit() else 0


class Service(object):
    """One service to place: its unit name and validated settings (python values), and the settings this host cannot
    carry with why (``unsupported``: a CPU word of a partition its shape cannot have)."""

    def __init__(self, unit, settings, unsupported=None):
        self.unit = unit
        self.settings = settings
        self.unsupported = unsupported or {}

    def setting_name(self, option):
        """The name a setting of this service is reported under, beside the knobs."""
        return '%s.%s.%s' % (SUBSYSTEM, self.unit, option)

    @property
    def dropin(self):
        return dropin_path(self.unit)


# -- validation --------------------------------------------------------------------------------------------------------
def numa_nodes(fs):
    text = (fs.read_optional(NODE_ONLINE, follow=True) or '0').strip()
    return parse_cpulist(text, what=NODE_ONLINE)


def parse_services(fs, services, allow_housekeeping_cpus=False):
    """Validate the ``services`` option; returns ``[Service]``. Raises ValidationError listing every problem."""
    problems = []
    result = []
    seen = set()
    for entry in services or []:
        unit = entry.get('name')
        try:
            if not isinstance(unit, str) or not SERVICE_NAME.match(unit) or len(unit) > 200:
                raise ValidationError('service %s: not a systemd service name such as vllm.service or '
                                      'agent-runner.service' % (shown(unit),))
            if TEMPLATE_NAME.match(unit):
                raise ValidationError('service %s: a template unit; its drop-in would place every instance of it, '
                                      'those running and those started later, alike. Name each instance to place, '
                                      'such as %s' % (unit, unit.replace('@.service', '@1.service')))
            if unit in seen:
                raise ValidationError('service %s: listed more than once' % unit)
            seen.add(unit)
            unsupported = {}
            settings = _parse_settings(fs, unit, entry, allow_housekeeping_cpus, unsupported)
            result.append(Service(unit, settings, unsupported))
        except ValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise ValidationError('invalid services, nothing was changed: ' + '; '.join(problems))
    return result


def _parse_settings(fs, unit, entry, allow_housekeeping_cpus, unsupported):
    """The service's settings as python values; a CPU word this host's shape leaves without CPUs goes into
    ``unsupported`` (option -> reason) instead."""
    settings = {option: entry.get(option) for option in OPTIONS if entry.get(option) is not None}
    if not settings:
        raise ValidationError('service %s: no setting given; name at least one of %s' % (unit, ', '.join(OPTIONS)))
    if 'slice' in settings:
        slice_stem(settings['slice'], own=False)
    policy = settings.get('cpu_scheduling_policy')
    if policy is not None and policy not in POLICIES:
        raise ValidationError('service %s: cpu_scheduling_policy %s is not one of %s' % (unit, shown(policy), ', '.join(POLICIES)))
    priority = settings.get('cpu_scheduling_priority')
    if policy in RT_POLICIES:
        if priority is None or not 1 <= priority <= 99:
            raise ValidationError('service %s: cpu_scheduling_policy %s needs cpu_scheduling_priority from 1 to 99'
                                  % (unit, policy))
        # Rule rt-placement-needs-rt-throttling (_invariants.RULES); sched checks the other direction.
        check_rt_placement(fs, unit)
    elif priority is not None:
        raise ValidationError('service %s: cpu_scheduling_priority applies to fifo and rr only' % unit)
    if 'nice' in settings and not -20 <= settings['nice'] <= 19:
        raise ValidationError('service %s: nice %d is out of range, expected -20 to 19' % (unit, settings['nice']))
    if 'timer_slack_ns' in settings and not 1 <= settings['timer_slack_ns'] <= TIMER_SLACK_MAX:
        raise ValidationError('service %s: timer_slack_ns %d is out of range, expected 1 to %d'
                              % (unit, settings['timer_slack_ns'], TIMER_SLACK_MAX))
    if 'cpu_affinity' in settings:
        what = 'service %s cpu_affinity' % unit
        try:
            cpus = option_cpus(fs, settings['cpu_affinity'], what)
        except PartitionUnsupported as exc:
            unsupported['cpu_affinity'] = (str(exc), settings.pop('cpu_affinity'))
        else:
            guard_reserved(fs, cpus, what, allow=allow_housekeeping_cpus)
            # Rule irq-and-workqueue-keep-housekeeping (_invariants.RULES): the CPUs IRQs are steered to stay free.
            check_reservation(fs, cpus, what, allow=allow_housekeeping_cpus)
            settings['cpu_affinity'] = format_cpulist(cpus)
    _check_numa(fs, unit, settings)
    if settings.get('io_scheduling_class', IO_CLASSES[0]) not in IO_CLASSES:
        raise ValidationError('service %s: io_scheduling_class %s is not one of %s'
                              % (unit, shown(settings['io_scheduling_class']), ', '.join(IO_CLASSES)))
    return settings


def _check_numa(fs, unit, settings):
    numa_policy = settings.get('numa_policy')
    if numa_policy is not None and numa_policy not in NUMA_POLICIES:
        raise ValidationError('service %s: numa_policy %s is not one of %s' % (unit, shown(numa_policy), ', '.join(NUMA_POLICIES)))
    if 'numa_mask' in settings:
        if numa_policy not in NUMA_POLICIES_WITH_MASK:
            raise ValidationError('service %s: numa_mask goes with numa_policy %s' % (unit, ', '.join(NUMA_POLICIES_WITH_MASK)))
        what = 'service %s numa_mask' % unit
        nodes = parse_cpulist(settings['numa_mask'], what=what)
        online = numa_nodes(fs)
        if not nodes or nodes - online:
            raise ValidationError('%s: node %s not online (online: %s)'
                                  % (what, format_cpulist(nodes - online) or 'list empty', format_cpulist(online)))
        settings['numa_mask'] = format_cpulist(nodes)
    elif numa_policy in NUMA_POLICIES_WITH_MASK:
        raise ValidationError('service %s: numa_policy %s needs numa_mask' % (unit, numa_policy))


def render_dropin(service):
    lines = ['# Managed by aitune.kernel; removed by aitune.kernel.restore.', '[Service]']
    for option, setting in SETTINGS:
        if option in service.settings:
            lines.append('%s=%s' % (setting, service.settings[option]))
    return '\n'.join(lines) + '\n'


# -- reading back ------------------------------------------------------------------------------------------------------
def _status_field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ':'):
            return line.split(':', 1)[1].strip()
    return None


def read_placement(fs, pid):
    """How the kernel runs process ``pid`` now: policy, RT priority, nice, timer slack, allowed CPUs and memory nodes,
    and its cgroup. All of it from /proc, which the kernel keeps; the main thread's view."""
    base = '/proc/%d' % pid
    try:
        stat = fs.read(base + '/stat')
        status = fs.read(base + '/status')
    except FsError as exc:
        return {'main_pid': pid, 'error': str(exc)}
    # The command name may hold spaces and parentheses; the fields after it start at the last ")".
    fields = stat[stat.rindex(')') + 2:].split()
    policy = int(fields[41 - 3])
    slack = (fs.read_optional(base + '/timerslack_ns') or '').strip()
    cgroup = None
    for line in (fs.read_optional(base + '/cgroup') or '').splitlines():
        hierarchy, dummy, path = line.split(':', 2)
        if hierarchy == '0' or (cgroup is None and 'name=systemd' in line):
            cgroup = path
    return {
        'main_pid': pid,
        'policy': POLICY_NUMBERS.get(policy, str(policy)),
        'priority': int(fields[40 - 3]),
        'nice': int(fields[19 - 3]),
        'timer_slack_ns': int(slack) if slack.isdigit() else None,
        'cpus_allowed': _status_field(status, 'Cpus_allowed_list'),
        'mems_allowed': _status_field(status, 'Mems_allowed_list'),
        'cgroup': cgroup,
    }


def mismatches(service, placed):
    """Settings the running process does not show, ``{setting: {desired, live}}``."""
    wanted = service.settings
    found = {}

    def differs(option, desired, live):
        if desired != live:
            found[option] = {'desired': desired, 'live': live}

    if 'slice' in wanted:
        parts = (placed.get('cgroup') or '').split('/')
        differs('slice', wanted['slice'], wanted['slice'] if wanted['slice'] in parts else placed.get('cgroup'))
    if 'cpu_scheduling_policy' in wanted:
        differs('cpu_scheduling_policy', wanted['cpu_scheduling_policy'], placed.get('policy'))
    if 'cpu_scheduling_priority' in wanted:
        differs('cpu_scheduling_priority', wanted['cpu_scheduling_priority'], placed.get('priority'))
    if 'nice' in wanted:
        differs('nice', wanted['nice'], placed.get('nice'))
    if 'timer_slack_ns' in wanted:
        differs('timer_slack_ns', wanted['timer_slack_ns'], placed.get('timer_slack_ns'))
    if 'cpu_affinity' in wanted:
        live = placed.get('cpus_allowed')
        differs('cpu_affinity', wanted['cpu_affinity'], format_cpulist(parse_cpulist(live)) if live else live)
    return found


# -- applying ----------------------------------------------------------------------------------------------------------
def _unit_of_dropin(path):
    if owned_file_kind(path) != FILE_DROPIN:
        return None
    return path[len(UNIT_DIR) + 1:-len('.d/' + DROPIN_LEAF)]


class Outcome(object):
    """What the module reports besides the engine's report."""

    def __init__(self):
        self.services = {}
        self.restart_required = []
        self.restarted = []
        self.restart_failed = {}
        self.placed = {}


def apply_placement(engine, services, restart=False, strict=False):
    """Install the drop-ins, restart where asked, and read the placement back. Returns ``(report, Outcome)``."""
    outcome = Outcome()
    systemctl = engine.systemctl
    unsupported = [(service, option, reason, requested) for service in services
                   for option, (reason, requested) in sorted(service.unsupported.items())]
    if strict and unsupported:
        raise EngineError('strict mode, nothing was changed: ' + '; '.join(
            '%s is unsupported: %s' % (service.setting_name(option), reason)
            for service, option, reason, dummy in unsupported))
    if systemctl is None:
        reason = ('systemd is not PID 1 here (or root is not /): a service can only be placed persistently through '
                  'its unit')
        if strict and services:
            raise EngineError('strict mode, nothing was changed: ' + reason)
        for service in services:
            outcome.services[service.unit] = {'state': UNSUPPORTED, 'dropin': service.dropin, 'changed': False,
                                              'reason': reason}
        return _with_unsupported(Report(engine).finish(State(engine.fs)), unsupported), outcome
    # A service left with no setting this host can carry gets no drop-in: one without settings would place nothing.
    placed = [service for service in services if service.settings]
    for service in services:
        if not service.settings:
            outcome.services[service.unit] = {'state': UNSUPPORTED, 'dropin': service.dropin, 'changed': False,
                                              'reason': '; '.join(reason for reason, dummy in
                                                                  service.unsupported.values())}
    services = placed
    files = {service.dropin: render_dropin(service) for service in services}
    report = _with_unsupported(engine.apply({}, strict=strict, files=(SUBSYSTEM, files)), unsupported)
    changed_units = sorted(unit for unit in map(_unit_of_dropin, report.files) if unit)
    for service in services:
        changed = service.dropin in report.files
        outcome.services[service.unit] = {
            'state': APPLIED, 'dropin': service.dropin, 'changed': changed,
            'reason': ('check mode: the drop-in would change' if engine.check_mode else None) if changed else None}
    for unit in changed_units:
        if not systemctl.is_active(unit):
            continue
        if restart and not engine.check_mode:
            try:
                systemctl.restart(unit)
            except FsError as exc:
                # The drop-in is in place either way; the service keeps its old placement until it starts again.
                outcome.restart_failed[unit] = str(exc)
                outcome.restart_required.append(unit)
                continue
            outcome.restarted.append(unit)
            report.actions.append('systemctl restart %s' % unit)
        else:
            outcome.restart_required.append(unit)
    for service in services:
        if systemctl.is_active(service.unit):
            pid = systemctl.main_pid(service.unit)
            if pid:
                placed = read_placement(engine.fs, pid)
                if 'error' not in placed:
                    placed['mismatches'] = mismatches(service, placed)
                outcome.placed[service.unit] = placed
    return report, outcome


def _with_unsupported(report, unsupported):
    """``report`` with each setting a service cannot have on this host recorded as unsupported beside the knobs."""
    for service, option, reason, requested in unsupported:
        report.record(service.setting_name(option), UNSUPPORTED, desired=requested, reason=reason)
    return report


# -- the module's options and run --------------------------------------------------------------------------------------
SERVICE_SPEC = dict(
    name=dict(type='str', required=True),
    slice=dict(type='str'),
    cpu_scheduling_policy=dict(type='str', choices=list(POLICIES)),
    cpu_scheduling_priority=dict(type='int'),
    nice=dict(type='int'),
    timer_slack_ns=dict(type='int'),
    cpu_affinity=dict(type='str'),
    numa_policy=dict(type='str', choices=list(NUMA_POLICIES)),
    numa_mask=dict(type='str'),
    io_scheduling_class=dict(type='str', choices=list(IO_CLASSES)),
)
ARGUMENT_SPEC = dict(
    services=dict(type='list', elements='dict', required=True, options=SERVICE_SPEC),
    restart=dict(type='bool', default=False),
    allow_housekeeping_cpus=dict(type='bool', default=False),
)


def run(subsystem_run):
    """aitune.kernel.placement: a drop-in per service, then each running service's placement read back."""
    params = subsystem_run.params

    def body(engine):
        services = parse_services(engine.fs, params['services'], params['allow_housekeeping_cpus'])
        report, outcome = apply_placement(engine, services, restart=params['restart'], strict=params['strict'])
        for unit, message in sorted(outcome.restart_failed.items()):
            subsystem_run.warn('%s: restart failed, it keeps its old placement until it starts again: %s'
                               % (unit, message))
        return report, dict(services=outcome.services, restart_required=outcome.restart_required,
                            restarted=outcome.restarted, restart_failed=outcome.restart_failed, placed=outcome.placed)
    return run_engine(subsystem_run, body, systemctl_class=PlacementSystemctl)
