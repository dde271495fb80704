# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The aggressive mode, as its role hands it to aitune.kernel.profile, on every host shape of cases/cpu_shapes.yml:
a small q35 guest (fixtures/trees/irq_small.yml) under systemd on cgroup v2, from one CPU in all and one CPU per NUMA
node up. Where no latency CPU can be carved out, the partition's settings are unsupported with the reason and the
rest of the mode applies, reads back and is recorded; a second run changes nothing, restore gives the tree back, and
a refusal in the last subsystem leaves the host untouched."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.aitune.kernel.plugins.modules import profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.cgtree import FakeSystemd, install_layout
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import use_systemd
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host, knob_names, load_spec, reshape
from ansible_collections.aitune.kernel.tests.unit.modes import mode_profile
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

SHAPES = load_cases('cpu_shapes.yml')
ONLINE = '/sys/devices/system/cpu/online'
RECORD = {'mode': 'aggressive', 'collection_version': '0.1.0'}
WORKLOADS = {'latency': ['vllm.service'], 'batch': ['trainer.service']}
UNIT_DIR = '/etc/systemd/system'
DROPIN = UNIT_DIR + '/vllm.service.d/90-aitune.conf'
# The settings of the mode that follow the partition, beside one knob per device IRQ.
PARTITION_KNOBS = ('cgroup.aitune-latency.cpuset.cpus', 'cgroup.aitune-batch.cpuset.cpus', 'irq.default_affinity',
                   'workqueue.cpumask')
STATES = ('applied', 'unsupported', 'not_permitted')
# Where IRQ and workqueue steering writes.
STEERING_PATHS = ('/proc/irq/', '/sys/devices/virtual/workqueue/')


def shape_host(make_host, monkeypatch, case):
    """The guest of fixtures/trees/irq_small.yml on the case's CPUs, under systemd on cgroup v2."""
    host = irq_host(make_host, name='irq_small', shape=case['nodes'])
    online = host.read(ONLINE)
    cgroupfs = install_layout(host, 'v2_systemd')
    # The layout brings the CPUs of the cgroup tests' host; this one keeps its own.
    host.write(ONLINE, online)
    # Where systemd is PID 1 its unit directory is there before any unit of the collection.
    os.makedirs(host.path(UNIT_DIR))
    use_systemd(monkeypatch, FakeSystemd(host, cgroupfs))
    return host


def effective_files(host):
    """The effective affinity of each IRQ: which CPU of an affinity the kernel delivers to is its own choice each time
    the affinity is written, so restoring an affinity need not bring back the same effective CPU."""
    return tuple('/proc/irq/%d/%s' % (row['irq'], leaf) for row in host.irq_spec['irqs']
                 for leaf in ('effective_affinity', 'effective_affinity_list'))


def irq_rows(case):
    """``{knob name: row}`` of the device IRQs the mode's ``devices: ['*']`` matches on this shape: each named after
    its actions, the two i8042 IRQs told apart by their IO-APIC pins."""
    spec = reshape(load_spec('irq_small'), case['nodes'])
    names = knob_names(spec)
    return {names[row['irq']]: row for row in spec['irqs'] if row['names']}


def tune(host, check_mode=False, **options):
    args = dict({'root': host.root, 'subsystems': mode_profile('aggressive'), 'workloads': WORKLOADS,
                 'record': RECORD}, **options)
    return run_module(profile, args, check_mode=check_mode)


def knob(result, name):
    return next(entry for sub in result['subsystems'].values() for knob_name, entry in sub['knobs'].items()
                if knob_name == name)


@pytest.mark.parametrize('case', SHAPES, ids=[case['id'] for case in SHAPES])
def test_the_aggressive_mode_on_every_shape(make_host, monkeypatch, case):
    host = shape_host(make_host, monkeypatch, case)
    original = host.snapshot(ignore=effective_files(host))
    partition = case['partition']
    reason = partition['reason']

    code, preview = tune(host, check_mode=True)
    assert code == 0, preview
    assert preview['cpu_partition']['reason'] == reason
    assert host.snapshot(ignore=effective_files(host)) == original

    code, result = tune(host)
    assert code == 0, result
    assert result['cpu_partition'] == dict(partition, state='unsupported' if reason else 'supported')
    # Every setting ends applied, unsupported or not_permitted; every one not applied says why.
    assert set(result['knobs'].values()) <= set(STATES)
    for name, state in result['knobs'].items():
        if state != 'applied':
            why = result['unsupported'].get(name) or result['not_permitted'].get(name)
            assert why, name
    irqs = irq_rows(case)
    if reason:
        for name in PARTITION_KNOBS + tuple(irqs):
            assert result['unsupported'][name] == reason, name
        # Nothing of the partition was written: no affinity, no mask, no CPUs for the slices.
        assert [path for path, dummy in host.kernel.writes if path.startswith(STEERING_PATHS)] == []
        assert 'AllowedCPUs' not in host.read(UNIT_DIR + '/aitune-latency.slice')
        assert result['subsystems']['irq']['latency_cpus'] == ''
    else:
        for name, value in case['aggressive'].items():
            assert result['knobs'][name] == 'applied', name
            assert knob(result, name)['value'] == value, name
        for name, row in irqs.items():
            if row.get('managed') or row.get('fixed'):
                assert result['knobs'][name] == 'not_permitted', name
            else:
                assert result['knobs'][name] == 'applied', name
                assert host.value('/proc/irq/%d/smp_affinity_list' % row['irq']) == partition['batch']
    # The rest of the mode applies on every shape, and reads back.
    for name in ('sched.rt_runtime_us', 'sched.numa_balancing', 'vm.swappiness', 'cgroup.aitune-latency.cpu.weight',
                 'cgroup.aitune-batch.cpu.weight'):
        assert result['knobs'][name] == 'applied', name
    assert 'CPUSchedulingPolicy=fifo' in host.read(DROPIN)
    assert result['changed'] is True and result['fact']['mode'] == 'aggressive' and result['drift'] == {}

    # What verify.yml reads: the mode is recorded and nothing drifted. The facts tell the partition too.
    code, facts = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['recorded', 'drift', 'cpus']})
    assert code == 0, facts
    tuning = facts['ansible_facts']['aitune_tuning']
    assert tuning['recorded']['mode'] == 'aggressive' and tuning['drift'] == {}
    assert tuning['recorded']['unsupported'] == result['unsupported']
    assert tuning['cpus']['latency'] == partition['latency'] and tuning['cpus']['partition_reason'] == reason

    code, again = tune(host)
    assert code == 0 and again['changed'] is False and again['in_sync'] is True, again
    assert again['unsupported'] == result['unsupported']
    # Every subsystem run again, past the record's shortcut, finds nothing to change either.
    code, again = tune(host, record=None)
    assert code == 0 and again['changed'] is False and again['in_sync'] is False, again
    assert again['unsupported'] == result['unsupported']

    code, undone = run_module(restore, {'root': host.root})
    assert code == 0, undone
    assert host.snapshot(ignore=effective_files(host)) == original


def test_a_refusal_in_the_last_subsystem_leaves_the_host_untouched(make_host, monkeypatch):
    """IRQs steered onto CPU 1 alone would leave CPU 0 of neither node to housekeeping: irq, the last subsystem,
    refuses, and the subsystems before it (sched, memory, cgroup, placement) have written nothing either."""
    case = next(case for case in SHAPES if case['id'] == 'two-nodes-of-two-cpus')
    host = shape_host(make_host, monkeypatch, case)
    before = host.snapshot()
    code, result = tune(host, housekeeping_cpus='1')
    assert code == 1, result
    assert result['failed_subsystem'] == 'irq' and result['changed'] is False
    assert result['msg'].startswith('irq: ')
    assert 'would leave no housekeeping CPU' in result['msg']
    assert 'before anything was written' in result['msg']
    assert 'subsystems planned before it: sched, memory, cpufreq, cpuidle, cgroup, placement' in result['msg']
    assert host.snapshot() == before
