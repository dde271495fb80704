# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""aitune.kernel.profile (several subsystems in one call, then read back and record the local fact), and the parts of
tuning_facts the roles' fast path relies on: gather_subset, and drift that covers persistence files as well as live
values."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._persist import STATE_PATH as STATE
from ansible_collections.aitune.kernel.plugins.modules import memory, profile, sched, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

FACT = '/etc/ansible/facts.d/aitune.fact'
SYSCTL_FILE = '/etc/sysctl.d/90-aitune.conf'
SWAPPINESS = '/proc/sys/vm/swappiness'
AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0', 'settings_hash': 'abc'}


def record_args(host, subsystems=None, **record):
    return {'root': host.root, 'subsystems': {'memory': {'swappiness': 10}} if subsystems is None else subsystems,
            'record': dict(RECORD, **record)}


@pytest.fixture
def tuned(make_host):
    host = make_host('6.12')
    code, result = run_module(memory, {'root': host.root, 'swappiness': 10})
    assert code == 0 and result['changed'], result
    return host


def facts(host, subset):
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': subset})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning']


def without_times(document):
    """A baseline or state document with the times of its entries left out."""
    if isinstance(document, dict):
        return {key: without_times(value) for key, value in document.items()
                if key not in ('created', 'recorded', 'applied_at')}
    return document


def test_one_call_leaves_the_host_as_the_subsystem_modules_do(make_host):
    """The same request through the profile and through sched then memory ends in the same tree and results."""
    by_profile, by_modules = make_host('6.12'), make_host('6.12')
    requests = {'sched': {'autogroup': False}, 'memory': {'swappiness': 10, 'thp_enabled': 'never'}}
    code, result = run_module(profile, {'root': by_profile.root, 'subsystems': requests})
    assert code == 0 and result['changed'], result
    for module, name in ((sched, 'sched'), (memory, 'memory')):
        code, alone = run_module(module, dict(requests[name], root=by_modules.root))
        assert code == 0
        assert result['subsystems'][name]['knobs'] == alone['knobs']
        assert result['subsystems'][name]['files'] == alone['files']
    assert by_profile.snapshot(['/var/lib/aitune']) == by_modules.snapshot(['/var/lib/aitune'])
    # The baseline and state as well, but for the times they were written at (the two runs need not share a second).
    for path in ('/var/lib/aitune/baseline.json', STATE):
        assert without_times(json.loads(by_profile.read(path))) == without_times(json.loads(by_modules.read(path)))
    assert by_profile.read(AUTOGROUP).strip() == '0' and by_profile.read(SWAPPINESS).strip() == '10'
    assert sorted(result['changed_knobs']) == ['sched.autogroup', 'thp.enabled', 'vm.swappiness']
    assert result['knobs'] == {'sched.autogroup': 'applied', 'thp.enabled': 'applied', 'vm.swappiness': 'applied'}
    assert result['reboot_required'] is False and result['restart_required'] == []

    code, again = run_module(profile, {'root': by_profile.root, 'subsystems': requests})
    assert code == 0 and again['changed'] is False and again['changed_knobs'] == []


@pytest.mark.parametrize('subsystems, words', [
    ({'memory': {'swappiness': 10}, 'sched': {'autogroup': 'sometimes'}}, ['sched', 'autogroup']),
    ({'memory': {'swappiness': 10}, 'cgroup': {'slices': {}, 'persist': False}}, ['cgroup', 'persist']),
    ({'memory': {'swappiness': 10}, 'turbo': {}}, ['turbo', 'not a subsystem']),
    ({'memory': {'swappiness': 10}, 'cpufreq': 'performance'}, ['cpufreq', 'mapping']),
    ({'memory': {'dirty_ratio': 10, 'dirty_bytes': 8192}}, ['memory', 'dirty_ratio']),
    ({'memory': {'swappiness': 10}, 'placement': {'restart': True}}, ['placement', 'services']),
    # A range the cpuidle room checks itself, refused before memory, which runs first, writes anything.
    ({'memory': {'swappiness': 10}, 'cpuidle': {'haltpoll': {'guest_halt_poll_ns': -1}}},
     ['cpuidle', 'haltpoll.guest_halt_poll_ns', 'out of range']),
    ({'memory': {'swappiness': 10}, 'cpuidle': {'kvm': {'grow': 0}}}, ['cpuidle', 'kvm.grow', 'out of range']),
])
def test_bad_options_of_any_subsystem_are_refused_before_any_write(make_host, subsystems, words):
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(profile, {'root': host.root, 'subsystems': subsystems})
    assert code == 1, result
    assert result['msg'].startswith('invalid settings, nothing was changed')
    for word in words:
        assert word in result['msg']
    assert host.snapshot() == before


@pytest.mark.parametrize('subsystems, failed, words', [
    # A refusal of the last subsystem's own: the pools are above the cap.
    ({'memory': {'swappiness': 10}, 'hugepages': {'pools': [{'size': '2M', 'count': 10}], 'max_percent': 95}},
     'hugepages', ['max_percent', 'subsystems planned before it: memory']),
    # A rule between subsystems, met against what the earlier one would write: sched switches RT throttling off, then
    # placement asks for fifo. sched alone is fine; the pair is not.
    ({'sched': {'rt_runtime_us': -1},
      'placement': {'services': [{'name': 'vllm.service', 'cpu_scheduling_policy': 'fifo',
                                  'cpu_scheduling_priority': 10}]}},
     'placement', ['RT throttling is off', 'kernel.sched_rt_runtime_us is -1', 'subsystems planned before it: sched']),
    # memory raises the kernel's free reserve, then the hugepage pools would pass the memory ceiling beside it.
    ({'memory': {'min_free_kbytes': 10000000}, 'hugepages': {'pools': [{'size': '2M', 'count': 3000}]}},
     'hugepages', ['vm.min_free_kbytes of 9765 MiB', 'subsystems planned before it: memory']),
])
def test_a_refusal_in_a_later_subsystem_writes_nothing(make_host, subsystems, failed, words):
    """Every subsystem is planned, the rules between them included, before the first one writes."""
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(profile, {'root': host.root, 'subsystems': subsystems})
    assert code == 1, result
    assert result['failed_subsystem'] == failed and result['changed'] is False
    assert result['msg'].startswith(failed + ': ')
    for word in words + ['before anything was written']:
        assert word in result['msg']
    assert host.snapshot() == before
    assert host.kernel.writes == []


@pytest.mark.parametrize('check_mode', [True, False])
def test_a_rule_between_subsystems_is_met_by_what_an_earlier_one_sets(make_host, check_mode):
    """RT throttling is off on the host; sched switches it back on before placement asks for fifo. The plan reads
    the value sched would write, as the run does, so neither the preview nor the planning pass refuses."""
    host = make_host('6.12')
    host.write('/proc/sys/kernel/sched_rt_runtime_us', '-1\n')
    code, result = run_module(profile, {'root': host.root, 'subsystems': {
        'sched': {'rt_runtime_us': 950000},
        'placement': {'services': [{'name': 'vllm.service', 'cpu_scheduling_policy': 'fifo',
                                    'cpu_scheduling_priority': 10}]},
    }}, check_mode=check_mode)
    assert code == 0, result
    assert result['knobs'] == {'sched.rt_runtime_us': 'applied'} and result['changed'] is True
    assert host.value('/proc/sys/kernel/sched_rt_runtime_us') == ('-1' if check_mode else '950000')


def test_a_write_the_kernel_refuses_stops_the_run_and_says_what_ran_before_it(make_host):
    """What no plan can know: the kernel refuses a write. The run stops there and says what it applied before."""
    host = make_host('6.12')
    host.kernel.reject['/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'] = errno.ENOMEM
    code, result = run_module(profile, {'root': host.root, 'subsystems': {
        'memory': {'swappiness': 10},
        'hugepages': {'pools': [{'size': '2M', 'count': 10}]},
    }})
    assert code == 1
    assert result['failed_subsystem'] == 'hugepages'
    assert 'subsystems run before it: memory' in result['msg']
    assert list(result['subsystems']) == ['memory'] and result['changed_knobs'] == ['vm.swappiness']
    assert host.read(SWAPPINESS).strip() == '10'


def test_check_mode_and_diff_name_each_subsystem_and_write_nothing(make_host):
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(profile, record_args(host, {'sched': {'autogroup': False}, 'memory': {'swappiness': 10}}),
                              check_mode=True, diff=True)
    assert code == 0 and result['changed'] is True, result
    assert host.snapshot() == before
    diffs = {diff['before_header']: diff for diff in result['diff']}
    assert 'sched: live kernel values' in diffs and 'memory: live kernel values' in diffs
    # The sysctl.d file both subsystems render shows once, from the file as it is to the file as it will be.
    sysctl = [diff for header, diff in diffs.items() if SYSCTL_FILE in header]
    assert [diff['before_header'] for diff in sysctl] == [SYSCTL_FILE + ' (memory, sched) (absent)']
    assert 'kernel.sched_autogroup_enabled = 0' in sysctl[0]['after'] and 'vm.swappiness = 10' in sysctl[0]['after']
    fact = diffs[FACT + ' (record) (absent)']
    assert json.loads(fact['after'])['mode'] == 'balanced'


def test_record_writes_the_fact_once_and_keeps_its_time(tuned):
    code, first = run_module(profile, record_args(tuned))
    assert code == 0 and first['changed'] is True, first
    written = json.loads(tuned.read(FACT))
    assert written == first['fact']
    assert written['knobs'] == {'vm.swappiness': 'applied'} and written['unsupported'] == {}
    assert written['kernel_release'] == tuned.read('/proc/sys/kernel/osrelease').strip()
    assert tuned.mode(FACT) == 0o644

    code, second = run_module(profile, record_args(tuned))
    assert code == 0 and second['changed'] is False
    assert json.loads(tuned.read(FACT))['applied_at'] == written['applied_at']


def test_record_moves_applied_at_only_when_the_outcome_changes(tuned):
    run_module(profile, record_args(tuned))
    # A record written long ago, as the module writes it (the fact file and its entry in the state alike).
    old = json.dumps(dict(json.loads(tuned.read(FACT)), applied_at='2000-01-01T00:00:00Z'), indent=4,
                     sort_keys=True) + '\n'
    tuned.write(FACT, old)
    state = json.loads(tuned.read(STATE))
    state['files'][FACT]['content'] = old
    tuned.write(STATE, json.dumps(state))
    code, result = run_module(profile, record_args(tuned))
    # The same request on an unchanged host: nothing runs, and the record keeps its time.
    assert code == 0 and result['changed'] is False and result['in_sync'] is True
    assert result['recorded']['applied_at'] == '2000-01-01T00:00:00Z' and tuned.read(FACT) == old
    code, result = run_module(profile, record_args(tuned, settings_hash='def'))
    assert code == 0 and result['changed'] is True
    assert result['fact']['applied_at'] != '2000-01-01T00:00:00Z'


def test_record_check_mode_and_diff_write_nothing(tuned):
    code, result = run_module(profile, record_args(tuned), check_mode=True, diff=True)
    assert code == 0 and result['changed'] is True
    assert not tuned.exists(FACT)
    assert result['diff'][-1]['before'] == '' and json.loads(result['diff'][-1]['after'])['mode'] == 'balanced'


@pytest.mark.parametrize('tamper, drifted', [
    (lambda host: host.write(SWAPPINESS, '60\n'), 'vm.swappiness'),
    (lambda host: os.unlink(host.path(SYSCTL_FILE)), SYSCTL_FILE),
    (lambda host: host.write(SYSCTL_FILE, 'vm.swappiness = 1\n'), SYSCTL_FILE),
])
def test_drift_in_values_or_files_fails_the_record_and_writes_nothing(tuned, tamper, drifted):
    tamper(tuned)
    code, result = run_module(profile, record_args(tuned, {}))
    assert code == 1
    assert drifted in result['msg'] and drifted in result['drift']
    assert not tuned.exists(FACT)
    assert drifted in facts(tuned, ['drift'])['drift']


def test_drift_can_be_recorded_when_asked(tuned):
    tuned.write(SWAPPINESS, '60\n')
    code, result = run_module(profile, record_args(tuned, {}, fail_on_drift=False))
    assert code == 0 and result['changed'] is True
    assert result['drift'] == {'vm.swappiness': {'desired': '10', 'live': '60'}}


def test_no_drift_after_a_clean_apply(tuned):
    assert facts(tuned, ['drift'])['drift'] == {}


@pytest.mark.parametrize('path', ['/etc/passwd', '/etc/ansible/facts.d/sub/x.fact', '/etc/ansible/facts.d/aitune.json',
                                  '/etc/ansible/facts.d/../aitune.fact'])
def test_record_refuses_a_path_outside_the_facts_dir(tuned, path):
    before = tuned.snapshot()
    code, result = run_module(profile, record_args(tuned, path=path))
    assert code == 1 and 'facts.d' in result['msg']
    assert tuned.snapshot() == before


def test_record_does_not_follow_a_symlinked_fact_file(tuned):
    os.makedirs(tuned.path('/etc/ansible/facts.d'), exist_ok=True)
    os.symlink(tuned.path('/etc/shadow-target'), tuned.path(FACT))
    code, result = run_module(profile, record_args(tuned))
    assert code == 1
    assert not os.path.exists(tuned.path('/etc/shadow-target'))


def test_gather_subset_returns_only_the_parts_asked_for(tuned):
    run_module(profile, record_args(tuned))
    part = facts(tuned, ['kernel', 'cpus', 'user', 'recorded', 'drift'])
    assert sorted(part) == ['cpus', 'drift', 'kernel', 'recorded', 'user']
    assert part['recorded']['settings_hash'] == 'abc'
    assert part['kernel']['boot_id'] == tuned.read('/proc/sys/kernel/random/boot_id').strip()
    assert 'knobs' in facts(tuned, ['all'])


@pytest.mark.parametrize('housekeeping', ['', ' ', ','])
@pytest.mark.parametrize('subsystems', [{'memory': {'swappiness': 10}},
                                        {'memory': {'swappiness': 10}, 'irq': {'devices': ['nvme*']}}])
def test_an_empty_housekeeping_set_is_refused_not_read_as_the_default(make_host, subsystems, housekeeping):
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(profile, {'root': host.root, 'subsystems': subsystems, 'housekeeping_cpus': housekeeping})
    assert code == 1, result
    assert result['msg'].startswith('invalid settings, nothing was changed: housekeeping_cpus: an empty CPU list')
    assert host.snapshot() == before
