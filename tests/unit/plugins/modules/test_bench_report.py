# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report through its real main(): the three files, the tables with intervals and verdicts, the inline SVG
charts, the arms under foreign load, the do-no-harm list and the gate."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import DISTRIBUTION_QUANTILES
from ansible_collections.aitune.kernel.plugins.module_utils._bench_interval import MIN_PAIRS
from ansible_collections.aitune.kernel.plugins.module_utils import _bench_render as bench_render
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import scenario_of
from ansible_collections.aitune.kernel.plugins.modules import bench_report, latency_bench
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

needs_matplotlib = pytest.mark.skipif(not bench_report.HAS_MATPLOTLIB, reason='matplotlib is not installed')


def arm(label, pair, p50, p99, steps, condition='load', cv_p50=0.02, psi_pct=None, steal_pct=None, foreign_pct=None,
        worker=None):
    """An arm shaped like latency_bench's results, with the two keys a playbook adds."""
    def stats(value):
        return {'median': value, 'min': value * 0.9, 'max': value * 1.1}
    curve = [p50 * (1 + q / 100.0) if q < 99 else p99 * (q / 99.0) for q in DISTRIBUTION_QUANTILES]
    metrics = {'wake_p50_us': stats(p50), 'wake_p99_us': stats(p99), 'steps_per_s': stats(steps),
               'loadavg_1': stats(2.0), 'gpu_util_pct_mean': {'median': None, 'min': None, 'max': None}}
    for name, value in (('psi_cpu_some_pct', psi_pct), ('steal_pct', steal_pct), ('foreign_cpu_pct', foreign_pct)):
        if value is not None:
            metrics[name] = stats(value)
    return {'label': label, 'pair': pair, 'tool': 'agent', 'workload': 'ring', 'condition': condition, 'worker': worker,
            'summary': {'repetitions': 3, 'primary': 'wake', 'cv_p50': cv_p50, 'metrics': metrics,
                        'distribution': {'metric': 'wake_us', 'quantiles': list(DISTRIBUTION_QUANTILES),
                                         'values': curve}},
            'runs': [], 'host': {'nproc': 2}}


def interleaved(stock_p99s, tuned_p99s, tuned_label='balanced'):
    arms = []
    for pair, (stock, tuned) in enumerate(zip(stock_p99s, tuned_p99s), start=1):
        arms.append(arm('stock', pair, 13.9, stock, 3460))
        arms.append(arm(tuned_label, pair, 14.1, tuned, 8562))
    arms.append(arm('stock', 1, 26.0, 60.0, 9000, condition='idle'))
    arms.append(arm(tuned_label, 1, 25.0, 58.0, 9100, condition='idle'))
    return arms


def report(tmp_path, results, check_mode=False, **args):
    options = {'results': results, 'output_dir': str(tmp_path / 'reports'), 'timestamp': '20261123T000000Z'}
    options.update(args)
    return run_module(bench_report, options, check_mode=check_mode)


STOCK_P99 = [3904, 3700, 4100, 3800, 3950, 3850, 4000]
TUNED_P99 = [25.4, 24.0, 30.0, 26.0, 25.0, 24.5, 27.0]


@needs_matplotlib
def test_writes_json_markdown_and_html_with_inline_svg(tmp_path):
    results = {'gpu1': interleaved(STOCK_P99, TUNED_P99), 'gpu2': interleaved([2000, 2100, 1900], [40.0, 45.0, 38.0])}
    plan = {'seed': 1234, 'rounds': 7, 'order': [['balanced', 'stock']] * 7}
    code, result = report(tmp_path, results, title='Balanced <mode> on the fleet', plan=plan)
    assert code == 0, result
    assert result['changed'] is True
    report_dir = str(tmp_path / 'reports' / '20261123T000000Z')
    assert result['report_dir'] == report_dir
    assert sorted(os.listdir(report_dir)) == ['report.html', 'report.json', 'report.md']

    data = json.load(open(os.path.join(report_dir, 'report.json')))
    assert data['gate']['requested'] is False and data['gate']['evaluated'] is False
    assert data['plan'] == plan
    # The tuned arms' wake p50 is 1.4 % higher in every pair: small, but worse with 95 % confidence.
    assert [(harm['host'], harm['scenario'], harm['metric']) for harm in data['harm']] == [
        ('gpu1', 'ring/load', 'wake_p50_us')]
    p99 = data['hosts']['gpu1']['ring/load']['comparisons']['balanced']['metrics']['wake_p99_us']
    assert p99['ratio']['n'] == 7 and p99['ratio']['median'] == pytest.approx(25.4 / 3904, rel=0.05)
    assert p99['ratio']['low'] <= p99['ratio']['median'] <= p99['ratio']['high'] < 1
    assert p99['verdict']['effect'] == 'better' and p99['verdict']['better_pairs'] == 7
    assert data['hosts']['gpu1']['ring/load']['labels']['stock']['metrics']['wake_p99_us']['cv'] == pytest.approx(
        0.0339, abs=1e-4)
    # Three pairs give no interval on gpu2, so the fleet has no verdict either.
    assert data['fleet']['ring/load']['balanced']['wake_p99_us']['hosts'] == ['gpu1', 'gpu2']
    assert data['fleet']['ring/load']['balanced']['wake_p99_us']['verdict']['effect'] is None
    assert data['arms']['gpu2'][0]['label'] == 'stock'

    markdown = open(os.path.join(report_dir, 'report.md')).read()
    assert '| Metric | Before | After | Ratio [95 % CI] | Pairs better | Verdict |' in markdown
    assert '7 rounds, every arm once per round in an order shuffled with seed 1234.' in markdown
    assert '## Fleet' in markdown and '## gpu1' in markdown and '### ring/load: balanced vs stock (7 pairs)' in markdown
    wake_row = next(line for line in markdown.splitlines() if line.startswith('| wake p99 |') and '3904' in line)
    assert '3904 µs, CV 0.03' in wake_row and '×0.0065' in wake_row and '| 7 of 7 | better (−99.' in wake_row
    low, high = p99['ratio']['low'], p99['ratio']['high']
    assert '[%s–%s]' % (bench_render.fmt_number(low), bench_render.fmt_number(high)) in wake_row
    assert markdown.rstrip().endswith('- gpu1: balanced ring/load wake p50: x1.01 [1.01-1.01], worse in 7 of 7 pairs')
    # Metrics a host could not measure are left out of the tables, and so is noise such as the load average.
    assert 'GPU utilisation' not in markdown and 'loadavg' not in markdown

    page = open(os.path.join(report_dir, 'report.html')).read()
    assert page.count('<svg') >= 3   # one distribution per host and scenario, plus the ratio bars
    # Self-contained: nothing to run and nothing to fetch.
    assert '<script' not in page
    assert not re.search(r'(src|href)="https?:|@import|url\((?!#)', page)
    assert 'Balanced &lt;mode&gt; on the fleet' in page and 'class="better"' in page
    # The ratio bars' axis is labelled in ratios at round values, never in matplotlib's 10^x minor-tick notation.
    bars = [figure for figure in page.split('<figure')[1:] if 'vs stock per host' in figure]
    assert bars and all('>×1<' in figure and '10^' not in figure for figure in bars)
    assert '>×0.01<' in bars[-1]   # ring/load, where the ratios reach below ×0.01
    assert result['gate'] == data['gate']
    assert result['files']['html'] == os.path.join(report_dir, 'report.html')

    # The play's summary lines: the plan, each comparison with the key metrics, then what is worse.
    plan_line, idle, load, harm = result['summary']['gpu1']
    assert plan_line == '7 rounds, every arm once per round in an order shuffled with seed 1234.'
    assert idle.startswith('ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26 -> 25 x0.962 1/1 (no verdict: too '
                           'few rounds for an interval: 1 pair, 6 needed), ')
    assert load.startswith('ring/load balanced vs stock, 7 pair(s): ')
    assert 'wake_p99_us 3904 -> 25.4 x0.00651 [0.00636-0.00684] 7/7 better (-99.3 %)' in load
    assert re.search(r'steps_per_s 3460 -> 8562 x2.47 \[2.47-2.47\] 7/7 better \(\+147.5 %\)', load)
    assert 'loadavg' not in load
    assert harm == 'worse with 95 % confidence: balanced ring/load wake p50: x1.01 [1.01-1.01], worse in 7 of 7 pairs'


def test_gate_regresses_on_a_majority_of_pairs_or_with_confidence(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 130, 115])}, charts=False, gate=True)
    assert code == 0 and result['gate']['regressed'] is True
    check = result['gate']['checks'][0]
    assert check['host'] == 'h' and check['scenario'] == 'ring/load' and check['label'] == 'balanced'
    assert check['worse'] == [True, True, True] and check['worse_pairs'] == 3
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 105, 105])}, charts=False, gate=True)
    assert code == 0 and result['gate']['regressed'] is False
    code, result = report(tmp_path, {'h': interleaved([100, 100], [200, 200])}, charts=False, gate=True,
                          gate_threshold=2.5)
    assert result['gate']['regressed'] is False
    code, result = report(tmp_path, {'h': interleaved([100, 100], [50, 50])}, charts=False, gate=True,
                          gate_metric='steps_per_s', gate_condition='idle')
    assert result['gate']['metric'] == 'steps_per_s' and result['gate']['regressed'] is False


def test_check_mode_writes_nothing(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, check_mode=True, charts=False, gate=True)
    assert code == 0 and result['changed'] is True
    assert not os.path.exists(str(tmp_path / 'reports'))
    assert result['gate']['evaluated'] is True


def test_tables_only_without_charts(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, charts=False)
    assert code == 0
    page = open(result['files']['html']).read()
    assert '<svg' not in page and '<table>' in page


def test_missing_matplotlib_fails_with_the_standard_message(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_report, 'HAS_MATPLOTLIB', False)
    monkeypatch.setattr(bench_report, 'MATPLOTLIB_IMPORT_ERROR', 'ImportError: No module named matplotlib')
    code, result = report(tmp_path, {'h': interleaved([100], [50])})
    assert code == 1
    assert 'Failed to import the required Python library (matplotlib)' in result['msg']


def test_missing_numpy_or_scipy_fails_with_the_standard_message(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_report, 'HAS_STATISTICS', False)
    monkeypatch.setattr(bench_report, 'STATISTICS_IMPORT_ERROR', 'ImportError: No module named scipy')
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, charts=False)
    assert code == 1
    assert 'Failed to import the required Python library (numpy and scipy)' in result['msg']
    assert not os.path.exists(str(tmp_path / 'reports'))


@pytest.mark.parametrize('results, words', [
    ({}, ['non-empty']),
    ({'h': 'stock'}, ['results[h]', 'list']),
    ({'h': [{'pair': 1, 'summary': {'metrics': {}}}]}, ['results[h][0]', 'label']),
    ({'h': [{'label': 'a b', 'summary': {'metrics': {}}}]}, ['label']),
    ({'h': [{'label': 'stock', 'pair': 1}]}, ['summary.metrics', 'latency_bench']),
    ({'h': [{'label': 'stock', 'pair': 'first', 'summary': {'metrics': {}}}]}, ['pair index']),
], ids=['empty', 'not-a-list', 'no-label', 'bad-label', 'no-summary', 'bad-pair'])
def test_bad_results_are_refused_clearly(tmp_path, results, words):
    code, result = report(tmp_path, results, charts=False)
    assert code == 1
    for word in words:
        assert word in result['msg'], result['msg']


def test_bad_timestamp_and_threshold(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, charts=False, timestamp='../up')
    assert code == 1 and 'timestamp' in result['msg']
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, charts=False, gate_threshold=0.9)
    assert code == 1 and 'gate_threshold' in result['msg']


def test_scenario_without_baseline_is_listed_with_a_warning(tmp_path):
    code, result = report(tmp_path, {'h': [arm('balanced', 1, 10, 20, 100)]}, charts=False)
    assert code == 0
    assert result['hosts']['h']['ring/load']['comparisons'] == {}
    assert any('no stock arm' in str(w) for w in result.get('warnings', []))


def test_native_and_python_workers_never_meet_in_one_ratio(tmp_path):
    arms = []
    for pair in (1, 2):
        for worker, scale in (('native', 1.0), ('python', 3.0)):
            arms.append(arm('stock', pair, 20.0 * scale, 60.0 * scale, 9000, worker=worker))
            arms.append(arm('balanced', pair, 10.0 * scale, 30.0 * scale, 9000, worker=worker))
    code, result = report(tmp_path, {'h': arms}, charts=False)
    assert code == 0, result
    assert sorted(result['hosts']['h']) == ['ring-native/load', 'ring-python/load']
    for scenario in ('ring-native/load', 'ring-python/load'):
        ratio = result['hosts']['h'][scenario]['comparisons']['balanced']['metrics']['wake_p99_us']['ratio']
        assert ratio['n'] == 2 and ratio['median'] == pytest.approx(0.5)
    assert result['summary']['h'][0] == 'Agent worker: native (4 arms), python (4 arms).'


@needs_matplotlib
def test_real_latency_bench_arms_make_a_report(tmp_path):
    arms = []
    for pair in (1, 2):
        for label in ('stock', 'tuned'):
            code, result = run_module(latency_bench, {
                'duration_s': 0.5, 'warmup_s': 0.05, 'repetitions': 1,
                'calibration_file': str(tmp_path / 'calibration.json')})
            assert code == 0, result
            assert result['benchmark']['warnings'] == [], result['benchmark']['warnings']
            if pair == 1:
                arms.append(dict(result['benchmark'], label=label, pair=pair))
            else:
                # The whole registered result works too; the controller has already taken its warnings out.
                registered = {key: value for key, value in result.items() if key not in ('warnings', 'deprecations')}
                arms.append(dict(registered, label=label, pair=pair))
    code, result = report(tmp_path, {'localhost': arms}, gate=True, gate_condition='idle', baseline_label='stock')
    assert code == 0, result
    scenario = scenario_of(arms[0])
    assert result['gate']['evaluated'] is True and result['gate']['checks'][0]['scenario'] == scenario
    comparison = result['hosts']['localhost'][scenario]['comparisons']['tuned']
    assert comparison['pairs'] == [1, 2]
    assert comparison['metrics']['wake_p99_us']['ratio']['n'] == 2
    # The noise monitor measured every window (0 % foreign CPU on a quiet host).
    assert all((arm.get('benchmark') or arm)['summary']['metrics']['foreign_cpu_pct']['median'] >= 0 for arm in arms)
    assert '<svg' in open(result['files']['html']).read()


# ---------------------------------------------------------------------------------------------------------------------
# Verdicts: no verdict, no effect and stated changes

def paired(stock_p50s, tuned_p50s, condition='idle', **stock_extra):
    """Interleaved stock and balanced arms of one scenario with the given wake p50 per pair (and a steady p99 and
    steps/s), the stock arms carrying ``stock_extra`` (psi_pct, steal_pct, foreign_pct)."""
    arms = []
    for pair, (stock, tuned) in enumerate(zip(stock_p50s, tuned_p50s), start=1):
        arms.append(arm('stock', pair, stock, 60.0, 9000, condition=condition, **stock_extra))
        arms.append(arm('balanced', pair, tuned, 60.0, 9000, condition=condition))
    return arms


def wake_p50_cells(markdown):
    """The ratio, pairs and verdict cells of the wake p50 row."""
    return next(line for line in markdown.splitlines() if line.startswith('| wake p50 |')).split(' | ')[3:]


def wake_p50_class(page):
    row = next(line for line in page.splitlines() if line.startswith('<tr><td>wake p50</td>'))
    return re.search(r'<td(?: class="([a-z-]+)")?>[^<]*</td></tr>$', row).group(1)


def test_one_pair_gets_no_verdict_and_claims_no_percent(tmp_path):
    # The reported run: wake p50 ×0.599 from one pair, once printed as a 40 % gain.
    code, result = report(tmp_path, {'h': paired([26.1], [15.63])}, charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert line == ('ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26.1 -> 15.63 x0.599 1/1 (no verdict: too few '
                    'rounds for an interval: 1 pair, 6 needed), wake_p99_us 60 -> 60 x1 0/1 (no verdict: too few '
                    'rounds for an interval: 1 pair, 6 needed), steps_per_s 9000 -> 9000 x1 0/1 (no verdict: too few '
                    'rounds for an interval: 1 pair, 6 needed)')
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert verdict['effect'] is None and verdict['pairs'] == 1
    markdown = open(result['files']['md']).read()
    assert wake_p50_cells(markdown) == ['×0.599', '1 of 1',
                                        'no verdict: too few rounds for an interval: 1 pair, 6 needed |']
    # Grey in the HTML, not the green of a gain.
    assert wake_p50_class(open(result['files']['html']).read()) == 'no-verdict'


@pytest.mark.parametrize('pairs, effect', [(5, None), (6, 'better')])
def test_a_verdict_needs_the_minimum_number_of_pairs(tmp_path, pairs, effect):
    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5][:pairs]
    code, result = report(tmp_path, {'h': paired(stock, [value * 0.6 for value in stock])}, charts=False)
    assert code == 0, result
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert MIN_PAIRS == 6
    assert verdict['effect'] == effect


def test_an_interval_that_includes_one_is_no_effect_and_grey(tmp_path):
    # Four pairs lower, three higher: the median says ×0.8, the interval says nothing.
    code, result = report(tmp_path, {'h': paired([20.0] * 7, [16.0, 15.0, 25.0, 14.0, 30.0, 22.0, 17.0])},
                          charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert re.search(r'wake_p50_us 20 -> 17 x0.85 \[0\.7\d*-1\.\d+\] 4/7 no effect', line), line
    ratio, pairs, verdict = wake_p50_cells(open(result['files']['md']).read())
    assert ratio.startswith('×0.85 [0.7') and pairs == '4 of 7'
    assert verdict == 'no effect: the interval includes x1 |'
    assert wake_p50_class(open(result['files']['html']).read()) == 'no-effect'


def test_seven_pairs_that_agree_state_the_change_with_its_interval(tmp_path):
    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5, 26.2]
    tuned = [15.6, 15.2, 16.1, 15.9, 14.6, 15.0, 15.8]
    code, result = report(tmp_path, {'h': paired(stock, tuned)}, charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert re.match(r'ring/idle balanced vs stock, 7 pair\(s\): wake_p50_us 26 -> 15.6 x0.6 \[0.5\d+-0.6\d*\] 7/7 '
                    r'better \(-40.0 %\), ', line), line
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert verdict == {'effect': 'better', 'reason': None, 'pairs': 7, 'lower': 7, 'higher': 0, 'better_pairs': 7,
                       'p_signed_rank': pytest.approx(2 / 128.0)}
    ratio, pairs, verdict_cell = wake_p50_cells(open(result['files']['md']).read())
    assert ratio.startswith('×0.6 [0.5') and pairs == '7 of 7' and verdict_cell == 'better (−40.0 %) |'
    assert wake_p50_class(open(result['files']['html']).read()) == 'better'


def test_a_mode_that_makes_a_metric_worse_lands_on_the_do_no_harm_list(tmp_path):
    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5, 26.2]
    code, result = report(tmp_path, {'h': paired(stock, [value * 1.3 for value in stock])}, charts=False)
    assert code == 0, result
    harm = result['harm']
    assert [(entry['host'], entry['scenario'], entry['label'], entry['metric']) for entry in harm] == [
        ('h', 'ring/idle', 'balanced', 'wake_p50_us')]
    assert result['summary']['h'][-1].startswith('worse with 95 % confidence: balanced ring/idle wake p50: x1.3 [')
    markdown = open(result['files']['md']).read()
    tail = markdown.split('## Do no harm: what a mode makes worse with 95 % confidence', 1)[1]
    assert '- h: balanced ring/idle wake p50: x1.3 [1.3-1.3]' in tail
    assert '<ul class="harm"><li>h: balanced ring/idle wake p50' in open(result['files']['html']).read()


def test_arms_under_foreign_load_are_named_with_their_round(tmp_path):
    code, result = report(tmp_path, {'h': paired([26.0] * 7, [15.6] * 7, foreign_pct=23.4)}, charts=False)
    assert code == 0, result
    noise = result['hosts']['h']['ring/idle']['noise']
    assert noise == ['stock round %d: foreign CPU 23.4 %%' % pair for pair in range(1, 8)]
    assert 'foreign load: ring/idle: stock round 1: foreign CPU 23.4 %; stock round 2' in '\n'.join(
        result['summary']['h'])
    markdown = open(result['files']['md']).read()
    assert 'Measured under foreign load in ring/idle: stock round 1: foreign CPU 23.4 %;' in markdown
    assert '<p class="noisy">Measured under foreign load in ring/idle' in open(result['files']['html']).read()


def test_loaded_pressure_is_the_benchmarks_own_but_steal_is_not(tmp_path):
    # Under load the benchmark's hogs keep CPU pressure near 100 %: that is the condition, not foreign load.
    code, result = report(tmp_path, {'h': paired([26.0] * 5, [15.6] * 5, condition='load', psi_pct=99.9)}, charts=False)
    assert result['hosts']['h']['ring/load']['noise'] == []
    assert not any(line.startswith('foreign load:') for line in result['summary']['h'])
    code, result = report(tmp_path, {'h': paired([26.0] * 2, [15.6] * 2, condition='load', steal_pct=12.5)},
                          charts=False)
    assert result['hosts']['h']['ring/load']['noise'] == ['stock round 1: steal 12.5 %', 'stock round 2: steal 12.5 %']


@pytest.mark.parametrize('steal, warned', [(None, False), (0.4, False), (4.9, False), (5.0, True), (12.5, True)])
def test_a_host_with_shared_vcpus_is_warned(tmp_path, steal, warned):
    code, result = report(tmp_path, {'vm1': paired([26.0] * 6, [15.6] * 6, steal_pct=steal),
                                     'vm2': paired([26.0] * 6, [15.6] * 6)}, charts=False)
    assert code == 0, result
    # The play shows it as an Ansible warning; report.json keeps it.
    assert ('share physical CPUs' in str(result.get('warnings'))) is warned
    report_json = json.load(open(os.path.join(result['report_dir'], 'report.json')))
    shared = [warning for warning in report_json['warnings'] if 'share physical CPUs' in warning]
    # Named by host, with the steal seen and how many arms (of those that report steal) saw it.
    assert shared == (['vm1: steal time reached %.3g %% (6 of 6 arms at 5 %% or more): its vCPUs share physical CPUs '
                       'with other guests, so its figures carry their load, and the modes\' polling (the haltpoll '
                       'window, a PM QoS limit of 0) spins on CPU time the neighbours could use; measure on dedicated '
                       'vCPUs before trusting a verdict here' % steal] if warned else [])


def test_fleet_is_no_effect_when_hosts_change_in_opposite_directions(tmp_path):
    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5, 26.2]
    results = {'a': paired(stock, [value * 0.6 for value in stock]),
               'b': paired(stock, [value * 1.6 for value in stock])}
    code, result = report(tmp_path, results, charts=False)
    assert code == 0, result
    verdict = result['fleet']['ring/idle']['balanced']['wake_p50_us']['verdict']
    assert verdict['effect'] == 'no effect' and verdict['reason'] == '1 of 2 hosts better, 1 worse'


# ---------------------------------------------------------------------------------------------------------------------
# The gate's verdict only where a gate was asked for

def test_no_gate_asked_says_nothing_about_a_gate(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 130, 115])}, charts=False)
    assert code == 0, result
    assert result['gate']['requested'] is False and result['gate']['evaluated'] is False
    assert result['gate']['regressed'] is False and result['gate']['checks'] == []
    assert not any('gate' in line.lower() for line in result['summary']['h'])
    assert 'gate' not in open(result['files']['md']).read().lower()
    body = open(result['files']['html']).read().split('<body>', 1)[1]
    assert 'gate' not in body.lower()


GATE_HEADING = 'Gate (wake_p99_us under load: fails when worse than x1.10 with 95 % confidence or in most pairs): '


@pytest.mark.parametrize('tuned_p99s, verdict', [
    ([120, 130, 115], 'REGRESSED: ring/load balanced: wake_p99_us x1.2 (3 pairs: no interval, the majority of pairs '
                      'decides); worse by more than x1.10 in 3 of 3 pairs'),
    ([120, 105, 105], 'passed: ring/load balanced: wake_p99_us x1.05 (3 pairs: no interval, the majority of pairs '
                      'decides); worse by more than x1.10 in 1 of 3 pairs'),
], ids=['regressed', 'passed'])
def test_gate_asked_states_its_verdict(tmp_path, tuned_p99s, verdict):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], tuned_p99s)}, charts=False, gate=True)
    assert code == 0, result
    assert result['gate']['requested'] is True and result['gate']['evaluated'] is True
    assert GATE_HEADING + verdict in result['summary']['h']
    markdown = open(result['files']['md']).read()
    assert GATE_HEADING + verdict.split(':')[0] in markdown
    page = open(result['files']['html']).read()
    assert ('class="gate-regressed"' if verdict.startswith('REGRESSED') else 'class="gate-ok"') in page


@needs_matplotlib
def test_ratio_bars_without_a_change_are_faded_and_hatched(tmp_path):
    def hatched_bar_sets(results):
        code, result = report(tmp_path, results)
        assert code == 0, result
        page = open(result['files']['html']).read()
        bars = next(figure for figure in page.split('<figure')[1:] if 'vs stock per host' in figure)
        assert 'no change shown' in bars
        return bars.count('<pattern')

    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5, 26.2]
    tuned = [value * 0.6 for value in stock]
    # Wake p99 and steps/s are equal in every pair (no effect) on both hosts: one hatched set each. Wake p50 changed
    # over 7 agreeing pairs on host a; on host b it rests on one pair, which adds a hatched set of its own.
    assert hatched_bar_sets({'a': paired(stock, tuned), 'b': paired(stock, [value * 0.5 for value in stock])}) == 2
    assert hatched_bar_sets({'a': paired(stock, tuned), 'b': paired([26.0], [15.6])}) == 3


def server_arm(label, pair, condition, ttft_p99):
    """An arm of the server tool: its TTFT p99 and nothing else."""
    metrics = {'ttft_p99_ms': {'median': ttft_p99, 'min': ttft_p99, 'max': ttft_p99}}
    return {'label': label, 'pair': pair, 'tool': 'server', 'condition': condition, 'runs': [], 'host': {'nproc': 2},
            'summary': {'repetitions': 1, 'primary': 'ttft', 'cv_p50': None, 'metrics': metrics}}


def test_each_arm_s_tail_under_load_is_set_against_its_idle_one(tmp_path):
    # Seven rounds. Stock's loaded TTFT p99 is 4 to 5 times its idle one, balanced's 1.1 to 1.3 times, aggressive's
    # 1.2 to 1.8 times (its interval spans x1.5); a fourth label has one round only.
    arms = []
    for pair in range(1, 8):
        for label, idle, load in (('stock', 10.0, 40.0 + pair), ('balanced', 10.0, 11.0 + pair * 0.3),
                                  ('aggressive', 10.0, 12.0 + (pair % 4) * 2)):
            arms += [server_arm(label, pair, 'idle', idle), server_arm(label, pair, 'load', load)]
    arms += [server_arm('conservative', 1, 'idle', 10.0), server_arm('conservative', 1, 'load', 30.0)]
    code, result = report(tmp_path, {'gpu1': arms}, charts=False)
    assert code == 0, result
    factors = {factor['label']: factor for factor in result['load_factors']['gpu1']}
    assert set(factors) == {'stock', 'balanced', 'aggressive', 'conservative'}
    assert all(factor['tool'] == 'server' and factor['metric'] == 'ttft_p99_ms' for factor in factors.values())
    assert factors['stock']['verdict'] == 'beyond' and factors['stock']['factor']['median'] == pytest.approx(4.4)
    assert factors['balanced']['verdict'] == 'within' and factors['balanced']['idle'] == 10.0
    assert factors['balanced']['factor']['high'] <= 1.5 and factors['balanced']['rounds'] == 7
    assert factors['aggressive']['verdict'] == 'undecided'
    assert factors['aggressive']['factor']['low'] <= 1.5 <= factors['aggressive']['factor']['high']
    assert factors['conservative']['verdict'] is None and factors['conservative']['factor']['low'] is None
    markdown = open(os.path.join(result['report_dir'], 'report.md')).read()
    assert '### Under load against idle' in markdown
    assert re.search(r'^\| server \| balanced \| TTFT p99 \| 10\.00 ms \| 12\.\d\d ms \| ×1\.\d+ \[1\.\d+–1\.\d+\] \| 7 \| '
                     r'yes \|$', markdown, re.M), markdown
    assert '| server | conservative | TTFT p99 | 10.00 ms | 30.00 ms | ×3.00 | 1 | no verdict: 1 round |' in markdown
    page = open(os.path.join(result['report_dir'], 'report.html')).read()
    assert '<h3>Under load against idle</h3>' in page and '<td class="worse">no</td>' in page
    lines = result['summary']['gpu1']
    assert any(re.match(r'server balanced ttft_p99_ms under load x1\.\d+ \[1\.\d+-1\.\d+\] of idle, as if idle$', line)
               for line in lines), lines
    assert 'server stock ttft_p99_ms under load x4.4 [4.2-4.6] of idle, not as if idle' in lines
