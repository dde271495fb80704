#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: bench_report
short_description: Turn latency_bench results of several arms and hosts into JSON, Markdown and HTML reports
version_added: 0.1.0
description:
  - Takes the results of M(aitune.kernel.latency_bench) runs, grouped by host and labelled by arm (for example
    V(stock) and V(balanced)), and writes C(report.json), C(report.md) and C(report.html) into a new directory
    C(<output_dir>/<timestamp>/).
  - Arms are compared within a scenario, which is the workload (or tool) and the condition, such as C(ring/load).
    Every label other than O(baseline_label) is compared with the baseline. Before and After are the medians of the
    arms' own medians, with their min and max. Delta is the median of the paired ratios (After / Before of the same
    interleaved pair) with min and max. Per-pair ratios cancel the slow drift of a shared machine, which the
    difference of two medians would not.
  - A ratio is stated as a change, with its percent, only when it rests on at least 5 pairs that all moved the same
    way (every paired ratio below 1, or every one above). With fewer pairs the ratio is marked as noise, with how many
    pairs it rests on and how many it needs; where the pairs disagree it is marked as no effect, with how many pairs
    were lower.
    Only stated changes are coloured in the HTML; noise and no effect are grey.
  - A scenario is noisy when an arm's p50 varied a lot over its repetitions (coefficient of variation of 0.3 or
    more), when an idle arm ran while something else kept the CPUs busy (host CPU pressure of 20 % or more), or when
    the hypervisor stole 5 % or more of the CPU time. The summary, report.md and report.html then name the arm and the
    figure, and the scenario's ratios need 7 agreeing pairs instead of 5.
  - The fleet table gives, per metric, the median over the hosts of their median ratios, with the min and max
    across hosts.
  - The HTML page is self-contained. Its charts are inline SVG drawn with matplotlib, with no scripts and nothing
    loaded from the network. They show the latency distribution of every arm per host and scenario, and the per-host
    ratio bars of the key metrics.
  - With O(gate=true), also evaluates the regression gate and states its verdict. For each host, scenario of
    condition O(gate_condition) and tuned label, the tuned arm counts as regressed only when O(gate_metric) is worse
    than the baseline by more than the factor O(gate_threshold) in every interleaved pair. Without O(gate) the report
    says nothing about a gate.
  - Meant for the controller. Run it with C(delegate_to=localhost), C(run_once=true) and
    C(ansible_python_interpreter) set to C({{ ansible_playbook_python }}), where matplotlib is installed.
requirements:
  - matplotlib (for O(charts=true))
author:
  - aitune.kernel maintainers (@aitune)
options:
  results:
    description:
      - The arms per host, as a dict that maps each host name to a list of arms.
      - An arm is the result registered from M(aitune.kernel.latency_bench) (or just its C(benchmark) value), with
        two keys added. C(label) (required) names the configuration, such as V(stock), V(balanced) or V(aggressive).
        C(pair) (an integer) numbers the interleaved pair the arm belongs to; arms of one pair ran back to back.
      - From the rest of the arm the module reads C(tool), C(workload), C(condition), C(summary.metrics) (each
        metric's C(median), C(min) and C(max)) and C(summary.distribution). C(summary.cv_p50) and the metrics
        C(psi_cpu_some_pct) and C(steal_pct) tell whether the arm was noisy. Everything is kept in C(report.json).
      - Arms without C(pair) are numbered in the order given within their scenario and label, so the n-th baseline
        arm pairs with the n-th tuned arm.
    type: dict
    required: true
  output_dir:
    description:
      - Directory under which the report directory C(<timestamp>) is created, such as C(reports).
    type: path
    required: true
  title:
    description:
      - Title of the report.
    type: str
    default: Kernel tuning benchmark
  baseline_label:
    description:
      - The label of the untuned arms that every other label is compared with.
    type: str
    default: stock
  timestamp:
    description:
      - Name of the report directory. Defaults to the current UTC time as C(YYYYmmddTHHMMSSZ). Letters, digits,
        C(.), C(_) and C(-) only.
    type: str
  gate:
    description:
      - Evaluate the regression gate (O(gate_metric), O(gate_condition), O(gate_threshold)) and state its verdict in
        the report and in each host's summary lines.
      - With V(false) no gate is evaluated, the report and the summary say nothing about one, and RV(gate) has
        C(requested=false) and C(evaluated=false).
    type: bool
    default: false
  gate_metric:
    description:
      - Metric the regression gate checks, as named in latency_bench's C(summary.metrics).
    type: str
    default: wake_p99_us
  gate_condition:
    description:
      - Condition (V(idle) or V(load)) of the scenarios the gate checks.
    type: str
    default: load
  gate_threshold:
    description:
      - Factor by which the tuned arm must be worse than the baseline, in every pair, to count as regressed. V(1.10)
        means more than 10 % worse. For rates such as C(steps_per_s), worse means lower.
    type: float
    default: 1.10
  charts:
    description:
      - Draw the SVG charts into the HTML page. Needs matplotlib on the controller. With V(false) the page has the
        tables only.
    type: bool
    default: true
attributes:
  check_mode:
    description: In check mode the report is computed and returned but no file is written.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  platform:
    description: Runs on the controller.
    support: full
    platforms: posix
seealso:
  - module: aitune.kernel.latency_bench
'''

EXAMPLES = r'''
# Interleaved arms: the tune play runs stock and balanced back to back, five times, and after each
# latency_bench call appends "{{ bench.benchmark | combine({'label': arm, 'pair': pair}) }}" to the host's
# fact aitune_bench_arms.
- name: Write the report on the controller
  aitune.kernel.bench_report:
    results: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'aitune_bench_arms'))) }}"
    output_dir: "{{ playbook_dir }}/reports"
    title: Balanced mode on the inference fleet
    gate: true
  delegate_to: localhost
  run_once: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: report

- name: Stop the rollout when loaded wake p99 regressed in every pair
  ansible.builtin.assert:
    that: not report.gate.regressed
    fail_msg: "{{ report.gate.reason }}"
'''

RETURN = r'''
report_dir:
  description: The directory the report was written to (or would be, in check mode).
  returned: always
  type: str
  sample: reports/20261123T093842Z
files:
  description: Paths of C(json), C(md) and C(html).
  returned: always
  type: dict
  sample: {json: reports/20261123T093842Z/report.json, md: reports/20261123T093842Z/report.md,
           html: reports/20261123T093842Z/report.html}
gate:
  description:
    - The regression gate. C(requested) is the O(gate) option; without it nothing is evaluated, C(evaluated) and
      C(regressed) are false and C(checks) is empty.
    - C(regressed) is true when any host, scenario of the gate condition and tuned label was worse
      by more than C(threshold) in every pair. C(evaluated) is false when no pair had the metric.
    - C(checks) lists each host, scenario and label with its C(ratios), C(worse) per pair and C(regressed).
  returned: always
  type: dict
  sample: {requested: true, metric: wake_p99_us, condition: load, threshold: 1.1, evaluated: true, regressed: false,
           reason: no host is worse by more than x1.10 in every pair, checks: []}
hosts:
  description:
    - Per host and scenario, each label's metrics (C(median), C(min), C(max) over its arms) and the comparisons with
      the baseline (C(pairs), and per metric C(before), C(after), C(ratio) with C(median), C(min), C(max), C(n), and
      C(delta_pct)).
    - Each metric's C(verdict) says what the ratio shows. C(effect) is V(better) or V(worse) when enough pairs
      (C(needed)) all moved the same way, V(noise) when there are fewer pairs, and V(no effect) when they disagree.
      C(pairs), C(lower) and C(higher) count the pairs, C(reason) explains noise and no effect.
    - Each scenario's C(noise) lists why it counts as noisy (for example V(CPU pressure 99.98 % during stock)), or is
      empty.
  returned: always
  type: dict
fleet:
  description: Per scenario, tuned label and metric, the C(hosts), the median C(before) and C(after), the C(ratio)
    statistics over the hosts' median ratios, and a C(verdict) as in RV(hosts). The fleet's figure is a change only
    when every host's is, in the same direction; otherwise it is V(no effect) when hosts disagree, else V(noise).
  returned: always
  type: dict
summary:
  description:
    - Per host, short lines for a play's output. One line per scenario and tuned label gives the key metrics
      before and after and the median paired ratio. A stated change adds [min-max] and its percent; otherwise the
      ratio is marked as noise or no effect, with the reason.
    - A line starting C(noisy:) follows each noisy scenario. With O(gate=true) a line gives the gate's verdict for
      the host. A last line gives the p50 coefficient of variation of each arm, per round.
  returned: always
  type: dict
  sample: {gpu1: ['ring/idle balanced vs stock, 1 pair(s): wake_p50_us 26.1 -> 15.63 x0.599 (noise: 1 pair, 7 needed
                  on a noisy host)',
                  'noisy: ring/idle: p50 CV 0.61 during stock; CPU pressure 99.98 % during stock: treat its ratios as
                  noise unless 7 or more pairs agree',
                  'ring/load balanced vs stock, 5 pair(s): wake_p99_us 3904 -> 25.4 x0.00651 [0.00633-0.00732]
                  (-99.3 %)',
                  'p50 coefficient of variation over the repetitions, per round: ring/load stock 0.02/0.03']}
'''

import datetime
import html
import io
import json
import math
import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aitune.kernel.plugins.module_utils._bench import (
    HIGHER_IS_BETTER, arm_metrics, compare_fleet, compare_host, gate_hosts, ratio, scenario_of)

try:
    import matplotlib
    HAS_MATPLOTLIB = True
    MATPLOTLIB_IMPORT_ERROR = None
except ImportError:
    HAS_MATPLOTLIB = False
    MATPLOTLIB_IMPORT_ERROR = traceback.format_exc()

NESTED_KEYS = ('benchmark', 'results', 'ansible_module_results')
TIMESTAMP = re.compile(r'^[A-Za-z0-9._-]{1,64}$')
LABEL = re.compile(r'^[A-Za-z0-9._:+-]{1,64}$')

# Metrics in the tables, in this order; report.json has all of them.
TABLE_METRICS = (
    ('wake_p50_us', 'wake p50'), ('wake_p90_us', 'wake p90'), ('wake_p99_us', 'wake p99'),
    ('wake_p999_us', 'wake p99.9'), ('wake_max_us', 'wake max'), ('step_p99_us', 'step p99'),
    ('steps_per_s', 'steps/s'), ('runq_delay_per_step_us', 'run-queue delay per step'),
    ('vcsw_per_1k_steps', 'voluntary switches per 1k steps'),
    ('ivcsw_per_1k_steps', 'involuntary switches per 1k steps'),
    ('timer_lateness_p50_us', 'timer lateness p50'), ('timer_lateness_p99_us', 'timer lateness p99'),
    ('latency_p50_us', 'cyclictest p50'), ('latency_p99_us', 'cyclictest p99'),
    ('latency_p999_us', 'cyclictest p99.9'), ('latency_max_us', 'cyclictest max'),
    ('io_p50_us', '4k read p50'), ('io_p99_us', '4k read p99'), ('io_p999_us', '4k read p99.9'), ('iops', 'IOPS'),
    ('ttft_p50_ms', 'TTFT p50'), ('ttft_p95_ms', 'TTFT p95'), ('ttft_p99_ms', 'TTFT p99'),
    ('itl_p50_ms', 'inter-token p50'), ('itl_p99_ms', 'inter-token p99'), ('request_p50_ms', 'request p50'),
    ('request_p99_ms', 'request p99'), ('tokens_per_s', 'tokens/s'), ('queue_time_mean_ms', 'queue time mean'),
    ('queue_time_p99_ms', 'queue time p99'),
    ('psi_cpu_some_pct', 'CPU pressure (some)'), ('cgroup_psi_cpu_some_pct', 'cgroup CPU pressure (some)'),
    ('steal_pct', 'steal'), ('gpu_util_pct_mean', 'GPU utilisation'), ('gpu_sm_clock_mhz_mean', 'GPU SM clock'),
)
DISPLAY = dict(TABLE_METRICS)
UNITS = (('_us', ' µs'), ('_ms', ' ms'), ('_pct', ' %'), ('_mhz_mean', ' MHz'), ('_per_s', '/s'))
# Ratio bars show these, where an arm has them.
BAR_METRICS = ('wake_p50_us', 'wake_p99_us', 'steps_per_s', 'latency_p99_us', 'io_p99_us', 'ttft_p99_ms',
               'tokens_per_s')
# Where the ratio bars' log axis gets a labelled tick.
RATIO_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# A ratio is stated as a change only over at least this many interleaved pairs that all moved the same way. A mode
# with no effect makes each pair's ratio fall on either side of 1 about as often, so all of 5 pairs agree by chance
# only 2 times in 2^5 (1 in 16); one pair, or the [min-max] of two or three, says nothing.
MIN_PAIRS = 5
# The same where an arm of the scenario was noisy (the thresholds below): with p50 CVs near 0.6 only paired ratios
# over 7 or more rounds say anything (all of 7 agree by chance 1 time in 64).
MIN_PAIRS_NOISY = 7
# p50 coefficient of variation over an arm's repetitions from which p50 says little: a quiet host stays under 0.05,
# a busy one (other VMs, a build) reaches 0.1-0.3 (docs/benchmark.md, "What noise looks like").
NOISY_CV_P50 = 0.3
# Host CPU pressure (PSI "some": the share of the window in which some task waited for a CPU) from which an idle arm
# shared the CPUs with foreign work. Idle arms only: the idle ring keeps about one worker runnable at a time, so its
# own pressure stays low, while under load the benchmark's own hogs hold pressure near 100 % by design.
NOISY_PSI_PCT = 20.0
# CPU time the hypervisor gave to other guests during the window, from which the host was shared (either condition:
# the benchmark's own hogs run inside the guest, not beside it).
NOISY_STEAL_PCT = 5.0

# Verdicts of a ratio: a change in one direction, stated with its percent, or neither.
BETTER = 'better'
WORSE = 'worse'
NO_EFFECT = 'no effect'
NOISE = 'noise'

CSS = '''
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.better { color: #1a7f37; } .worse { color: #b42318; } .noise { color: #6b6b6b; }
.noisy { background: #f3f3f3; padding: 0.5em; }
.gate-ok { background: #e7f6ec; padding: 0.5em; } .gate-regressed { background: #fdecea; padding: 0.5em; }
figure { margin: 0.5em 0 1.5em; } svg { max-width: 100%; height: auto; }
'''


class ReportError(Exception):
    pass


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
# Formatting

def unit_of(metric):
    for suffix, unit in UNITS:
        if metric.endswith(suffix):
            return unit
    return ''


def fmt_number(value):
    if value is None:
        return 'n/a'
    magnitude = abs(value)
    if magnitude >= 1000:
        return '%.0f' % value
    if magnitude >= 100:
        return '%.1f' % value
    if magnitude >= 1:
        return '%.2f' % value
    return '%.3g' % value


def fmt_value(stats, metric):
    """``3904 µs [3512–4121]`` (median over arms, min and max)."""
    if not stats or stats.get('median') is None:
        return 'n/a'
    text = fmt_number(stats['median']) + unit_of(metric)
    if stats.get('min') is not None and stats['min'] != stats['max']:
        text += ' [%s–%s]' % (fmt_number(stats['min']), fmt_number(stats['max']))
    return text


def fmt_ratio(ratio_stats, delta_pct, verdict):
    """``×0.503 [0.487–0.518] (−49.7 %)`` for a stated change; otherwise the median ratio with what it is, such as
    ``×0.599 — noise: 1 pair, 5 needed`` or ``×0.912 [0.61–1.3] — no effect: pairs disagree (3 of 5 lower)``."""
    if not ratio_stats or ratio_stats.get('median') is None:
        return 'n/a'
    text = '×%s' % fmt_number(ratio_stats['median'])
    if shows_range(ratio_stats, verdict):
        text += ' [%s–%s]' % (fmt_number(ratio_stats['min']), fmt_number(ratio_stats['max']))
    if verdict['effect'] not in (BETTER, WORSE):
        return '%s — %s: %s' % (text, verdict['effect'], verdict['reason'])
    return text + (' (%+.1f %%)' % delta_pct).replace('-', '−')


def shows_range(ratio_stats, verdict):
    """Whether a ratio gets its [min–max]: a range over fewer pairs (or hosts) than a verdict needs looks like an
    interval but is not one."""
    enough = verdict['effect'] in (BETTER, WORSE) or ratio_stats['n'] >= verdict.get('needed', MIN_PAIRS)
    return enough and ratio_stats['min'] != ratio_stats['max']


def direction_class(verdict):
    """The CSS class of a ratio: green or red only for a stated change, grey for noise and no effect."""
    if not verdict or verdict['effect'] is None:
        return ''
    return verdict['effect'] if verdict['effect'] in (BETTER, WORSE) else 'noise'


def plural(count, noun):
    return '%d %s%s' % (count, noun, '' if count == 1 else 's')


def table_rows(metrics):
    """(metric, display name) for the metrics present, in TABLE_METRICS order."""
    return [(metric, name) for metric, name in TABLE_METRICS if metric in metrics]


# ---------------------------------------------------------------------------------------------------------------------
# Report model

def ratio_verdict(metric, ratios, needed):
    """What the paired ratios of one metric show: a change (better or worse, by the metric's direction) only when at
    least ``needed`` pairs all fall on the same side of 1; no effect when they fall on both sides (or on 1); noise
    when they agree over fewer pairs."""
    ratios = [value for value in ratios if value is not None]
    lower = sum(1 for value in ratios if value < 1)
    higher = sum(1 for value in ratios if value > 1)
    verdict = {'effect': None, 'reason': None, 'pairs': len(ratios), 'lower': lower, 'higher': higher,
               'needed': needed}
    if not ratios:
        return verdict
    if lower != len(ratios) and higher != len(ratios):
        verdict.update(effect=NO_EFFECT, reason='pairs disagree (%d of %d lower)' % (lower, len(ratios))
                       if lower or higher else 'equal in every pair')
    elif len(ratios) < needed:
        verdict.update(effect=NOISE, reason='%s, %d needed%s' % (
            plural(len(ratios), 'pair'), needed, ' on a noisy host' if needed > MIN_PAIRS else ''))
    else:
        verdict['effect'] = BETTER if (higher > 0) == (metric in HIGHER_IS_BETTER) else WORSE
    return verdict


def fleet_verdict(host_verdicts):
    """The fleet's figure is a change only where every host's is, in the same direction. Hosts with changes in
    opposite directions make it no effect; so do hosts that all show no effect. Anything else is noise."""
    if not host_verdicts:
        return {'effect': None, 'reason': None, 'hosts': 0}
    directions = {'lower' if verdict['lower'] else 'higher'
                  for verdict in host_verdicts if verdict['effect'] in (BETTER, WORSE)}
    clear = sum(1 for verdict in host_verdicts if verdict['effect'] in (BETTER, WORSE))
    lower = sum(1 for verdict in host_verdicts if verdict['effect'] in (BETTER, WORSE) and verdict['lower'])
    verdict = {'effect': None, 'reason': None, 'hosts': len(host_verdicts)}
    if len(directions) > 1:
        verdict.update(effect=NO_EFFECT, reason='hosts disagree (%d of %d lower)' % (lower, len(host_verdicts)))
    elif clear == len(host_verdicts):
        verdict['effect'] = host_verdicts[0]['effect']
    elif all(host_verdict['effect'] == NO_EFFECT for host_verdict in host_verdicts):
        verdict.update(effect=NO_EFFECT, reason='no host shows one')
    else:
        verdict.update(effect=NOISE, reason='%d of %d hosts without a clear figure' % (
            len(host_verdicts) - clear, len(host_verdicts)))
    return verdict


def noise_findings(arms, condition):
    """Why one host's scenario counts as noisy, one finding per arm label and cause, such as
    ``CPU pressure 99.98 % during stock``; empty for a quiet one. An arm's value is its worst round."""
    by_label = {}
    for arm in arms:
        by_label.setdefault(arm['label'], []).append(arm)
    findings = []
    for label, label_arms in by_label.items():
        cvs = [arm['summary'].get('cv_p50') for arm in label_arms]
        cv = max((value for value in cvs if isinstance(value, (int, float))), default=None)
        if cv is not None and cv >= NOISY_CV_P50:
            findings.append('p50 CV %.2f during %s' % (cv, label))
        checks = [('steal_pct', 'steal', NOISY_STEAL_PCT)]
        if condition == 'idle':
            checks.insert(0, ('psi_cpu_some_pct', 'CPU pressure', NOISY_PSI_PCT))
        for metric, name, threshold in checks:
            values = [arm_metrics(arm).get(metric) for arm in label_arms]
            worst = max((value for value in values if value is not None), default=None)
            if worst is not None and worst >= threshold:
                findings.append('%s %.4g %% during %s' % (name, worst, label))
    return findings


def requested_gate(params, hosts):
    """The gate's outcome when it was asked for; otherwise a gate that says it was not."""
    if not params['gate']:
        return {'requested': False, 'metric': params['gate_metric'], 'condition': params['gate_condition'],
                'threshold': params['gate_threshold'], 'evaluated': False, 'regressed': False,
                'reason': 'no gate was asked for', 'checks': []}
    gate = gate_hosts(hosts, params['gate_metric'], params['gate_condition'], params['gate_threshold'])
    gate['requested'] = True
    return gate


def build_report(params, hosts_arms, generated_at):
    baseline = params['baseline_label']
    warnings = []
    hosts = {}
    for host, arms in sorted(hosts_arms.items()):
        hosts[host] = compare_host(arms, baseline)
        for scenario, data in hosts[host].items():
            if baseline not in data['labels']:
                warnings.append('%s %s has no %s arm; its arms are listed but not compared' % (host, scenario, baseline))
            data['noise'] = noise_findings([arm for arm in arms if scenario_of(arm) == scenario], data['condition'])
            needed = MIN_PAIRS_NOISY if data['noise'] else MIN_PAIRS
            for label, comparison in data['comparisons'].items():
                if not comparison['pairs']:
                    warnings.append('%s %s: no pair index is shared by %s and %s' % (host, scenario, baseline, label))
                for metric, values in comparison['metrics'].items():
                    values['verdict'] = ratio_verdict(metric, [
                        ratio(pair['before'].get(metric), pair['after'].get(metric))
                        for pair in comparison['gate_pairs']], needed)
    fleet = compare_fleet(hosts)
    for scenario, labels in fleet.items():
        for label, metrics in labels.items():
            for metric, values in metrics.items():
                host_verdicts = [hosts[host][scenario]['comparisons'][label]['metrics'][metric]['verdict']
                                 for host in values['hosts']]
                values['verdict'] = fleet_verdict(host_verdicts)
    return {'title': params['title'], 'generated_at': generated_at, 'baseline_label': baseline,
            'hosts': hosts, 'fleet': fleet, 'gate': requested_gate(params, hosts), 'warnings': warnings,
            'arms': hosts_arms}


# The metrics the summary lines show, where a scenario has them.
SUMMARY_METRICS = ('wake_p50_us', 'wake_p99_us', 'wake_p999_us', 'steps_per_s', 'latency_p99_us', 'io_p99_us',
                   'ttft_p99_ms')


def summary_ratio(stats):
    """``x0.00651 [0.00633-0.00732] (-99.3 %)`` for a stated change, ``x0.599 (noise: 1 pair, 5 needed)`` otherwise."""
    ratio_stats, verdict = stats['ratio'], stats['verdict']
    text = 'x%.3g' % ratio_stats['median']
    if shows_range(ratio_stats, verdict):
        text += ' [%.3g-%.3g]' % (ratio_stats['min'], ratio_stats['max'])
    if verdict['effect'] in (BETTER, WORSE):
        return text + ' (%+.1f %%)' % stats['delta_pct']
    return '%s (%s: %s)' % (text, verdict['effect'], verdict['reason'])


def noisy_line(scenario, findings):
    return 'noisy: %s: %s: treat its ratios as noise unless %d or more pairs agree' % (
        scenario, '; '.join(findings), MIN_PAIRS_NOISY)


def gate_heading(gate):
    return 'Gate (%s under %s, x%.2f in every pair)' % (gate['metric'], gate['condition'], gate['threshold'])


def host_gate_line(gate, host):
    """The gate's verdict on one host's checks, for its summary."""
    checks = [check for check in gate['checks'] if check['host'] == host]
    if not checks:
        return '%s: not evaluated on this host, no interleaved pair under condition %s has %s' % (
            gate_heading(gate), gate['condition'], gate['metric'])
    regressed = [check for check in checks if check['regressed']]
    return '%s: %s: %s' % (gate_heading(gate), 'REGRESSED' if regressed else 'passed', '; '.join(
        '%s %s: %s' % (check['scenario'], check['label'], check['reason']) for check in regressed or checks))


def summary_lines(report):
    """{host: [line]}: each scenario's comparisons in one line each and, when it was noisy, why; the gate's verdict
    when a gate was asked for; then the p50 CV of every arm per round."""
    lines = {}
    for host, scenarios in report['hosts'].items():
        lines[host] = []
        for scenario, data in sorted(scenarios.items()):
            for label, comparison in sorted(data['comparisons'].items()):
                parts = []
                for metric in SUMMARY_METRICS:
                    stats = comparison['metrics'].get(metric)
                    if stats and stats['ratio']['median'] is not None:
                        parts.append('%s %.4g -> %.4g %s' % (
                            metric, stats['before']['median'], stats['after']['median'], summary_ratio(stats)))
                lines[host].append('%s %s vs %s, %d pair(s): %s' % (
                    scenario, label, report['baseline_label'], len(comparison['pairs']), ', '.join(parts)))
            if data['noise']:
                lines[host].append(noisy_line(scenario, data['noise']))
        if report['gate']['requested']:
            lines[host].append(host_gate_line(report['gate'], host))
        cvs = {}
        for arm in report['arms'][host]:
            cv = arm['summary'].get('cv_p50')
            if isinstance(cv, (int, float)):
                cvs.setdefault('%s %s' % (scenario_of(arm), arm['label']), []).append('%g' % cv)
        if cvs:
            lines[host].append('p50 coefficient of variation over the repetitions, per round: ' + '; '.join(
                '%s %s' % (key, '/'.join(values)) for key, values in cvs.items()))
    return lines


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
# Markdown

def markdown_table(rows):
    lines = ['| Metric | Before | After | Δ |', '|---|---|---|---|']
    lines += ['| %s |' % ' | '.join(row) for row in rows]
    return '\n'.join(lines)


def comparison_rows(comparison):
    rows = []
    for metric, name in table_rows(comparison['metrics']):
        values = comparison['metrics'][metric]
        rows.append((name, fmt_value(values['before'], metric), fmt_value(values['after'], metric),
                     fmt_ratio(values['ratio'], values['delta_pct'], values['verdict']), values['verdict']))
    return rows


def fleet_rows(metrics):
    rows = []
    for metric, name in table_rows(metrics):
        values = metrics[metric]
        rows.append((name, fmt_value({'median': values['before']}, metric),
                     fmt_value({'median': values['after']}, metric),
                     fmt_ratio(values['ratio'], values['delta_pct'], values['verdict']), values['verdict']))
    return rows


def gate_sentence(gate):
    """The gate's verdict for the report, or None where no gate was asked for."""
    if not gate['requested']:
        return None
    if not gate['evaluated']:
        return '%s: not evaluated, %s.' % (gate_heading(gate), gate['reason'])
    return '%s: %s, %s.' % (gate_heading(gate), 'REGRESSED' if gate['regressed'] else 'passed', gate['reason'])


INTRODUCTION = (
    'Generated %s. Before is the %s arm; Δ is the median of the paired ratios After/Before over the interleaved '
    'pairs. A Δ is a change, given with its [min–max] and percent, only when at least %d pairs (%d where the '
    'scenario was noisy) all moved the same way; otherwise it is marked as noise (too few pairs) or no effect '
    '(pairs disagree).')


def introduction(report, code):
    return INTRODUCTION % (report['generated_at'], code(report['baseline_label']), MIN_PAIRS, MIN_PAIRS_NOISY)


def noisy_sentence(scenario, findings):
    return '%s was noisy: %s. Treat its ratios as noise unless %d or more pairs agree.' % (
        scenario, '; '.join(findings), MIN_PAIRS_NOISY)


def render_markdown(report):
    out = ['# %s' % report['title'], '', introduction(report, lambda text: '`%s`' % text), '']
    if gate_sentence(report['gate']):
        out += [gate_sentence(report['gate']), '']
    if report['fleet'] and len(report['hosts']) > 1:
        out += ['## Fleet', '']
        for scenario, labels in sorted(report['fleet'].items()):
            for label, metrics in labels.items():
                hosts = max((len(v['hosts']) for v in metrics.values()), default=0)
                out += ['### %s: %s vs %s (%s)' % (scenario, label, report['baseline_label'], plural(hosts, 'host')), '',
                        markdown_table([row[:4] for row in fleet_rows(metrics)]), '']
    for host, scenarios in sorted(report['hosts'].items()):
        out += ['## %s' % host, '']
        for scenario, data in sorted(scenarios.items()):
            if not data['comparisons']:
                arms = ', '.join('%s (%d)' % (label, info['arms']) for label, info in data['labels'].items())
                out += ['### %s' % scenario, '', 'Arms: %s; nothing to compare.' % arms, '']
            for label, comparison in data['comparisons'].items():
                pairs = plural(len(comparison['pairs']), 'pair')
                out += ['### %s: %s vs %s (%s)' % (scenario, label, report['baseline_label'], pairs), '',
                        markdown_table([row[:4] for row in comparison_rows(comparison)]), '']
            if data['noise']:
                out += [noisy_sentence(scenario, data['noise']), '']
    if report['warnings']:
        out += ['## Warnings', ''] + ['- %s' % warning for warning in report['warnings']] + ['']
    return '\n'.join(out)


# ---------------------------------------------------------------------------------------------------------------------
# Charts

def nines(q):
    """Percentile to a position where 90, 99 and 99.9 are evenly spaced, so the tail is readable."""
    return -math.log10(max(1e-5, 1 - q / 100.0))


class Charts(object):
    """matplotlib with the Agg backend, each figure returned as an inline <svg> element."""

    def __init__(self):
        matplotlib.use('Agg')
        from matplotlib import pyplot, ticker
        self.pyplot = pyplot
        self.ticker = ticker
        self.count = 0
        matplotlib.rcParams['svg.fonttype'] = 'none'

    def svg(self, figure):
        self.count += 1
        # Inline SVGs share the page's id space; a salt per chart keeps their clip-path ids apart, and a fixed salt
        # keeps the output reproducible.
        matplotlib.rcParams['svg.hashsalt'] = 'aitune-chart-%d' % self.count
        buffer = io.StringIO()
        # No metadata block: it only carries a date (making reports differ for equal data) and RDF namespaces.
        figure.savefig(buffer, format='svg', bbox_inches='tight',
                       metadata={'Date': None, 'Creator': None, 'Format': None, 'Type': None})
        self.pyplot.close(figure)
        text = buffer.getvalue()
        return text[text.index('<svg'):]

    def distribution(self, host, scenario, data, baseline):
        figure, axes = self.pyplot.subplots(figsize=(7.5, 3.6))
        colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b']
        metric = None
        drawn = False
        for number, (label, arms) in enumerate(data['arms'].items()):
            colour = colours[number % len(colours)]
            for index, arm in enumerate(arms):
                dist = (arm.get('summary') or {}).get('distribution')
                if not dist or not dist.get('values'):
                    continue
                points = [(nines(q), v) for q, v in zip(dist['quantiles'], dist['values'])
                          if v is not None and v > 0 and q < 100]
                if not points:
                    continue
                metric = dist.get('metric')
                axes.plot([p[0] for p in points], [p[1] for p in points], color=colour, alpha=0.75,
                          linewidth=1.8 if label == baseline else 1.4, label=label if index == 0 else None)
                drawn = True
        if not drawn:
            self.pyplot.close(figure)
            return None
        ticks = [50, 90, 99, 99.9, 99.99]
        axes.set_xticks([nines(q) for q in ticks])
        axes.set_xticklabels(['p%g' % q for q in ticks])
        axes.set_yscale('log')
        axes.set_ylabel((metric or 'latency').replace('_us', ' (µs)').replace('_ms', ' (ms)'))
        axes.set_title('%s: %s, latency by percentile, one line per arm' % (host, scenario), fontsize=10)
        axes.grid(True, which='both', alpha=0.3)
        axes.legend(fontsize=8)
        return self.svg(figure)

    def ratio_bars(self, scenario, label, baseline, per_host):
        """Horizontal bars of the median paired ratio per host and metric, min–max as error bars, log scale. A ratio
        that is not a change (noise, no effect) is drawn faded and hatched, so it does not read as one."""
        metrics = [m for m in BAR_METRICS if any(m in host_metrics for host_metrics in per_host.values())]
        hosts = sorted(per_host)
        if not metrics or not hosts:
            return None
        figure, axes = self.pyplot.subplots(figsize=(7.5, 0.5 + 0.45 * len(hosts) * len(metrics)))
        height = 0.8 / len(metrics)
        extent = [1.0]
        colours = matplotlib.rcParams['axes.prop_cycle'].by_key()['color']
        for number, metric in enumerate(metrics):
            colour = colours[number % len(colours)]
            bars = {True: ([], []), False: ([], [])}
            ys, widths, low, high = [], [], [], []
            for row, host in enumerate(hosts):
                stats = per_host[host].get(metric)
                if not stats or stats['median'] is None:
                    continue
                ys.append(row + number * height)
                widths.append(stats['median'])
                low.append(stats['median'] - stats['min'])
                high.append(stats['max'] - stats['median'])
                extent.extend(value for value in (stats['min'], stats['max']) if value and value > 0)
                bars[stats['change']][0].append(ys[-1])
                bars[stats['change']][1].append(stats['median'])
            labelled = False
            for change, (bar_ys, bar_widths) in sorted(bars.items(), reverse=True):
                if not bar_ys:
                    continue
                # Bars grow from 1 (no change) towards the ratio, so improvements and regressions point apart.
                axes.barh(bar_ys, [width - 1 for width in bar_widths], height=height, left=1, color=colour,
                          alpha=0.85 if change else 0.3, hatch=None if change else '//', edgecolor=colour,
                          label=None if labelled else DISPLAY.get(metric, metric))
                labelled = True
            if ys:
                axes.errorbar(widths, ys, xerr=[low, high], fmt='none', ecolor='#333', elinewidth=1, capsize=2)
        axes.axvline(1.0, color='#444', linewidth=1)
        axes.set_xscale('log')
        # At least ×0.5 to ×2, so a ratio near 1 does not fill the chart, and ticks at round ratios written as ratios:
        # matplotlib's own labels for a log axis within one decade are minor ticks such as 1.025×10^0, which overlap.
        low_limit, high_limit = min(min(extent) / 1.25, 0.5), max(max(extent) * 1.25, 2.0)
        axes.set_xlim(low_limit, high_limit)
        ticks = [tick for tick in RATIO_TICKS if low_limit <= tick <= high_limit]
        axes.xaxis.set_major_locator(self.ticker.FixedLocator(ticks))
        axes.xaxis.set_major_formatter(self.ticker.FixedFormatter(['\u00d7%g' % tick for tick in ticks]))
        axes.xaxis.set_minor_formatter(self.ticker.NullFormatter())
        axes.set_yticks([row + 0.4 - height / 2 for row in range(len(hosts))])
        axes.set_yticklabels(hosts)
        axes.set_xlabel('%s / %s, median of paired ratios (below 1: lower; faded, hatched: noise or no effect)'
                        % (label, baseline))
        axes.set_title('%s: %s vs %s per host' % (scenario, label, baseline), fontsize=10)
        axes.grid(True, axis='x', which='both', alpha=0.3)
        axes.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1))
        return self.svg(figure)


def draw_charts(report, hosts_arms):
    """{('dist', host, scenario): svg, ('bars', scenario, label): svg}."""
    charts = Charts()
    baseline = report['baseline_label']
    result = {}
    for host, arms in sorted(hosts_arms.items()):
        by_scenario = {}
        for arm in arms:
            by_scenario.setdefault(scenario_of(arm), {}).setdefault(arm['label'], []).append(arm)
        for scenario, labels in sorted(by_scenario.items()):
            ordered = {label: labels[label] for label in sorted(labels, key=lambda name: (name != baseline, name))}
            svg = charts.distribution(host, scenario, {'arms': ordered}, baseline)
            if svg:
                result[('dist', host, scenario)] = svg
    per_label = {}
    for host, scenarios in report['hosts'].items():
        for scenario, data in scenarios.items():
            for label, comparison in data['comparisons'].items():
                per_label.setdefault((scenario, label), {})[host] = {
                    metric: dict(values['ratio'], change=values['verdict']['effect'] in (BETTER, WORSE))
                    for metric, values in comparison['metrics'].items()}
    for (scenario, label), per_host in sorted(per_label.items()):
        svg = charts.ratio_bars(scenario, label, baseline, per_host)
        if svg:
            result[('bars', scenario, label)] = svg
    return result


# ---------------------------------------------------------------------------------------------------------------------
# HTML

def html_table(rows):
    escape = html.escape
    lines = ['<table>', '<tr><th>Metric</th><th>Before</th><th>After</th><th>Δ</th></tr>']
    for name, before, after, delta, verdict in rows:
        css = direction_class(verdict)
        lines.append('<tr><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td></tr>' % (
            escape(name), escape(before), escape(after), ' class="%s"' % css if css else '', escape(delta)))
    lines.append('</table>')
    return '\n'.join(lines)


def render_html(report, charts):
    escape = html.escape
    gate = report['gate']
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<title>%s</title>' % escape(report['title']), '<style>%s</style></head><body>' % CSS,
           '<h1>%s</h1>' % escape(report['title']),
           '<p>%s</p>' % introduction(report, lambda text: '<code>%s</code>' % escape(text))]
    if gate_sentence(gate):
        out.append('<p class="%s">%s</p>' % ('gate-regressed' if gate['regressed'] else 'gate-ok',
                                             escape(gate_sentence(gate))))
    if report['fleet'] and len(report['hosts']) > 1:
        out.append('<h2>Fleet</h2>')
        for scenario, labels in sorted(report['fleet'].items()):
            for label, metrics in labels.items():
                hosts = max((len(v['hosts']) for v in metrics.values()), default=0)
                out.append('<h3>%s: %s vs %s (%s)</h3>' % (
                    escape(scenario), escape(label), escape(report['baseline_label']), plural(hosts, 'host')))
                out.append(html_table(fleet_rows(metrics)))
    for key in sorted(k for k in charts if k[0] == 'bars'):
        out.append('<figure>%s</figure>' % charts[key])
    for host, scenarios in sorted(report['hosts'].items()):
        out.append('<h2>%s</h2>' % escape(host))
        for scenario, data in sorted(scenarios.items()):
            out.append('<h3>%s</h3>' % escape(scenario))
            if not data['comparisons']:
                arms = ', '.join('%s (%d)' % (label, info['arms']) for label, info in data['labels'].items())
                out.append('<p>Arms: %s; nothing to compare.</p>' % escape(arms))
            for label, comparison in data['comparisons'].items():
                out.append('<h4>%s vs %s (%s)</h4>' % (escape(label), escape(report['baseline_label']),
                                                       plural(len(comparison['pairs']), 'pair')))
                out.append(html_table(comparison_rows(comparison)))
            if data['noise']:
                out.append('<p class="noisy">%s</p>' % escape(noisy_sentence(scenario, data['noise'])))
            svg = charts.get(('dist', host, scenario))
            if svg:
                out.append('<figure>%s</figure>' % svg)
    if report['warnings']:
        out.append('<h2>Warnings</h2><ul>%s</ul>' % ''.join('<li>%s</li>' % escape(w) for w in report['warnings']))
    out.append('</body></html>')
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------------------------------------------------------------

def write_file(path, text):
    temporary = path + '.tmp'
    with io.open(temporary, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(temporary, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type='dict', required=True),
            output_dir=dict(type='path', required=True),
            title=dict(type='str', default='Kernel tuning benchmark'),
            baseline_label=dict(type='str', default='stock'),
            timestamp=dict(type='str'),
            gate_metric=dict(type='str', default='wake_p99_us'),
            gate_condition=dict(type='str', default='load'),
            gate_threshold=dict(type='float', default=1.10),
            charts=dict(type='bool', default=True),
            gate=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['charts'] and not HAS_MATPLOTLIB:
        module.fail_json(msg=missing_required_lib('matplotlib'), exception=MATPLOTLIB_IMPORT_ERROR)
    now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = params['timestamp'] or now.strftime('%Y%m%dT%H%M%SZ')
    if not TIMESTAMP.match(timestamp) or timestamp in ('.', '..'):
        module.fail_json(msg='timestamp %r may hold only letters, digits, ".", "_" and "-"' % timestamp)
    if params['gate_threshold'] < 1:
        module.fail_json(msg='gate_threshold is a factor of at least 1 (1.10 means 10 %% worse), got %s'
                         % params['gate_threshold'])
    try:
        hosts_arms = normalise_arms(params['results'])
    except ReportError as exc:
        module.fail_json(msg=str(exc))
    report = build_report(params, hosts_arms, now.strftime('%Y-%m-%dT%H:%M:%SZ'))
    report_dir = os.path.join(params['output_dir'], timestamp)
    files = {kind: os.path.join(report_dir, 'report.' + kind) for kind in ('json', 'md', 'html')}
    public = dict(report, hosts=public_hosts(report['hosts']))
    if not module.check_mode:
        charts = draw_charts(report, hosts_arms) if params['charts'] else {}
        try:
            os.makedirs(report_dir, exist_ok=True)
            write_file(files['json'], json.dumps(public, indent=1, sort_keys=True, default=str) + '\n')
            write_file(files['md'], render_markdown(report))
            write_file(files['html'], render_html(report, charts))
        except (IOError, OSError) as exc:
            module.fail_json(msg='writing the report to %s: %s' % (report_dir, exc))
    for warning in report['warnings']:
        module.warn(warning)
    module.exit_json(changed=True, report_dir=report_dir, files=files, gate=report['gate'],
                     hosts=public['hosts'], fleet=report['fleet'], summary=summary_lines(report))


if __name__ == '__main__':
    main()
