# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report through its real main(): the three files, the tables, the inline SVG charts and the gate."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import DISTRIBUTION_QUANTILES
from ansible_collections.aitune.kernel.plugins.module_utils._bench_verdict import MIN_PAIRS
from ansible_collections.aitune.kernel.plugins.modules import bench_report, latency_bench
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

needs_matplotlib = pytest.mark.skipif(not bench_report.HAS_MATPLOTLIB, reason='matplotlib is not installed')


def arm(label, pair, p50, p99, steps, condition='load', cv_p50=0.02, psi_pct=None, steal_pct=None):
    """An arm shaped like latency_bench's results, with the two keys a playbook adds."""
    def stats(value):
        return {'median': value, 'min': value * 0.9, 'max': value * 1.1}
    curve = [p50 * (1 + q / 100.0) if q < 99 else p99 * (q / 99.0) for q in DISTRIBUTION_QUANTILES]
    metrics = {'wake_p50_us': stats(p50), 'wake_p99_us': stats(p99), 'steps_per_s': stats(steps),
               'loadavg_1': stats(2.0), 'gpu_util_pct_mean': {'median': None, 'min': None, 'max': None}}
    for name, value in (('psi_cpu_some_pct', psi_pct), ('steal_pct', steal_pct)):
        if value is not None:
            metrics[name] = stats(value)
    return {'label': label, 'pair': pair, 'tool': 'agent', 'workload': 'ring', 'condition': condition,
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


@needs_matplotlib
def test_writes_json_markdown_and_html_with_inline_svg(tmp_path):
    results = {'gpu1': interleaved([3904, 3700, 4100, 3800, 3950], [25.4, 24.0, 30.0, 26.0, 25.0]),
               'gpu2': interleaved([2000, 2100, 1900], [40.0, 45.0, 38.0])}
    code, result = report(tmp_path, results, title='Balanced <mode> on the fleet')
    assert code == 0, result
    assert result['changed'] is True
    report_dir = str(tmp_path / 'reports' / '20261123T000000Z')
    assert result['report_dir'] == report_dir
    assert sorted(os.listdir(report_dir)) == ['report.html', 'report.json', 'report.md']

    data = json.load(open(os.path.join(report_dir, 'report.json')))
    assert data['gate']['requested'] is False and data['gate']['evaluated'] is False
    p99 = data['hosts']['gpu1']['ring/load']['comparisons']['balanced']['metrics']['wake_p99_us']
    assert p99['ratio']['n'] == 5 and p99['ratio']['median'] == pytest.approx(25.4 / 3904, rel=0.05)
    assert data['fleet']['ring/load']['balanced']['wake_p99_us']['hosts'] == ['gpu1', 'gpu2']
    assert data['arms']['gpu2'][0]['label'] == 'stock'

    markdown = open(os.path.join(report_dir, 'report.md')).read()
    assert '| Metric | Before | After | Δ |' in markdown
    assert '## Fleet' in markdown and '## gpu1' in markdown and '### ring/load: balanced vs stock (5 pairs)' in markdown
    wake_row = next(line for line in markdown.splitlines() if line.startswith('| wake p99 |') and '3904' in line)
    assert '×0.0065' in wake_row and '(−99.' in wake_row and '[0.00633–0.00732]' in wake_row
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

    # The play's summary lines: each comparison with the key metrics, then the p50 CV of every arm per round.
    idle, load, cv = result['summary']['gpu1']
    assert idle.startswith('ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26 -> 25 x0.962 (noise: 1 pair, 5 '
                           'needed), ')
    assert load.startswith('ring/load balanced vs stock, 5 pair(s): ')
    assert 'wake_p99_us 3904 -> 25.4 x0.00651 [0.00633-0.00732] (-99.3 %)' in load
    assert 'steps_per_s 3460 -> 8562 x2.47 (+147.5 %)' in load
    assert 'loadavg' not in load
    assert cv == ('p50 coefficient of variation over the repetitions, per round: ring/load stock 0.02/0.02/0.02/0.02/0.02; '
                  'ring/load balanced 0.02/0.02/0.02/0.02/0.02; ring/idle stock 0.02; ring/idle balanced 0.02')


def test_gate_regresses_only_when_every_pair_is_worse(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 130, 115])}, charts=False, gate=True)
    assert code == 0 and result['gate']['regressed'] is True
    check = result['gate']['checks'][0]
    assert check['host'] == 'h' and check['scenario'] == 'ring/load' and check['label'] == 'balanced'
    assert check['worse'] == [True, True, True]
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 105, 115])}, charts=False, gate=True)
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
    assert result['gate']['evaluated'] is True and result['gate']['checks'][0]['scenario'] == 'ring/idle'
    comparison = result['hosts']['localhost']['ring/idle']['comparisons']['tuned']
    assert comparison['pairs'] == [1, 2]
    assert comparison['metrics']['wake_p99_us']['ratio']['n'] == 2
    assert '<svg' in open(result['files']['html']).read()


# ---------------------------------------------------------------------------------------------------------------------
# Noise, no effect and stated changes

def paired(stock_p50s, tuned_p50s, condition='idle', **stock_extra):
    """Interleaved stock and balanced arms of one scenario with the given wake p50 per pair (and a steady p99 and
    steps/s), the stock arms carrying ``stock_extra`` (cv_p50, psi_pct, steal_pct)."""
    arms = []
    for pair, (stock, tuned) in enumerate(zip(stock_p50s, tuned_p50s), start=1):
        arms.append(arm('stock', pair, stock, 60.0, 9000, condition=condition, **stock_extra))
        arms.append(arm('balanced', pair, tuned, 60.0, 9000, condition=condition))
    return arms


def wake_p50_cell(markdown):
    return next(line for line in markdown.splitlines() if line.startswith('| wake p50 |')).split(' | ')[-1]


def wake_p50_class(page):
    row = next(line for line in page.splitlines() if line.startswith('<tr><td>wake p50</td>'))
    return re.search(r'<td(?: class="([a-z ]+)")?>[^<]*</td></tr>$', row).group(1)


def test_one_pair_is_noise_and_claims_no_percent(tmp_path):
    # The reported run: wake p50 ×0.599 from one pair, once printed as a 40 % gain.
    code, result = report(tmp_path, {'h': paired([26.1], [15.63])}, charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert line == ('ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26.1 -> 15.63 x0.599 (noise: 1 pair, 5 '
                    'needed), wake_p99_us 60 -> 60 x1 (no effect: equal in every pair), steps_per_s 9000 -> 9000 x1 '
                    '(no effect: equal in every pair)')
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert verdict['effect'] == 'noise' and verdict['pairs'] == 1 and verdict['needed'] == 5
    markdown = open(result['files']['md']).read()
    assert wake_p50_cell(markdown) == '×0.599 — noise: 1 pair, 5 needed |'
    # Grey in the HTML, not the green of a gain.
    assert wake_p50_class(open(result['files']['html']).read()) == 'noise'


@pytest.mark.parametrize('pairs, effect', [(4, 'noise'), (5, 'better')])
def test_a_change_needs_the_minimum_number_of_pairs(tmp_path, pairs, effect):
    code, result = report(tmp_path, {'h': paired([26.0] * pairs, [15.6] * pairs)}, charts=False)
    assert code == 0, result
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert MIN_PAIRS == 5
    assert verdict['effect'] == effect


def test_pairs_that_disagree_are_no_effect(tmp_path):
    # Three pairs lower, two higher: the median says ×0.8, the pairs say nothing.
    code, result = report(tmp_path, {'h': paired([20.0] * 5, [16.0, 15.0, 25.0, 14.0, 30.0])}, charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert 'wake_p50_us 20 -> 16 x0.8 [0.7-1.5] (no effect: pairs disagree (3 of 5 lower))' in line
    markdown = open(result['files']['md']).read()
    assert wake_p50_cell(markdown) == '×0.8 [0.7–1.50] — no effect: pairs disagree (3 of 5 lower) |'
    assert wake_p50_class(open(result['files']['html']).read()) == 'noise'


def test_seven_pairs_that_agree_state_the_change(tmp_path):
    stock = [26.0, 25.0, 27.0, 26.5, 24.0, 25.5, 26.2]
    tuned = [15.6, 15.2, 16.1, 15.9, 14.6, 15.0, 15.8]
    code, result = report(tmp_path, {'h': paired(stock, tuned)}, charts=False)
    assert code == 0, result
    line = result['summary']['h'][0]
    assert line.startswith('ring/idle balanced vs stock, 7 pair(s): wake_p50_us 26 -> 15.6 x0.6 [0.588-0.608] '
                           '(-40.0 %), ')
    verdict = result['hosts']['h']['ring/idle']['comparisons']['balanced']['metrics']['wake_p50_us']['verdict']
    assert verdict == {'effect': 'better', 'reason': None, 'pairs': 7, 'lower': 7, 'higher': 0, 'needed': 5}
    markdown = open(result['files']['md']).read()
    assert wake_p50_cell(markdown) == '×0.6 [0.588–0.608] (−40.0 %) |'
    assert wake_p50_class(open(result['files']['html']).read()) == 'better'


def test_foreign_load_makes_the_scenario_noisy(tmp_path):
    # Stock measured with the CPUs busy (PSI near 100 % while idle, p50 CV 0.61): five agreeing pairs are not enough.
    code, result = report(tmp_path, {'h': paired([26.0] * 5, [15.6] * 5, cv_p50=0.61, psi_pct=99.98)}, charts=False)
    assert code == 0, result
    comparison, noisy, _cv = result['summary']['h']
    assert noisy == ('noisy: ring/idle: p50 CV 0.61 during stock; CPU pressure 99.98 % during stock: treat its ratios '
                     'as noise unless 7 or more pairs agree')
    assert 'x0.6 (noise: 5 pairs, 7 needed on a noisy host)' in comparison
    assert result['hosts']['h']['ring/idle']['noise'] == ['p50 CV 0.61 during stock',
                                                          'CPU pressure 99.98 % during stock']
    markdown = open(result['files']['md']).read()
    assert 'ring/idle was noisy: p50 CV 0.61 during stock; CPU pressure 99.98 % during stock.' in markdown
    assert '<p class="noisy">ring/idle was noisy' in open(result['files']['html']).read()

    code, result = report(tmp_path, {'h': paired([26.0] * 7, [15.6] * 7, cv_p50=0.61)}, charts=False)
    assert 'x0.6 (-40.0 %)' in result['summary']['h'][0]


def test_loaded_pressure_is_the_benchmarks_own_but_steal_is_not(tmp_path):
    # Under load the benchmark's hogs keep CPU pressure near 100 %: that is the condition, not foreign load.
    code, result = report(tmp_path, {'h': paired([26.0] * 5, [15.6] * 5, condition='load', psi_pct=99.9)}, charts=False)
    assert result['hosts']['h']['ring/load']['noise'] == []
    assert not any(line.startswith('noisy:') for line in result['summary']['h'])
    code, result = report(tmp_path, {'h': paired([26.0] * 5, [15.6] * 5, condition='load', steal_pct=12.5)},
                          charts=False)
    assert result['hosts']['h']['ring/load']['noise'] == ['steal 12.5 % during stock']


def test_fleet_is_no_effect_when_hosts_change_in_opposite_directions(tmp_path):
    results = {'a': paired([26.0] * 5, [15.6] * 5), 'b': paired([15.6] * 5, [26.0] * 5)}
    code, result = report(tmp_path, results, charts=False)
    assert code == 0, result
    verdict = result['fleet']['ring/idle']['balanced']['wake_p50_us']['verdict']
    assert verdict['effect'] == 'no effect' and verdict['reason'] == 'hosts disagree (1 of 2 lower)'


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


@pytest.mark.parametrize('tuned_p99s, verdict', [
    ([120, 130, 115], 'REGRESSED: ring/load balanced: wake_p99_us is worse by more than x1.10 in all 3 pairs'),
    ([120, 105, 115], 'passed: ring/load balanced: wake_p99_us is worse by more than x1.10 in 2 of 3 pairs'),
], ids=['regressed', 'passed'])
def test_gate_asked_states_its_verdict(tmp_path, tuned_p99s, verdict):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], tuned_p99s)}, charts=False, gate=True)
    assert code == 0, result
    assert result['gate']['requested'] is True and result['gate']['evaluated'] is True
    assert 'Gate (wake_p99_us under load, x1.10 in every pair): ' + verdict in result['summary']['h']
    markdown = open(result['files']['md']).read()
    assert 'Gate (wake_p99_us under load, x1.10 in every pair): %s' % verdict.split(':')[0] in markdown
    page = open(result['files']['html']).read()
    assert ('class="gate-regressed"' if verdict.startswith('REGRESSED') else 'class="gate-ok"') in page


@needs_matplotlib
def test_ratio_bars_of_noise_are_faded_and_hatched(tmp_path):
    def hatched_bar_sets(results):
        code, result = report(tmp_path, results)
        assert code == 0, result
        page = open(result['files']['html']).read()
        bars = next(figure for figure in page.split('<figure')[1:] if 'vs stock per host' in figure)
        assert 'noise or no effect' in bars
        return bars.count('<pattern')

    # Wake p99 and steps/s are equal in every pair (no effect) on both hosts: one hatched set each. Wake p50 changed
    # over 5 agreeing pairs on host a; on host b it rests on one pair, which adds a hatched set of its own.
    assert hatched_bar_sets({'a': paired([26.0] * 5, [15.6] * 5), 'b': paired([26.0] * 5, [15.0] * 5)}) == 2
    assert hatched_bar_sets({'a': paired([26.0] * 5, [15.6] * 5), 'b': paired([26.0], [15.6])}) == 3
