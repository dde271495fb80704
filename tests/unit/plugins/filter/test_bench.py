# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What the benchmark role makes of the modules' results, from real results where a fake host can give them: the
start of a run, the placement of a tuned arm, each host's result and summary, the gate's verdict and a failure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.aitune.kernel.plugins.filter.bench import (
    bench_failure, bench_gate, bench_placement, bench_result, bench_start)
from ansible_collections.aitune.kernel.plugins.modules import profile, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cgtree import install_layout
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.plugins.modules.test_bench_report import interleaved, report

LATENCY_SLICE = '/sys/fs/cgroup/aitune.slice/aitune-latency.slice'
BATCH_SLICE = '/sys/fs/cgroup/aitune.slice/aitune-batch.slice'
SLICES = {'aitune-latency.slice': {'cpu_weight': 10000}, 'aitune-batch.slice': {'cpu_weight': 1}}
CLASSES = {'latency': {'slice': 'aitune-latency.slice', 'timer_slack_ns': 1, 'cpu_scheduling_policy': 'fifo',
                       'cpu_scheduling_priority': 10, 'cpu_affinity': '1-3'},
           'batch': {'slice': 'aitune-batch.slice'}}
RECORD = {'mode': 'balanced', 'collection_version': '0.1.0'}


def apply_profile(host, slices, check_mode=False, record=None):
    """The profile call a mode's role makes, as the tune role registers it (__tune_run)."""
    args = {'root': host.root, 'subsystems': {'cgroup': {'slices': slices}, 'placement': CLASSES},
            'workloads': {'latency': [], 'batch': []}, 'record': record}
    code, result = run_module(profile, args, check_mode=check_mode)
    assert code == 0, result
    return result


def tuning_of(host):
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['user', 'recorded', 'baseline']})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning']


# ---------------------------------------------------------------------------------------------------------------------
# The start of a run

def test_a_stock_host_with_root_is_tuned_by_the_run(make_host):
    assert bench_start(tuning_of(make_host('6.12'))) == {'can_tune': True, 'tuned': False, 'notes': []}


def test_a_host_holding_a_mode_is_brought_to_stock_with_root_and_measured_as_found_without(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    apply_profile(host, SLICES, record=RECORD)
    tuning = tuning_of(host)
    assert bench_start(tuning) == {'can_tune': True, 'tuned': True, 'notes': []}
    assert bench_start(tuning, check_mode=True) == {'can_tune': False, 'tuned': True, 'notes': [
        'the host holds the balanced tuning, which this run cannot put back (check mode), so the stock arm measures '
        'the host as found']}


@pytest.mark.parametrize('tuning, notes', [
    ({'user': {'root': False}, 'recorded': None, 'baseline': None}, []),
    ({'user': {'root': False}, 'recorded': {'mode': 'aggressive'}, 'baseline': None},
     ['the host holds the aggressive tuning, which this run cannot put back (no root), so the stock arm measures the '
      'host as found']),
    # Without a record, a baseline still says the host holds settings of the collection.
    ({'user': {'root': False}, 'recorded': None, 'baseline': {'present': True}},
     ['the host holds the unrecorded tuning, which this run cannot put back (no root), so the stock arm measures the '
      'host as found']),
], ids=['stock', 'recorded-mode', 'baseline-only'])
def test_without_root_nothing_is_tuned_and_a_tuned_host_gets_a_note(tuning, notes):
    assert bench_start(tuning) == {'can_tune': False, 'tuned': bool(notes), 'notes': notes}


# ---------------------------------------------------------------------------------------------------------------------
# Where a tuned arm runs

def test_a_tuned_arm_runs_where_the_mode_placed_latency_services(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    assert bench_placement(apply_profile(host, SLICES)) == {
        'slice': 'aitune-latency.slice', 'cgroup': LATENCY_SLICE,
        'load_slice': 'aitune-batch.slice', 'load_cgroup': BATCH_SLICE,
        'policy': 'fifo', 'priority': 10, 'timer_slack_ns': 1, 'cpus': '1-3'}


def test_a_slice_the_host_did_not_make_is_left_out_as_for_the_services(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    # The cgroup call made only the latency slice: the CPU hogs stay where Ansible runs.
    placement = bench_placement(apply_profile(host, {'aitune-latency.slice': {'cpu_weight': 10000}}))
    assert placement['slice'] == 'aitune-latency.slice' and placement['cgroup'] == LATENCY_SLICE
    assert 'load_slice' not in placement and 'load_cgroup' not in placement
    # A preview makes no slice at all; the class's scheduling settings still apply.
    placement = bench_placement(apply_profile(make_host('6.12'), SLICES, check_mode=True))
    assert placement == {'policy': 'fifo', 'priority': 10, 'timer_slack_ns': 1, 'cpus': '1-3'}


@pytest.mark.parametrize('tune_result', [None, {}, {'skipped': True}, {'placement_classes': {}, 'subsystems': {}}],
                         ids=['none', 'empty', 'skipped', 'no-classes'])
def test_a_mode_without_placement_places_nothing(tune_result):
    assert bench_placement(tune_result) == {}


# ---------------------------------------------------------------------------------------------------------------------
# Each host's result and summary

def plan_of(modes=('balanced',), rounds=1):
    return {'modes': list(modes), 'conditions': ['idle', 'load'], 'rounds': rounds, 'final_mode': modes[-1]}


def result_of(tmp_path, check_mode=False, **run):
    arms = interleaved([3904], [25.4])
    code, written = report(tmp_path, {'h': arms, 'other': interleaved([100], [90])}, charts=False)
    assert code == 0, written
    state = dict({'arms': arms, 'tuned_arms': True, 'needs_root': {}, 'notes': [], 'at_stock': False}, **run)
    return written, bench_result(written, 'h', plan_of(), check_mode=check_mode, **state)


def test_a_tuned_run_keeps_the_host_s_share_of_the_report(tmp_path):
    written, result = result_of(tmp_path)
    assert result['report_dir'] == written['report_dir'] and result['files'] == written['files']
    assert result['comparison'] == written['hosts']['h'] and result['gate'] == written['gate']
    assert result['modes'] == ['balanced'] and result['rounds'] == 1 and result['conditions'] == ['idle', 'load']
    assert result['tuned_arms'] is True and result['at_stock'] is False
    # The arms without their per-repetition runs, which stay in report.json.
    assert len(result['arms']) == 4 and all('runs' not in kept for kept in result['arms'])
    assert result['arms'][0]['label'] == 'stock' and result['arms'][0]['pair'] == 1


def test_the_summary_is_the_report_s_lines_then_where_it_is_and_the_host_s_state(tmp_path):
    written, result = result_of(tmp_path)
    assert result['summary'][:-2] == written['summary']['h']
    assert result['summary'][-2:] == [
        'report: %s (and report.json, report.html)' % written['files']['md'],
        'host left in the balanced mode (aitune_bench_restore=true ends at stock; restore.yml puts it back)']
    dummy, restored = result_of(tmp_path, at_stock=True)
    assert restored['summary'][-1] == 'host back at stock'


def test_a_run_without_root_says_what_each_mode_would_change_and_that_nothing_was_written(tmp_path):
    needs_root = {'balanced': ['vm.swappiness', 'cgroup.aitune-latency.cpu.weight'], 'aggressive': []}
    notes = ['the host holds the balanced tuning, which this run cannot put back (no root), so the stock arm '
             'measures the host as found']
    written, result = result_of(tmp_path, tuned_arms=False, needs_root=needs_root, notes=notes, at_stock=False)
    assert result['summary'][len(written['summary']['h']):] == [
        'balanced not measured: applying it needs root; it would change vm.swappiness, '
        'cgroup.aitune-latency.cpu.weight',
        'aggressive not measured: applying it needs root; it would change nothing',
        'note: ' + notes[0],
        'report: %s (and report.json, report.html)' % written['files']['md'],
        'host left as it was: nothing was written']
    assert result['needs_root'] == needs_root and result['notes'] == notes


def test_check_mode_says_the_report_was_not_written(tmp_path):
    written, result = result_of(tmp_path, check_mode=True, tuned_arms=False, needs_root={'balanced': ['vm.swappiness']})
    assert 'balanced not measured: check mode applies nothing; it would change vm.swappiness' in result['summary']
    assert 'report (not written in check mode): %s (and report.json, report.html)' % written['files']['md'] \
        in result['summary']


# ---------------------------------------------------------------------------------------------------------------------
# The canary gate

def gate_report(tmp_path, tuned_p99s, **args):
    code, written = report(tmp_path, {'canary': interleaved([100, 100], tuned_p99s)}, charts=False, gate=True,
                           **args)
    assert code == 0, written
    return written


def test_a_regression_stops_the_rollout_and_names_the_ratios_and_the_hosts_left_alone(tmp_path):
    written = gate_report(tmp_path, [120, 130])
    gate = bench_gate(written, 'balanced', ['canary'], ['canary'], ['canary', 'fleet1', 'fleet2'])
    assert gate['ran'] is True and gate['passed'] is False
    assert gate['gate'] == written['gate'] and gate['report_dir'] == written['report_dir']
    assert gate['verdict'] == (
        'Canary gate failed: with the balanced mode, wake_p99_us under load was worse than stock by more than x1.10 '
        'with 95 %% confidence or in most interleaved pairs: canary: wake_p99_us x1.25 (2 pairs: no interval, the '
        'majority of pairs decides); worse by more than x1.10 in 2 of 2 pairs. Canaries restored to stock: canary. '
        'The rollout stops here; not touched: fleet1, fleet2. Report: %s' % written['files']['md'])
    alone = bench_gate(written, 'balanced', ['canary'], ['canary'], ['canary'])
    assert 'The rollout stops here; no other host was in this run. Report: ' in alone['verdict']


def test_a_gate_that_holds_lets_the_rollout_go_on(tmp_path):
    written = gate_report(tmp_path, [90, 95])
    gate = bench_gate(written, 'balanced', ['canary'], ['canary'], ['canary', 'fleet'])
    assert gate['passed'] is True
    assert gate['verdict'] == 'Canary gate passed: %s. The canaries keep the balanced mode; report: %s' % (
        written['gate']['reason'], written['files']['md'])


def test_a_canary_that_failed_during_the_gate_stops_the_rollout_first(tmp_path):
    written = gate_report(tmp_path, [120, 130])
    gate = bench_gate(written, 'balanced', ['canary', 'canary2'], ['canary'], ['canary', 'canary2', 'fleet'])
    assert gate['passed'] is False
    assert gate['verdict'] == (
        'Canary gate failed: canary2 failed during the gate (see above). Canaries restored to stock: canary, canary2. '
        'The rollout stops here. Report of the others: %s' % written['files']['md'])


def test_a_gate_that_cannot_be_evaluated_stops_the_rollout(tmp_path):
    written = gate_report(tmp_path, [120, 130], gate_metric='ttft_p99_ms')
    gate = bench_gate(written, 'balanced', ['canary'], ['canary'], ['canary'])
    assert written['gate']['evaluated'] is False and gate['passed'] is False
    assert gate['verdict'].startswith('Canary gate could not be evaluated: %s (check aitune_gate_metric and '
                                      'aitune_gate_condition' % written['gate']['reason'])
    assert gate['verdict'].endswith('The canaries canary were restored to stock and the rollout stops here. '
                                    'Report: %s' % written['files']['md'])


# ---------------------------------------------------------------------------------------------------------------------
# A failure

@pytest.mark.parametrize('failed, message', [
    ({'msg': 'endpoint http://127.0.0.1:9 is unreachable'}, 'endpoint http://127.0.0.1:9 is unreachable.'),
    ({'msg': 'The mode failed. '}, 'The mode failed.'),
    ({'msg': 'loop failed', 'results': [{'failed': False, 'msg': 'fine'}, {'failed': True, 'msg': 'agent/load: no'},
                                        {'failed': True, 'msg': 'cyclictest/load: not installed'}]},
     'agent/load: no; cyclictest/load: not installed.'),
    ({'results': [{'changed': False}], 'msg': 'All items completed'}, 'All items completed.'),
], ids=['task', 'one-full-stop', 'loop-items', 'loop-without-failed-item'])
def test_a_failure_says_what_failed_in_one_sentence(failed, message):
    assert bench_failure(failed) == message
