# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type


import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.tests.unit.fakehost import DebugfsMounter
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

BAD_INPUT = load_cases('bad_input.yml')

LOCK_DIR = ('/var/lib/aitune',)
SCHED_ALL = {'sched.base_slice_ns': 4000000, 'sched.migration_cost_ns': 250000, 'sched.nr_migrate': 8,
             'sched.autogroup': False, 'sched.numa_balancing': 0, 'sched.timer_migration': False,
             'sched.rt_runtime_us': 990000, 'vm.swappiness': 10, 'thp.enabled': 'never'}


def _live(host, path):
    raw = host.read(path)
    return raw[raw.index('[') + 1:raw.index(']')] if '[' in raw else raw.strip()


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_is_refused_with_no_write(make_host, case):
    host = make_host(case['kernel'])
    before = host.snapshot(ignore=LOCK_DIR)
    with Engine(root=host.root, mounter=DebugfsMounter(host)) as engine:
        with pytest.raises(EngineError) as info:
            engine.apply(case['desired'], strict=case.get('strict', False))
    message = str(info.value)
    assert 'nothing was changed' in message
    for word in case['error']:
        assert word in message
    assert host.kernel.writes == []
    assert host.snapshot(ignore=LOCK_DIR) == before


def test_bad_input_creates_nothing_at_all(make_host):
    # The engine promises that bad input is refused before anything is written; the lock file is a write too.
    host = make_host('6.12')
    before = host.snapshot()
    with Engine(root=host.root) as engine:
        with pytest.raises(EngineError):
            engine.apply({'sched.turbo': 1})
    assert host.snapshot() == before


@pytest.mark.parametrize('kernel', ['5.10', '6.1', '6.12', '6.18'])
def test_check_mode_changes_nothing(make_host, kernel):
    host = make_host(kernel)
    before = host.snapshot()
    with Engine(root=host.root, check_mode=True, mounter=DebugfsMounter(host)) as engine:
        report = engine.apply(SCHED_ALL)
    assert host.snapshot() == before
    assert host.kernel.writes == []
    assert report.changed is True
    assert '/etc/sysctl.d/90-aitune.conf' in report.files
    for name in report.by_state()['applied']:
        entry = report.knobs[name]
        if entry['previous'] != entry['desired']:
            assert entry['changed'] is True and 'check mode' in entry['reason']
            assert entry['value'] == entry['desired']
        else:
            assert entry['changed'] is False


def test_check_mode_with_unmounted_debugfs_leaves_the_tree_as_found(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    before = host.snapshot()
    with Engine(root=host.root, check_mode=True, mounter=DebugfsMounter(host)) as engine:
        report = engine.apply({'sched.base_slice_ns': 4000000})
    assert host.snapshot() == before
    assert report.knobs['sched.base_slice_ns']['value'] == '4000000'
    assert report.knobs['sched.base_slice_ns']['previous'] == '3000000'


def test_check_mode_predicts_the_real_run(make_host):
    host = make_host('6.1')
    with Engine(root=host.root, check_mode=True) as engine:
        predicted = engine.apply(SCHED_ALL).result()
    with Engine(root=host.root) as engine:
        actual = engine.apply(SCHED_ALL).result()
    assert predicted['changed'] == actual['changed']
    assert predicted['files'] == actual['files']
    assert predicted['applied'] == actual['applied']
    assert {n: e['value'] for n, e in predicted['knobs'].items()} == \
        {n: e['value'] for n, e in actual['knobs'].items()}
    assert [d['after'] for d in predicted['diff']] == [d['after'] for d in actual['diff']]


@pytest.mark.parametrize('kernel', ['5.10', '6.1', '6.12', '6.18'])
def test_second_apply_is_idempotent(make_host, kernel):
    host = make_host(kernel)
    first = Engine(root=host.root).apply(SCHED_ALL)
    assert first.changed is True
    after_first = host.snapshot(ignore=LOCK_DIR)
    second = Engine(root=host.root).apply(SCHED_ALL)
    assert second.changed is False
    assert second.files == {}
    assert not [n for n, e in second.knobs.items() if e['changed']]
    assert host.snapshot(ignore=LOCK_DIR) == after_first


def test_applied_values_are_live_and_reported(make_host):
    host = make_host('6.12')
    report = Engine(root=host.root).apply(SCHED_ALL)
    result = report.result()
    assert result['unsupported'] == {} and result['not_permitted'] == {}
    for name in result['applied']:
        entry = result['knobs'][name]
        assert entry['changed'] is (entry['previous'] != entry['desired'])
        assert _live(host, entry['path']) == entry['value'] == entry['desired']
    assert host.value('/proc/sys/kernel/sched_autogroup_enabled') == '0'
    assert host.value('/sys/kernel/debug/sched/base_slice_ns') == '4000000'


def test_persist_false_changes_live_only_and_takes_entries_out(make_host):
    host = make_host('6.12')
    Engine(root=host.root).apply({'sched.autogroup': False, 'vm.swappiness': 10})
    report = Engine(root=host.root).apply({'sched.autogroup': False}, persist=False)
    assert report.changed is True
    sysctl = host.read('/etc/sysctl.d/90-aitune.conf')
    assert 'autogroup' not in sysctl and 'vm.swappiness = 10' in sysctl
    assert host.value('/proc/sys/kernel/sched_autogroup_enabled') == '0'


def test_diff_shows_live_values_and_files(make_host):
    host = make_host('6.12')
    diff = Engine(root=host.root, check_mode=True).apply({'sched.autogroup': False}).diff()
    assert diff[0]['before'] == 'sched.autogroup: 1\n' and diff[0]['after'] == 'sched.autogroup: 0\n'
    assert diff[1]['before_header'] == '/etc/sysctl.d/90-aitune.conf (absent)'
    assert 'kernel.sched_autogroup_enabled = 0\n' in diff[1]['after']
