# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.modules import cpufreq, restore
from ansible_collections.aitune.kernel.tests.unit.cputree import make_case_host
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

APPLY = load_cases('cpufreq_apply.yml')
BAD_INPUT = load_cases('cpufreq_bad_input.yml')

NOT_STATE = ('/var/lib/aitune',)
TMPFILES = '/etc/tmpfiles.d/aitune.conf'
POLICY0 = '/sys/devices/system/cpu/cpufreq/policy0'
NO_TURBO = '/sys/devices/system/cpu/intel_pstate/no_turbo'
MIN_PERF_PCT = '/sys/devices/system/cpu/intel_pstate/min_perf_pct'


@pytest.mark.parametrize('case', APPLY, ids=[c['id'] for c in APPLY])
def test_apply_check_idempotence_and_restore(cpu_host, case):
    host = make_case_host(cpu_host, case)
    args = dict(case['args'], root=host.root)
    original = host.snapshot(ignore=NOT_STATE)
    will_change = bool(case['applied'])

    code, result = run_module(cpufreq, args, check_mode=True)
    assert code == 0, result
    assert result['changed'] is will_change
    assert host.kernel.writes == []
    assert host.snapshot(ignore=NOT_STATE) == original

    code, result = run_module(cpufreq, args, diff=True)
    assert code == 0, result
    assert result['applied'] == sorted(case['applied'])
    assert sorted(result['unsupported']) == sorted(case['unsupported'])
    assert result['not_permitted'] == {}
    assert result['changed'] is will_change
    for name, words in (case.get('words') or {}).items():
        for word in words:
            assert word in result['unsupported'][name]
    for path, value in (case.get('values') or {}).items():
        assert host.value(path) == value, path
    if 'policies' in case:
        assert result['policies'] == case['policies']
    tmpfiles = host.read(TMPFILES) if host.exists(TMPFILES) else ''
    for line in case.get('tmpfiles') or []:
        assert line + '\n' in tmpfiles
    if not will_change:
        assert not host.exists(TMPFILES) and result['files'] == []

    code, again = run_module(cpufreq, args)
    assert code == 0 and again['changed'] is False, again
    assert again['applied'] == result['applied']

    code, restored = run_module(restore, {'root': host.root, 'scope': 'cpufreq'})
    assert code == 0, restored
    assert restored['changed'] is will_change
    assert host.snapshot(ignore=NOT_STATE) == original


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_is_refused_with_no_write(cpu_host, case):
    host = make_case_host(cpu_host, case)
    before = host.snapshot()
    code, result = run_module(cpufreq, dict(case['args'], root=host.root))
    assert code == 1, result
    assert 'nothing was changed' in result['msg']
    for word in case['error']:
        assert word in result['msg']
    assert host.kernel.writes == []
    assert host.snapshot() == before


def test_writes_go_to_policy_directories_never_through_cpu_symlinks(cpu_host):
    host = cpu_host('cpu_acpi_cpufreq')
    assert os.path.islink(host.path('/sys/devices/system/cpu/cpu1/cpufreq'))
    code, result = run_module(cpufreq, {'root': host.root, 'governor': 'performance'})
    assert code == 0, result
    # One write per policy, however many CPUs share it, and only at the policy's real directory.
    assert host.kernel.writes == [(POLICY0 + '/scaling_governor', 'performance'),
                                  ('/sys/devices/system/cpu/cpufreq/policy2/scaling_governor', 'performance')]
    assert result['knobs']['cpufreq.policy0.governor']['path'] == POLICY0 + '/scaling_governor'
    assert result['driver'] == 'acpi-cpufreq'


def test_a_symlinked_policy_directory_is_refused(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    os.rename(host.path(POLICY0), host.path('/sys/devices/system/cpu/cpufreq/elsewhere'))
    os.symlink('elsewhere', host.path(POLICY0))
    before = host.snapshot()
    code, result = run_module(cpufreq, {'root': host.root, 'governor': 'performance'})
    assert code == 1
    assert 'tampered' in result['msg'] and 'nothing was changed' in result['msg']
    assert host.snapshot() == before


def test_knob_names_rebuild_for_restore_and_drift(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    for name, path in (('cpufreq.policy12.governor', '/sys/devices/system/cpu/cpufreq/policy12/scaling_governor'),
                       ('cpufreq.policy3.preference', '/sys/devices/system/cpu/cpufreq/policy3/'
                                                      'energy_performance_preference'),
                       ('cpufreq.policy0.min_freq', POLICY0 + '/scaling_min_freq'),
                       ('cpufreq.cpu7.epb', '/sys/devices/system/cpu/cpu7/power/energy_perf_bias'),
                       ('cpufreq.intel_pstate.no_turbo', NO_TURBO),
                       ('cpufreq.boost', '/sys/devices/system/cpu/cpufreq/boost')):
        assert [loc.path for loc in lookup(name).locations] == [path]
    run_module(cpufreq, {'root': host.root, 'cpus': '0', 'governor': 'performance'})
    host.write(POLICY0 + '/scaling_governor', 'powersave\n')
    with Engine(root=host.root) as engine:
        assert engine.drift() == {'cpufreq.policy0.governor': {'desired': 'performance', 'live': 'powersave'}}


def test_turbo_locked_by_firmware_is_not_permitted(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    host.write(NO_TURBO, '1\n')
    # intel_pstate answers EPERM on no_turbo when the firmware has turbo off.
    host.kernel.reject[NO_TURBO] = errno.EPERM
    code, result = run_module(cpufreq, {'root': host.root, 'boost': True, 'governor': 'performance'})
    assert code == 0, result
    assert 'cpufreq.intel_pstate.no_turbo' in result['not_permitted']
    assert 'Operation not permitted' in result['not_permitted']['cpufreq.intel_pstate.no_turbo']
    assert 'cpufreq.policy0.governor' in result['applied']
    assert host.value(NO_TURBO) == '1'
    assert NO_TURBO not in host.read(TMPFILES)


def test_value_the_kernel_does_not_keep_is_not_permitted(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    host.kernel.keep.add(MIN_PERF_PCT)
    code, result = run_module(cpufreq, {'root': host.root, 'min_perf_pct': 10})
    assert code == 0, result
    assert 'kept' in result['not_permitted']['cpufreq.intel_pstate.min_perf_pct']


def test_min_freq_clamped_below_scaling_max_is_not_permitted(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    host.write(POLICY0 + '/scaling_max_freq', '2000000\n')
    code, result = run_module(cpufreq, {'root': host.root, 'cpus': '0', 'min_freq': 'max'})
    assert code == 0, result
    assert "kept '2000000'" in result['not_permitted']['cpufreq.policy0.min_freq']


def test_persist_false_leaves_no_tmpfiles_line(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    code, result = run_module(cpufreq, {'root': host.root, 'governor': 'performance', 'persist': False})
    assert code == 0, result
    assert len(result['applied']) == 4
    assert not host.exists(TMPFILES)


def test_diff_shows_live_values_and_the_tmpfiles_file(cpu_host):
    host = cpu_host('cpu_intel_pstate')
    code, result = run_module(cpufreq, {'root': host.root, 'cpus': '0', 'governor': 'performance'}, check_mode=True,
                              diff=True)
    assert code == 0, result
    live, tmpfiles = result['diff']
    assert live['before'] == 'cpufreq.policy0.governor: powersave\n'
    assert live['after'] == 'cpufreq.policy0.governor: performance\n'
    assert tmpfiles['after_header'] == TMPFILES
    assert 'w %s/scaling_governor - - - - performance' % POLICY0 in tmpfiles['after']
