# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The applying subsystems: each one's options and its run, shared by its own module and the profile module.

A subsystem module (aitune.kernel.sched and the others) validates its options with AnsibleModule and runs its
subsystem. The profile module validates each subsystem's options against the same argument spec and runs several
subsystems in one module call, one after the other, in the order of SUBSYSTEM_RUNS: slices exist before services
are placed in them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import OrderedDict, namedtuple

from ansible_collections.aitune.kernel.plugins.module_utils import _block
from ansible_collections.aitune.kernel.plugins.module_utils._cgroup import (
    apply_plan, parse_slices, plan_slices, slice_results)
from ansible_collections.aitune.kernel.plugins.module_utils._cpufreq import CpufreqPlan
from ansible_collections.aitune.kernel.plugins.module_utils._cpuidle import CpuidlePlan
from ansible_collections.aitune.kernel.plugins.module_utils._cpupower import run_plan
from ansible_collections.aitune.kernel.plugins.module_utils._hugepages import ARGUMENT_SPEC as HUGEPAGES_SPEC
from ansible_collections.aitune.kernel.plugins.module_utils._hugepages import apply_hugepages
from ansible_collections.aitune.kernel.plugins.module_utils._irq import IrqHostFS, IrqPlan
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import MEMORY_KNOBS, SCHED_KNOBS
from ansible_collections.aitune.kernel.plugins.module_utils._module import (
    apply_knobs, build_module, exit_with_result, knob_options, run_engine)
from ansible_collections.aitune.kernel.plugins.module_utils._placement import (
    IO_CLASSES, NUMA_POLICIES, POLICIES, PlacementSystemctl, apply_placement, parse_services)
from ansible_collections.aitune.kernel.plugins.module_utils._systemd import Systemctl

# ``module``: the subsystem's own module; ``argument_spec`` and ``mutually_exclusive``: its options, without the
# common ones (root, persist, strict); ``run(Run)``: applies and returns the module result, or raises RunFailed.
Subsystem = namedtuple('Subsystem', 'name module argument_spec mutually_exclusive run')

DEFAULT_SLICES = {'aitune-latency.slice': {'cpu_weight': 10000}, 'aitune-batch.slice': {'cpu_weight': 1}}

# A block rule: which disks, and the queue settings, one option per setting and typed after its validator.
BLOCK_RULE = dict(
    match=dict(type='dict', required=True, options=dict(
        name=dict(type='str'),
        transport=dict(type='str', choices=list(_block.TRANSPORTS)),
        model=dict(type='str'),
        rotational=dict(type='bool'),
    )),
    **knob_options(_block.SETTINGS)
)

PLACEMENT_SERVICE = dict(
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


def _apply_block(run):
    params = run.params

    def body(engine):
        report, plan = _block.apply(engine, params['devices'], persist=params['persist'], strict=params['strict'])
        return report, dict(devices=plan.devices(), skipped_devices=plan.skipped)
    return run_engine(run, body)


def _apply_cgroup(run):
    params = run.params

    def body(engine):
        specs = parse_slices(engine.fs, params['slices'], params['allow_housekeeping_cpus'])
        plan = plan_slices(engine, specs)
        report = apply_plan(engine, plan, persist=params['persist'], strict=params['strict'])
        return report, dict(slices=slice_results(engine, plan))
    return run_engine(run, body)


def _apply_placement(run):
    params = run.params

    def body(engine):
        if isinstance(engine.systemctl, Systemctl) and not isinstance(engine.systemctl, PlacementSystemctl):
            engine.systemctl = PlacementSystemctl(run.module)
        services = parse_services(engine.fs, params['services'], params['allow_housekeeping_cpus'])
        report, outcome = apply_placement(engine, services, restart=params['restart'], strict=params['strict'])
        for unit, message in sorted(outcome.restart_failed.items()):
            run.warn('%s: restart failed, it keeps its old placement until it starts again: %s' % (unit, message))
        return report, dict(services=outcome.services, restart_required=outcome.restart_required,
                            restarted=outcome.restarted, restart_failed=outcome.restart_failed, placed=outcome.placed)
    return run_engine(run, body)


def _apply_irq(run):
    params = run.params

    def body(engine):
        # The kernel's refusal to move one IRQ is an answer about that IRQ, not a failed run.
        engine.fs = IrqHostFS(engine.fs.root)
        plan = IrqPlan(engine.fs, devices=params['devices'], housekeeping=params['housekeeping_cpus'],
                       default_affinity=params['default_affinity'], workqueue=params['workqueue'],
                       allow=params['allow_housekeeping_cpus'], persist=params['persist'],
                       systemd=engine.systemctl is not None)
        report = engine.apply(plan.desired, persist=params['persist'], strict=params['strict'],
                              files=('irq', plan.files))
        for warning in plan.warnings:
            run.warn(warning)
        extra = plan.result()
        extra['irqs'] = plan.explain(report)
        return report, extra
    return run_engine(run, body)


SUBSYSTEM_RUNS = OrderedDict((subsystem.name, subsystem) for subsystem in (
    Subsystem('sched', 'sched', knob_options(SCHED_KNOBS), (), lambda run: apply_knobs(run, SCHED_KNOBS)),
    Subsystem('memory', 'memory', knob_options(MEMORY_KNOBS),
              (('dirty_ratio', 'dirty_bytes'), ('dirty_background_ratio', 'dirty_background_bytes')),
              lambda run: apply_knobs(run, MEMORY_KNOBS)),
    Subsystem('hugepages', 'hugepages', HUGEPAGES_SPEC, (), apply_hugepages),
    Subsystem('block', 'block_queue', dict(
        devices=dict(type='list', elements='dict', required=True, options=BLOCK_RULE),
    ), (), _apply_block),
    Subsystem('cpufreq', 'cpufreq', dict(
        cpus=dict(type='str'),
        governor=dict(type='str'),
        energy_performance_preference=dict(type='str'),
        energy_perf_bias=dict(type='int'),
        min_perf_pct=dict(type='int'),
        min_freq=dict(type='str'),
        boost=dict(type='bool'),
    ), (), lambda run: run_plan(run, lambda engine: CpufreqPlan(engine.fs, run.params))),
    Subsystem('cpuidle', 'cpuidle', dict(
        cpus=dict(type='str'),
        max_exit_latency_us=dict(type='int'),
        pm_qos_latency_us=dict(type='int'),
    ), (), lambda run: run_plan(
        run, lambda engine: CpuidlePlan(engine.fs, run.params, systemd=engine.systemctl is not None))),
    Subsystem('cgroup', 'cgroup', dict(
        slices=dict(type='dict', default=DEFAULT_SLICES),
        allow_housekeeping_cpus=dict(type='bool', default=False),
    ), (), _apply_cgroup),
    Subsystem('placement', 'service_placement', dict(
        services=dict(type='list', elements='dict', required=True, options=PLACEMENT_SERVICE),
        restart=dict(type='bool', default=False),
        allow_housekeeping_cpus=dict(type='bool', default=False),
    ), (), _apply_placement),
    Subsystem('irq', 'irq_affinity', dict(
        devices=dict(type='list', elements='str', default=[]),
        housekeeping_cpus=dict(type='str'),
        default_affinity=dict(type='bool', default=False),
        workqueue=dict(type='bool', default=False),
        allow_housekeeping_cpus=dict(type='bool', default=False),
    ), (), _apply_irq),
))


def run_subsystem_module(name):
    """The whole of a subsystem module's ``main()``."""
    subsystem = SUBSYSTEM_RUNS[name]
    module = build_module(subsystem.argument_spec, mutually_exclusive=list(subsystem.mutually_exclusive) or None)
    exit_with_result(module, subsystem.run)
