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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aitune.kernel.plugins.module_utils._bench_charts import HAS_MATPLOTLIB, MATPLOTLIB_IMPORT_ERROR
from ansible_collections.aitune.kernel.plugins.module_utils._bench_report import ARGUMENT_SPEC, ReportError, write_report


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
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
