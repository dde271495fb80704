# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._cgroup import weight_to_shares
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_cgroup import slice_dir
from ansible_collections.aitune.kernel.plugins.modules import cgroup, restore
from ansible_collections.aitune.kernel.tests.unit.cgtree import FakeSystemd, install_layout
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import use_systemd
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

NOT_STATE = ('/var/lib/aitune',)
V2 = '/sys/fs/cgroup'
LATENCY = V2 + '/aitune.slice/aitune-latency.slice'
BATCH = V2 + '/aitune.slice/aitune-batch.slice'
UNITS = '/etc/systemd/system'
FULL = {
    'aitune-latency.slice': {'cpu_weight': 10000, 'allowed_cpus': '1-3', 'memory_high': '1G', 'io_weight': 500,
                             'uclamp_min': 20},
    'aitune-batch.slice': {'cpu_weight': 1, 'cpu_quota_percent': 150},
}


def systemd_host(make_host, monkeypatch, layout='v2_systemd', kernel='6.12'):
    host = make_host(kernel)
    cgroupfs = install_layout(host, layout)
    systemd = FakeSystemd(host, cgroupfs)
    use_systemd(monkeypatch, systemd)
    return host, systemd


def assert_settled_and_restored(host, args, original):
    """A second run with the same slices changes nothing, and restore gives back the host as it was."""
    assert run_module(cgroup, dict(args, root=host.root))[1]['changed'] is False
    code, undone = run_module(restore, {'root': host.root, 'scope': 'cgroup'})
    assert code == 0, undone
    assert host.snapshot(ignore=NOT_STATE) == original


def test_slice_names_map_to_the_systemd_hierarchy():
    assert slice_dir('aitune-latency') == 'aitune.slice/aitune-latency.slice'
    assert slice_dir('a-b-c') == 'a.slice/a-b.slice/a-b-c.slice'
    assert slice_dir('-') == ''
    # systemd's cgroup_cpu_weight_to_shares: weight * 1024 / 100 within 2..262144.
    assert [weight_to_shares(w) for w in (1, 100, 10000)] == [10, 1024, 102400]


# -- systemd on cgroup v2 ----------------------------------------------------------------------------------------------
def test_systemd_check_mode_changes_nothing(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    before = host.snapshot()
    code, result = run_module(cgroup, {'root': host.root, 'slices': FULL}, check_mode=True, diff=True)
    assert code == 0, result
    assert result['changed'] is True
    assert host.snapshot() == before and systemd.calls == []
    assert sorted(result['files']) == [UNITS + '/aitune-batch.slice', UNITS + '/aitune-latency.slice',
                                       UNITS + '/aitune.slice']
    entry = result['knobs']['cgroup.aitune-latency.cpu.weight']
    assert entry['state'] == 'applied' and 'systemd would create it' in entry['reason']
    assert 'created' in result['knobs']['cgroup.aitune-latency.cpu.uclamp.min']['reason']


def test_systemd_slices_are_units_whose_values_read_back(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    original = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(cgroup, {'root': host.root, 'slices': FULL})
    assert code == 0, result
    unit = host.read(UNITS + '/aitune-latency.slice')
    for line in ('CPUWeight=10000', 'AllowedCPUs=1-3', 'MemoryHigh=1073741824', 'IOWeight=500', 'WantedBy=slices.target'):
        assert line in unit
    assert 'uclamp' not in unit.lower()
    assert 'CPUQuota=150%' in host.read(UNITS + '/aitune-batch.slice')
    assert '[Slice]' in host.read(UNITS + '/aitune.slice')
    # Units exist before systemd hears of them, and each is started once.
    assert systemd.calls == [('daemon-reload',), ('start', 'aitune-batch.slice'), ('start', 'aitune-latency.slice'),
                             ('start', 'aitune.slice')]
    # What systemd set, read back from the kernel's files.
    assert host.value(LATENCY + '/cpu.weight') == '10000'
    assert host.value(LATENCY + '/io.weight') == 'default 500'
    assert host.value(BATCH + '/cpu.max') == '150000 100000'
    assert host.value(LATENCY + '/cpu.uclamp.min') == '20.00'
    assert sorted(result['applied']) == sorted([
        'cgroup.aitune-batch.cpu.max', 'cgroup.aitune-batch.cpu.weight', 'cgroup.aitune-latency.cpu.weight',
        'cgroup.aitune-latency.cpuset.cpus', 'cgroup.aitune-latency.io.weight', 'cgroup.aitune-latency.memory.high',
        'cgroup.aitune-latency.cpu.uclamp.min'])
    assert result['knobs']['cgroup.aitune-latency.memory.high']['value'] == '1073741824'
    expected = {'path': LATENCY, 'mode': 'systemd', 'persistent': True, 'exists': True, 'reason': None}
    assert result['slices']['aitune-latency.slice'] == expected
    assert result['not_permitted'] == {} and result['unsupported'] == {}

    code, again = run_module(cgroup, {'root': host.root, 'slices': FULL})
    assert code == 0 and again['changed'] is False, again
    assert len(systemd.calls) == 4

    code, undone = run_module(restore, {'root': host.root, 'scope': 'cgroup'})
    assert code == 0 and undone['changed'] is True, undone
    assert systemd.calls[4:] == [('stop', 'aitune-batch.slice'), ('stop', 'aitune-latency.slice'),
                                 ('stop', 'aitune.slice'), ('daemon-reload',)]
    assert host.snapshot(ignore=NOT_STATE) == original
    # Everything recorded was put back, so nothing is left on record.
    assert not host.exists('/var/lib/aitune/baseline.json') and not host.exists('/var/lib/aitune/state.json')


def test_systemd_value_left_unapplied_is_not_permitted(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    systemd.ignore.add('IOWeight')
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-latency.slice': {'io_weight': 500}}})
    assert code == 0, result
    assert "systemd left '100' where its unit asks for '500'" in result['not_permitted']['cgroup.aitune-latency.io.weight']
    assert 'cgroup.aitune-latency.io.weight not permitted' in str(result['warnings'])


def test_systemd_dropped_slice_is_stopped_and_dropped_uclamp_reset(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    run_module(cgroup, {'root': host.root, 'slices': FULL})
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-latency.slice': {'cpu_weight': 10000}}})
    assert code == 0, result
    assert ('stop', 'aitune-batch.slice') in systemd.calls
    assert not host.exists(BATCH) and not host.exists(UNITS + '/aitune-batch.slice')
    # The uclamp floor was written directly; dropping it puts the kernel default back.
    assert host.value(LATENCY + '/cpu.uclamp.min') == '0.00'
    # Values systemd no longer sets leave the state, so drift does not report them; the reset value stays watched.
    state = json.loads(host.read('/var/lib/aitune/state.json'))['knobs']
    assert sorted(state) == ['cgroup.aitune-latency.cpu.uclamp.min', 'cgroup.aitune-latency.cpu.weight']
    assert state['cgroup.aitune-latency.cpu.uclamp.min']['value'] == '0.00'


def test_systemd_empty_slices_takes_everything_away(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    original = host.snapshot(ignore=NOT_STATE)
    run_module(cgroup, {'root': host.root})
    assert host.value(LATENCY + '/cpu.weight') == '10000' and host.value(BATCH + '/cpu.weight') == '1'
    code, result = run_module(cgroup, {'root': host.root, 'slices': {}})
    assert code == 0 and result['changed'] is True
    assert host.snapshot(ignore=NOT_STATE) == original


# -- systemd on a hybrid host ------------------------------------------------------------------------------------------
def test_hybrid_systemd_weight_reads_back_as_cpu_shares(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch, layout='hybrid_systemd')
    original = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(cgroup, {'root': host.root, 'slices': FULL})
    assert code == 0, result
    cpu = '/sys/fs/cgroup/cpu,cpuacct/aitune.slice'
    assert host.value(cpu + '/aitune-latency.slice/cpu.shares') == '102400'
    assert host.value(cpu + '/aitune-batch.slice/cpu.cfs_quota_us') == '150000'
    assert result['knobs']['cgroup.aitune-latency.cpu.shares']['path'] == cpu + '/aitune-latency.slice/cpu.shares'
    assert host.value(cpu + '/aitune-latency.slice/cpu.uclamp.min') == '20.00'
    for name in ('cpuset.cpus', 'memory.high', 'io.weight'):
        assert 'unified hierarchy' in result['unsupported']['cgroup.aitune-latency.' + name]
    unit = host.read(UNITS + '/aitune-latency.slice')
    assert 'CPUWeight=10000' in unit and 'MemoryHigh' not in unit
    assert result['slices']['aitune-latency.slice']['path'] == cpu + '/aitune-latency.slice'
    assert_settled_and_restored(host, {'slices': FULL}, original)


# -- cgroupfs v2 without systemd ---------------------------------------------------------------------------------------
def test_cgroupfs_v2_creates_the_slices_and_enables_controllers(make_host):
    host = make_host('6.18')
    cgroupfs = install_layout(host, 'v2_plain')
    original = host.snapshot(ignore=NOT_STATE)
    args = {'root': host.root, 'slices': FULL}
    code, checked = run_module(cgroup, args, check_mode=True)
    assert code == 0 and checked['changed'] is True, checked
    assert host.snapshot(ignore=NOT_STATE) == original and host.kernel.writes == []

    code, result = run_module(cgroup, args)
    assert code == 0, result
    assert sorted(result['dirs']) == [V2 + '/aitune.slice', BATCH, LATENCY]
    # io is enabled for io_weight even though this kernel then offers no io.weight (no iocost, no BFQ).
    assert host.value(V2 + '/cgroup.subtree_control') == 'cpuset cpu io memory'
    assert host.value(V2 + '/aitune.slice/cgroup.subtree_control') == 'cpuset cpu io memory'
    assert host.value(LATENCY + '/cpu.weight') == '10000'
    assert host.value(LATENCY + '/cpuset.cpus') == '1-3'
    assert host.value(LATENCY + '/memory.high') == '1073741824'
    assert host.value(BATCH + '/cpu.max') == '150000 100000'
    # This kernel has neither io.weight nor uclamp groups: the new cgroup lacks the files, and says so.
    assert 'did not appear' in result['unsupported']['cgroup.aitune-latency.cpu.uclamp.min']
    assert 'io controller' not in result['unsupported']['cgroup.aitune-latency.io.weight']
    assert result['slices']['aitune-latency.slice']['mode'] == 'cgroupfs-v2'
    assert result['slices']['aitune-latency.slice']['persistent'] is False
    assert result['files'] == []

    code, again = run_module(cgroup, args)
    assert code == 0 and again['changed'] is False, again

    # A task placed in the slice goes back to the root cgroup, where it ran before, when the slice goes.
    cgroupfs.write(LATENCY + '/cgroup.procs', '311')
    code, undone = run_module(restore, {'root': host.root, 'scope': 'cgroup'})
    assert code == 0, undone
    assert undone['dirs'] == {LATENCY: 'removed', BATCH: 'removed', V2 + '/aitune.slice': 'removed', STATE_DIR: 'removed'}
    assert host.snapshot(ignore=NOT_STATE) == original


def test_cgroupfs_v2_dropped_property_goes_back_to_the_default(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    run_module(cgroup, {'root': host.root, 'slices': {'aitune-batch.slice': {'cpu_weight': 1, 'cpu_quota_percent': 50}}})
    assert host.value(BATCH + '/cpu.max') == '50000 100000'
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-batch.slice': {'cpu_weight': 1}}})
    assert code == 0 and result['changed'] is True, result
    assert host.value(BATCH + '/cpu.max') == 'max 100000'
    assert run_module(cgroup, {'root': host.root, 'slices': {'aitune-batch.slice': {'cpu_weight': 1}}})[1]['changed'] is False


def test_container_namespace_root_cannot_enable_controllers(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_container')
    code, result = run_module(cgroup, {'root': host.root})
    assert code == 0, result
    reason = result['not_permitted']['cgroup.aitune-latency.cpu.weight']
    assert 'no-internal-process' in reason and 'holds processes' in reason
    assert 'cgroup.-.subtree_control.cpu' in result['not_permitted']
    assert host.value(V2 + '/cgroup.subtree_control') == ''
    assert (V2 + '/cgroup.subtree_control', '+cpu') not in host.kernel.writes

    before = host.snapshot()
    code, result = run_module(cgroup, {'root': host.root, 'strict': True})
    assert code == 1 and 'strict' in result['msg'] and 'no-internal-process' in result['msg']
    assert host.snapshot() == before


# -- cgroupfs v1 (the development machines) ----------------------------------------------------------------------------
def test_cgroupfs_v1_uses_cpu_shares_and_cfs_quota(make_host):
    host = make_host('6.18')
    install_layout(host, 'hybrid_dev')
    original = host.snapshot(ignore=NOT_STATE)
    slices = {'aitune-latency.slice': {'cpu_weight': 10000, 'memory_high': '1G', 'allowed_cpus': '1', 'uclamp_min': 20},
              'aitune-batch.slice': {'cpu_weight': 1, 'cpu_quota_percent': 50}}
    # A kernel without uclamp is told apart before anything is created, so check mode says so too.
    code, checked = run_module(cgroup, {'root': host.root, 'slices': slices, 'allow_housekeeping_cpus': True},
                               check_mode=True)
    assert 'no uclamp at all' in checked['unsupported']['cgroup.aitune-latency.cpu.uclamp.min']
    code, result = run_module(cgroup, {'root': host.root, 'slices': slices, 'allow_housekeeping_cpus': True})
    assert code == 0, result
    assert 'no uclamp at all' in result['unsupported']['cgroup.aitune-latency.cpu.uclamp.min']
    cpu = '/sys/fs/cgroup/cpu/aitune.slice'
    assert host.value(cpu + '/aitune-latency.slice/cpu.shares') == '102400'
    assert host.value(cpu + '/aitune-batch.slice/cpu.shares') == '10'
    assert host.value(cpu + '/aitune-batch.slice/cpu.cfs_quota_us') == '50000'
    assert 'no cgroup v1 equivalent' in result['unsupported']['cgroup.aitune-latency.memory.high']
    assert 'v1 cpuset' in result['unsupported']['cgroup.aitune-latency.cpuset.cpus']
    expected = {'path': cpu + '/aitune-latency.slice', 'mode': 'cgroupfs-v1', 'persistent': False, 'exists': True,
                'reason': None}
    assert result['slices']['aitune-latency.slice'] == expected
    # Nothing went to the unified hierarchy, which has no cpu controller here.
    assert not host.exists('/sys/fs/cgroup/unified/aitune.slice')
    assert_settled_and_restored(host, {'slices': slices, 'allow_housekeeping_cpus': True}, original)


def test_cgroupfs_v1_gives_real_time_runtime_to_the_slice_and_its_parent(make_host):
    # With RT group scheduling a new v1 cgroup has no real-time runtime, and a SCHED_FIFO task cannot enter it.
    host = make_host('6.18')
    install_layout(host, 'hybrid_dev')
    original = host.snapshot(ignore=NOT_STATE)
    slices = {'aitune-latency.slice': {'cpu_weight': 10000, 'rt_runtime_us': 'max'},
              'aitune-batch.slice': {'cpu_weight': 1}}
    code, result = run_module(cgroup, {'root': host.root, 'slices': slices})
    assert code == 0, result
    cpu = '/sys/fs/cgroup/cpu/aitune.slice'
    # The parent first (the kernel refuses a child more than its parent has), both with the root's 950000.
    assert host.value(cpu + '/cpu.rt_runtime_us') == '950000'
    assert host.value(cpu + '/aitune-latency.slice/cpu.rt_runtime_us') == '950000'
    assert host.value(cpu + '/aitune-batch.slice/cpu.rt_runtime_us') == '0'
    assert result['knobs']['cgroup.aitune.cpu.rt_runtime_us']['state'] == 'applied'
    assert_settled_and_restored(host, {'slices': slices}, original)


def test_real_time_runtime_beyond_the_root_is_refused_before_any_write(make_host):
    host = make_host('6.18')
    install_layout(host, 'hybrid_dev')
    before = host.snapshot()
    slices = {'aitune-latency.slice': {'rt_runtime_us': 600000}, 'aitune-batch.slice': {'rt_runtime_us': 600000}}
    code, result = run_module(cgroup, {'root': host.root, 'slices': slices})
    assert code == 1 and 'more real-time runtime than the root cgroup has' in result['msg'], result
    assert 'aitune.slice (1200000)' in result['msg']
    assert host.snapshot() == before


@pytest.mark.parametrize('layout, words', [
    ('v2_plain', 'cgroup v2 has no real-time runtime per cgroup'),
    ('hybrid_systemd', 'systemd has no setting for cpu.rt_runtime_us'),
])
def test_real_time_runtime_where_no_cgroup_holds_one_is_unsupported(make_host, monkeypatch, layout, words):
    host = make_host('6.12')
    cgroupfs = install_layout(host, layout)
    if layout == 'hybrid_systemd':
        use_systemd(monkeypatch, FakeSystemd(host, cgroupfs))
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-latency.slice': {'rt_runtime_us': 'max'}}})
    assert code == 0, result
    assert words in result['unsupported']['cgroup.aitune-latency.cpu.rt_runtime_us']


def test_real_time_runtime_on_a_kernel_without_rt_group_scheduling_is_unsupported(make_host):
    host = make_host('6.18')
    install_layout(host, 'hybrid_dev')
    os.unlink(host.path('/sys/fs/cgroup/cpu/cpu.rt_runtime_us'))
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-latency.slice': {'rt_runtime_us': 1000}}})
    assert code == 0, result
    assert 'no RT group scheduling' in result['unsupported']['cgroup.aitune-latency.cpu.rt_runtime_us']
    assert not host.exists('/sys/fs/cgroup/cpu/aitune.slice/cpu.rt_runtime_us') or \
        host.value('/sys/fs/cgroup/cpu/aitune.slice/cpu.rt_runtime_us') == '0'


def test_no_cgroup_hierarchy_is_unsupported(make_host):
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(cgroup, {'root': host.root})
    assert code == 0 and result['changed'] is False, result
    assert 'no cgroup hierarchy' in result['unsupported']['cgroup.aitune-latency.cpu.weight']
    assert result['slices']['aitune-latency.slice']['mode'] is None
    assert host.snapshot() == before


def test_systemd_pid1_unreachable_is_unsupported_not_written_behind_its_back(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_systemd')
    before = host.snapshot()
    code, result = run_module(cgroup, {'root': host.root})
    assert code == 0 and result['changed'] is False, result
    assert 'systemd is PID 1' in result['unsupported']['cgroup.aitune-batch.cpu.weight']
    assert host.snapshot() == before


# -- bad input ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('args, words', [
    ({'slices': {'aitune latency.slice': {}}}, ['not a systemd slice name']),
    ({'slices': {'aitune-.slice': {}}}, ['not a systemd slice name']),
    ({'slices': {'../etc.slice': {}}}, ['not a systemd slice name']),
    ({'slices': {'vllm.service': {}}}, ['not a systemd slice name']),
    ({'slices': {'system-aitune.slice': {}}}, ['belong to systemd']),
    ({'slices': {'user.slice': {'cpu_weight': 10}}}, ['belong to systemd']),
    ({'slices': {'aitune-latency.slice': {'weight': 10}}}, ['unknown property weight']),
    ({'slices': {'aitune-latency.slice': {'cpu_weight': 0}}}, ['cpu_weight', 'out of range']),
    ({'slices': {'aitune-latency.slice': {'cpu_weight': 10001}}}, ['out of range']),
    ({'slices': {'aitune-latency.slice': {'cpu_weight': True}}}, ['cpu_weight', 'integer']),
    ({'slices': {'aitune-batch.slice': {'cpu_quota_percent': 401}}}, ['cpu_quota_percent', 'out of range']),
    ({'slices': {'aitune-latency.slice': {'allowed_cpus': '2-9'}}}, ['not online', '0-3']),
    ({'slices': {'aitune-latency.slice': {'allowed_cpus': 'two'}}}, ['not a CPU list']),
    ({'slices': {'aitune-latency.slice': {'cpu_weight': 10000, 'allowed_cpus': '0-3'}}},
     ['housekeeping', 'allow_housekeeping_cpus', '148k']),
    ({'slices': {'aitune-latency.slice': {'cpu_weight': 10000, 'allowed_cpus': '0'}}}, ['housekeeping']),
    ({'slices': {'aitune-latency.slice': {'memory_high': '1K'}}}, ['less than a page']),
    ({'slices': {'aitune-latency.slice': {'memory_high': 'lots'}}}, ['byte count']),
    ({'slices': {'aitune-latency.slice': {'uclamp_min': 80, 'uclamp_max': 50}}}, ['above uclamp_max']),
    ({'slices': {'aitune-latency.slice': {'uclamp_max': 101}}}, ['out of range']),
    ({'slices': {'aitune-latency.slice': 5}}, ['mapping of properties']),
])
def test_bad_input_is_refused_before_any_write(make_host, monkeypatch, args, words):
    host, systemd = systemd_host(make_host, monkeypatch)
    before = host.snapshot()
    code, result = run_module(cgroup, dict(args, root=host.root))
    assert code == 1, result
    assert 'nothing was changed' in result['msg']
    for word in words:
        assert word in result['msg']
    assert host.snapshot() == before and systemd.calls == [] and host.kernel.writes == []


def test_housekeeping_override_lets_the_latency_slice_take_cpu0(make_host, monkeypatch):
    host, systemd = systemd_host(make_host, monkeypatch)
    slices = {'aitune-latency.slice': {'cpu_weight': 10000, 'allowed_cpus': '0-3'}}
    code, result = run_module(cgroup, {'root': host.root, 'slices': slices, 'allow_housekeeping_cpus': True})
    assert code == 0, result
    assert host.value(LATENCY + '/cpuset.cpus') == '0-3'
    # A batch slice kept to the housekeeping CPU reserves nothing, so it needs no override.
    code, result = run_module(cgroup, {'root': host.root, 'slices': {'aitune-batch.slice': {'cpu_weight': 1,
                                                                                            'allowed_cpus': '0'}}})
    assert code == 0, result


def test_cpu_words_take_the_partition_or_are_unsupported_where_the_shape_has_none(make_host, monkeypatch):
    """The partition's CPUs on the 4-CPU host; on one CPU no latency set can be carved out: the slices keep their
    weights, their CPUs are unsupported with the reason, and AllowedCPUs leaves the units."""
    host, dummy = systemd_host(make_host, monkeypatch)
    args = {'root': host.root, 'slices': {
        'aitune-latency.slice': {'cpu_weight': 10000, 'allowed_cpus': '@latency_cpus'},
        'aitune-batch.slice': {'cpu_weight': 1, 'allowed_cpus': '@batch_cpus'}}}
    code, result = run_module(cgroup, args)
    assert code == 0, result
    assert host.value(LATENCY + '/cpuset.cpus') == '2-3' and host.value(BATCH + '/cpuset.cpus') == '0-1'

    host.write('/sys/devices/system/cpu/online', '0\n')
    code, result = run_module(cgroup, args)
    assert code == 0, result
    reason = result['unsupported']['cgroup.aitune-latency.cpuset.cpus']
    assert reason.startswith('no CPU left for the latency set: this host has 1 CPU (0)')
    assert sorted(result['unsupported']) == ['cgroup.aitune-batch.cpuset.cpus', 'cgroup.aitune-latency.cpuset.cpus']
    assert result['knobs']['cgroup.aitune-latency.cpu.weight']['state'] == 'applied'
    assert 'AllowedCPUs' not in host.read(UNITS + '/aitune-latency.slice')
    assert run_module(cgroup, args)[1]['changed'] is False

    code, strict = run_module(cgroup, dict(args, strict=True))
    assert code == 1 and 'cgroup.aitune-batch.cpuset.cpus is unsupported: no CPU left' in strict['msg']
