# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report's work: the arms it is given checked and normalised, compared per host and over the fleet with the
verdict on each ratio and the gate, and written as report.json, report.md and report.html.

The module keeps only its interface; ``write_report`` is everything it does with its parameters.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import io
import json
import os
import re

from ansible_collections.aitune.kernel.plugins.module_utils._bench_charts import draw_charts
from ansible_collections.aitune.kernel.plugins.module_utils._bench_render import render_html, render_markdown, summary_lines
from ansible_collections.aitune.kernel.plugins.module_utils._bench_interval import ratio_interval
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import (
    DEFAULT_GATE_CONDITION, DEFAULT_GATE_METRIC, DEFAULT_GATE_THRESHOLD, coefficient_of_variation, compare_fleet,
    compare_host, scenario_of)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_verdict import (
    fleet_verdict, gate_hosts, harm_list, load_factors, noise_findings, ratio_verdict, shared_vcpu_warning)

ARGUMENT_SPEC = dict(
    results=dict(type='dict', required=True),
    output_dir=dict(type='path', required=True),
    title=dict(type='str', default='Kernel tuning benchmark'),
    baseline_label=dict(type='str', default='stock'),
    timestamp=dict(type='str'),
    gate_metric=dict(type='str', default=DEFAULT_GATE_METRIC),
    gate_condition=dict(type='str', default=DEFAULT_GATE_CONDITION),
    gate_threshold=dict(type='float', default=DEFAULT_GATE_THRESHOLD),
    charts=dict(type='bool', default=True),
    gate=dict(type='bool', default=False),
    plan=dict(type='dict', default={}),
)

# The bootstrap's seed where the run's plan gives none: the same arms always give the same intervals.
DEFAULT_BOOTSTRAP_SEED = 0

NESTED_KEYS = ('benchmark', 'results', 'ansible_module_results')
TIMESTAMP = re.compile(r'^[A-Za-z0-9._-]{1,64}$')
LABEL = re.compile(r'^[A-Za-z0-9._:+-]{1,64}$')


class ReportError(Exception):
    """Arms the report cannot be made of, parameters it cannot be made with, or a report that cannot be written."""


# ---------------------------------------------------------------------------------------------------------------------
# Input

def normalise_arms(results):
    """The input as {host: [arm, ...]} with each arm's latency_bench result at the top level, checked."""
    if not isinstance(results, dict) or not results:
        raise ReportError('results must be a non-empty dict of host -> list of arms')
    hosts = {}
    for host, arms in results.items():
        if not isinstance(arms, list):
            raise ReportError('results[%s] must be a list of arms, got %s' % (host, type(arms).__name__))
        normal = []
        for index, arm in enumerate(arms):
            where = 'results[%s][%d]' % (host, index)
            if not isinstance(arm, dict):
                raise ReportError('%s must be a dict, got %s' % (where, type(arm).__name__))
            # A whole registered latency_bench result carries the measurement under 'benchmark'.
            nested = next((key for key in NESTED_KEYS if isinstance(arm.get(key), dict)), None)
            if nested and 'summary' not in arm:
                merged = dict(arm[nested])
                merged.update((key, value) for key, value in arm.items() if key not in NESTED_KEYS)
                arm = merged
            label = arm.get('label')
            if not isinstance(label, str) or not LABEL.match(label):
                raise ReportError('%s needs a label of letters, digits and ._:+- (got %r)' % (where, label))
            pair = arm.get('pair')
            if pair is not None and (isinstance(pair, bool) or not isinstance(pair, int)):
                try:
                    arm = dict(arm, pair=int(pair))
                except (TypeError, ValueError):
                    raise ReportError('%s has a pair index that is not an integer: %r' % (where, pair))
            summary = arm.get('summary')
            if not isinstance(summary, dict) or not isinstance(summary.get('metrics'), dict):
                raise ReportError('%s (label %s) has no summary.metrics; pass what latency_bench returned (or its '
                                  'benchmark value)' % (where, label))
            normal.append(arm)
        hosts[str(host)] = normal
    return hosts


# ---------------------------------------------------------------------------------------------------------------------
# The report

def requested_gate(params, hosts):
    """The gate's outcome when it was asked for; otherwise a gate that says it was not."""
    if not params['gate']:
        return {'requested': False, 'metric': params['gate_metric'], 'condition': params['gate_condition'],
                'threshold': params['gate_threshold'], 'evaluated': False, 'regressed': False,
                'reason': 'no gate was asked for', 'checks': []}
    gate = gate_hosts(hosts, params['gate_metric'], params['gate_condition'], params['gate_threshold'],
                      bootstrap_seed(params))
    gate['requested'] = True
    return gate


def bootstrap_seed(params):
    seed = (params.get('plan') or {}).get('seed')
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else DEFAULT_BOOTSTRAP_SEED


def judge_scenario(host, scenario, data, arms, seed, warnings):
    """Each label's CV over its rounds, the arms measured under foreign load, and every paired ratio's interval and
    verdict."""
    for info in data['labels'].values():
        for stats in info['metrics'].values():
            cv = coefficient_of_variation(stats.get('values') or [])
            stats['cv'] = None if cv is None else round(cv, 4)
    data['noise'] = noise_findings([arm for arm in arms if scenario_of(arm) == scenario], data['condition'])
    for label, comparison in data['comparisons'].items():
        if not comparison['pairs']:
            warnings.append('%s %s: no pair index is shared by the baseline and %s' % (host, scenario, label))
        for metric, values in comparison['metrics'].items():
            values['ratio'] = ratio_interval(values.pop('ratios'), seed)
            values['verdict'] = ratio_verdict(metric, values['ratio'])
            median = values['ratio']['median']
            values['delta_pct'] = None if median is None else round((median - 1) * 100.0, 2)


def build_report(params, hosts_arms, generated_at):
    baseline = params['baseline_label']
    seed = bootstrap_seed(params)
    warnings = []
    hosts = {}
    for host, arms in sorted(hosts_arms.items()):
        hosts[host] = compare_host(arms, baseline)
        for scenario, data in hosts[host].items():
            if baseline not in data['labels']:
                warnings.append('%s %s has no %s arm; its arms are listed but not compared' % (host, scenario, baseline))
            judge_scenario(host, scenario, data, arms, seed, warnings)
        shared = shared_vcpu_warning(host, arms)
        if shared:
            warnings.append(shared)
    fleet = compare_fleet(hosts)
    for scenario, labels in fleet.items():
        for label, metrics in labels.items():
            for metric, values in metrics.items():
                host_verdicts = [hosts[host][scenario]['comparisons'][label]['metrics'][metric]['verdict']
                                 for host in values['hosts']]
                values['verdict'] = fleet_verdict(host_verdicts)
    return {'title': params['title'], 'generated_at': generated_at, 'baseline_label': baseline,
            'plan': params.get('plan') or {}, 'hosts': hosts, 'fleet': fleet, 'gate': requested_gate(params, hosts),
            'harm': harm_list(hosts), 'warnings': warnings, 'arms': hosts_arms, 'workers': workers_of(hosts_arms),
            'load_factors': {host: load_factors(arms, seed) for host, arms in sorted(hosts_arms.items())}}


def workers_of(hosts_arms):
    """Which agent worker ran the arms: ``{'native': n, 'python': m}`` counted over every host's arms."""
    counts = {}
    for arms in hosts_arms.values():
        for arm in arms:
            if arm.get('worker'):
                counts[arm['worker']] = counts.get(arm['worker'], 0) + 1
    return counts


def public_hosts(hosts):
    """The per-host comparison without the per-pair metric copies the gate used."""
    result = {}
    for host, scenarios in hosts.items():
        result[host] = {}
        for scenario, data in scenarios.items():
            comparisons = {label: {'pairs': c['pairs'], 'metrics': c['metrics']}
                           for label, c in data['comparisons'].items()}
            result[host][scenario] = {'condition': data['condition'], 'labels': data['labels'],
                                      'comparisons': comparisons, 'noise': data['noise']}
    return result


# ---------------------------------------------------------------------------------------------------------------------
# The files

def write_file(path, text):
    temporary = path + '.tmp'
    with io.open(temporary, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(temporary, path)


def checked_timestamp(params, now):
    """The report directory's name: the given timestamp, or the current UTC time."""
    timestamp = params['timestamp'] or now.strftime('%Y%m%dT%H%M%SZ')
    if not TIMESTAMP.match(timestamp) or timestamp in ('.', '..'):
        raise ReportError('timestamp %r may hold only letters, digits, ".", "_" and "-"' % timestamp)
    return timestamp


def write_report(params, check_mode):
    """Everything bench_report does with its parameters: returns its result (without ``changed``) and the warnings for
    the play, or raises ReportError. In check mode the report is computed but nothing is written."""
    now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = checked_timestamp(params, now)
    if params['gate_threshold'] < 1:
        raise ReportError('gate_threshold is a factor of at least 1 (1.10 means 10 %% worse), got %s'
                          % params['gate_threshold'])
    hosts_arms = normalise_arms(params['results'])
    report = build_report(params, hosts_arms, now.strftime('%Y-%m-%dT%H:%M:%SZ'))
    report_dir = os.path.join(params['output_dir'], timestamp)
    files = {kind: os.path.join(report_dir, 'report.' + kind) for kind in ('json', 'md', 'html')}
    public = dict(report, hosts=public_hosts(report['hosts']))
    if not check_mode:
        charts = draw_charts(report, hosts_arms) if params['charts'] else {}
        try:
            os.makedirs(report_dir, exist_ok=True)
            write_file(files['json'], json.dumps(public, indent=1, sort_keys=True, default=str) + '\n')
            write_file(files['md'], render_markdown(report))
            write_file(files['html'], render_html(report, charts))
        except (IOError, OSError) as exc:
            raise ReportError('writing the report to %s: %s' % (report_dir, exc))
    result = dict(report_dir=report_dir, files=files, gate=report['gate'], hosts=public['hosts'],
                  fleet=report['fleet'], harm=report['harm'], load_factors=report['load_factors'],
                  summary=summary_lines(report))
    return result, report['warnings']
