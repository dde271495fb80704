# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A host left clean: a tune and a restore leave nothing of the collection's behind (its record, the facts
directories the record created, the benchmark's calibration, its own state directory and lock), and a run that changed
nothing leaves no trace at all."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import threading

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import CALIBRATION_PATH, STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._lock import LOCK_PATH, HostLock
from ansible_collections.aitune.kernel.plugins.modules import profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

FACT = '/etc/ansible/facts.d/aitune.fact'
SWAPPINESS = '/proc/sys/vm/swappiness'
AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0', 'settings_hash': 'abc'}
PROFILE = {'memory': {'swappiness': 10}, 'sched': {'autogroup': False}}


def tune(host, check_mode=False):
    code, result = run_module(profile, {'root': host.root, 'subsystems': PROFILE, 'record': RECORD},
                              check_mode=check_mode, diff=True)
    assert code == 0, result
    return result


def undo(host, **options):
    code, result = run_module(restore, dict(options, root=host.root))
    assert code == 0, result
    return result


def changes(host):
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['changes']})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning']['changes']


def test_tune_and_restore_leave_the_tree_as_it_was(make_host):
    host = make_host('6.12')
    assert not host.exists('/etc/ansible') and not host.exists(STATE_DIR)
    original = host.snapshot()
    tune(host)
    assert host.exists(FACT) and host.value(SWAPPINESS) == '10'
    # A benchmark on this host stored its calibration beside the baseline.
    host.write(CALIBRATION_PATH, '{"calibrations": {}}\n')

    result = undo(host)
    assert result['changed'] is True
    assert result['file_changes'] == {FACT: 'removed', '/etc/sysctl.d/90-aitune.conf': 'removed',
                                      CALIBRATION_PATH: 'removed'}
    assert result['dirs'] == {STATE_DIR: 'removed', '/etc/ansible/facts.d': 'removed', '/etc/ansible': 'removed'}
    # The whole tree, /etc/ansible (created for the fact) and /var/lib/aitune (lock included) as well.
    assert host.snapshot() == original
    assert undo(host)['changed'] is False
    assert host.snapshot() == original


def test_restore_keeps_the_calibration_when_asked(make_host):
    host = make_host('6.12')
    tune(host)
    host.write(CALIBRATION_PATH, '{"calibrations": {}}\n')
    result = undo(host, keep_calibration=True)
    assert CALIBRATION_PATH not in result['file_changes']
    assert host.exists(CALIBRATION_PATH) and not host.exists(FACT)
    # The calibration is not state: the directory stays for it, without baseline, state or lock.
    assert sorted(os.listdir(host.path(STATE_DIR))) == ['bench-calibration.json']


def test_facts_directories_that_were_there_before_stay(make_host):
    host = make_host('6.12')
    host.write('/etc/ansible/facts.d/other.fact', '{"owner": "another role"}\n')
    tune(host)
    undo(host)
    assert not host.exists(FACT)
    assert host.read('/etc/ansible/facts.d/other.fact') == '{"owner": "another role"}\n'


def test_restoring_one_subsystem_takes_the_record_of_the_mode_away(make_host):
    # The record says the host holds the whole mode; after a partial restore it does not, and the next tune run must
    # apply the mode again instead of finding it "already applied".
    host = make_host('6.12')
    tune(host)
    result = undo(host, scope='memory')
    assert result['file_changes'][FACT] == 'removed'
    assert not host.exists(FACT) and host.value(SWAPPINESS) == '60' and host.value(AUTOGROUP) == '0'
    # The rest of the mode stays recorded, and so does the state directory.
    assert host.exists('/var/lib/aitune/baseline.json')


def test_a_record_an_earlier_version_wrote_untracked_is_removed(make_host):
    host = make_host('6.12')
    host.write(FACT, json.dumps({'mode': 'balanced', 'settings_hash': 'abc'}))
    result = undo(host)
    assert result['file_changes'] == {FACT: 'removed'} and not host.exists(FACT)


def test_a_fact_an_earlier_version_left_is_recorded_as_absent(make_host):
    # Only the collection writes aitune.fact: whatever is there before the first tracked write is a record of an
    # earlier run, and restore must not put it back (it would claim the mode is still applied).
    host = make_host('6.12')
    host.write(FACT, json.dumps({'mode': 'aggressive'}))
    tune(host)
    undo(host)
    assert not host.exists(FACT)


def test_a_run_with_nothing_to_manage_leaves_no_trace(make_host):
    # EEVDF has no wakeup granularity: the run takes the lock (creating the state directory for it), records nothing, and
    # must not leave the directory behind (a cpufreq run on a VM without cpufreq is the same case).
    host = make_host('6.12')
    original = host.snapshot()
    with Engine(root=host.root) as engine:
        report = engine.apply({'sched.wakeup_granularity_ns': 3000000})
    assert report.changed is False and report.knobs['sched.wakeup_granularity_ns']['state'] == 'unsupported'
    assert host.snapshot() == original


def test_restore_on_a_host_never_tuned_changes_nothing(make_host):
    host = make_host('6.12')
    original = host.snapshot()
    result = undo(host)
    assert result['changed'] is False and result['dirs'] == {} and result['file_changes'] == {}
    assert host.snapshot() == original


def test_a_waiting_run_locks_the_file_at_the_path_after_a_restore_removed_it(make_host):
    host = make_host('6.12')
    fs = HostFS(host.root)
    holder = HostLock(fs).__enter__()
    host.write(STATE_DIR + '/baseline.json', '{}')  # the directory holds state: nobody removes it on the way out
    acquired = []
    waiter = threading.Thread(target=lambda: acquired.append(HostLock(fs, timeout=30, poll=0.01).__enter__()))
    waiter.start()
    # The holder removes the lock file (a full restore does) and lets go; the waiter's flock then succeeds on the
    # unlinked file, which must not count.
    holder.remove()
    holder.__exit__(None, None, None)
    waiter.join(30)
    assert acquired, 'the waiting run never took the lock'
    held = os.fstat(acquired[0].fd)
    now = os.stat(host.path(LOCK_PATH))
    assert (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
    acquired[0].__exit__(None, None, None)


def test_changes_lists_originals_and_live_values_then_nothing_after_restore(make_host):
    host = make_host('6.12')
    assert changes(host) == {'baseline': None, 'recorded': None, 'knobs': {}, 'files': {}, 'dirs': {}}
    tune(host)
    seen = changes(host)
    assert seen['baseline'] == '/var/lib/aitune/baseline.json'
    assert seen['knobs']['vm.swappiness'] == {'subsystem': 'memory', 'original': '60', 'live': '10'}
    assert seen['knobs']['sched.autogroup'] == {'subsystem': 'sched', 'original': '1', 'live': '0'}
    assert seen['files'][FACT] == {'original': 'absent', 'live': 'as aitune.kernel wrote it'}
    host.write('/etc/sysctl.d/90-aitune.conf', 'vm.swappiness = 1\n')
    assert changes(host)['files']['/etc/sysctl.d/90-aitune.conf']['live'] == 'changed since aitune.kernel wrote it'
    undo(host)
    assert changes(host)['knobs'] == {} and changes(host)['baseline'] is None


def test_a_preview_writes_nothing_and_shows_each_file_once(make_host):
    host = make_host('6.12')
    original = host.snapshot()
    result = tune(host, check_mode=True)
    assert host.snapshot() == original
    assert result['changed'] is True
    assert result['file_changes'] == {FACT: 'created', '/etc/sysctl.d/90-aitune.conf': 'created'}
    headers = [diff['after_header'] for diff in result['diff'] if 'live kernel values' not in diff['after_header']]
    assert headers == [FACT + ' (record)', '/etc/sysctl.d/90-aitune.conf (memory, sched)']
