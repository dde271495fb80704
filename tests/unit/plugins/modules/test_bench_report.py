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

from ansible_collections.aitune.kernel.plugins.module_utils._bench import DISTRIBUTION_QUANTILES
from ansible_collections.aitune.kernel.plugins.modules import bench_report, latency_bench
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

needs_matplotlib = pytest.mark.skipif(not bench_report.HAS_MATPLOTLIB, reason='matplotlib is not installed')


def arm(label, pair, p50, p99, steps, condition='load'):
    """An arm shaped like latency_bench's results, with the two keys a playbook adds."""
    def stats(value):
        return {'median': value, 'min': value * 0.9, 'max': value * 1.1}
    curve = [p50 * (1 + q / 100.0) if q < 99 else p99 * (q / 99.0) for q in DISTRIBUTION_QUANTILES]
    return {'label': label, 'pair': pair, 'tool': 'agent', 'workload': 'ring', 'condition': condition,
            'summary': {'repetitions': 3, 'primary': 'wake', 'cv_p50': 0.02,
                        'metrics': {'wake_p50_us': stats(p50), 'wake_p99_us': stats(p99),
                                    'steps_per_s': stats(steps), 'loadavg_1': stats(2.0),
                                    'gpu_util_pct_mean': {'median': None, 'min': None, 'max': None}},
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
    assert data['gate']['regressed'] is False and data['gate']['evaluated'] is True
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
    assert idle.startswith('ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26 -> 25 x0.962 [0.962-0.962], ')
    assert load.startswith('ring/load balanced vs stock, 5 pair(s): ')
    assert 'wake_p99_us 3904 -> 25.4 x0.0065' in load and 'steps_per_s 3460 -> 8562 x2.47' in load
    assert 'loadavg' not in load
    assert cv == ('p50 coefficient of variation over the repetitions, per round: ring/load stock 0.02/0.02/0.02/0.02/0.02; '
                  'ring/load balanced 0.02/0.02/0.02/0.02/0.02; ring/idle stock 0.02; ring/idle balanced 0.02')


def test_gate_regresses_only_when_every_pair_is_worse(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 130, 115])}, charts=False)
    assert code == 0 and result['gate']['regressed'] is True
    check = result['gate']['checks'][0]
    assert check['host'] == 'h' and check['scenario'] == 'ring/load' and check['label'] == 'balanced'
    assert check['worse'] == [True, True, True]
    code, result = report(tmp_path, {'h': interleaved([100, 100, 100], [120, 105, 115])}, charts=False)
    assert code == 0 and result['gate']['regressed'] is False
    code, result = report(tmp_path, {'h': interleaved([100, 100], [200, 200])}, charts=False, gate_threshold=2.5)
    assert result['gate']['regressed'] is False
    code, result = report(tmp_path, {'h': interleaved([100, 100], [50, 50])}, charts=False,
                          gate_metric='steps_per_s', gate_condition='idle')
    assert result['gate']['metric'] == 'steps_per_s' and result['gate']['regressed'] is False


def test_check_mode_writes_nothing(tmp_path):
    code, result = report(tmp_path, {'h': interleaved([100], [50])}, check_mode=True, charts=False)
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
    code, result = report(tmp_path, {'localhost': arms}, gate_condition='idle', baseline_label='stock')
    assert code == 0, result
    assert result['gate']['evaluated'] is True and result['gate']['checks'][0]['scenario'] == 'ring/idle'
    comparison = result['hosts']['localhost']['ring/idle']['comparisons']['tuned']
    assert comparison['pairs'] == [1, 2]
    assert comparison['metrics']['wake_p99_us']['ratio']['n'] == 2
    assert '<svg' in open(result['files']['html']).read()
