# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The summaries a person reads after tune and restore, from real module results on fake hosts."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.aitune.kernel.plugins.filter.summary import restore_summary, tune_summary
from ansible_collections.aitune.kernel.plugins.module_utils import _profile
from ansible_collections.aitune.kernel.plugins.modules import profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

FACT = '/etc/ansible/facts.d/aitune.fact'
SYSCTL = '/etc/sysctl.d/90-aitune.conf'
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0', 'settings_hash': 'abc'}
# EEVDF has no wakeup granularity: sched reports it unsupported, with the reason.
PROFILE = {'memory': {'swappiness': 10}, 'sched': {'autogroup': False, 'wakeup_granularity_ns': 3000000}}


def tune(host, check_mode=False, **options):
    args = dict({'root': host.root, 'subsystems': PROFILE, 'record': RECORD}, **options)
    code, result = run_module(profile, args, check_mode=check_mode)
    assert code == 0, result
    return result


def test_a_first_run_says_what_changed_from_what_to_what(make_host):
    host = make_host('6.12')
    headline, details, baseline, undo, what_changed = tune_summary(tune(host), 'balanced')
    assert headline == 'balanced: applied: 2 settings changed, each read back from the kernel'
    assert details['changed'] == {'vm.swappiness': '60 -> 10', 'sched.autogroup': '1 -> 0'}
    # sched and memory both wrote the sysctl.d file: it was created, once.
    assert details['files'] == {SYSCTL: 'created', FACT: 'created'}
    assert details['subsystems'] == ['sched', 'memory']
    assert list(details['unsupported']) == ['sched.wakeup_granularity_ns']
    assert 'not_permitted' not in details and 'restart_required' not in details
    assert '/var/lib/aitune/baseline.json' in baseline and 'restore.yml' in undo and 'changes.yml' in what_changed


def test_a_second_run_names_what_it_manages_and_only_the_selected_subsystems_reasons(make_host):
    host = make_host('6.12')
    tune(host)
    lines = tune_summary(tune(host), 'balanced')
    assert lines[0].startswith('balanced: already applied on ') and lines[0].endswith('nothing to do')
    assert lines[1]['subsystems'] == ['sched', 'memory'] and lines[1]['changed'] == {}
    assert list(lines[1]['unsupported']) == ['sched.wakeup_granularity_ns']
    # --tags memory on the same host: sched's reasons are not this run's business.
    lines = tune_summary(tune(host, run_tags=['memory']), 'balanced')
    assert lines[1]['subsystems'] == ['memory'] and 'unsupported' not in lines[1]


def test_previews_say_nothing_was_written_and_why(make_host, monkeypatch):
    host = make_host('6.12')
    lines = tune_summary(tune(host, check_mode=True), 'balanced')
    assert lines[0] == 'balanced: check mode, nothing written: 2 settings would change'
    assert lines[1]['files'] == {SYSCTL: 'created', FACT: 'created'}
    assert lines[2:] == ['baseline: nothing recorded, a preview writes nothing']
    tune(host)
    lines = tune_summary(tune(host, check_mode=True, subsystems=dict(PROFILE, memory={'swappiness': 10})), 'balanced')
    assert lines[0] == 'balanced: already applied on %s, and every value and file reads back unchanged: nothing to do' \
        % tune_summary_time(host)
    monkeypatch.setattr(_profile.os, 'geteuid', lambda: 1000)
    lines = tune_summary(tune(host, subsystems=dict(PROFILE, memory={'swappiness': 20})), 'balanced')
    assert lines[0] == 'balanced: preview, nothing written: 1 setting would change; run as root to apply'


def tune_summary_time(host):
    """When the host's record says the profile was applied."""
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['recorded']})
    return result['ansible_facts']['aitune_tuning']['recorded']['applied_at']


def test_a_run_of_part_of_the_mode_says_it_is_not_recorded(make_host):
    host = make_host('6.12')
    lines = tune_summary(tune(host, run_tags=['memory']), 'balanced')
    assert lines[0].endswith('(a run of part of the mode: not recorded as the whole mode)')


def test_restore_lists_what_went_back_and_everything_it_removed(make_host):
    host = make_host('6.12')
    tune(host)
    code, result = run_module(restore, {'root': host.root})
    assert code == 0
    outcome, details = restore_summary(result)
    assert outcome == 'restored: every recorded original is back'
    assert details['restored'] == {'vm.swappiness': '10 -> 60', 'sched.autogroup': '0 -> 1'}
    assert details['removed'] == [FACT, SYSCTL, '/etc/ansible (directory)', '/etc/ansible/facts.d (directory)',
                                  '/var/lib/aitune (directory)']
    assert 'kept' not in details and 'files_restored' not in details and 'tuned' not in details
    code, again = run_module(restore, {'root': host.root})
    assert restore_summary(again)[0].startswith('nothing to restore')


def test_restore_names_stopped_units_and_what_it_could_not_put_back():
    result = {'knobs': {}, 'file_changes': {'/etc/systemd/system/aitune-latency.slice': 'removed',
                                            '/etc/default/irqbalance': 'updated'},
              'dirs': {'/sys/fs/cgroup/aitune.slice': 'kept: busy'}, 'actions': ['stopped aitune-latency.slice'],
              'not_permitted': {'sched.base_slice_ns': 'cannot restore: locked down'}, 'unsupported': {}}
    outcome, details = restore_summary(result)
    assert outcome.startswith('restored what could be put back')
    assert details['removed'] == ['/etc/systemd/system/aitune-latency.slice', 'aitune-latency.slice (unit stopped)']
    assert details['files_restored'] == ['/etc/default/irqbalance']
    assert details['kept'] == {'sched.base_slice_ns': 'cannot restore: locked down',
                               '/sys/fs/cgroup/aitune.slice': 'kept: busy'}


@pytest.mark.parametrize('tuned, line', [
    ({'action': 'reapplied', 'command': 'tuned-adm profile throughput-performance'},
     'tuned-adm profile throughput-performance: tuned applied its profile again over the restored values'),
    ({'action': 'would reapply', 'command': 'tuned-adm auto_profile'}, 'tuned-adm auto_profile: check mode, would be run'),
    ({'action': 'failed', 'command': 'tuned-adm profile x', 'reason': 'tuned-adm is not installed'},
     'tuned could not be asked to apply its profile again: tuned-adm is not installed'),
    ({'action': 'not needed', 'command': None}, None),
    (None, None),
])
def test_restore_says_what_it_asked_of_tuned(tuned, line):
    result = {'knobs': {'vm.swappiness': {'changed': True, 'previous': '5', 'value': '60'}}, 'tuned': tuned}
    dummy, details = restore_summary(result)
    assert details.get('tuned') == line
