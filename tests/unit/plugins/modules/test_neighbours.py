# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The other tuners on a host: what tuning_facts reports of them, the profile module's other_tuners policy, and the
cpuidle room's CPU latency limit in force beside its own request."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.aitune.kernel.plugins.module_utils._cpuidle import PMQOS_UNIT
from ansible_collections.aitune.kernel.plugins.modules import cpuidle, profile, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import RecordingSystemctl, use_systemd
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

CASES = load_cases('neighbours.yml')
with open(os.path.join(TREES_DIR, 'neighbours.yml')) as _handle:
    SETS = yaml.safe_load(_handle)

SWAPPINESS = '/proc/sys/vm/swappiness'
PMQOS_DEVICE = '/dev/cpu_dma_latency'
NOT_RUNNING = {'running': False, 'pid': None}


def add_sets(host, names):
    """Lay the named file sets of fixtures/trees/neighbours.yml over ``host``."""
    for name in names:
        for path, content in (SETS[name].get('files') or {}).items():
            host.write(path, content)
        for path, target in (SETS[name].get('links') or {}).items():
            os.makedirs(os.path.dirname(host.path(path)), exist_ok=True)
            os.symlink(target, host.path(path))
    return host


def neighbours(host):
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['neighbours']})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning']['neighbours']


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_facts_name_each_tuner_found(make_host, case):
    found = neighbours(add_sets(make_host('6.12'), case['sets']))
    for tool, expected in case['expected'].items():
        if isinstance(expected, dict):
            assert {key: found[tool][key] for key in expected} == expected, tool
        else:
            assert found[tool] == expected, tool
    for tool in case.get('absent', ()):
        assert found[tool].get('running', found[tool].get('enabled')) is False, tool


def test_facts_all_includes_neighbours_and_the_limit_in_force(make_host):
    host = add_sets(make_host('6.12'), ['tuned_latency_performance'])
    code, result = run_module(tuning_facts, {'root': host.root})
    facts = result['ansible_facts']['aitune_tuning']
    assert facts['neighbours']['tuned']['running'] is True
    assert facts['cpuidle']['pm_qos_in_force_us'] == 1


def test_tuned_running_refuses_before_writing_and_names_the_ways_out(make_host):
    host = add_sets(make_host('6.12'), ['tuned_latency_performance'])
    original = host.snapshot()
    for check_mode in (True, False):
        code, result = run_module(profile, {'root': host.root, 'subsystems': {'memory': {'swappiness': 10}}},
                                  check_mode=check_mode)
        assert code == 1 and result['changed'] is False, result
        for words in ('tuned (pid 812, profile latency-performance, profile_mode manual)', 'memory through its sysctl plugin',
                      'reapply_sysctl', 'systemctl disable --now tuned', 'other_tuners: allow', 'nothing was changed'):
            assert words in result['msg']
        assert result['other_tuners']['tuned']['plugins'] == ['cpu', 'sysctl']
        assert host.snapshot() == original


def test_allow_applies_and_warns_what_will_fight(make_host):
    host = add_sets(make_host('6.12'), ['tuned_latency_performance'])
    code, result = run_module(profile, {'root': host.root, 'other_tuners': 'allow',
                                        'subsystems': {'memory': {'swappiness': 5}}})
    assert code == 0 and result['changed'] is True, result
    assert host.value(SWAPPINESS) == '5'
    assert result['other_tuners']['tuned']['profile'] == 'latency-performance'
    warning = str(result.get('warnings'))
    assert 'other_tuners=allow' in warning and 'tuned (pid 812' in warning and 'its sysctl plugin' in warning


@pytest.mark.parametrize('sets', [['tuned_stale_pid'], ['tuned_pid_reused'], ['irqbalance', 'cpupower_enabled'],
                                  ['power_profiles_daemon']],
                         ids=['stale_pid', 'pid_reused', 'irqbalance_and_cpupower', 'ppd_beside_no_governor'])
def test_tuners_that_do_not_write_what_the_run_sets_let_it_run(make_host, sets):
    """A stopped tuned, irqbalance and a boot-time cpupower do not stop a run, nor does power-profiles-daemon beside
    a run that sets no governor."""
    host = add_sets(make_host('6.12'), sets)
    code, result = run_module(profile, {'root': host.root, 'subsystems': {'memory': {'swappiness': 10}}})
    assert code == 0 and result['changed'] is True, result
    assert result['other_tuners'] == {} and host.value(SWAPPINESS) == '10'


def test_power_profiles_daemon_refuses_a_governor(cpu_host):
    host = add_sets(cpu_host('cpu_intel_pstate', 'cpu_intel_idle'), ['power_profiles_daemon'])
    original = host.snapshot()
    code, result = run_module(profile, {'root': host.root, 'subsystems': {'cpufreq': {'governor': 'performance'}}})
    assert code == 1 and result['changed'] is False, result
    for words in ('power-profiles-daemon (pid 733, profile performance)', 'cpufreq through its profile (governor)',
                  'systemctl mask --now power-profiles-daemon'):
        assert words in result['msg']
    assert host.snapshot() == original


def test_cpuidle_reports_the_limit_in_force_and_names_tuned_holding_less(cpu_host, monkeypatch):
    host = add_sets(cpu_host('cpu_intel_pstate', 'cpu_intel_idle'), ['tuned_latency_performance'])
    use_systemd(monkeypatch, RecordingSystemctl(host))
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 20})
    assert code == 0, result
    assert result['pm_qos']['state'] == 'applied' and result['pm_qos']['in_force_us'] == 1
    warning = str(result.get('warnings'))
    assert 'limit in force is 1 us, below the 20 us this run requests' in warning
    assert 'tuned (pid 812, profile latency-performance' in warning and 'force_latency' in warning


def test_cpuidle_holding_the_lowest_request_does_not_warn(cpu_host, monkeypatch):
    host = cpu_host('cpu_intel_pstate', 'cpu_intel_idle')
    host.write(PMQOS_DEVICE, '\x14\0\0\0')
    use_systemd(monkeypatch, RecordingSystemctl(host))
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 20})
    assert code == 0 and result['pm_qos']['unit'] == PMQOS_UNIT, result
    assert result['pm_qos']['in_force_us'] == 20 and not result.get('warnings')
