# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_plan: the benchmark role's settings refused or planned on the controller, with latency_bench's own limits.

The plans are made as the action plugin makes them, its argument spec first. The plugin's own run() is called in a
fresh interpreter: loading Ansible's controller code changes how the modules that other tests run in this process
report their warnings."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.aitune.kernel.plugins.module_utils import _bench_options
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError
from ansible_collections.aitune.kernel.plugins.module_utils._bench_plan import (
    ARGUMENT_SPEC, as_list, plan_run, round_plan)
from ansible_collections.aitune.kernel.plugins.modules import latency_bench
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

RANGES = load_cases('bench_plan_ranges.yml')
REFUSED = load_cases('bench_plan_refused.yml')
PREFIX = 'Bad benchmark settings: '

# bench_plan's run() in a fresh interpreter: the task's args on stdin, its result (or the error it raised) on stdout.
RUN_ACTION = """
import json, sys
from types import SimpleNamespace
from ansible.errors import AnsibleActionFail
from ansible_collections.aitune.kernel.plugins.action.bench_plan import ActionModule
args, check_mode = json.load(sys.stdin)
task = SimpleNamespace(args=args, async_val=0, check_mode=check_mode, action='aitune.kernel.bench_plan')
# A connection that was never opened: bench_plan must not need one.
connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
try:
    result = ActionModule(task, connection, None, None, None).run(task_vars={})
except AnsibleActionFail as exc:
    result = {'raised': str(exc)}
print(json.dumps(result))
"""


def plan(**settings):
    """bench_plan's result for the role's settings, as the role passes them (a command line's -e gives text)."""
    settings.setdefault('modes', ['balanced'])
    validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(settings)
    assert not validated.error_messages, validated.error_messages
    try:
        return plan_run(validated.validated_parameters)
    except BenchError as exc:
        return {'failed': True, 'msg': str(exc)}


def run_action(check_mode=False, **args):
    """The action plugin's real run() on these task args."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, '-c', RUN_ACTION], input=json.dumps([args, check_mode]),
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def refused(result, *problems):
    """Whether bench_plan failed with exactly these problems, in this order."""
    assert result.get('failed') is True, result
    assert result['msg'] == PREFIX + '; '.join(problems)
    return True


@pytest.mark.parametrize('case', RANGES, ids=[case['setting'] for case in RANGES])
def test_every_range_runs_at_both_ends_and_refuses_just_outside(case):
    for allowed in (case['lowest'], case['highest'], str(case['lowest'])):
        result = plan(**{case['setting']: allowed})
        assert not result.get('failed'), (allowed, result)
    for outside in (case['below'], case['above']):
        assert refused(plan(**{case['setting']: outside}),
                       '%s must be between %s and %s, got %s' % (case['variable'], case['lowest'], case['highest'], outside))


def test_the_ranges_are_latency_bench_s_own(tmp_path):
    # One table: what bench_plan refuses for the role is what latency_bench refuses for its own options.
    for case in RANGES:
        if case['setting'] in _bench_options.ARGUMENT_SPEC:
            assert _bench_options.LIMITS[case['setting']] == (case['lowest'], case['highest']), case
    code, result = run_module(latency_bench, {'load_fraction': 0.0005, 'condition': 'load',
                                              'calibration_file': str(tmp_path / 'calibration.json')})
    assert code == 1 and result['msg'] == 'load_fraction must be between 0.001 and 1, got 0.0005', result


def test_the_messages_the_integration_tests_read():
    # tests/integration/test_benchmark.py reads these from a real benchmark.yml; a command line gives text.
    assert refused(plan(interleave='0'), 'aitune_bench_interleave must be between 1 and 20, got 0')
    assert refused(plan(duration_s='0.1'), 'aitune_bench_duration_s must be between 0.5 and 600, got 0.1')
    assert refused(plan(repetitions='51'), 'aitune_bench_repetitions must be between 1 and 50, got 51')
    assert refused(plan(tools='agent,endpoint'), 'the endpoint tool needs aitune_bench_endpoint with url and model')


@pytest.mark.parametrize('case', REFUSED, ids=[case['id'] for case in REFUSED])
def test_settings_that_cannot_run_are_refused_by_name(case):
    assert refused(plan(**case['settings']), case['problem'])


def test_every_problem_is_listed_at_once_in_a_fixed_order():
    result = plan(modes=['turbo'], interleave=0, gate_threshold=0.5, conditions=['busy'], tools=['fio'])
    assert refused(result,
                   'aitune_bench_interleave must be between 1 and 20, got 0',
                   'aitune_gate_threshold must be between 1 and 100, got 0.5',
                   'aitune_bench_modes must name only conservative, balanced or aggressive, got turbo',
                   'aitune_bench_conditions must name only idle or load, got busy',
                   'the fio tool needs aitune_bench_fio with path')


def test_the_action_plugin_plans_refuses_and_leaves_what_is_no_number_to_ansible():
    planned = run_action(modes='balanced,aggressive', interleave='2', duration_s='0.5', seed='11')
    assert planned['changed'] is False and 'failed' not in planned
    assert planned == dict(plan(modes='balanced,aggressive', interleave='2', duration_s='0.5', seed='11'),
                           changed=False)
    # The same in check mode: bench_plan changes nothing either way.
    assert run_action(check_mode=True, modes='balanced,aggressive', interleave='2', duration_s='0.5',
                      seed='11') == planned
    assert run_action(modes=['balanced'], interleave='0') == {
        'failed': True, 'msg': PREFIX + 'aitune_bench_interleave must be between 1 and 20, got 0'}
    # Text that is no number: Ansible's own conversion refuses it, naming the option.
    raised = run_action(modes=['balanced'], workers='two')['raised']
    assert "argument 'workers'" in raised and 'unable to convert to int' in raised


def test_a_tool_s_settings_are_checked_only_when_the_tool_runs():
    result = plan(tools=['agent'], endpoint={'url': 'ftp://nowhere'}, fio={'rw': 'randwrite'})
    assert not result.get('failed'), result


def test_list_settings_are_read_from_a_command_line():
    assert as_list('balanced, aggressive') == ['balanced', 'aggressive']
    assert as_list('idle,,load ') == ['idle', 'load']
    assert as_list(['agent']) == ['agent']
    assert as_list(None) == [] and as_list('') == []
    result = plan(modes='balanced, aggressive', conditions='load', tools='agent,cyclictest')
    assert result['modes'] == ['balanced', 'aggressive']
    assert result['conditions'] == ['load'] and result['tools'] == ['agent', 'cyclictest']


def test_each_round_runs_every_arm_once_in_a_seeded_shuffled_order_with_one_pair_number():
    rounds = round_plan(['balanced', 'aggressive'], 20, seed=5)
    for number, planned in enumerate(rounds, start=1):
        assert sorted(arm['label'] for arm in planned) == ['aggressive', 'balanced', 'stock']
        assert {arm['pair'] for arm in planned} == {number}
    orders = [tuple(arm['label'] for arm in planned) for planned in rounds]
    # Shuffled afresh each round: stock is not always first, and the rounds do not all share one order.
    assert {order[0] for order in orders} == {'stock', 'balanced', 'aggressive'} and len(set(orders)) > 1
    # The seed lays the same order out again; another seed, another order.
    assert round_plan(['balanced', 'aggressive'], 20, seed=5) == rounds
    assert round_plan(['balanced', 'aggressive'], 20, seed=6) != rounds
    result = plan(modes=['balanced', 'aggressive'], interleave='20', seed='5')
    assert result['arms'] == [arm for planned in rounds for arm in planned]
    assert result['seed'] == 5 and result['order'] == [list(order) for order in orders]
    assert result['report_plan'] == {'seed': 5, 'rounds': 20, 'order': result['order']}
    stock = next(arm for arm in result['arms'] if arm['label'] == 'stock')
    assert stock == {'label': 'stock', 'mode': None, 'kind': 'stock', 'pair': 1, 'step': 'round 1, stock arm'}
    assert result['final_mode'] == result['arms'][-1]['mode'] and result['finish_in'] is None
    assert result['title'] == 'Stock vs balanced vs aggressive, 20 interleaved rounds'
    assert result['gate'] is False


def test_a_run_without_a_seed_draws_one_and_names_it():
    seeds = {plan(interleave='3')['seed'] for _index in range(5)}
    assert len(seeds) > 1 and all(isinstance(seed, int) and 0 < seed < 2 ** 31 for seed in seeds)
    assert refused(plan(seed='-1'), 'aitune_bench_seed must be between 0 and 2147483647, got -1')


@pytest.mark.parametrize('seed', range(12))
def test_a_run_that_keeps_its_one_mode_ends_in_it_whatever_the_order(seed):
    result = plan(modes=['balanced'], interleave='2', seed=str(seed))
    last = result['arms'][-1]['mode']
    assert result['finish_in'] == (None if last else 'balanced')
    assert result['final_mode'] == 'balanced'
    # A run that restores, or compares several modes, applies nothing more.
    assert plan(modes=['balanced'], interleave='2', seed=str(seed), restore='true')['finish_in'] is None
    assert plan(modes=['balanced', 'aggressive'], interleave='2', seed=str(seed))['finish_in'] is None


def test_two_workers_measure_every_agent_call_side_by_side():
    result = plan(worker='native,python', conditions='load', tools='agent,cyclictest')
    assert [(call['name'], call.get('worker')) for call in result['calls']] == [
        ('agent-native/load', 'native'), ('agent-python/load', 'python'), ('cyclictest/load', None)]
    assert refused(plan(worker='c'), 'aitune_bench_worker must name only auto, native or python, got c')


def test_each_arm_calls_latency_bench_per_tool_and_condition_with_its_tool_s_settings_only():
    endpoint = {'url': 'http://127.0.0.1:8000', 'model': 'm'}
    result = plan(tools=['agent', 'endpoint', 'cyclictest'], conditions=['idle', 'load'], workload='periodic',
                  endpoint=endpoint)
    assert result['calls'] == [
        {'name': 'agent/idle', 'tool': 'agent', 'condition': 'idle', 'workload': 'periodic', 'worker': 'auto'},
        {'name': 'agent/load', 'tool': 'agent', 'condition': 'load', 'workload': 'periodic', 'worker': 'auto'},
        {'name': 'endpoint/idle', 'tool': 'endpoint', 'condition': 'idle', 'endpoint': endpoint},
        {'name': 'endpoint/load', 'tool': 'endpoint', 'condition': 'load', 'endpoint': endpoint},
        # cyclictest without settings of its own runs with latency_bench's defaults.
        {'name': 'cyclictest/idle', 'tool': 'cyclictest', 'condition': 'idle'},
        {'name': 'cyclictest/load', 'tool': 'cyclictest', 'condition': 'load'},
    ]
    fio = {'path': '/srv/model.bin'}
    assert plan(tools=['fio'], conditions=['idle'], fio=fio)['calls'] == [
        {'name': 'fio/idle', 'tool': 'fio', 'condition': 'idle', 'fio': fio}]


@pytest.mark.parametrize('modes, restore, expected', [
    (['balanced'], None, False),
    (['balanced', 'aggressive'], None, True),
    (['balanced'], 'true', True),
    (['balanced', 'aggressive'], False, False),
])
def test_one_mode_stays_on_the_host_and_several_end_at_stock_unless_told(modes, restore, expected):
    settings = {'modes': modes} if restore is None else {'modes': modes, 'restore': restore}
    assert plan(**settings)['restore'] is expected


def test_a_title_given_is_the_report_s():
    assert plan(title='Fleet A')['title'] == 'Fleet A'
    assert plan()['title'] == 'Stock vs balanced, 1 interleaved round'


def test_the_gate_measures_the_first_mode_under_its_condition_in_its_pairs():
    result = plan(gate=True, modes=['aggressive', 'balanced'], conditions=['idle', 'load'], interleave=9,
                  gate_interleave='2', gate_condition='idle', gate_metric='steps_per_s', title='ignored')
    assert result['gate'] is True
    assert result['modes'] == ['aggressive'] and result['conditions'] == ['idle'] and result['rounds'] == 2
    assert sorted(arm['step'] for arm in result['arms']) == [
        'round 1, aggressive arm', 'round 1, stock arm', 'round 2, aggressive arm', 'round 2, stock arm']
    assert [call['name'] for call in result['calls']] == ['agent/idle']
    assert result['title'] == 'Canary gate: stock vs aggressive, 2 interleaved pairs, steps_per_s under idle'
    # The canary ends in the mode whatever the order: a passed gate hands it on.
    assert result['final_mode'] == 'aggressive' and result['restore'] is False
