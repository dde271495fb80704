# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""aitune.kernel.record (verify by reading back, then record the local fact) and the parts of tuning_facts the roles'
fast path relies on: gather_subset, and drift that covers persistence files as well as live values."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.modules import memory, record, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

FACT = '/etc/ansible/facts.d/aitune.fact'
SYSCTL_FILE = '/etc/sysctl.d/90-aitune.conf'
SWAPPINESS = '/proc/sys/vm/swappiness'


def record_args(host, **extra):
    args = {'root': host.root, 'mode': 'balanced', 'collection_version': '0.1.0', 'settings_hash': 'abc',
            'outcomes': {'vm.swappiness': 'applied', 'cpufreq.governor': 'unsupported'},
            'unsupported': {'cpufreq.governor': 'no cpufreq driver'}}
    args.update(extra)
    return args


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


def test_record_writes_the_fact_once_and_keeps_its_time(tuned):
    code, first = run_module(record, record_args(tuned))
    assert code == 0 and first['changed'] is True, first
    written = json.loads(tuned.read(FACT))
    assert written == first['fact']
    assert written['knobs'] == {'vm.swappiness': 'applied', 'cpufreq.governor': 'unsupported'}
    assert written['kernel_release'] == tuned.read('/proc/sys/kernel/osrelease').strip()
    assert tuned.mode(FACT) == 0o644

    code, second = run_module(record, record_args(tuned))
    assert code == 0 and second['changed'] is False
    assert json.loads(tuned.read(FACT))['applied_at'] == written['applied_at']


def test_record_moves_applied_at_only_when_the_outcome_changes(tuned):
    run_module(record, record_args(tuned))
    tuned.write(FACT, json.dumps(dict(json.loads(tuned.read(FACT)), applied_at='2000-01-01T00:00:00Z')))
    assert run_module(record, record_args(tuned))[1]['changed'] is False
    code, result = run_module(record, record_args(tuned, settings_hash='def'))
    assert code == 0 and result['changed'] is True
    assert result['fact']['applied_at'] != '2000-01-01T00:00:00Z'


def test_record_check_mode_and_diff_write_nothing(tuned):
    code, result = run_module(record, record_args(tuned), check_mode=True, diff=True)
    assert code == 0 and result['changed'] is True
    assert not tuned.exists(FACT)
    assert result['diff']['before'] == '' and json.loads(result['diff']['after'])['mode'] == 'balanced'


@pytest.mark.parametrize('tamper, drifted', [
    (lambda host: host.write(SWAPPINESS, '60\n'), 'vm.swappiness'),
    (lambda host: os.unlink(host.path(SYSCTL_FILE)), SYSCTL_FILE),
    (lambda host: host.write(SYSCTL_FILE, 'vm.swappiness = 1\n'), SYSCTL_FILE),
])
def test_drift_in_values_or_files_fails_the_record_and_writes_nothing(tuned, tamper, drifted):
    tamper(tuned)
    code, result = run_module(record, record_args(tuned))
    assert code == 1
    assert drifted in result['msg'] and drifted in result['drift']
    assert not tuned.exists(FACT)
    assert drifted in facts(tuned, ['drift'])['drift']


def test_drift_can_be_recorded_when_asked(tuned):
    tuned.write(SWAPPINESS, '60\n')
    code, result = run_module(record, record_args(tuned, fail_on_drift=False))
    assert code == 0 and result['changed'] is True
    assert result['drift'] == {'vm.swappiness': {'desired': '10', 'live': '60'}}


def test_no_drift_after_a_clean_apply(tuned):
    assert facts(tuned, ['drift'])['drift'] == {}


@pytest.mark.parametrize('path', ['/etc/passwd', '/etc/ansible/facts.d/sub/x.fact', '/etc/ansible/facts.d/aitune.json',
                                  '/etc/ansible/facts.d/../aitune.fact'])
def test_record_refuses_a_path_outside_the_facts_dir(tuned, path):
    before = tuned.snapshot()
    code, result = run_module(record, record_args(tuned, path=path))
    assert code == 1 and 'facts.d' in result['msg']
    assert tuned.snapshot() == before


def test_record_does_not_follow_a_symlinked_fact_file(tuned):
    os.makedirs(tuned.path('/etc/ansible/facts.d'), exist_ok=True)
    os.symlink(tuned.path('/etc/shadow-target'), tuned.path(FACT))
    code, result = run_module(record, record_args(tuned))
    assert code == 1
    assert not os.path.exists(tuned.path('/etc/shadow-target'))


def test_gather_subset_returns_only_the_parts_asked_for(tuned):
    run_module(record, record_args(tuned))
    part = facts(tuned, ['kernel', 'cpus', 'user', 'recorded', 'drift'])
    assert sorted(part) == ['cpus', 'drift', 'kernel', 'recorded', 'user']
    assert part['recorded']['settings_hash'] == 'abc'
    assert part['kernel']['boot_id'] == tuned.read('/proc/sys/kernel/random/boot_id').strip()
    assert 'knobs' in facts(tuned, ['all'])
