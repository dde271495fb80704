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
  - Arms are compared within a scenario, which is the workload (or tool), the agent worker that ran it and the
    condition, such as C(ring-native/load) or C(ring-python/load); arms of the native and the Python worker never meet
    in one ratio. Every label other than O(baseline_label) is compared with the baseline.
  - Before and After are the medians over the rounds of the arms' own medians, with their coefficient of variation
    (CV) over the rounds.
  - The ratio is the median of the paired ratios (After / Before of the same round), with its 95 % percentile
    bootstrap confidence interval over the rounds (10,000 resamples, seeded with the plan's seed, so the same arms
    always give the same interval). Per-pair ratios cancel the slow drift of a shared machine, which the difference
    of two medians would not. With fewer than 6 pairs no interval is given.
  - The verdict is V(better) or V(worse) (by the metric's direction) only when the interval lies on one side of 1 and
    the exact Wilcoxon signed-rank test of the pairs' log ratios (scipy) agrees at 5 %; it is V(no effect) when the
    interval includes 1, or when the test does not agree. Without an
    interval there is no verdict, and the report says why instead of printing a change. The HTML colours a ratio by
    its verdict, never by its direction.
  - An arm counts as measured under foreign load when processes that are not the benchmark's used 10 % or more of
    the CPU time of its window (C(foreign_cpu_pct)), when the hypervisor stole 5 % or more, or, for an idle arm, when
    CPU pressure reached 20 %. The summary, report.md and report.html name each such arm, its round and the figure.
  - The report ends with the do-no-harm list, every metric a user feels (latencies, rates) that a mode makes worse
    with 95 % confidence, or says there is none.
  - The fleet table gives, per metric, the median over the hosts of their median ratios, with their spread across
    hosts; the fleet's verdict is a change only where every host shows the same one.
  - The HTML page is self-contained. Its charts are inline SVG drawn with matplotlib, with no scripts and nothing
    loaded from the network. They show the latency distribution of every arm per host and scenario, and the per-host
    ratio bars of the key metrics with their intervals.
  - With O(gate=true), also evaluates the canary gate and states its verdict. For each host, scenario of condition
    O(gate_condition) and tuned label, the tuned arm regresses when O(gate_metric) is worse than the baseline by the
    factor O(gate_threshold) with 95 % confidence (the whole interval past it), or when it is worse by more than that
    factor in a majority of the pairs. Without O(gate) the report says nothing about a gate.
  - Meant for the controller. Run it with C(delegate_to=localhost), C(run_once=true) and
    C(ansible_python_interpreter) set to C({{ ansible_playbook_python }}), where matplotlib is installed.
requirements:
  - numpy
  - scipy
  - matplotlib (for O(charts=true))
author:
  - aitune.kernel maintainers (@aitune)
options:
  results:
    description:
      - The arms per host, as a dict that maps each host name to a list of arms.
      - An arm is the result registered from M(aitune.kernel.latency_bench) (or just its C(benchmark) value), with
        two keys added. C(label) (required) names the configuration, such as V(stock), V(balanced) or V(aggressive).
        C(pair) (an integer) numbers the round the arm belongs to; the arms of one round ran back to back, in a
        shuffled order.
      - From the rest of the arm the module reads C(tool), C(workload), C(condition), C(summary.metrics) (each
        metric's C(median), C(min) and C(max)), C(summary.distribution) and C(worker). The metrics C(foreign_cpu_pct),
        C(psi_cpu_some_pct) and C(steal_pct) tell whether the arm ran beside foreign load. Everything is kept in
        C(report.json).
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
      - Factor by which the tuned arm must be worse than the baseline, with 95 % confidence or in a majority of the
        pairs, to count as regressed. V(1.10) means more than 10 % worse. For rates such as C(steps_per_s), worse
        means lower.
    type: float
    default: 1.10
  plan:
    description:
      - The run's plan from M(aitune.kernel.bench_plan), or the part of it the report uses. C(seed) (an integer) seeds
        the bootstrap and is shown with C(rounds) and C(order) (the labels of each round in the order they ran).
      - Without a seed the bootstrap is seeded with 0.
    type: dict
    default: {}
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

- name: Stop the rollout when loaded wake p99 regressed
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
    - The canary gate. C(requested) is the O(gate) option; without it nothing is evaluated, C(evaluated) and
      C(regressed) are false and C(checks) is empty.
    - C(regressed) is true when any host, scenario of the gate condition and tuned label was worse than C(threshold)
      with 95 % confidence or in a majority of its pairs. C(evaluated) is false when no pair had the metric.
    - C(checks) lists each host, scenario and label with its C(ratios), C(worse) per pair, C(worse_pairs), the
      C(interval) and C(regressed).
  returned: always
  type: dict
  sample: {requested: true, metric: wake_p99_us, condition: load, threshold: 1.1, evaluated: true, regressed: false,
           reason: no host is worse than x1.10 with 95 % confidence or in most pairs, checks: []}
hosts:
  description:
    - Per host and scenario, each label's metrics (C(median), C(min), C(max), the per-round C(values) and their
      C(cv)) and the comparisons with the baseline (C(pairs), and per metric C(before), C(after), C(ratio) and
      C(delta_pct)).
    - C(ratio) has the C(median) paired ratio, its interval C(low) and C(high) (null with fewer than 6 pairs), the
      C(confidence), C(min), C(max), C(n), the pairs C(lower) and C(higher) than 1, and the signed-rank test's
      C(p_signed_rank).
    - Each metric's C(verdict) says what the ratio shows. C(effect) is V(better), V(worse), V(no effect), or null
      where there are too few pairs for an interval; C(reason) says why it is not a change; C(better_pairs) counts
      the pairs in which the mode did better.
    - Each scenario's C(noise) lists the arms measured under foreign load, each with its round and the figure (for
      example C(balanced round 3) with C(foreign CPU 23.4 %)), or is empty.
  returned: always
  type: dict
fleet:
  description: Per scenario, tuned label and metric, the C(hosts), the median C(before) and C(after), the C(ratio)
    statistics over the hosts' median ratios, and a C(verdict). The fleet's figure is a change only when every host's
    is, in the same direction; otherwise it is V(no effect), or null where a host has no interval.
  returned: always
  type: dict
harm:
  description: Do no harm. Every metric a user feels (latencies and rates; not host counters) that a mode makes worse
    with 95 % confidence, as C(host), C(scenario), C(label), C(metric), C(ratio) and C(worse_pairs). Empty when there
    is none.
  returned: always
  type: list
  elements: dict
load_factors:
  description:
    - Per host, how full batch load stretches each arm's tail. For every tool measured both idle and under load, and
      every arm label, each round's loaded p99 (wake, cyclictest, I/O, TTFT, inter-token, session step) over the same
      round's idle one. Each entry has C(tool), C(label), C(metric), C(rounds), the median C(idle) and C(load)
      figures, C(factor) (the median factor and its 95 % interval, as for the ratios) and C(verdict).
    - C(verdict) is V(within) where the whole interval lies at or under x1.5 (the arm serves under load as if idle),
      V(beyond) where it lies above, V(undecided) where it spans x1.5, and null with too few rounds for an interval.
  returned: always
  type: dict
summary:
  description:
    - Per host, short lines for a play's output. The first gives the rounds, the seed and the worker. One line per
      scenario and tuned label gives the key metrics before and after, the median paired ratio with its interval,
      the pairs in which the mode did better, and the verdict.
    - A line per arm gives its TTFT p99, inter-token p99 and session step p99 under load against idle (see
      RV(load_factors)).
    - A line starting C(foreign load:) follows each scenario with arms measured beside other work. With O(gate=true)
      a line gives the gate's verdict for the host. The last line lists what is worse with 95 % confidence.
  returned: always
  type: dict
  sample: {gpu1: ['7 rounds, every arm once per round in an order shuffled with seed 1234; agent worker: native (42
                  arms).',
                  'ring-native/load balanced vs stock, 7 pair(s): wake_p99_us 3904 -> 25.4 x0.00651
                  [0.00633-0.00732] 7/7 better (-99.3 %)',
                  'ring-native/idle balanced vs stock, 7 pair(s): wake_p50_us 26.1 -> 25.63 x0.98 [0.91-1.06] 4/7 no
                  effect',
                  'worse with 95 % confidence: nothing']}
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aitune.kernel.plugins.module_utils._bench_charts import HAS_MATPLOTLIB, MATPLOTLIB_IMPORT_ERROR
from ansible_collections.aitune.kernel.plugins.module_utils._bench_interval import HAS_STATISTICS, STATISTICS_IMPORT_ERROR
from ansible_collections.aitune.kernel.plugins.module_utils._bench_report import ARGUMENT_SPEC, ReportError, write_report


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_STATISTICS:
        module.fail_json(msg=missing_required_lib('numpy and scipy'), exception=STATISTICS_IMPORT_ERROR)
    if module.params['charts'] and not HAS_MATPLOTLIB:
        module.fail_json(msg=missing_required_lib('matplotlib'), exception=MATPLOTLIB_IMPORT_ERROR)
    try:
        result, warnings = write_report(module.params, module.check_mode)
    except ReportError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=True, **result)


if __name__ == '__main__':
    main()
