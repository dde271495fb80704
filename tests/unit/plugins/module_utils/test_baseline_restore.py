# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError

BASELINE = '/var/lib/aitune/baseline.json'
STATE = '/var/lib/aitune/state.json'
SYSCTL = '/etc/sysctl.d/90-aitune.conf'
TMPFILES = '/etc/tmpfiles.d/aitune.conf'
AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
TIMER = '/proc/sys/kernel/timer_migration'
COST = '/sys/kernel/debug/sched/migration_cost_ns'
SWAPPINESS = '/proc/sys/vm/swappiness'
THP = '/sys/kernel/mm/transparent_hugepage/enabled'
NOT_STATE = ('/var/lib/aitune',)


def apply(host, desired, **kwargs):
    with Engine(root=host.root) as engine:
        return engine.apply(desired, **kwargs)


def restore(host, scope='all', check_mode=False):
    with Engine(root=host.root, check_mode=check_mode) as engine:
        return engine.restore(scope)


def baseline(host):
    return json.loads(host.read(BASELINE))


def test_baseline_is_written_before_the_live_value(make_host):
    host = make_host('6.12')
    host.kernel.reject[AUTOGROUP] = errno.EIO
    with pytest.raises(EngineError):
        apply(host, {'sched.autogroup': False})
    assert host.kernel.writes == [(AUTOGROUP, '0')]
    assert baseline(host)['knobs']['sched.autogroup']['value'] == '1'
    assert baseline(host)['knobs']['sched.autogroup']['path'] == AUTOGROUP
    assert host.mode(BASELINE) == 0o600


def test_rejected_write_rolls_back_what_the_run_wrote(make_host):
    host = make_host('6.12')
    host.kernel.reject[TIMER] = errno.EINVAL
    with pytest.raises(EngineError) as info:
        apply(host, {'sched.autogroup': False, 'sched.timer_migration': False})
    assert 'rejected' in str(info.value) and 'put back' in str(info.value)
    assert host.value(AUTOGROUP) == '1'
    assert host.value(TIMER) == '1'
    assert not host.exists(SYSCTL)


def test_baseline_mode_and_content(make_host):
    host = make_host('6.12')
    apply(host, {'sched.autogroup': False, 'sched.migration_cost_ns': 250000})
    assert host.mode(BASELINE) == 0o600
    data = baseline(host)
    assert data['knobs']['sched.autogroup']['value'] == '1'
    assert data['knobs']['sched.migration_cost_ns'] == dict(data['knobs']['sched.migration_cost_ns'], path=COST, value='500000')
    assert data['files'][SYSCTL]['existed'] is False
    assert data['files'][TMPFILES]['existed'] is False


def test_baseline_is_never_overwritten(make_host):
    host = make_host('6.12')
    apply(host, {'sched.migration_cost_ns': 600000, 'vm.swappiness': 30})
    first = baseline(host)
    apply(host, {'sched.migration_cost_ns': 700000, 'vm.swappiness': 10})
    assert host.values([COST, SWAPPINESS]) == {COST: '700000', SWAPPINESS: '10'}
    second = baseline(host)
    assert second['knobs'] == first['knobs']
    assert second['knobs']['sched.migration_cost_ns']['value'] == '500000'
    assert second['knobs']['vm.swappiness']['value'] == '60'
    assert second['files'] == first['files']


def test_restore_returns_originals_and_removes_new_files(make_host):
    host = make_host('6.12')
    original = host.snapshot(ignore=NOT_STATE)
    apply(host, {'sched.migration_cost_ns': 600000, 'sched.autogroup': False, 'thp.enabled': 'never'})
    apply(host, {'sched.migration_cost_ns': 700000, 'vm.swappiness': 10})
    assert host.read(THP) == 'always madvise [never]\n'
    report = restore(host)
    assert report.changed is True
    assert sorted(report.by_state()['applied']) == ['sched.autogroup', 'sched.migration_cost_ns', 'thp.enabled',
                                                    'vm.swappiness']
    assert host.snapshot(ignore=NOT_STATE) == original
    assert not host.exists(BASELINE) and not host.exists(STATE)
    again = restore(host)
    assert again.changed is False
    assert again.knobs == {} and again.files == {}


def test_restore_puts_back_a_pre_existing_managed_file_with_its_mode(make_host):
    host = make_host('6.12')
    host.write(SYSCTL, '# written by hand\nvm.swappiness = 30\n')
    os.chmod(host.path(SYSCTL), 0o640)
    original = host.snapshot(ignore=NOT_STATE)
    apply(host, {'sched.autogroup': False})
    assert 'kernel.sched_autogroup_enabled = 0' in host.read(SYSCTL)
    assert host.mode(SYSCTL) == 0o640
    restore(host)
    assert host.snapshot(ignore=NOT_STATE) == original


def test_restore_scope_only_touches_that_subsystem(make_host):
    host = make_host('6.12')
    apply(host, {'sched.autogroup': False, 'vm.swappiness': 10})
    report = restore(host, scope='sched')
    assert list(report.knobs) == ['sched.autogroup']
    assert host.value(AUTOGROUP) == '1'
    assert host.value(SWAPPINESS) == '10'
    sysctl = host.read(SYSCTL)
    assert 'vm.swappiness = 10' in sysctl and 'autogroup' not in sysctl
    assert list(baseline(host)['knobs']) == ['vm.swappiness']
    restore(host, scope='memory')
    assert host.value(SWAPPINESS) == '60'
    assert not host.exists(SYSCTL) and not host.exists(BASELINE)


def test_restore_check_mode_changes_nothing(make_host):
    host = make_host('6.12')
    apply(host, {'sched.autogroup': False, 'sched.migration_cost_ns': 250000})
    before = host.snapshot()
    report = restore(host, check_mode=True)
    assert report.changed is True
    assert sorted(report.files) == [SYSCTL, TMPFILES]
    assert host.snapshot() == before


def test_restore_of_a_knob_gone_from_the_kernel_keeps_its_original(make_host):
    host = make_host('6.12')
    apply(host, {'sched.autogroup': False, 'vm.swappiness': 10})
    os.remove(host.path(AUTOGROUP))
    report = restore(host)
    assert report.knobs['sched.autogroup']['state'] == 'unsupported'
    assert host.value(SWAPPINESS) == '60'
    assert list(baseline(host)['knobs']) == ['sched.autogroup']


def test_restore_refuses_a_symlinked_baseline(make_host, tmp_path):
    host = make_host('6.12')
    apply(host, {'sched.autogroup': False})
    moved = tmp_path / 'baseline.json'
    os.rename(host.path(BASELINE), str(moved))
    os.symlink(str(moved), host.path(BASELINE))
    # Treating the planted link as "no baseline" would drop the state, keep every tuned value and report no change.
    with pytest.raises((EngineError, FsError)) as info:
        restore(host)
    assert 'symlink' in str(info.value)
    assert host.value(AUTOGROUP) == '0'
    assert host.exists(STATE)


# -- pairs and bracketed lists ---------------------------------------------------------------------------------------
def test_dirty_bytes_then_restore_puts_dirty_ratio_back(make_host):
    host = make_host('6.12')
    paths = ['/proc/sys/vm/dirty_ratio', '/proc/sys/vm/dirty_bytes']
    original = host.values(paths)
    report = apply(host, {'vm.dirty_bytes': 268435456})
    assert report.knobs['vm.dirty_bytes']['state'] == 'applied'
    assert host.values(paths) == {paths[0]: '0', paths[1]: '268435456'}
    sysctl = host.read(SYSCTL)
    assert 'vm.dirty_bytes = 268435456' in sysctl and 'dirty_ratio' not in sysctl
    assert apply(host, {'vm.dirty_bytes': 268435456}).changed is False
    restore(host)
    assert host.values(paths) == original
    assert not host.exists(BASELINE)


def test_dirty_ratio_back_from_bytes_restores_bytes(make_host):
    host = make_host('6.12', files={'/proc/sys/vm/dirty_background_ratio': '0\n',
                                    '/proc/sys/vm/dirty_background_bytes': '67108864\n'})
    paths = ['/proc/sys/vm/dirty_background_ratio', '/proc/sys/vm/dirty_background_bytes']
    original = host.values(paths)
    apply(host, {'vm.dirty_background_ratio': 5})
    assert host.values(paths) == {paths[0]: '5', paths[1]: '0'}
    restore(host)
    assert host.values(paths) == original


def test_both_halves_of_a_dirty_pair_never_report_a_value_the_kernel_does_not_hold(make_host):
    host = make_host('6.12')
    before = host.snapshot(ignore=NOT_STATE)
    try:
        report = apply(host, {'vm.dirty_bytes': 268435456, 'vm.dirty_ratio': 15})
    except EngineError:
        assert host.snapshot(ignore=NOT_STATE) == before
        return
    for name in report.by_state()['applied']:
        entry = report.knobs[name]
        assert host.value(entry['path']) == entry['value'], name


def test_thp_choice_moves_the_brackets_and_is_idempotent(make_host):
    host = make_host('6.12')
    report = apply(host, {'thp.enabled': 'never', 'thp.defrag': 'defer+madvise'})
    assert report.knobs['thp.enabled']['previous'] == 'madvise'
    assert report.knobs['thp.enabled']['value'] == 'never'
    assert host.read(THP) == 'always madvise [never]\n'
    assert host.read('/sys/kernel/mm/transparent_hugepage/defrag') == 'always defer [defer+madvise] madvise never\n'
    assert 'w %s - - - - never' % THP in host.read(TMPFILES)
    assert apply(host, {'thp.enabled': 'never', 'thp.defrag': 'defer+madvise'}).changed is False
    restore(host)
    assert host.read(THP) == 'always [madvise] never\n'
