# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._placement import read_placement
from ansible_collections.aitune.kernel.plugins.modules import cgroup, placement, restore
from ansible_collections.aitune.kernel.tests.unit.cgtree import FakeSystemd, install_layout
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import use_systemd
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

NOT_STATE = ('/var/lib/aitune',)
DROPIN = '/etc/systemd/system/vllm.service.d/90-aitune.conf'
RUNNER_DROPIN = '/etc/systemd/system/agent-runner.service.d/90-aitune.conf'
RT_RUNTIME = '/proc/sys/kernel/sched_rt_runtime_us'
VLLM = {'name': 'vllm.service', 'slice': 'aitune-latency.slice', 'cpu_scheduling_policy': 'fifo',
        'cpu_scheduling_priority': 10, 'nice': -5, 'timer_slack_ns': 1, 'cpu_affinity': '1-3'}
RUNNER = {'name': 'agent-runner.service', 'slice': 'aitune-batch.slice', 'numa_policy': 'bind', 'numa_mask': '0',
          'io_scheduling_class': 'best-effort'}


@pytest.fixture
def placed_host(make_host, monkeypatch):
    """A systemd host on cgroup v2 with vllm.service running (PID 4242) and agent-runner.service stopped."""
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    systemd.add_service('vllm.service', 4242)
    use_systemd(monkeypatch, systemd)
    return host, systemd


def test_check_mode_changes_nothing(placed_host):
    host, systemd = placed_host
    before = host.snapshot()
    code, result = run_module(placement, {'root': host.root, 'services': [VLLM], 'restart': True},
                              check_mode=True, diff=True)
    assert code == 0, result
    assert result['changed'] is True and result['files'] == [DROPIN]
    assert result['restart_required'] == ['vllm.service'] and result['restarted'] == []
    assert host.snapshot() == before and systemd.calls == []
    assert result['diff'][0]['after_header'] == DROPIN and 'CPUSchedulingPolicy=fifo' in result['diff'][0]['after']


def test_dropin_written_and_restart_left_to_the_user(placed_host):
    host, systemd = placed_host
    original = host.snapshot(ignore=NOT_STATE)
    args = {'root': host.root, 'services': [VLLM, RUNNER]}
    code, result = run_module(placement, args)
    assert code == 0, result
    assert host.read(DROPIN).splitlines()[1:] == [
        '[Service]', 'Slice=aitune-latency.slice', 'CPUSchedulingPolicy=fifo', 'CPUSchedulingPriority=10', 'Nice=-5',
        'TimerSlackNSec=1', 'CPUAffinity=1-3']
    assert 'NUMAPolicy=bind\nNUMAMask=0\nIOSchedulingClass=best-effort\n' in host.read(RUNNER_DROPIN)
    assert systemd.calls == [('daemon-reload',)]
    # vllm runs and keeps its old placement until it restarts; agent-runner is not running.
    assert result['restart_required'] == ['vllm.service']
    assert result['services']['vllm.service'] == {'state': 'applied', 'dropin': DROPIN, 'changed': True, 'reason': None}
    placed = result['placed']['vllm.service']
    assert placed['main_pid'] == 4242 and placed['cgroup'] == '/system.slice/vllm.service'
    assert placed['mismatches']['cpu_scheduling_policy'] == {'desired': 'fifo', 'live': 'other'}
    assert placed['mismatches']['slice'] == {'desired': 'aitune-latency.slice', 'live': '/system.slice/vllm.service'}
    assert 'agent-runner.service' not in result['placed']

    code, again = run_module(placement, args)
    assert code == 0 and again['changed'] is False and again['restart_required'] == [], again
    assert systemd.calls == [('daemon-reload',)]

    code, undone = run_module(restore, {'root': host.root, 'scope': 'placement'})
    assert code == 0 and undone['changed'] is True, undone
    assert systemd.calls[-1] == ('daemon-reload',)
    assert host.snapshot(ignore=NOT_STATE) == original


def test_restart_places_the_running_service_and_reads_it_back(placed_host):
    host, systemd = placed_host
    run_module(cgroup, {'root': host.root})
    code, result = run_module(placement, {'root': host.root, 'services': [VLLM], 'restart': True})
    assert code == 0, result
    assert result['restarted'] == ['vllm.service'] and result['restart_required'] == []
    assert 'systemctl restart vllm.service' in result['actions']
    placed = result['placed']['vllm.service']
    assert placed == {'main_pid': 4242, 'policy': 'fifo', 'priority': 10, 'nice': -5, 'timer_slack_ns': 1,
                      'cpus_allowed': '1-3', 'mems_allowed': '0',
                      'cgroup': '/aitune.slice/aitune-latency.slice/vllm.service', 'mismatches': {}}
    # The kernel's side agrees: the task sits in the slice's service cgroup.
    assert host.value('/sys/fs/cgroup/aitune.slice/aitune-latency.slice/vllm.service/cgroup.procs') == '4242'


def test_restore_of_everything_starts_the_placed_service_again_outside_the_stopped_slice(placed_host):
    # Stopping the latency slice stops vllm with it; restore must not leave the inference server down.
    host, systemd = placed_host
    run_module(cgroup, {'root': host.root})
    run_module(placement, {'root': host.root, 'services': [VLLM], 'restart': True})
    assert host.value('/sys/fs/cgroup/aitune.slice/aitune-latency.slice/vllm.service/cgroup.procs') == '4242'
    code, undone = run_module(restore, {'root': host.root, 'scope': 'all'})
    assert code == 0 and undone['changed'] is True, undone
    assert ('stop', 'aitune-latency.slice') in systemd.calls and systemd.calls[-1] == ('restart', 'vllm.service')
    assert 'started vllm.service again (stopping its slice had stopped it)' in undone['actions']
    assert systemd.is_active('vllm.service') and not systemd.is_active('aitune-latency.slice')
    assert host.value('/sys/fs/cgroup/system.slice/vllm.service/cgroup.procs') == '4242'
    assert host.value('/proc/4242/timerslack_ns') == '50000'


def test_removed_service_loses_its_dropin_and_needs_a_restart(placed_host):
    host, systemd = placed_host
    run_module(placement, {'root': host.root, 'services': [VLLM]})
    code, result = run_module(placement, {'root': host.root, 'services': []})
    assert code == 0 and result['changed'] is True, result
    assert not host.exists(DROPIN) and not host.exists('/etc/systemd/system/vllm.service.d')
    assert result['restart_required'] == ['vllm.service']


def test_failed_restart_is_reported_not_fatal(placed_host):
    host, systemd = placed_host
    systemd.fail_restart.add('vllm.service')
    code, result = run_module(placement, {'root': host.root, 'services': [VLLM], 'restart': True})
    assert code == 0, result
    assert 'Job for vllm.service failed' in result['restart_failed']['vllm.service']
    assert result['restart_required'] == ['vllm.service'] and host.exists(DROPIN)
    # ansible-core 2.19 returns warnings as structured events; their text is what counts.
    assert 'restart failed' in str(result['warnings'])


def test_without_systemd_each_service_is_unsupported(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    before = host.snapshot()
    code, result = run_module(placement, {'root': host.root, 'services': [VLLM, RUNNER]})
    assert code == 0 and result['changed'] is False, result
    assert result['services']['vllm.service']['state'] == 'unsupported'
    assert 'systemd is not PID 1' in result['services']['agent-runner.service']['reason']
    assert host.snapshot() == before
    code, result = run_module(placement, {'root': host.root, 'services': [VLLM], 'strict': True})
    assert code == 1 and 'strict' in result['msg']
    assert host.snapshot() == before


def test_read_placement_survives_odd_command_names(placed_host):
    host, systemd = placed_host
    systemd.add_service('odd.service', 77, comm='a) b (c')
    placed = read_placement(HostFS(host.root), 77)
    assert placed['policy'] == 'other' and placed['nice'] == 0 and placed['timer_slack_ns'] == 50000
    assert read_placement(HostFS(host.root), 999)['error']


@pytest.mark.parametrize('services, words, files', [
    ([dict(VLLM, name='vllm')], ['not a systemd service name'], {}),
    ([dict(VLLM, name='vllm.socket')], ['not a systemd service name'], {}),
    ([dict(VLLM, name='../etc/passwd.service')], ['not a systemd service name'], {}),
    ([dict(VLLM, name='my vllm.service')], ['not a systemd service name'], {}),
    ([VLLM, VLLM], ['more than once'], {}),
    # A template: its drop-in would place every instance alike.
    ([dict(VLLM, name='getty@.service')], ['getty@.service', 'template unit', 'every instance', 'getty@1.service'], {}),
    ([{'name': 'vllm.service'}], ['no setting given'], {}),
    ([dict(VLLM, slice='latency')], ['not a systemd slice name'], {}),
    # RT throttling off: a spinning fifo thread would starve the host.
    ([VLLM], ['RT throttling is off', 'sched_rt_runtime_us is -1'], {RT_RUNTIME: '-1\n'}),
    ([VLLM], ['RT throttling is off'], {RT_RUNTIME: '1000000\n'}),
    ([dict(VLLM, cpu_scheduling_policy='rr', cpu_scheduling_priority=None)], ['needs cpu_scheduling_priority'], {}),
    ([dict(VLLM, cpu_scheduling_priority=100)], ['needs cpu_scheduling_priority from 1 to 99'], {}),
    ([dict(VLLM, cpu_scheduling_policy='other')], ['applies to fifo and rr only'], {}),
    ([dict(VLLM, nice=20)], ['nice 20 is out of range'], {}),
    ([dict(VLLM, timer_slack_ns=0)], ['timer_slack_ns 0 is out of range'], {}),
    ([dict(VLLM, cpu_affinity='2-8')], ['not online', '0-3'], {}),
    ([dict(VLLM, cpu_affinity='0-3')], ['housekeeping', 'allow_housekeeping_cpus'], {}),
    ([dict(VLLM, cpu_affinity='0')], ['housekeeping'], {}),
    ([dict(RUNNER, numa_mask='1')], ['node 1 not online'], {}),
    ([dict(RUNNER, numa_mask=None)], ['needs numa_mask'], {}),
    ([dict(RUNNER, numa_policy='local')], ['numa_mask goes with'], {}),
])
def test_bad_input_is_refused_before_any_write(placed_host, services, words, files):
    host, systemd = placed_host
    for path, content in files.items():
        host.write(path, content)
    before = host.snapshot()
    code, result = run_module(placement, {'root': host.root, 'services': services})
    assert code == 1, result
    assert 'nothing was changed' in result['msg']
    for word in words:
        assert word in result['msg']
    assert host.snapshot() == before and systemd.calls == []


def test_housekeeping_override_allows_pinning_onto_cpu0(placed_host):
    host, systemd = placed_host
    code, result = run_module(placement, {'root': host.root, 'allow_housekeeping_cpus': True,
                                          'services': [dict(VLLM, cpu_affinity='0-3')]})
    assert code == 0, result
    assert 'CPUAffinity=0-3' in host.read(DROPIN)


def test_a_cpu_word_pins_to_the_partition_or_is_unsupported_where_the_shape_has_none(placed_host):
    host, dummy = placed_host
    # agent-runner asks for nothing but the CPUs.
    services = [dict(VLLM, cpu_affinity='@latency_cpus'),
                {'name': 'agent-runner.service', 'cpu_affinity': '@latency_cpus'}]
    args = {'root': host.root, 'services': services}
    code, result = run_module(placement, args)
    assert code == 0, result
    # Four CPUs, CPU 0 housekeeping: the latency set is the upper half of the others.
    assert 'CPUAffinity=2-3\n' in host.read(DROPIN) and 'CPUAffinity=2-3\n' in host.read(RUNNER_DROPIN)

    host.write('/sys/devices/system/cpu/online', '0\n')
    code, result = run_module(placement, args)
    assert code == 0, result
    reason = result['unsupported']['placement.vllm.service.cpu_affinity']
    assert reason.startswith('no CPU left for the latency set: this host has 1 CPU (0)')
    assert sorted(result['unsupported']) == ['placement.agent-runner.service.cpu_affinity',
                                             'placement.vllm.service.cpu_affinity']
    # The rest of the placement stays; a service left with no setting gets no drop-in at all.
    dropin = host.read(DROPIN)
    assert 'CPUAffinity' not in dropin and 'CPUSchedulingPolicy=fifo\n' in dropin
    assert not host.exists(RUNNER_DROPIN)
    assert result['services']['agent-runner.service']['state'] == 'unsupported'
    assert result['services']['agent-runner.service']['reason'] == reason
    assert run_module(placement, args)[1]['changed'] is False

    before = host.snapshot()
    code, strict = run_module(placement, dict(args, strict=True))
    assert code == 1 and 'placement.agent-runner.service.cpu_affinity is unsupported' in strict['msg']
    assert host.snapshot() == before
