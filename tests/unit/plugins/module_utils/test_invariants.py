# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The rules between subsystems (_invariants.RULES), each checked from both of its sides, on fake trees."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _invariants
from ansible_collections.aitune.kernel.plugins.module_utils._cgroup import parse_slices
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._invariants import RULES
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._placement import parse_services
from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import SUBSYSTEM_RUNS
from ansible_collections.aitune.kernel.plugins.modules import hugepages, irq, memory, placement, sched
from ansible_collections.aitune.kernel.tests.unit.cgtree import FakeSystemd, install_layout
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import use_systemd
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

RT_RUNTIME = '/proc/sys/kernel/sched_rt_runtime_us'
DROPIN = '/etc/systemd/system/vllm.service.d/90-aitune.conf'
WORKQUEUE = '/sys/devices/virtual/workqueue/cpumask'
DEFAULT_AFFINITY = '/proc/irq/default_smp_affinity'
MIN_FREE = '/proc/sys/vm/min_free_kbytes'
NR_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'
FIFO = {'name': 'vllm.service', 'cpu_scheduling_policy': 'fifo', 'cpu_scheduling_priority': 10}


def test_every_rule_has_two_sides_each_a_subsystem():
    assert [rule.name for rule in RULES] == ['rt-placement-needs-rt-throttling', 'irq-and-workqueue-keep-housekeeping',
                                             'hugepages-under-memory-cap']
    for rule in RULES:
        assert len(rule.sides) >= 2 and rule.why
        for subsystem, check in rule.sides.items():
            assert subsystem in SUBSYSTEM_RUNS and callable(check)


# -- (a) fifo/rr placement needs RT throttling -------------------------------------------------------------------------
@pytest.fixture
def systemd_host(make_host, monkeypatch):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    systemd.add_service('vllm.service', 4242)
    use_systemd(monkeypatch, systemd)
    return host


@pytest.mark.parametrize('runtime', ['-1\n', '1000000\n'])
def test_rt_placement_side_refuses_fifo_while_throttling_is_off(systemd_host, runtime):
    host = systemd_host
    host.write(RT_RUNTIME, runtime)
    before = host.snapshot()
    code, result = run_module(placement, {'root': host.root, 'services': [FIFO]})
    assert code == 1 and 'RT throttling is off' in result['msg'] and 'vllm.service' in result['msg'], result
    assert host.snapshot() == before


@pytest.mark.parametrize('runtime', [-1, 1000000])
def test_rt_sched_side_refuses_switching_throttling_off_under_fifo_placement(systemd_host, runtime):
    host = systemd_host
    code, result = run_module(placement, {'root': host.root, 'services': [FIFO]})
    assert code == 0 and 'CPUSchedulingPolicy=fifo' in host.read(DROPIN), result
    before = host.snapshot()
    code, result = run_module(sched, {'root': host.root, 'rt_runtime_us': runtime})
    assert code == 1, result
    for word in ('rt_runtime_us %d would switch RT throttling off' % runtime, 'vllm.service: fifo in ' + DROPIN):
        assert word in result['msg']
    assert host.snapshot() == before and host.value(RT_RUNTIME) == '950000'


@pytest.mark.parametrize('dropin, runtime', [
    (None, -1),
    ('[Service]\nCPUSchedulingPolicy=other\n', -1),
    ('[Service]\nCPUSchedulingPolicy=fifo\nCPUSchedulingPriority=10\n', 900000),
])
def test_rt_sched_side_allows_what_leaves_no_fifo_service_unthrottled(make_host, dropin, runtime):
    host = make_host('6.12')
    if dropin:
        host.write(DROPIN, dropin)
    code, result = run_module(sched, {'root': host.root, 'rt_runtime_us': runtime})
    assert code == 0, result
    assert host.value(RT_RUNTIME) == str(runtime)


# -- (b) IRQs and the workqueue mask keep a housekeeping CPU ---------------------------------------------------------
def test_irq_side_refuses_steering_that_leaves_no_numa_first_cpu(make_host):
    host = irq_host(make_host)
    before = host.snapshot()
    code, result = run_module(irq, {'root': host.root, 'workqueue': True, 'housekeeping_cpus': '1-3,5-7'})
    assert code == 1, result
    assert 'would leave no housekeeping CPU' in result['msg']
    assert host.snapshot() == before


@pytest.mark.parametrize('path', [WORKQUEUE, DEFAULT_AFFINITY])
def test_reservation_side_refuses_taking_every_cpu_irqs_are_steered_to(make_host, path):
    host = irq_host(make_host)
    code, result = run_module(irq, {'root': host.root, 'workqueue': True, 'default_affinity': True,
                                    'housekeeping_cpus': '0,4'})
    assert code == 0 and host.value(WORKQUEUE) == '11', result
    fs = HostFS(host.root)
    # One of the two steered, the other open to every CPU again.
    host.write(WORKQUEUE if path == DEFAULT_AFFINITY else DEFAULT_AFFINITY, 'ff\n')
    with pytest.raises(ValidationError) as caught:
        parse_services(fs, [{'name': 'vllm.service', 'cpu_affinity': '0,4'}])
    assert 'reserving CPUs 0,4 would take every CPU that %s steers' % path in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        parse_slices(fs, {'aitune-latency.slice': {'cpu_weight': 1000, 'allowed_cpus': '0-4'}})
    assert 'aitune-latency.slice allowed_cpus: reserving CPUs 0-4' in str(caught.value)
    # One steered CPU left out is enough, and the documented override still overrides.
    assert parse_services(fs, [{'name': 'vllm.service', 'cpu_affinity': '0-3'}])
    assert parse_services(fs, [{'name': 'vllm.service', 'cpu_affinity': '0,4'}], allow_housekeeping_cpus=True)


def test_reservation_side_ignores_masks_that_are_not_steered(make_host):
    host = irq_host(make_host)
    assert _invariants.steered_cpus(HostFS(host.root)) == {}
    with pytest.raises(ValidationError) as caught:
        # Only the guard of the housekeeping CPUs speaks here: every CPU is still open to IRQs.
        parse_services(HostFS(host.root), [{'name': 'vllm.service', 'cpu_affinity': '0-7'}])
    assert 'would leave no housekeeping CPU' in str(caught.value) and 'steers' not in str(caught.value)
    assert _invariants.check_reservation(HostFS(host.root), {0, 4}, 'pinning') is None


# -- (c) hugepages under the memory cap --------------------------------------------------------------------------------
def test_hugepages_side_keeps_the_pools_under_the_cap(make_host):
    host = make_host('6.12')
    host.write(MIN_FREE, '5242880\n')
    before = host.snapshot()
    # 12000 MiB of pools is within max_percent 80 (12802 MiB), but with 5120 MiB of free reserve above 90%.
    code, result = run_module(hugepages, {'root': host.root, 'max_percent': 80,
                                          'pools': [{'size': '2M', 'count': 6000}]})
    assert code == 1, result
    assert 'hugepage pools of 12000 MiB and vm.min_free_kbytes of 5120 MiB' in result['msg']
    assert host.snapshot() == before
    # The max_percent cap itself is the same rule's first check.
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 6000}]})
    assert code == 1 and 'above the cap of 50%' in result['msg']


def test_memory_side_keeps_the_free_reserve_beside_the_pools_under_the_cap(make_host):
    host = make_host('6.12')
    host.write(NR_2M, '6000\n')
    before = host.snapshot()
    code, result = run_module(memory, {'root': host.root, 'min_free_kbytes': 5242880})
    assert code == 1, result
    assert result['msg'].startswith('memory: hugepage pools of 12000 MiB and vm.min_free_kbytes of 5120 MiB')
    assert host.snapshot() == before
    host.write(NR_2M, '0\n')
    code, result = run_module(memory, {'root': host.root, 'min_free_kbytes': 5242880})
    assert code == 0 and host.value(MIN_FREE) == '5242880', result
