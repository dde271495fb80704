# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The latency benchmark: an agent-like workload measured with in-app CLOCK_MONOTONIC timestamps, the host counters
around it, and the optional external tools (cyclictest, fio) and the inference endpoint client.

Everything is standard library, for targets running Python 3.8 or later. The workers are separate processes of the
same interpreter (``python -c WORKER_SOURCE``), so they do not share a GIL with each other or with the sampler, they
can be started under ``systemd-run --scope`` like any command, and they work the same when this code runs from an
AnsiballZ zip. Every process started here is tracked in a :class:`ProcessSet`, which kills and reaps all of them on
the way out, whatever the way out is.

The pure helpers at the top (percentiles, medians, paired ratios, the regression gate) are shared with the
controller-side report module.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import CALIBRATION_PATH

# ---------------------------------------------------------------------------------------------------------------------
# Statistics shared with bench_report

# Quantiles kept per run so the report can draw distributions without the raw samples.
DISTRIBUTION_QUANTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100)

# Metrics where a larger value is the better one; every other metric is a latency, a delay or a count of bad events.
HIGHER_IS_BETTER = frozenset(('steps_per_s', 'iops', 'tokens_per_s', 'requests_per_s'))

DEFAULT_GATE_METRIC = 'wake_p99_us'
DEFAULT_GATE_CONDITION = 'load'
DEFAULT_GATE_THRESHOLD = 1.10


class BenchError(Exception):
    """A benchmark that cannot run as asked, with a message meant for the playbook's user."""

    def __init__(self, message, results=None):
        super(BenchError, self).__init__(message)
        self.results = results


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


def evaluate_gate(pairs, metric=DEFAULT_GATE_METRIC, threshold=DEFAULT_GATE_THRESHOLD):
    """The regression gate over interleaved pairs.

    ``pairs`` is a list of ``{'before': {metric: value}, 'after': {metric: value}}`` (one per interleaved pair, the
    before arm being the untuned baseline). The tuned arm counts as regressed only when it is worse by more than
    ``threshold`` (a factor, 1.10 meaning 10 %) in every pair that has the metric: one noisy pair cannot fail a
    rollout, and one lucky pair cannot hide a regression either, since it never makes a failure pass where all pairs
    agree.
    """
    if threshold is None or threshold < 1:
        raise ValueError('the gate threshold is a factor of at least 1, got %r' % (threshold,))
    checked = []
    for pair in pairs:
        before = (pair.get('before') or {}).get(metric)
        after = (pair.get('after') or {}).get(metric)
        worse = is_worse(metric, before, after, threshold)
        if worse is not None:
            checked.append({'before': before, 'after': after, 'ratio': ratio(before, after), 'worse': worse})
    regressed = bool(checked) and all(item['worse'] for item in checked)
    if not checked:
        reason = 'no pair has %s in both arms' % metric
    elif regressed:
        reason = '%s is worse by more than x%.2f in all %d pairs' % (metric, threshold, len(checked))
    else:
        reason = '%s is worse by more than x%.2f in %d of %d pairs' % (
            metric, threshold, sum(1 for item in checked if item['worse']), len(checked))
    return {'metric': metric, 'threshold': threshold, 'pairs': len(checked),
            'ratios': [item['ratio'] for item in checked], 'worse': [item['worse'] for item in checked],
            'regressed': regressed, 'evaluated': bool(checked), 'reason': reason}


# ---------------------------------------------------------------------------------------------------------------------
# Comparing arms (used by bench_report on the controller)

def scenario_of(arm):
    """``ring/load``, ``periodic/idle``, ``cyclictest/load``, ``fio/idle``, ``endpoint/load``: arms are only compared
    within one scenario."""
    tool = arm.get('tool') or 'agent'
    name = (arm.get('workload') or 'ring') if tool == 'agent' else tool
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
                metric: {'median': median(values), 'min': min(values), 'max': max(values)}
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
                stats = ratio_stats([ratio(arm_metrics(before).get(metric), arm_metrics(after).get(metric))
                                     for before, after, _index in pairs])
                metrics[metric] = {
                    'before': labels[baseline_label]['metrics'][metric],
                    'after': labels[label]['metrics'][metric],
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


def gate_hosts(hosts, metric=DEFAULT_GATE_METRIC, condition=DEFAULT_GATE_CONDITION,
               threshold=DEFAULT_GATE_THRESHOLD):
    """The gate for every host, scenario of the gate's condition and tuned label; regressed when any of them is."""
    checks = []
    for host in sorted(hosts):
        for scenario, data in sorted(hosts[host].items()):
            if data['condition'] != condition:
                continue
            for label, comparison in data['comparisons'].items():
                outcome = evaluate_gate(comparison['gate_pairs'], metric, threshold)
                if outcome['evaluated']:
                    outcome.update(host=host, scenario=scenario, label=label)
                    checks.append(outcome)
    regressed = [check for check in checks if check['regressed']]
    if not checks:
        reason = 'no interleaved pair under condition %s has %s' % (condition, metric)
    elif regressed:
        reason = 'regressed: ' + '; '.join('%s %s %s' % (c['host'], c['scenario'], c['label']) for c in regressed)
    else:
        reason = 'no host is worse by more than x%.2f in every pair' % threshold
    return {'metric': metric, 'condition': condition, 'threshold': threshold, 'evaluated': bool(checks),
            'regressed': bool(regressed), 'reason': reason, 'checks': checks}


# ---------------------------------------------------------------------------------------------------------------------
# Input validation

SLICE_NAME = re.compile(r'^[A-Za-z0-9:_.-]{1,240}\.slice$')
CPU_LIST = re.compile(r'^\d+(-\d+)?(,\d+(-\d+)?)*$')
CGROUP_ROOT = '/sys/fs/cgroup'
MAX_CPU = 8191

LIMITS = {
    'workers': (1, 64),
    'compute_us': (1, 100000),
    'duration_s': (0.5, 600),
    'warmup_s': (0, 60),
    'repetitions': (1, 50),
    'rate_hz': (1, 100000),
    'timer_slack_ns': (1, 1000000000),
    'gpu_sample_interval_s': (0, 60),
}


def check_range(name, value):
    low, high = LIMITS[name]
    if value is None:
        return
    if not low <= value <= high:
        raise BenchError('%s must be between %s and %s, got %s' % (name, low, high, value))


def parse_cpu_list(text):
    """``"2-5,8"`` -> ``[2, 3, 4, 5, 8]``; a clear error for anything else."""
    compact = str(text).replace(' ', '')
    if not CPU_LIST.match(compact):
        raise BenchError('%r is not a CPU list such as "2-5,8"' % (text,))
    cpus = set()
    for part in compact.split(','):
        low, _sep, high = part.partition('-')
        low, high = int(low), int(high or low)
        if high < low or high > MAX_CPU:
            raise BenchError('%r in the CPU list %r is not a valid range' % (part, text))
        cpus.update(range(low, high + 1))
    return sorted(cpus)


def online_cpus():
    try:
        with open('/sys/devices/system/cpu/online') as handle:
            return parse_cpu_list(handle.read().strip())
    except (IOError, OSError, BenchError):
        return sorted(os.sched_getaffinity(0))


def validate_cpus(text, what='cpus'):
    cpus = parse_cpu_list(text)
    online = online_cpus()
    missing = [cpu for cpu in cpus if cpu not in online]
    if missing:
        raise BenchError('%s %r names CPUs that are not online: %s (online: %s)' % (
            what, text, format_cpu_list(missing), format_cpu_list(online)))
    return cpus


def format_cpu_list(cpus):
    parts = []
    for cpu in sorted(cpus):
        if parts and parts[-1][1] == cpu - 1:
            parts[-1][1] = cpu
        else:
            parts.append([cpu, cpu])
    return ','.join(str(a) if a == b else '%d-%d' % (a, b) for a, b in parts)


def validate_slice(name, what='slice'):
    if name is None:
        return None
    if not SLICE_NAME.match(name) or '..' in name:
        raise BenchError('%s %r is not a systemd slice name (letters, digits, ":", "_", ".", "-", ending in .slice)'
                         % (what, name))
    return name


def validate_cgroup(path, what='cgroup'):
    """An existing cgroup directory under /sys/fs/cgroup, as a normalised absolute path."""
    if path is None:
        return None
    if not path.startswith('/') or '\x00' in path:
        raise BenchError('%s %r must be an absolute path under %s' % (what, path, CGROUP_ROOT))
    parts = path.split('/')
    if '..' in parts or '.' in parts:
        raise BenchError('%s %r must not contain "." or ".." components' % (what, path))
    normal = os.path.normpath(path)
    real = os.path.realpath(normal)
    if not (normal + '/').startswith(CGROUP_ROOT + '/') or not (real + '/').startswith(CGROUP_ROOT + '/') \
            or real == CGROUP_ROOT:
        raise BenchError('%s %r is not a cgroup directory below %s' % (what, path, CGROUP_ROOT))
    return normal


# ---------------------------------------------------------------------------------------------------------------------
# Reading the kernel's counters

def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def parse_schedstat(text):
    """``/proc/<pid>/task/<tid>/schedstat``: (time on CPU ns, run-queue wait ns, timeslices)."""
    fields = text.split()
    return int(fields[0]), int(fields[1]), int(fields[2])


def parse_ctxt_switches(text):
    """(voluntary, nonvoluntary) context switches from a ``/proc/<pid>/status`` text."""
    voluntary = nonvoluntary = 0
    for line in text.splitlines():
        if line.startswith('voluntary_ctxt_switches:'):
            voluntary = int(line.split()[1])
        elif line.startswith('nonvoluntary_ctxt_switches:'):
            nonvoluntary = int(line.split()[1])
    return voluntary, nonvoluntary


def parse_pressure(text):
    """``{'some': {'avg10': .., 'avg60': .., 'avg300': .., 'total': ..}, 'full': {...}}`` from a PSI file."""
    result = {}
    for line in (text or '').splitlines():
        words = line.split()
        if not words:
            continue
        values = {}
        for word in words[1:]:
            key, _sep, value = word.partition('=')
            values[key] = int(value) if key == 'total' else float(value)
        result[words[0]] = values
    return result


def parse_proc_stat_cpu(text):
    """(steal ticks, all ticks) from the aggregate ``cpu`` line of ``/proc/stat``. guest time is already part of
    user time, so the total stops at steal."""
    for line in text.splitlines():
        if line.startswith('cpu '):
            fields = [int(v) for v in line.split()[1:]]
            fields += [0] * (8 - len(fields))
            return fields[7], sum(fields[:8])
    raise ValueError('no aggregate cpu line in /proc/stat')


def parse_cgroup_v2_path(text):
    """The unified-hierarchy path from a ``/proc/<pid>/cgroup`` text, or None."""
    for line in (text or '').splitlines():
        if line.startswith('0::'):
            return line[3:].strip() or '/'
    return None


def cgroup2_mount():
    """Where the unified cgroup hierarchy is mounted (``/sys/fs/cgroup`` or, on hybrid hosts,
    ``/sys/fs/cgroup/unified``), or None."""
    for line in (read_text('/proc/self/mountinfo') or '').splitlines():
        left, _sep, right = line.partition(' - ')
        if right.split(' ')[:1] == ['cgroup2']:
            fields = left.split()
            if fields[3] == '/':
                return fields[4]
    return None


def thread_counters(pids):
    """Summed run-queue wait, timeslices and context switches over every thread of the given processes."""
    wait_ns = slices = voluntary = nonvoluntary = 0
    for pid in pids:
        task_dir = '/proc/%d/task' % pid
        try:
            tids = os.listdir(task_dir)
        except OSError:
            continue
        for tid in tids:
            schedstat = read_text('%s/%s/schedstat' % (task_dir, tid))
            status = read_text('%s/%s/status' % (task_dir, tid))
            if schedstat:
                _on_cpu, waited, count = parse_schedstat(schedstat)
                wait_ns += waited
                slices += count
            if status:
                vol, nonvol = parse_ctxt_switches(status)
                voluntary += vol
                nonvoluntary += nonvol
    return {'runq_wait_ns': wait_ns, 'timeslices': slices, 'voluntary': voluntary, 'nonvoluntary': nonvoluntary}


def host_snapshot(pids=(), cgroup_pressure=None):
    snapshot = {'t_ns': time.monotonic_ns(), 'threads': thread_counters(pids),
                'psi': parse_pressure(read_text('/proc/pressure/cpu')).get('some'),
                'cgroup_psi': parse_pressure(read_text(cgroup_pressure)).get('some') if cgroup_pressure else None}
    stat = read_text('/proc/stat')
    snapshot['steal'] = parse_proc_stat_cpu(stat) if stat else None
    return snapshot


def counter_metrics(before, after, steps):
    """Per-step and per-window metrics from two snapshots around the measurement window."""
    window_us = (after['t_ns'] - before['t_ns']) / 1000.0
    metrics = {}
    threads_b, threads_a = before['threads'], after['threads']
    if steps:
        metrics['runq_delay_per_step_us'] = round(
            (threads_a['runq_wait_ns'] - threads_b['runq_wait_ns']) / 1000.0 / steps, 3)
        metrics['vcsw_per_1k_steps'] = round((threads_a['voluntary'] - threads_b['voluntary']) * 1000.0 / steps, 2)
        metrics['ivcsw_per_1k_steps'] = round(
            (threads_a['nonvoluntary'] - threads_b['nonvoluntary']) * 1000.0 / steps, 2)
    metrics.update(system_metrics(before, after, window_us))
    return metrics


def system_metrics(before, after, window_us=None):
    if window_us is None:
        window_us = (after['t_ns'] - before['t_ns']) / 1000.0
    metrics = {'psi_cpu_some_avg10': None, 'psi_cpu_some_pct': None, 'cgroup_psi_cpu_some_avg10': None,
               'cgroup_psi_cpu_some_pct': None, 'steal_pct': None}
    for key, prefix in (('psi', 'psi'), ('cgroup_psi', 'cgroup_psi')):
        if before.get(key) and after.get(key) and window_us > 0:
            metrics[prefix + '_cpu_some_avg10'] = after[key].get('avg10')
            metrics[prefix + '_cpu_some_pct'] = round(
                (after[key]['total'] - before[key]['total']) * 100.0 / window_us, 3)
    if before.get('steal') and after.get('steal'):
        ticks = after['steal'][1] - before['steal'][1]
        metrics['steal_pct'] = round((after['steal'][0] - before['steal'][0]) * 100.0 / ticks, 3) if ticks else 0.0
    load = (read_text('/proc/loadavg') or '').split()
    for index, name in enumerate(('loadavg_1', 'loadavg_5', 'loadavg_15')):
        metrics[name] = float(load[index]) if len(load) > index else None
    return metrics


def systemd_is_pid1():
    return (read_text('/proc/1/comm') or '').strip() == 'systemd'


def host_info():
    online = online_cpus()
    model = None
    for line in (read_text('/proc/cpuinfo') or '').splitlines():
        if line.startswith('model name'):
            model = line.split(':', 1)[1].strip()
            break
    driver = (read_text('/sys/devices/system/cpu/cpuidle/current_driver') or '').strip() or None
    return {
        'nproc': len(online),
        'cpus_online': format_cpu_list(online),
        'cpus_allowed': format_cpu_list(os.sched_getaffinity(0)),
        'cpu_model': model,
        'kernel': platform.release(),
        'cpuidle_driver': None if driver == 'none' else driver,
        'systemd_pid1': systemd_is_pid1(),
        'cgroup2_mount': cgroup2_mount(),
        'python': platform.python_version(),
        'euid': os.geteuid(),
    }


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# ---------------------------------------------------------------------------------------------------------------------
# The worker program

# Runs as ``python -c WORKER_SOURCE``. It reads one JSON line of configuration from stdin, applies its own scheduling
# settings (only the process itself can set its timer slack, and doing the rest here too reports every refusal the
# same way), answers a "ready" line, waits for the "go" line with the window's bounds, runs, writes its samples as
# raw int64 arrays to the files it was given and answers a "done" line. It then waits for stdin to close before
# exiting, so the parent can still read its /proc counters at the end of the window.
#
# Tokens are 8-byte CLOCK_MONOTONIC timestamps in nanoseconds, written by the signaller just before the signal. On an
# eventfd the write adds the value to a counter that the wake reads back and resets; a ring has a single token in
# flight, so the counter holds exactly the sender's timestamp. Pipes carry the same 8 bytes (writes under PIPE_BUF are
# atomic) and keep a backlog in order, which the open-loop periodic workload needs.
WORKER_SOURCE = r'''
import ctypes, json, os, struct, sys, time
from array import array

STOP = 1
TOKEN = struct.Struct("=Q")
POLICIES = {"other": os.SCHED_OTHER, "batch": getattr(os, "SCHED_BATCH", None), "idle": getattr(os, "SCHED_IDLE", None),
            "fifo": os.SCHED_FIFO, "rr": os.SCHED_RR}
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30
now = time.monotonic_ns


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def spin(iterations):
    value = 0
    for step in range(iterations):
        value ^= step
    return value


def read_token(fd):
    data = os.read(fd, 8)
    while 0 < len(data) < 8:
        more = os.read(fd, 8 - len(data))
        if not more:
            break
        data += more
    if len(data) < 8:
        return STOP
    return TOKEN.unpack(data)[0]


def write_token(fd, value):
    os.write(fd, TOKEN.pack(value))


def apply_settings(cfg):
    applied, errors = {}, {}
    slack = cfg.get("timer_slack_ns")
    if slack is not None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ulong = ctypes.c_ulong
            if libc.prctl(PR_SET_TIMERSLACK, ulong(slack), ulong(0), ulong(0), ulong(0)) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            applied["timer_slack_ns"] = libc.prctl(PR_GET_TIMERSLACK, ulong(0), ulong(0), ulong(0), ulong(0))
        except (OSError, AttributeError) as exc:
            errors["timer_slack_ns"] = "prctl(PR_SET_TIMERSLACK, %d): %s" % (slack, exc)
    cpus = cfg.get("cpus")
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
            applied["cpus"] = sorted(os.sched_getaffinity(0))
        except OSError as exc:
            errors["cpus"] = "sched_setaffinity(%s): %s" % (cpus, exc)
    policy = cfg.get("policy")
    if policy:
        priority = cfg.get("priority") or 0
        try:
            if POLICIES.get(policy) is None:
                raise OSError(22, "policy %s is not available here" % policy)
            os.sched_setscheduler(0, POLICIES[policy], os.sched_param(priority))
            applied["policy"] = policy
            applied["priority"] = priority
        except OSError as exc:
            errors["policy"] = "sched_setscheduler(%s, priority %d): %s" % (policy, priority, exc)
    return applied, errors


def save(path, values):
    with open(path, "wb") as handle:
        array("q", values).tofile(handle)


def calibrate():
    # Timed in steps of about 100 us, the size the workload uses (long single runs take timer ticks and, in a VM,
    # their exits). Interference only ever makes a step slower, so a low percentile of many steps is the speed of
    # the undisturbed CPU.
    def timed(iterations):
        start = now()
        spin(iterations)
        return now() - start
    iterations = 1000
    probe = min(timed(iterations) for _ in range(50))
    iterations = max(100, int(iterations * 100000.0 / max(probe, 1)))
    samples = sorted(timed(iterations) for _ in range(2000))
    fast = samples[len(samples) // 10]
    return {"iterations_per_us": iterations * 1000.0 / fast, "iterations": iterations, "p10_ns": fast}


def ring(cfg, go):
    in_fd, out_fd, iterations = cfg["in_fd"], cfg["out_fd"], cfg["iterations"]
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    wake, step = array("q"), array("q")
    while True:
        token = read_token(in_fd)
        woke = now()
        if token == STOP:
            write_token(out_fd, STOP)
            break
        if woke >= stop_at:
            write_token(out_fd, STOP)
            break
        spin(iterations)
        sent = now()
        write_token(out_fd, sent)
        if token >= measure_from:
            wake.append(woke - token)
            step.append(sent - token)
    save(cfg["samples"] + ".wake", wake)
    save(cfg["samples"] + ".step", step)
    return {"steps": len(wake)}


def periodic_worker(cfg, go):
    in_fd, iterations = cfg["in_fd"], cfg["iterations"]
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    wake, step = array("q"), array("q")
    drained = 0
    while True:
        token = read_token(in_fd)
        woke = now()
        if token == STOP:
            break
        if woke >= stop_at:
            # A backlog left at the end of the window is drained without the work, so an overloaded run still ends.
            drained += 1
            continue
        spin(iterations)
        done = now()
        if token >= measure_from:
            wake.append(woke - token)
            step.append(done - token)
    save(cfg["samples"] + ".wake", wake)
    save(cfg["samples"] + ".step", step)
    return {"steps": len(wake), "drained": drained}


def dispatcher(cfg, go):
    out_fds = cfg["out_fds"]
    period = int(1e9 / cfg["rate_hz"])
    measure_from, stop_at = go["measure_from_ns"], go["stop_at_ns"]
    deadline = go["start_ns"]
    lateness = array("q")
    posted = missed = index = 0
    while True:
        delay = deadline - now()
        if delay > 0:
            time.sleep(delay / 1e9)
        stamp = now()
        if stamp >= stop_at:
            break
        write_token(out_fds[index % len(out_fds)], stamp)
        index += 1
        if stamp >= measure_from:
            lateness.append(stamp - deadline)
            posted += 1
        deadline += period
        if stamp - deadline > period:
            # More than a whole period behind: skip the lost slots instead of posting a burst, and count them.
            skipped = (stamp - deadline) // period
            missed += skipped
            deadline += skipped * period
    for fd in out_fds:
        write_token(fd, STOP)
    save(cfg["samples"] + ".lateness", lateness)
    return {"posted": posted, "missed": missed}


def main():
    cfg = json.loads(sys.stdin.readline())
    role = cfg["role"]
    if role == "calibrate":
        emit(calibrate())
        return
    applied, errors = apply_settings(cfg)
    emit({"ready": True, "pid": os.getpid(), "applied": applied, "errors": errors})
    line = sys.stdin.readline()
    go = json.loads(line) if line.strip() else {}
    if go.get("go"):
        result = {"ring": ring, "periodic": periodic_worker, "dispatcher": dispatcher}[role](cfg, go)
        result["done"] = True
        emit(result)
        sys.stdin.readline()


main()
'''

# A CPU hog for the loaded condition. It waits for one line on stdin so it can be moved into its cgroup first.
HOG_SOURCE = 'import sys\nsys.stdin.readline()\nwhile True:\n    pass\n'


# ---------------------------------------------------------------------------------------------------------------------
# Processes

def process_start_time(pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), which tells a PID's process apart from a
    later one that reuses the number."""
    text = read_text('/proc/%d/stat' % pid)
    if not text:
        return None
    return int(text[text.rindex(')') + 2:].split()[19])


def process_exists(pid, start_time=None):
    """True while the process (and, with start_time, that very process) exists, zombies included."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_time is None:
        return True
    current = process_start_time(pid)
    return current is not None and current == start_time


class LineChannel(object):
    """Line reads from a child's stdout with a deadline, on the raw descriptor (select and buffered files do not
    mix)."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = b''

    def read_line(self, deadline):
        """The next line, None at end of file, or raises TimeoutError past ``deadline`` (time.monotonic())."""
        while b'\n' not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            ready, _w, _x = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _sep, self.buffer = self.buffer.partition(b'\n')
        return line.decode('utf-8', 'replace')


class Child(object):
    def __init__(self, proc, role, stderr_path):
        self.proc = proc
        self.pid = proc.pid
        self.role = role
        self.start_time = process_start_time(proc.pid)
        self.stderr_path = stderr_path
        self.channel = LineChannel(proc.stdout.fileno()) if proc.stdout is not None else None

    def send(self, message):
        """Write one JSON line (or a bare newline for None) to the child's stdin; False when it has gone."""
        data = b'\n' if message is None else (json.dumps(message) + '\n').encode('utf-8')
        try:
            self.proc.stdin.write(data)
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def read_message(self, deadline, what):
        try:
            line = self.channel.read_line(deadline)
        except TimeoutError:
            raise BenchError('%s (PID %d) did not answer in time while %s%s' % (
                self.role, self.pid, what, self.stderr_tail(prefix=': ')))
        if line is None:
            self.proc.poll()
            raise BenchError('%s (PID %d) exited (rc=%s) while %s%s' % (
                self.role, self.pid, self.proc.returncode, what, self.stderr_tail(prefix=': ')))
        try:
            return json.loads(line)
        except ValueError:
            raise BenchError('%s (PID %d) answered %r while %s' % (self.role, self.pid, line[:200], what))

    def stderr_tail(self, prefix=''):
        text = (read_text(self.stderr_path) or '').strip()
        return prefix + text[-800:] if text else ''

    def close_stdin(self):
        if self.proc.stdin is None:
            return
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass


class ProcessSet(object):
    """Every process the benchmark starts. ``close()`` (also on ``with`` exit) kills each one's process group, reaps
    it, and checks by PID and start time that none is left. Children start in their own session, so a group kill
    cannot reach this process, and a systemd-run scope ends with the process it runs."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.children = []
        self.lock = threading.Lock()
        self.counter = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, argv, role, pass_fds=(), stdin=True, stdout=True):
        with self.lock:
            self.counter += 1
            stderr_path = os.path.join(self.scratch, 'stderr-%d-%s' % (self.counter, role))
        with open(stderr_path, 'wb') as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=stderr,
                                    pass_fds=tuple(pass_fds), close_fds=True, start_new_session=True, bufsize=0)
        child = Child(proc, role, stderr_path)
        with self.lock:
            self.children.append(child)
        return child

    def stop(self, child, grace_s=2.0):
        """Wait up to ``grace_s`` for the child to exit by itself, then kill its process group, and reap it."""
        child.close_stdin()
        try:
            child.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self._kill(child)

    @staticmethod
    def _kill(child):
        if child.proc.returncode is None:
            for target in (lambda: os.killpg(child.pid, signal.SIGKILL), lambda: os.kill(child.pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                child.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for stream in (child.proc.stdin, child.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self):
        with self.lock:
            children = list(self.children)
        for child in children:
            child.close_stdin()
        for child in children:
            self._kill(child)

    def started(self):
        return [{'pid': child.pid, 'role': child.role} for child in self.children]

    def remaining(self):
        return [child.pid for child in self.children
                if child.proc.returncode is None or process_exists(child.pid, child.start_time)]


class TerminationGuard(object):
    """Turns SIGTERM and SIGHUP into an exception for the duration of a run, so the cleanup in ``finally`` runs
    when Ansible's task timeout or a cancelled job ends the module."""

    class Terminated(BaseException):
        pass

    def __init__(self):
        self.previous = {}

    def _raise(self, signum, _frame):
        raise TerminationGuard.Terminated('terminated by signal %d' % signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                self.previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


# ---------------------------------------------------------------------------------------------------------------------
# Placement

class Placement(object):
    """Where one group of processes (the workers, or the load) runs: a systemd slice through a transient scope, or a
    cgroup directory that their PIDs are written to, plus the settings each worker applies to itself."""

    def __init__(self, group, required, warnings):
        self.group = group
        self.required = required
        self.warnings = warnings
        self.method = None
        self.slice = None
        self.cgroup = None
        self.prefix = []
        self.skipped = []
        self.applied = {}

    def skip(self, what, reason):
        message = '%s placement %s skipped: %s' % (self.group, what, reason)
        if self.required:
            raise BenchError('%s placement %s is not possible: %s (set placement_required: false to run without it)'
                             % (self.group, what, reason))
        if message not in self.skipped:
            self.skipped.append(message)
            self.warnings.append(message)

    def report(self):
        result = {'method': self.method, 'slice': self.slice, 'cgroup': self.cgroup, 'skipped': list(self.skipped)}
        result.update(self.applied)
        return result

    def resolve(self, slice_name, cgroup_dir, processes, python):
        """Pick the slice when systemd is PID 1, else the cgroup directory; probe that it works with a short-lived
        process, so a refusal shows before any measurement starts."""
        if not slice_name and not cgroup_dir:
            return
        systemd = systemd_is_pid1()
        if slice_name and (systemd or not cgroup_dir):
            if not systemd:
                self.skip('slice %s' % slice_name, 'systemd is not PID 1 on this host, so there is no slice to run in '
                          '(give a cgroup directory for such hosts)')
                return
            self._probe_slice(slice_name, processes, python)
            return
        if systemd:
            self.warnings.append('%s: writing PIDs into %s directly on a systemd host; systemd may move them back '
                                 'on its next reload (a slice is the systemd way)' % (self.group, cgroup_dir))
        self._probe_cgroup(cgroup_dir, processes, python)

    def _probe_slice(self, slice_name, processes, python):
        binary = shutil.which('systemd-run')
        if not binary:
            self.skip('slice %s' % slice_name, 'systemd-run is not on PATH')
            return
        prefix = [binary, '--scope', '--quiet', '--collect', '--slice=%s' % slice_name]
        if os.geteuid() != 0:
            prefix.insert(1, '--user')
        child = processes.start(prefix + ['--', python, '-c', 'pass'], 'slice-probe', stdin=False, stdout=False)
        try:
            rc = child.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        processes.stop(child, grace_s=0)
        if rc != 0:
            self.skip('slice %s' % slice_name, 'systemd-run could not start a scope in it (rc=%s)%s'
                      % (rc, child.stderr_tail(prefix=': ')))
            return
        self.method, self.slice, self.prefix = 'systemd-run', slice_name, prefix + ['--']

    def _probe_cgroup(self, cgroup_dir, processes, python):
        procs = os.path.join(cgroup_dir, 'cgroup.procs')
        if not os.path.isdir(cgroup_dir):
            self.skip('cgroup %s' % cgroup_dir, 'no such cgroup directory')
            return
        if not os.path.exists(procs):
            self.skip('cgroup %s' % cgroup_dir, 'it has no cgroup.procs, so it is not a cgroup')
            return
        child = processes.start([python, '-c', 'import sys\nsys.stdin.readline()\n'], 'cgroup-probe')
        try:
            error = move_to_cgroup(child.pid, cgroup_dir)
        finally:
            processes.stop(child, grace_s=1)
        if error:
            self.skip('cgroup %s' % cgroup_dir, error)
            return
        self.method, self.cgroup = 'cgroup.procs', cgroup_dir

    def place(self, child):
        """Moves a freshly started child into the cgroup, when that is the method."""
        if self.method != 'cgroup.procs':
            return
        error = move_to_cgroup(child.pid, self.cgroup)
        if error:
            self.skip('cgroup %s' % self.cgroup, error)


def move_to_cgroup(pid, cgroup_dir):
    """Writes the PID to the directory's cgroup.procs; returns None or the reason it failed."""
    path = os.path.join(cgroup_dir, 'cgroup.procs')
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, 'O_NOFOLLOW', 0))
        try:
            os.write(fd, ('%d\n' % pid).encode('ascii'))
        finally:
            os.close(fd)
    except OSError as exc:
        hint = ''
        if exc.errno == errno.EBUSY:
            hint = ' (a cgroup v2 directory with child cgroups cannot hold processes; use a leaf)'
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = ' (moving processes there needs root or delegation of that cgroup)'
        return 'writing PID %d to %s: %s%s' % (pid, path, os.strerror(exc.errno), hint)
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Calibration

def default_calibration_file():
    if os.geteuid() == 0:
        return CALIBRATION_PATH
    return os.path.join(os.path.expanduser('~'), '.cache', 'aitune', 'bench-calibration.json')


def calibration_key(python):
    return '%s|%s|%s' % (os.path.realpath(python), platform.python_version(), platform.machine())


def load_calibration(path, key):
    text = read_text(path)
    if not text:
        return None
    try:
        entry = json.loads(text).get('entries', {}).get(key)
    except (ValueError, AttributeError):
        return None
    if not entry or not isinstance(entry.get('iterations_per_us'), (int, float)) or entry['iterations_per_us'] <= 0:
        return None
    return entry


def save_calibration(path, key, entry):
    """Adds the entry to the calibration file, atomically (a temporary file renamed over it)."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    text = read_text(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get('entries'), dict):
        data = {'version': 1, 'entries': {}}
    data['entries'][key] = entry
    handle, temporary = tempfile.mkstemp(prefix='.bench-calibration.', dir=directory)
    try:
        with os.fdopen(handle, 'w') as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.write('\n')
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def calibrate(processes, python):
    child = processes.start([python, '-c', WORKER_SOURCE], 'calibrate')
    try:
        child.send({'role': 'calibrate'})
        result = child.read_message(time.monotonic() + 120, 'calibrating the compute loop')
    finally:
        processes.stop(child)
    return result


def spin_calibration(processes, python, path, recalibrate, write, warnings):
    """The spin-loop speed of this host's interpreter: from the file when it has one, else measured once (on an idle
    host, before any load starts) and stored, so every later run does the same amount of work per step."""
    key = calibration_key(python)
    entry = None if recalibrate else load_calibration(path, key)
    if entry:
        entry = dict(entry, source='file')
    else:
        measured = calibrate(processes, python)
        entry = {'iterations_per_us': round(measured['iterations_per_us'], 4), 'calibrated_at': utc_now(),
                 'python': platform.python_version(), 'executable': os.path.realpath(python)}
        if write:
            try:
                save_calibration(path, key, entry)
                entry = dict(entry, source='measured')
            except (IOError, OSError) as exc:
                warnings.append('calibration could not be stored in %s: %s' % (path, exc))
                entry = dict(entry, source='measured, not stored')
        else:
            entry = dict(entry, source='measured, not stored (check mode)')
    entry['file'] = path
    return entry


# ---------------------------------------------------------------------------------------------------------------------
# GPU sampling

class GpuSampler(object):
    """Samples GPU utilisation and SM clock with nvidia-smi during the window, when nvidia-smi is on PATH."""

    QUERY = ['--query-gpu=utilization.gpu,clocks.sm', '--format=csv,noheader,nounits']

    def __init__(self, processes, interval_s):
        self.binary = shutil.which('nvidia-smi') if interval_s else None
        self.processes = processes
        self.interval_s = interval_s
        self.samples = []
        self.errors = []
        self.stop_event = threading.Event()
        self.thread = None

    def start(self):
        if self.binary:
            self.thread = threading.Thread(target=self._loop, name='aitune-gpu-sampler')
            self.thread.daemon = True
            self.thread.start()
        return self

    def _loop(self):
        while not self.stop_event.is_set():
            self.sample_once()
            self.stop_event.wait(self.interval_s)

    def sample_once(self):
        child = self.processes.start([self.binary] + self.QUERY, 'nvidia-smi', stdin=False)
        try:
            output = self._read_all(child, time.monotonic() + 10)
            child.proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, TimeoutError):
            output = None
        finally:
            self.processes.stop(child, grace_s=0)
        if child.proc.returncode != 0 or output is None:
            message = 'nvidia-smi failed (rc=%s)%s' % (child.proc.returncode, child.stderr_tail(prefix=': '))
            if message not in self.errors:
                self.errors.append(message)
            return
        self.samples.append(parse_nvidia_smi(output))

    @staticmethod
    def _read_all(child, deadline):
        lines = []
        while True:
            line = child.channel.read_line(deadline)
            if line is None:
                return '\n'.join(lines)
            lines.append(line)

    def stop(self):
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=15)

    def report(self):
        if not self.binary:
            return {'present': False, 'reason': 'nvidia-smi is not on PATH' if self.interval_s else 'not sampled'}
        gpus = {}
        for sample in self.samples:
            for index, (util, clock) in enumerate(sample):
                gpus.setdefault(index, {'util': [], 'clock': []})
                if util is not None:
                    gpus[index]['util'].append(util)
                if clock is not None:
                    gpus[index]['clock'].append(clock)
        if not gpus:
            return {'present': False, 'reason': '; '.join(self.errors) or 'no sample was taken'}
        per_gpu = []
        for index in sorted(gpus):
            util, clock = gpus[index]['util'], gpus[index]['clock']
            per_gpu.append({'index': index, 'samples': len(util),
                            'util_pct_mean': round(sum(util) / len(util), 2) if util else None,
                            'util_pct_max': max(util) if util else None,
                            'sm_clock_mhz_mean': round(sum(clock) / len(clock), 1) if clock else None,
                            'sm_clock_mhz_min': min(clock) if clock else None})
        return {'present': True, 'gpus': per_gpu}


def parse_nvidia_smi(text):
    """[(utilisation %, SM clock MHz), ...] per GPU from ``--format=csv,noheader,nounits`` output; "[N/A]" fields
    become None."""
    rows = []
    for line in text.strip().splitlines():
        values = []
        for field in line.split(',')[:2]:
            field = field.strip()
            try:
                values.append(float(field))
            except ValueError:
                values.append(None)
        values += [None] * (2 - len(values))
        rows.append(tuple(values))
    return rows


def gpu_metrics(report):
    if not report.get('present'):
        return {'gpu_util_pct_mean': None, 'gpu_sm_clock_mhz_mean': None}
    utils = [gpu['util_pct_mean'] for gpu in report['gpus'] if gpu['util_pct_mean'] is not None]
    clocks = [gpu['sm_clock_mhz_mean'] for gpu in report['gpus'] if gpu['sm_clock_mhz_mean'] is not None]
    return {'gpu_util_pct_mean': round(sum(utils) / len(utils), 2) if utils else None,
            'gpu_sm_clock_mhz_mean': round(sum(clocks) / len(clocks), 1) if clocks else None}


# ---------------------------------------------------------------------------------------------------------------------
# The run

def sleep_until_ns(deadline_ns):
    while True:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining <= 0:
            return
        time.sleep(min(remaining / 1e9, 0.5))


def load_samples(path):
    values = array('q')
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as handle:
            values.fromfile(handle, size // values.itemsize)
    except (IOError, OSError):
        pass
    return values


class Bench(object):
    """One latency_bench invocation: validated options in, ``results`` out."""

    def __init__(self, options, check_mode=False):
        self.options = options
        self.check_mode = check_mode
        self.python = sys.executable
        self.warnings = []
        self.scratch = None
        self.processes = None
        self.hogs = []
        self.workers_placement = None
        self.load_placement = None
        self.iterations = None

    # -- validation ---------------------------------------------------------------------------------------------------

    def validate(self):
        opts = self.options
        for name in ('workers', 'compute_us', 'duration_s', 'warmup_s', 'repetitions', 'rate_hz', 'timer_slack_ns',
                     'gpu_sample_interval_s'):
            check_range(name, opts.get(name))
        fraction = opts.get('load_fraction')
        if fraction is not None and not 0 < fraction <= 1:
            raise BenchError('load_fraction must be above 0 and at most 1, got %s' % fraction)
        policy, priority = opts.get('policy'), opts.get('priority')
        if policy in ('fifo', 'rr'):
            if priority is None:
                opts['priority'] = 1
            elif not 1 <= priority <= 99:
                raise BenchError('priority must be between 1 and 99 for policy %s, got %s' % (policy, priority))
        elif priority not in (None, 0):
            raise BenchError('priority applies only to the fifo and rr policies (got priority %s with policy %s)'
                             % (priority, policy or 'unset'))
        elif policy:
            opts['priority'] = 0
        validate_slice(opts.get('slice'))
        validate_slice(opts.get('load_slice'), 'load_slice')
        opts['cgroup'] = validate_cgroup(opts.get('cgroup'))
        opts['load_cgroup'] = validate_cgroup(opts.get('load_cgroup'), 'load_cgroup')
        opts['cpu_ids'] = validate_cpus(opts['cpus']) if opts.get('cpus') else None
        tool = opts.get('tool') or 'agent'
        if tool == 'fio':
            self._validate_fio()
        elif tool == 'cyclictest':
            self._validate_cyclictest()
        elif tool == 'endpoint':
            from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import validate_endpoint
            validate_endpoint(opts.get('endpoint'))

    def _validate_fio(self):
        fio = self.options.get('fio') or {}
        path = fio.get('path')
        if not path:
            raise BenchError('tool fio needs fio.path, a regular file or a block device to read')
        if not shutil.which('fio'):
            raise BenchError('tool fio was asked for, but fio is not installed (not on PATH)')
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise BenchError('fio.path %s: %s' % (path, os.strerror(exc.errno)))
        import stat
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            raise BenchError('fio.path %s is neither a regular file nor a block device' % path)
        if stat.S_ISREG(mode) and os.path.getsize(path) < 4096:
            raise BenchError('fio.path %s is smaller than one 4 KiB block; give a file of some size' % path)
        if fio.get('rw', 'randread') != 'randread' and not fio.get('allow_write'):
            raise BenchError('fio.rw %s writes to %s; set fio.allow_write: true to allow that (it destroys the data on '
                             'a block device)' % (fio.get('rw'), path))

    def _validate_cyclictest(self):
        if not shutil.which('cyclictest'):
            raise BenchError('tool cyclictest was asked for, but cyclictest is not installed (package rt-tests)')
        settings = self.options.get('cyclictest') or {}
        interval = settings.get('interval_us') or 1000
        histogram = settings.get('histogram_us') or 10000
        if not 50 <= interval <= 1000000:
            raise BenchError('cyclictest.interval_us must be between 50 and 1000000, got %s' % interval)
        if not 10 <= histogram <= 1000000:
            raise BenchError('cyclictest.histogram_us must be between 10 and 1000000, got %s' % histogram)

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def run(self):
        self.validate()
        opts = self.options
        tool = opts.get('tool') or 'agent'
        results = {'tool': tool, 'workload': opts.get('workload') if tool == 'agent' else None,
                   'condition': opts.get('condition'), 'parameters': self.parameters(), 'runs': [],
                   'summary': None, 'host': host_info(), 'placement': None, 'pids': {'started': [], 'remaining': []},
                   'warnings': self.warnings}
        self.scratch = tempfile.mkdtemp(prefix='aitune-bench-')
        self.processes = ProcessSet(self.scratch)
        failure = None
        try:
            with TerminationGuard():
                self._run(results)
        except BenchError as exc:
            failure = str(exc)
        except TerminationGuard.Terminated as exc:
            failure = 'the benchmark was interrupted: %s' % exc
        except KeyboardInterrupt:
            failure = 'the benchmark was interrupted'
        finally:
            self.processes.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            results['pids'] = {'started': self.processes.started(), 'remaining': self.processes.remaining()}
            results['placement'] = {
                'workers': self.workers_placement.report() if self.workers_placement else None,
                'load': self.load_placement.report() if self.load_placement else None}
        if results['pids']['remaining']:
            failure = (failure + '; ' if failure else '') + 'processes still running after cleanup: %s' % (
                results['pids']['remaining'],)
        if failure:
            raise BenchError(failure, results)
        return results

    def parameters(self):
        opts = self.options
        keys = ('tool', 'workload', 'condition', 'workers', 'compute_us', 'duration_s', 'warmup_s', 'repetitions',
                'rate_hz', 'load_fraction', 'policy', 'priority', 'timer_slack_ns', 'cpus')
        params = {key: opts.get(key) for key in keys}
        params['primitive'] = self.primitive() if params['tool'] in (None, 'agent') else None
        for name in ('cyclictest', 'fio'):
            if params['tool'] == name and opts.get(name):
                params[name] = dict(opts[name])
        if params['tool'] == 'endpoint' and opts.get('endpoint'):
            params['endpoint'] = {key: value for key, value in opts['endpoint'].items() if key != 'api_key'}
        return params

    def primitive(self):
        if (self.options.get('workload') or 'ring') == 'periodic':
            return 'pipe'
        return 'eventfd' if hasattr(os, 'eventfd') else 'pipe'

    def _run(self, results):
        opts = self.options
        tool = results['tool']
        self.workers_placement = Placement('workers', opts.get('placement_required', True), self.warnings)
        self.load_placement = Placement('load', opts.get('placement_required', True), self.warnings)
        if tool != 'endpoint':
            # The endpoint client runs inside this process; there is nothing to place.
            self.workers_placement.resolve(opts.get('slice'), opts.get('cgroup'), self.processes, self.python)
        if tool == 'agent':
            if opts.get('timer_slack_ns') is not None:
                self.workers_placement.applied['timer_slack_ns'] = opts['timer_slack_ns']
            calibration_path = opts.get('calibration_file') or default_calibration_file()
            results['host']['calibration'] = spin_calibration(
                self.processes, self.python, calibration_path, opts.get('recalibrate'), not self.check_mode,
                self.warnings)
            self.iterations = max(1, int(round(results['host']['calibration']['iterations_per_us'] * opts['compute_us'])))
            results['parameters']['iterations'] = self.iterations
            if opts.get('workload') == 'periodic':
                capacity = opts['workers'] * 1e6 / opts['compute_us']
                if opts['rate_hz'] > capacity:
                    self.warnings.append('rate_hz %s offers more work than %d workers of %d us can do (%.0f/s); the '
                                         'wake latency will include a growing backlog' % (
                                             opts['rate_hz'], opts['workers'], opts['compute_us'], capacity))
        else:
            self._note_unused_settings(tool)
        if opts.get('condition') == 'load':
            self.load_placement.resolve(opts.get('load_slice'), opts.get('load_cgroup'), self.processes, self.python)
            self.start_hogs()
        runner = {'agent': self.agent_repetition, 'cyclictest': self.cyclictest_repetition,
                  'fio': self.fio_repetition, 'endpoint': self.endpoint_repetition}[tool]
        for repetition in range(1, opts['repetitions'] + 1):
            run = runner(repetition)
            run['repetition'] = repetition
            results['runs'].append(run)
        primary = {'agent': 'wake', 'cyclictest': 'latency', 'fio': 'io', 'endpoint': 'ttft'}[tool]
        results['summary'] = summarize_runs(results['runs'], primary)

    def _note_unused_settings(self, tool):
        opts = self.options
        unused = [name for name in ('timer_slack_ns',) if opts.get(name) is not None]
        if tool in ('fio', 'endpoint'):
            unused += [name for name in ('policy',) if opts.get(name)]
        if tool == 'endpoint':
            unused += [name for name in ('slice', 'cgroup', 'cpus') if opts.get(name)]
        for name in unused:
            self.warnings.append('%s does not apply to tool %s and was not used' % (name, tool))

    def start_hogs(self):
        count = max(1, int(len(online_cpus()) * self.options.get('load_fraction', 1.0) + 0.5))
        for _index in range(count):
            child = self.processes.start(self.load_placement.prefix + [self.python, '-c', HOG_SOURCE], 'load')
            self.load_placement.place(child)
            child.send(None)
            self.hogs.append(child)
        # Let the hogs reach every CPU before the first window.
        time.sleep(0.2)
        for child in self.hogs:
            if child.proc.poll() is not None:
                raise BenchError('a CPU hog (PID %d) exited at once (rc=%s)%s' % (
                    child.pid, child.proc.returncode, child.stderr_tail(prefix=': ')))
        self.load_placement.applied['hogs'] = count

    def cgroup_pressure_path(self, pid):
        if self.workers_placement.method == 'cgroup.procs':
            path = os.path.join(self.workers_placement.cgroup, 'cpu.pressure')
            if os.path.exists(path):
                return path
        mount = cgroup2_mount()
        relative = parse_cgroup_v2_path(read_text('/proc/%d/cgroup' % pid))
        if mount and relative and relative != '/':
            path = os.path.join(mount, relative.lstrip('/'), 'cpu.pressure')
            if os.path.exists(path):
                return path
        return None

    # -- the agent workload -------------------------------------------------------------------------------------------

    def worker_settings(self):
        opts = self.options
        return {'timer_slack_ns': opts.get('timer_slack_ns'), 'cpus': opts.get('cpu_ids'),
                'policy': opts.get('policy'), 'priority': opts.get('priority')}

    def start_worker(self, role, config, pass_fds):
        child = self.processes.start(self.workers_placement.prefix + [self.python, '-c', WORKER_SOURCE], role,
                                     pass_fds=pass_fds)
        self.workers_placement.place(child)
        if not child.send(config):
            raise BenchError('%s (PID %d) exited before it got its settings%s' % (
                role, child.pid, child.stderr_tail(prefix=': ')))
        return child

    def check_ready(self, child, deadline):
        message = child.read_message(deadline, 'starting')
        for name, error in sorted((message.get('errors') or {}).items()):
            self.workers_placement.skip(name, '%s (PID %d): %s' % (child.role, child.pid, error))
        for name, value in (message.get('applied') or {}).items():
            self.workers_placement.applied[name] = format_cpu_list(value) if name == 'cpus' else value
        return message

    def make_channels(self, count, periodic):
        """(read fd, write fd) per worker: an eventfd (one fd for both ends) for the ring where Python has it,
        pipes otherwise."""
        channels = []
        for _index in range(count):
            if not periodic and hasattr(os, 'eventfd'):
                fd = os.eventfd(0)
                channels.append((fd, fd))
            else:
                channels.append(os.pipe())
        return channels

    def agent_repetition(self, repetition):
        opts = self.options
        periodic = opts.get('workload') == 'periodic'
        count = opts['workers']
        channels = self.make_channels(count, periodic)
        fds = sorted({fd for pair in channels for fd in pair})
        samples_dir = tempfile.mkdtemp(prefix='rep%d-' % repetition, dir=self.scratch)
        workers, dispatcher = [], None
        finished = False
        started_at = utc_now()
        try:
            for index in range(count):
                config = dict(self.worker_settings(), role='periodic' if periodic else 'ring',
                              in_fd=channels[index][0], out_fd=channels[(index + 1) % count][1],
                              iterations=self.iterations, samples=os.path.join(samples_dir, 'w%d' % index))
                workers.append(self.start_worker('worker', config, fds))
            if periodic:
                config = dict(self.worker_settings(), role='dispatcher', out_fds=[pair[1] for pair in channels],
                              rate_hz=opts['rate_hz'], samples=os.path.join(samples_dir, 'dispatcher'))
                dispatcher = self.start_worker('dispatcher', config, fds)
            deadline = time.monotonic() + 60
            for child in workers + ([dispatcher] if dispatcher else []):
                self.check_ready(child, deadline)
            pids = [child.pid for child in workers]
            pressure = self.cgroup_pressure_path(pids[0])
            start_ns = time.monotonic_ns() + 20000000
            measure_from = start_ns + int(opts['warmup_s'] * 1e9)
            stop_at = measure_from + int(opts['duration_s'] * 1e9)
            go = {'go': True, 'start_ns': start_ns, 'measure_from_ns': measure_from, 'stop_at_ns': stop_at}
            for child in workers + ([dispatcher] if dispatcher else []):
                child.send(go)
            if not periodic:
                sleep_until_ns(start_ns)
                token = time.monotonic_ns()
                os.write(channels[0][1], token.to_bytes(8, sys.byteorder))
            gpu = GpuSampler(self.processes, opts.get('gpu_sample_interval_s'))
            sleep_until_ns(measure_from)
            before = host_snapshot(pids, pressure)
            gpu.start()
            try:
                sleep_until_ns(stop_at)
                after = host_snapshot(pids, pressure)
            finally:
                gpu.stop()
            # A step may be in its compute when the window closes, so allow for the longest step and a slow host.
            done_deadline = time.monotonic() + 30 + opts['compute_us'] * count / 1e6
            done = {}
            for child in workers + ([dispatcher] if dispatcher else []):
                done[child.pid] = child.read_message(done_deadline, 'finishing the run')
            finished = True
        finally:
            for fd in fds:
                os.close(fd)
            # Finished workers exit as soon as their stdin closes; on any other way out they are killed at once.
            for child in workers + ([dispatcher] if dispatcher else []):
                self.processes.stop(child, grace_s=2.0 if finished else 0)
        wake, step = array('q'), array('q')
        for index in range(count):
            wake.extend(load_samples(os.path.join(samples_dir, 'w%d.wake' % index)))
            step.extend(load_samples(os.path.join(samples_dir, 'w%d.step' % index)))
        window_s = (stop_at - measure_from) / 1e9
        steps = len(wake)
        metrics = latency_summary(wake, 'wake')
        step_summary = latency_summary(step, 'step')
        metrics['step_p50_us'] = step_summary['step_p50_us']
        metrics['step_p99_us'] = step_summary['step_p99_us']
        metrics['steps'] = steps
        metrics['steps_per_s'] = round(steps / window_s, 2)
        if periodic:
            lateness = load_samples(os.path.join(samples_dir, 'dispatcher.lateness'))
            late = latency_summary(lateness, 'timer_lateness')
            metrics['timer_lateness_p50_us'] = late['timer_lateness_p50_us']
            metrics['timer_lateness_p99_us'] = late['timer_lateness_p99_us']
            info = done[dispatcher.pid]
            metrics['posted'] = info.get('posted')
            metrics['missed_posts'] = info.get('missed')
        metrics.update(counter_metrics(before, after, steps))
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        shutil.rmtree(samples_dir, ignore_errors=True)
        if steps == 0:
            self.warnings.append('repetition %d recorded no step in its %.1f s window' % (repetition, window_s))
        return {'started_at': started_at, 'window_s': window_s, 'metrics': metrics,
                'distribution': distribution(wake, 'wake_us'), 'gpu': gpu_report,
                'cgroup_pressure_file': pressure}

    # -- external tools -----------------------------------------------------------------------------------------------

    def run_tool(self, argv, role, timeout_s, what):
        """Run an external tool under the workers' placement and return its stdout, with the host counters taken
        around it."""
        child = self.processes.start(self.workers_placement.prefix + argv, role)
        self.workers_placement.place(child)
        child.close_stdin()
        gpu = GpuSampler(self.processes, self.options.get('gpu_sample_interval_s'))
        pressure = self.cgroup_pressure_path(child.pid)
        before = host_snapshot((), pressure)
        gpu.start()
        chunks = []
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    line = child.channel.read_line(deadline)
                except TimeoutError:
                    raise BenchError('%s did not finish within %d s; it was killed' % (what, timeout_s))
                if line is None:
                    break
                chunks.append(line)
            child.proc.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            gpu.stop()
            after = host_snapshot((), pressure)
            self.processes.stop(child, grace_s=0)
        if child.proc.returncode != 0:
            raise BenchError('%s failed (rc=%s)%s' % (what, child.proc.returncode, child.stderr_tail(prefix=': ')))
        metrics = system_metrics(before, after)
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        return '\n'.join(chunks), metrics, gpu_report, child

    def cyclictest_repetition(self, repetition):
        opts = self.options
        argv = cyclictest_argv(shutil.which('cyclictest'), opts)
        started_at = utc_now()
        duration = max(1, int(math.ceil(opts['duration_s'])))
        output, metrics, gpu_report, child = self.run_tool(argv, 'cyclictest', duration + 60, 'cyclictest')
        parsed = parse_cyclictest(output)
        if not parsed['total']:
            raise BenchError('cyclictest reported no sample%s' % child.stderr_tail(prefix=': '))
        metrics.update(parsed['metrics'])
        return {'started_at': started_at, 'window_s': float(duration), 'metrics': metrics,
                'distribution': parsed['distribution'], 'gpu': gpu_report, 'argv': argv}

    def fio_repetition(self, repetition):
        opts = self.options
        argv = fio_argv(shutil.which('fio'), opts)
        started_at = utc_now()
        timeout = opts['duration_s'] + opts['warmup_s'] + 120
        output, metrics, gpu_report, _child = self.run_tool(argv, 'fio', timeout, 'fio')
        metrics.update(parse_fio(output, (opts.get('fio') or {}).get('rw') or 'randread'))
        return {'started_at': started_at, 'window_s': float(opts['duration_s']), 'metrics': metrics, 'gpu': gpu_report,
                'argv': argv}

    def endpoint_repetition(self, repetition):
        from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import run_endpoint
        opts = self.options
        gpu = GpuSampler(self.processes, opts.get('gpu_sample_interval_s'))
        before = host_snapshot()
        started_at = utc_now()
        gpu.start()
        try:
            outcome = run_endpoint(opts['endpoint'], opts['duration_s'])
        finally:
            gpu.stop()
        after = host_snapshot()
        metrics = system_metrics(before, after)
        metrics.update(outcome['metrics'])
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        for message in outcome.get('warnings', []):
            if message not in self.warnings:
                self.warnings.append(message)
        return {'started_at': started_at, 'window_s': outcome['window_s'], 'metrics': metrics,
                'distribution': outcome['distribution'], 'gpu': gpu_report, 'requests': outcome['requests']}


# ---------------------------------------------------------------------------------------------------------------------
# cyclictest and fio

def cyclictest_argv(binary, opts):
    """cyclictest's arguments. --default-system keeps it from holding /dev/cpu_dma_latency at 0 (which would
    measure PM QoS instead of the host as tuned), and -p is passed only with an RT policy, because
    ``--policy=other -p 0`` silently runs SCHED_FIFO."""
    settings = opts.get('cyclictest') or {}
    threads = settings.get('threads') or opts.get('workers') or 1
    argv = [binary, '--default-system', '--quiet', '--duration=%d' % max(1, int(math.ceil(opts['duration_s']))),
            '--interval=%d' % (settings.get('interval_us') or 1000), '--threads=%d' % threads,
            '--histogram=%d' % (settings.get('histogram_us') or 10000)]
    policy = opts.get('policy')
    if policy in ('fifo', 'rr'):
        argv += ['--policy=%s' % policy, '--priority=%d' % opts.get('priority', 1)]
    elif policy:
        argv.append('--policy=%s' % policy)
    else:
        argv.append('--policy=other')
    if opts.get('cpu_ids'):
        argv.append('--affinity=%s' % format_cpu_list(opts['cpu_ids']))
    return argv


def parse_cyclictest(text):
    """Percentiles from cyclictest's ``--histogram`` output (one column per thread, one row per microsecond), merged
    over its threads. A percentile that falls among the overflows (beyond the histogram) is reported as the largest
    maximum latency, which is an upper bound, and counted in ``overflows``."""
    counts = {}
    overflows = 0
    maxima = []
    minima = []
    averages = []
    total = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line[0].isdigit():
            fields = line.split()
            try:
                bucket = int(fields[0])
                counts[bucket] = counts.get(bucket, 0) + sum(int(v) for v in fields[1:])
            except ValueError:
                continue
        elif line.startswith('# Max Latencies:'):
            maxima = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Min Latencies:'):
            minima = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Avg Latencies:'):
            averages = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Histogram Overflows:'):
            overflows = sum(int(v) for v in line.split(':', 1)[1].split())
    total = sum(counts.values()) + overflows
    maximum = max(maxima) if maxima else (max(counts) if counts else None)

    def quantile(q):
        if not total:
            return None
        target = q / 100.0 * total
        seen = 0
        for bucket in sorted(counts):
            seen += counts[bucket]
            if seen >= target and counts[bucket]:
                return float(bucket)
        return float(maximum) if maximum is not None else None

    metrics = {
        'latency_p50_us': quantile(50), 'latency_p90_us': quantile(90), 'latency_p99_us': quantile(99),
        'latency_p999_us': quantile(99.9), 'latency_max_us': float(maximum) if maximum is not None else None,
        'latency_min_us': float(min(minima)) if minima else None,
        'latency_mean_us': round(sum(averages) / len(averages), 2) if averages else None,
        'overflows': overflows, 'samples': total,
    }
    values = [quantile(q) if q < 100 else metrics['latency_max_us'] for q in DISTRIBUTION_QUANTILES]
    return {'metrics': metrics, 'total': total,
            'distribution': {'metric': 'latency_us', 'quantiles': list(DISTRIBUTION_QUANTILES), 'values': values}}


def fio_argv(binary, opts):
    """4 KiB random I/O at queue depth 1. Reads pass --readonly, which makes fio itself refuse any write."""
    settings = opts.get('fio') or {}
    rw = settings.get('rw') or 'randread'
    # fio splits --filename at ':'; a literal colon must be escaped.
    filename = settings['path'].replace(':', '\\:')
    argv = [binary, '--name=aitune-bench', '--filename=%s' % filename, '--rw=%s' % rw, '--bs=4k', '--iodepth=1',
            '--numjobs=1', '--ioengine=%s' % (settings.get('ioengine') or 'psync'),
            '--direct=%d' % (1 if settings.get('direct', True) else 0), '--time_based',
            '--runtime=%dms' % int(opts['duration_s'] * 1000), '--output-format=json']
    if opts.get('warmup_s'):
        argv.append('--ramp_time=%dms' % int(opts['warmup_s'] * 1000))
    if rw == 'randread':
        argv.append('--readonly')
    if opts.get('cpu_ids'):
        argv.append('--cpus_allowed=%s' % format_cpu_list(opts['cpu_ids']))
    return argv


def parse_fio(text, rw):
    start = text.find('{')
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not data or not data.get('jobs'):
        raise BenchError('fio printed no JSON result: %s' % text[:400])
    job = data['jobs'][0]
    if job.get('error'):
        raise BenchError('fio reported error %s' % job['error'])
    side = job['write'] if rw.endswith('write') else job['read']
    percentiles = (side.get('clat_ns') or {}).get('percentile') or {}

    def at(q):
        for key, value in percentiles.items():
            if abs(float(key) - q) < 1e-6:
                return round(value / 1000.0, 3)
        return None

    clat = side.get('clat_ns') or {}
    return {'io_p50_us': at(50), 'io_p90_us': at(90), 'io_p99_us': at(99), 'io_p999_us': at(99.9),
            'io_max_us': round(clat['max'] / 1000.0, 3) if 'max' in clat else None,
            'io_mean_us': round(clat['mean'] / 1000.0, 3) if 'mean' in clat else None,
            'iops': round(side.get('iops', 0.0), 1)}


def run_benchmark(options, check_mode=False):
    """Validate, run and clean up; returns the results dict or raises BenchError (whose ``results`` holds what was
    measured and the PID report)."""
    return Bench(dict(options), check_mode=check_mode).run()
