# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The other tuners on a host: what tuning_facts reports of them, the profile module's other_tuners policy, the
cpuidle room's CPU latency limit in force beside its own request, the tuner drift names as the probable writer, and
the restore that has a running tuned apply its profile again."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.aitune.kernel.plugins.module_utils._cpuidle import PMQOS_UNIT
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import drift_writers
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import neighbours as read_neighbours
from ansible_collections.aitune.kernel.plugins.modules import cpuidle, hugepages, profile, tuning_facts
from ansible_collections.aitune.kernel.plugins.modules import restore as restore_module
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.fakehost import TREES_DIR
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import (
    RecordingSystemctl, RecordingTunedAdm, use_systemd, use_tuned_adm)
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


def fact_part(host, part):
    """One part of what tuning_facts gathers on ``host``."""
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': [part]})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning'][part]


def neighbours(host):
    return fact_part(host, 'neighbours')


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


# -- verify: who probably changed a drifted setting ------------------------------------------------------------------
TUNED_SYSCTL = 'tuned is running with profile latency-performance and its sysctl plugin writes this'
SYSCTL_FILE = '/etc/sysctl.d/90-aitune.conf'
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0', 'settings_hash': 'abc'}


def applied_beside_tuned(make_host, sets=('tuned_latency_performance',), swappiness=5):
    host = add_sets(make_host('6.12'), sets)
    code, result = run_module(profile, {'root': host.root, 'other_tuners': 'allow',
                                        'subsystems': {'memory': {'swappiness': swappiness}}})
    assert code == 0 and result['changed'] is True, result
    return host


def drift(host):
    return fact_part(host, 'drift')


def test_drift_names_tuned_and_the_plugin_that_writes_the_setting(make_host):
    host = applied_beside_tuned(make_host)
    # tuned applies its profile again (a restart, a profile switch): its sysctl plugin writes its own value back.
    host.write(SWAPPINESS, '10\n')
    assert drift(host) == {'vm.swappiness': {'desired': '5', 'live': '10', 'probable_writer': TUNED_SYSCTL}}


def test_the_failed_read_back_of_a_recorded_run_names_tuned_too(make_host):
    host = applied_beside_tuned(make_host)
    host.write(SWAPPINESS, '10\n')
    code, result = run_module(profile, {'root': host.root, 'subsystems': {}, 'record': RECORD})
    assert code == 1, result
    assert 'vm.swappiness (desired 5, live 10; probably: %s)' % TUNED_SYSCTL in result['msg']
    assert result['drift']['vm.swappiness']['probable_writer'] == TUNED_SYSCTL


def test_a_stopped_tuned_is_not_named(make_host):
    host = applied_beside_tuned(make_host)
    os.remove(host.path('/proc/812/comm'))
    os.remove(host.path('/proc/812/cmdline'))
    host.write(SWAPPINESS, '10\n')
    assert drift(host) == {'vm.swappiness': {'desired': '5', 'live': '10'}}


def test_tuneds_sysctl_plugin_is_not_named_for_a_debugfs_knob(make_host):
    """latency-performance's sysctl plugin covers sched's sysctls, not the scheduler's debugfs files."""
    host = add_sets(make_host('6.12'), ['tuned_latency_performance'])
    code, result = run_module(profile, {'root': host.root, 'other_tuners': 'allow',
                                        'subsystems': {'sched': {'base_slice_ns': 4000000, 'autogroup': False}}})
    assert code == 0, result
    host.write('/sys/kernel/debug/sched/base_slice_ns', '3000000\n')
    host.write('/proc/sys/kernel/sched_autogroup_enabled', '1\n')
    found = drift(host)
    assert found['sched.base_slice_ns'] == {'desired': '4000000', 'live': '3000000'}
    assert found['sched.autogroup']['probable_writer'] == TUNED_SYSCTL


def test_an_unreadable_profile_may_have_written_anything(make_host):
    host = applied_beside_tuned(make_host, sets=('tuned_unknown_profile',))
    host.write(SWAPPINESS, '30\n')
    assert drift(host)['vm.swappiness']['probable_writer'] == (
        'tuned is running with profile vendor-secret, whose tuned.conf could not be read, so any of its plugins may '
        'write this')


def test_drift_names_power_profiles_daemon_and_a_boot_governor_service(cpu_host, monkeypatch):
    host = add_sets(cpu_host('cpu_intel_pstate', 'cpu_intel_idle'), ['power_profiles_daemon', 'cpupower_enabled'])
    code, result = run_module(profile, {'root': host.root, 'other_tuners': 'allow',
                                        'subsystems': {'cpufreq': {'governor': 'performance'}}})
    assert code == 0 and result['changed'] is True, result
    governor = '/sys/devices/system/cpu/cpufreq/policy0/scaling_governor'
    host.write(governor, host.read(governor).replace('performance', 'powersave'))
    writer = drift(host)['cpufreq.policy0.governor']['probable_writer']
    assert writer == ('power-profiles-daemon is running with profile performance and sets the governor or the '
                      'energy-performance preference on every profile change; cpupower.service is enabled and sets '
                      'the governor and frequencies at boot')


def test_several_plugins_that_write_a_setting_are_named_together(make_host):
    """The custom profile's vm plugin (its included throughput-performance) and sysctl plugin both write memory."""
    tuners = read_neighbours(HostFS(add_sets(make_host('6.12'), ['tuned_custom_profile']).root))
    assert drift_writers(tuners, 'vm.swappiness', '/proc/sys/vm/swappiness') == (
        'tuned is running with profile inference and its sysctl/vm plugins write this')
    assert drift_writers(tuners, 'thp.enabled', '/sys/kernel/mm/transparent_hugepage/enabled') == (
        'tuned is running with profile inference and its vm plugin writes this')
    assert drift_writers(tuners, 'block.nvme0n1.read_ahead_kb', '/sys/block/nvme0n1/queue/read_ahead_kb') == (
        'tuned is running with profile inference and its disk plugin writes this')


def test_irqbalance_is_named_for_an_irq_affinity(make_host):
    host = add_sets(make_host('6.12'), ['irqbalance'])
    tuners = read_neighbours(HostFS(host.root))
    assert drift_writers(tuners, 'irq.24.affinity') == (
        'irqbalance is running (pid 655) and moves IRQ affinities to every CPU it does not ban')
    # irqbalance leaves the default affinity and the workqueue mask alone.
    assert drift_writers(tuners, 'irq.default_affinity') is None and drift_writers(tuners, 'workqueue.cpumask') is None


# -- restore: a running tuned applies its profile again --------------------------------------------------------------
def restore(host, check_mode=False, **args):
    code, result = run_module(restore_module, dict({'root': host.root}, **args), check_mode=check_mode)
    assert code == 0, result
    return result


def test_restore_asks_tuned_to_apply_its_profile_after_the_files_are_gone(make_host, monkeypatch):
    host = applied_beside_tuned(make_host)
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert host.value(SWAPPINESS) == '60' and not host.exists(SYSCTL_FILE)
    # Once, after the collection's sysctl file was removed: tuned's reapply_sysctl then finds nothing of ours.
    assert adm.calls == [(['profile', 'latency-performance'], False)]
    assert result['tuned'] == {
        'profile': 'latency-performance', 'profile_mode': 'manual', 'subsystems': ['memory'], 'action': 'reapplied',
        'command': 'tuned-adm profile latency-performance',
        'reason': 'tuned applied its profile again over the restored values, so tuned-adm verify holds'}
    assert not result.get('warnings')
    # A second restore puts nothing back, so tuned is left alone.
    again = restore(host)
    assert again['changed'] is False and again['tuned']['action'] == 'not needed' and len(adm.calls) == 1


def test_restore_check_mode_says_it_would_ask_tuned(make_host, monkeypatch):
    host = applied_beside_tuned(make_host)
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    before = host.snapshot()
    result = restore(host, check_mode=True)
    assert result['tuned']['action'] == 'would reapply' and result['tuned']['command'] == \
        'tuned-adm profile latency-performance'
    assert adm.calls == [] and host.snapshot() == before


def test_restore_warns_and_succeeds_when_tuned_cannot_be_reached(make_host, monkeypatch):
    host = applied_beside_tuned(make_host)
    adm = RecordingTunedAdm(host, error='Cannot talk to TuneD daemon via DBus. Is TuneD daemon running?')
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert result['changed'] is True and host.value(SWAPPINESS) == '60' and not host.exists(SYSCTL_FILE)
    assert result['tuned']['action'] == 'failed' and 'Cannot talk to TuneD daemon' in result['tuned']['reason']
    warning = str(result.get('warnings'))
    assert 'tuned (pid 812, profile latency-performance' in warning and 'tuned-adm profile latency-performance' in \
        warning and 'tuned-adm verify' in warning


def test_restore_on_a_root_that_is_not_the_hosts_own_asks_no_tuned(make_host):
    """Without the fake: a tree below / is not this host, and the host's own tuned-adm is never run for it."""
    host = applied_beside_tuned(make_host)
    result = restore(host)
    assert result['tuned']['action'] == 'failed' and 'is not this host\'s own' in result['tuned']['reason']
    assert host.value(SWAPPINESS) == '60'


def test_restore_keeps_tuned_in_auto_mode(make_host, monkeypatch):
    host = applied_beside_tuned(make_host)
    host.write('/etc/tuned/profile_mode', 'auto\n')
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert adm.calls == [(['auto_profile'], False)] and result['tuned']['command'] == 'tuned-adm auto_profile'


def test_restore_of_what_tuned_does_not_write_leaves_it_alone(make_host, monkeypatch):
    host = add_sets(make_host('6.12'), ['tuned_latency_performance'])
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 16}]})
    assert code == 0 and result['changed'] is True, result
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert result['changed'] is True and adm.calls == []
    assert result['tuned']['action'] == 'not needed' and result['tuned']['subsystems'] == []


def test_restore_without_tuned_reports_none(make_host, monkeypatch):
    host = make_host('6.12')
    assert run_module(profile, {'root': host.root, 'subsystems': {'memory': {'swappiness': 5}}})[0] == 0
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert result['changed'] is True and result['tuned'] is None and adm.calls == []


@pytest.mark.parametrize('active, calls, action', [
    # tuned merges several profiles named together; each is passed as its own argument.
    ('latency-performance my-overrides\n', [(['profile', 'latency-performance', 'my-overrides'], False)], 'reapplied'),
    # Never an option, nor a path, on tuned-adm's command line.
    ('--help\n', [], 'failed'),
    ('../../etc\n', [], 'failed'),
])
def test_restore_passes_only_profile_names_to_tuned_adm(make_host, monkeypatch, active, calls, action):
    host = applied_beside_tuned(make_host)
    host.write('/etc/tuned/active_profile', active)
    adm = RecordingTunedAdm(host)
    use_tuned_adm(monkeypatch, adm)
    result = restore(host)
    assert adm.calls == calls and result['tuned']['action'] == action
    assert host.value(SWAPPINESS) == '60'
