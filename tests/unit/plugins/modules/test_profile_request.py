# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What the profile module decides itself, so the roles decide nothing: the subsystems a call covers (skip list,
tags, declared services), each service's placement from its class, the host's CPU sets for the CPU words, whether
the host already holds the request, and a preview without root."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _profile
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.modules import profile
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

FACT = '/etc/ansible/facts.d/aitune.fact'
SWAPPINESS = '/proc/sys/vm/swappiness'
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0'}
PROFILE = {
    'sched': {'autogroup': False},
    'memory': {'swappiness': 10},
    'cpufreq': {'governor': 'performance'},
    'cgroup': {'slices': {'aitune-latency.slice': {'cpu_weight': 10000}, 'aitune-batch.slice': {'cpu_weight': 1}}},
    'placement': {'latency': {'slice': 'aitune-latency.slice', 'timer_slack_ns': 1},
                  'batch': {'slice': 'aitune-batch.slice'}},
}
SELECTION = load_cases('profile_selection.yml')


def params(**options):
    """The profile module's options as AnsibleModule would hand them over, defaults filled in."""
    base = {'subsystems': PROFILE, 'workloads': None, 'skip': [], 'run_tags': ['all'], 'skip_tags': [],
            'housekeeping_cpus': None, 'restart': False, 'persist': True, 'record': None}
    workloads = options.pop('workloads', None)
    if workloads is not None:
        base['workloads'] = {'latency': workloads.get('latency', []), 'batch': workloads.get('batch', [])}
    base.update(options)
    return base


@pytest.mark.parametrize('case', SELECTION, ids=[case['id'] for case in SELECTION])
def test_what_a_call_covers(make_host, case):
    request = _profile.ProfileRequest(params(**case['params']), HostFS(make_host('6.12').root))
    assert request.selected == case['selected']
    assert request.whole is case['whole']


def test_services_get_their_class_and_latency_wins(make_host):
    request = _profile.ProfileRequest(params(workloads={'latency': ['vllm.service', 'both.service'],
                                                        'batch': ['trainer.service', 'both.service']}),
                                      HostFS(make_host('6.12').root))
    services = {service['name']: service for service in request.requests['placement']['services']}
    assert services == {
        'trainer.service': {'name': 'trainer.service', 'slice': 'aitune-batch.slice'},
        'both.service': {'name': 'both.service', 'slice': 'aitune-latency.slice', 'timer_slack_ns': 1},
        'vllm.service': {'name': 'vllm.service', 'slice': 'aitune-latency.slice', 'timer_slack_ns': 1},
    }
    assert request.requests['placement']['restart'] is False
    assert request.classes['batch'] == {'slice': 'aitune-batch.slice'}


def test_cpu_words_reach_the_subsystems_and_the_partition_is_hashed(make_host):
    host = make_host('6.12')
    host.write('/sys/devices/system/cpu/online', '0-7\n')
    subsystems = {'cgroup': {'slices': {'aitune-latency.slice': {'allowed_cpus': '@latency_cpus'},
                                        'aitune-batch.slice': {'allowed_cpus': '@batch_cpus'}}},
                  'irq': {'devices': ['*'], 'housekeeping_cpus': '@housekeeping_cpus'}}
    request = _profile.ProfileRequest(params(subsystems=subsystems), HostFS(host.root))
    # Each subsystem resolves the words itself, so it can report what a host without a partition cannot carry.
    slices = request.requests['cgroup']['slices']
    assert slices['aitune-latency.slice']['allowed_cpus'] == '@latency_cpus'
    assert request.requests['irq']['housekeeping_cpus'] == '@housekeeping_cpus'
    # CPU 0 keeps housekeeping; the latency set is the upper half of the others, the batch set the rest.
    assert request.partition == {'housekeeping': '0', 'latency': '4-7', 'batch': '0-3', 'state': 'supported',
                                 'reason': None}
    explicit = _profile.ProfileRequest(params(subsystems=subsystems, housekeeping_cpus='0-1'), HostFS(host.root))
    assert explicit.requests['irq']['housekeeping_cpus'] == '0-1'
    # The same words ask for other CPUs once the host's CPUs change: the request is not the one recorded.
    host.write('/sys/devices/system/cpu/online', '0\n')
    shrunk = _profile.ProfileRequest(params(subsystems=subsystems), HostFS(host.root))
    assert shrunk.partition['state'] == 'unsupported' and shrunk.partition['latency'] == ''
    assert shrunk.settings_hash != request.settings_hash


def test_the_settings_hash_follows_the_request(make_host):
    fs = HostFS(make_host('6.12').root)
    first = _profile.ProfileRequest(params(record=RECORD), fs).settings_hash
    assert _profile.ProfileRequest(params(record=RECORD), fs).settings_hash == first
    assert _profile.ProfileRequest(params(record=RECORD, skip=['cpufreq']), fs).settings_hash != first
    assert _profile.ProfileRequest(params(record=RECORD, persist=False), fs).settings_hash != first
    assert _profile.ProfileRequest(params(record=dict(RECORD, mode='aggressive')), fs).settings_hash != first


@pytest.mark.parametrize('bad, words', [
    ({'skip': ['cpufrq']}, ['cpufrq', 'not a subsystem']),
    ({'subsystems': dict(PROFILE, turbo={'on': True})}, ['turbo', 'not a subsystem']),
])
def test_unknown_subsystems_are_refused_before_any_write(make_host, bad, words):
    host = make_host('6.12')
    before = host.snapshot()
    args = dict({'root': host.root, 'subsystems': {'memory': {'swappiness': 10}}}, **bad)
    code, result = run_module(profile, args)
    assert code == 1 and all(word in result['msg'] for word in words), result
    assert host.snapshot() == before


def tune(host, **options):
    args = dict({'root': host.root, 'subsystems': {'memory': {'swappiness': 10}, 'sched': {'autogroup': False}},
                 'record': RECORD}, **options)
    code, result = run_module(profile, args)
    assert code == 0, result
    return result


def test_a_host_that_holds_the_request_is_left_alone_until_something_drifts(make_host):
    host = make_host('6.12')
    first = tune(host)
    assert first['changed'] is True and first['in_sync'] is False and first['fact']['mode'] == 'balanced'
    fact = host.read(FACT)

    again = tune(host)
    assert again['changed'] is False and again['in_sync'] is True and again['subsystems'] == {}
    assert again['reason'].startswith('already applied on %s' % first['fact']['applied_at'])
    assert again['knobs'] == {'sched.autogroup': 'applied', 'vm.swappiness': 'applied'}
    assert host.read(FACT) == fact

    # A tag run on a host that holds the profile reports only its own subsystem's knobs.
    tagged = tune(host, run_tags=['memory'])
    assert tagged['in_sync'] is True and tagged['selected'] == ['memory'] and list(tagged['knobs']) == ['vm.swappiness']

    host.write(SWAPPINESS, '60\n')
    fixed = tune(host)
    assert fixed['in_sync'] is False and fixed['changed'] is True and host.read(SWAPPINESS).strip() == '10'

    # Another request is not "held", even on an unchanged host.
    other = tune(host, subsystems={'memory': {'swappiness': 20}, 'sched': {'autogroup': False}})
    assert other['in_sync'] is False and host.read(SWAPPINESS).strip() == '20'


def test_a_tag_run_is_not_recorded(make_host):
    host = make_host('6.12')
    result = tune(host, run_tags=['memory'])
    assert result['selected'] == ['memory'] and 'fact' not in result and not host.exists(FACT)
    assert host.read(SWAPPINESS).strip() == '10'


def test_without_root_the_call_previews(make_host, monkeypatch):
    host = make_host('6.12')
    before = host.snapshot()
    monkeypatch.setattr(_profile.os, 'geteuid', lambda: 1000)
    result = tune(host)
    assert result['preview'] is True and result['root'] is False
    assert result['changed'] is True and result['changed_knobs'] == ['sched.autogroup', 'vm.swappiness']
    assert 'fact' not in result
    assert host.snapshot() == before
    assert json.dumps(result)  # the result is plain data, as Ansible needs it
