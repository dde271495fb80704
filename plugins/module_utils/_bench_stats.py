# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Statistics of the latency benchmark: percentiles, run summaries, paired ratios, and the comparison of arms per host
and over the fleet.

Pure functions of numbers and result dicts in the standard library, with no I/O: latency_bench summarises its runs
with them on the target, and bench_report pairs the arms with the same code on the controller (where _bench_interval
and _bench_verdict then judge the ratios).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

# Quantiles kept per run so the report can draw distributions without the raw samples.
DISTRIBUTION_QUANTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100)

# Metrics where a larger value is the better one; every other metric is a latency, a delay or a count of bad events.
HIGHER_IS_BETTER = frozenset(('steps_per_s', 'iops', 'tokens_per_s', 'requests_per_s', 'session_steps',
                              'session_steps_per_s', 'batch_cpu_pct', 'batch_tokens_per_s'))

DEFAULT_GATE_METRIC = 'wake_p99_us'
DEFAULT_GATE_CONDITION = 'load'
DEFAULT_GATE_THRESHOLD = 1.10


def percentile(sorted_values, q):
    """The q-th percentile (0..100) of already sorted values, interpolated linearly between the closest ranks (the
    method numpy calls 'linear'). None for no values."""
    if not sorted_values:
        return None
    if q <= 0:
        return sorted_values[0]
    if q >= 100:
        return sorted_values[-1]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def median(values):
    values = sorted(v for v in values if v is not None)
    return percentile(values, 50)


def coefficient_of_variation(values):
    """Sample standard deviation over the mean; None with fewer than two values or a zero mean."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean == 0:
        return None
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance) / mean


def latency_summary(samples_ns, prefix, unit_ns=1000.0, unit='us'):
    """``{prefix_p50_us: .., prefix_p90_us, prefix_p99_us, prefix_p999_us, prefix_max_us, prefix_mean_us}`` from
    nanosecond samples; values are None without samples."""
    ordered = sorted(samples_ns)
    result = {}
    for name, q in (('p50', 50), ('p90', 90), ('p99', 99), ('p999', 99.9), ('max', 100)):
        value = percentile(ordered, q)
        result['%s_%s_%s' % (prefix, name, unit)] = None if value is None else round(value / unit_ns, 3)
    result['%s_mean_%s' % (prefix, unit)] = round(sum(ordered) / len(ordered) / unit_ns, 3) if ordered else None
    return result


def distribution(samples_ns, metric, unit_ns=1000.0):
    """The values at DISTRIBUTION_QUANTILES, for charts."""
    ordered = sorted(samples_ns)
    values = [None if not ordered else round(percentile(ordered, q) / unit_ns, 3) for q in DISTRIBUTION_QUANTILES]
    return {'metric': metric, 'quantiles': list(DISTRIBUTION_QUANTILES), 'values': values}


def summarize_runs(runs, primary):
    """Median, min and max of every metric over the repetitions, the coefficient of variation of the primary p50,
    and the per-quantile median distribution."""
    names = []
    for run in runs:
        for name in run['metrics']:
            if name not in names:
                names.append(name)
    metrics = {}
    for name in names:
        values = [run['metrics'].get(name) for run in runs]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not numbers:
            metrics[name] = {'median': None, 'min': None, 'max': None}
            continue
        metrics[name] = {'median': round(median(numbers), 6), 'min': min(numbers), 'max': max(numbers)}
    p50_name = next((name for name in names if name.startswith(primary + '_p50_')), None)
    cv = coefficient_of_variation([run['metrics'].get(p50_name) for run in runs]) if p50_name else None
    summary = {'repetitions': len(runs), 'primary': primary, 'metrics': metrics,
               'cv_p50': None if cv is None else round(cv, 4)}
    distributions = [run.get('distribution') for run in runs if run.get('distribution')]
    if distributions:
        columns = zip(*[d['values'] for d in distributions])
        summary['distribution'] = {'metric': distributions[0]['metric'], 'quantiles': distributions[0]['quantiles'],
                                   'values': [median(column) for column in columns]}
    return summary


def ratio(before, after):
    """after / before, or None where either is missing or before is zero."""
    if before is None or after is None or isinstance(before, bool) or isinstance(after, bool):
        return None
    if before == 0:
        return None
    return after / float(before)


def ratio_stats(ratios):
    """``{median, min, max, n}`` of the ratios that exist."""
    values = [r for r in ratios if r is not None]
    if not values:
        return {'median': None, 'min': None, 'max': None, 'n': 0}
    return {'median': median(values), 'min': min(values), 'max': max(values), 'n': len(values)}


def is_worse(metric, before, after, threshold):
    """Whether ``after`` is worse than ``before`` by more than the factor ``threshold``, in the metric's direction."""
    if before is None or after is None:
        return None
    if metric in HIGHER_IS_BETTER:
        return after * threshold < before
    return after > before * threshold


# ---------------------------------------------------------------------------------------------------------------------
# Comparing arms (bench_report, on the controller)

def scenario_of(arm):
    """``ring-native/load``, ``periodic-python/idle``, ``cyclictest/load``, ``fio/idle``, ``endpoint/load``: arms are
    only compared within one scenario, so the agent workload's native and Python workers never meet in one ratio."""
    tool = arm.get('tool') or 'agent'
    name = (arm.get('workload') or 'ring') if tool == 'agent' else tool
    if tool == 'agent' and arm.get('worker'):
        name += '-' + arm['worker']
    return '%s/%s' % (name, arm.get('condition') or 'idle')


def arm_metrics(arm):
    """{metric: the arm's median over its repetitions}."""
    metrics = ((arm.get('summary') or {}).get('metrics')) or {}
    result = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            value = value.get('median')
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result[name] = value
    return result


def group_arms(arms, baseline_label):
    """{scenario: {'condition': c, 'labels': {label: [(pair index, arm), ...]}}}. Arms without a ``pair`` index are
    numbered in the order they come within their scenario and label, so the n-th baseline arm pairs with the n-th
    tuned one."""
    scenarios = {}
    for arm in arms:
        scenario = scenarios.setdefault(scenario_of(arm), {'condition': arm.get('condition') or 'idle', 'labels': {}})
        entries = scenario['labels'].setdefault(arm['label'], [])
        index = arm.get('pair')
        entries.append((len(entries) + 1 if index is None else index, arm))
    for scenario in scenarios.values():
        labels = scenario['labels']
        ordered = [baseline_label] if baseline_label in labels else []
        ordered += [label for label in labels if label != baseline_label]
        scenario['labels'] = {label: labels[label] for label in ordered}
    return scenarios


def compare_host(arms, baseline_label):
    """Per scenario: each label's metric medians over its arms (with min and max), and for every other label the
    paired comparison with the baseline: Before, After and the median of the paired ratios with min and max."""
    result = {}
    for name, scenario in group_arms(arms, baseline_label).items():
        labels = {}
        for label, entries in scenario['labels'].items():
            per_metric = {}
            for _index, arm in entries:
                for metric, value in arm_metrics(arm).items():
                    per_metric.setdefault(metric, []).append(value)
            labels[label] = {'arms': len(entries), 'metrics': {
                metric: {'median': median(values), 'min': min(values), 'max': max(values), 'values': values}
                for metric, values in per_metric.items()}}
        comparisons = {}
        baseline = dict(scenario['labels'].get(baseline_label, []))
        for label, entries in scenario['labels'].items():
            if label == baseline_label or not baseline:
                continue
            pairs = [(baseline[index], arm, index) for index, arm in entries if index in baseline]
            metrics = {}
            names = [m for m in labels[baseline_label]['metrics'] if m in labels[label]['metrics']]
            for metric in names:
                ratios = [ratio(arm_metrics(before).get(metric), arm_metrics(after).get(metric))
                          for before, after, _index in pairs]
                stats = ratio_stats(ratios)
                metrics[metric] = {
                    'before': labels[baseline_label]['metrics'][metric],
                    'after': labels[label]['metrics'][metric],
                    'ratios': ratios,
                    'ratio': stats,
                    'delta_pct': None if stats['median'] is None else round((stats['median'] - 1) * 100.0, 2)}
            comparisons[label] = {'pairs': [index for _b, _a, index in pairs], 'metrics': metrics,
                                  'gate_pairs': [{'pair': index, 'before': arm_metrics(before),
                                                  'after': arm_metrics(after)} for before, after, index in pairs]}
        result[name] = {'condition': scenario['condition'], 'labels': labels, 'comparisons': comparisons}
    return result


def compare_fleet(hosts):
    """Per scenario and tuned label, each metric over the hosts: the median of the hosts' Before and After values
    and of their median paired ratios, with the ratios' min and max across hosts."""
    fleet = {}
    for host in sorted(hosts):
        for scenario, data in hosts[host].items():
            for label, comparison in data['comparisons'].items():
                target = fleet.setdefault(scenario, {}).setdefault(label, {})
                for metric, values in comparison['metrics'].items():
                    entry = target.setdefault(metric, {'hosts': [], 'before': [], 'after': [], 'ratios': []})
                    if values['ratio']['median'] is None:
                        continue
                    entry['hosts'].append(host)
                    entry['before'].append(values['before']['median'])
                    entry['after'].append(values['after']['median'])
                    entry['ratios'].append(values['ratio']['median'])
    result = {}
    for scenario, labels in fleet.items():
        for label, metrics in labels.items():
            for metric, entry in metrics.items():
                stats = ratio_stats(entry['ratios'])
                result.setdefault(scenario, {}).setdefault(label, {})[metric] = {
                    'hosts': entry['hosts'], 'before': median(entry['before']), 'after': median(entry['after']),
                    'ratio': stats,
                    'delta_pct': None if stats['median'] is None else round((stats['median'] - 1) * 100.0, 2)}
    return result
