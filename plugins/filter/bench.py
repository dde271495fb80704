# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What the benchmark role makes of the modules' results on the controller: whether a host can be tuned as it starts,
where a mode placed latency services, each host's benchmark_result with its summary lines, the canary gate's verdict,
and the message of a failure.

The role passes results along and prints; the decisions stay here, in Python, where they are tested. Documentation:
bench_start.yml, bench_placement.yml, bench_result.yml, bench_gate.yml and bench_failure.yml.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# The latency_bench options of a tuned arm, each from the setting of the mode's latency (or batch) placement class.
CLASS_SETTINGS = (('policy', 'cpu_scheduling_policy'), ('priority', 'cpu_scheduling_priority'),
                  ('timer_slack_ns', 'timer_slack_ns'), ('cpus', 'cpu_affinity'))


def _mapping(value):
    return value if isinstance(value, dict) else {}


def bench_start(tuning, check_mode=False):
    """``{can_tune, tuned, notes}`` from tuning_facts' ``aitune_tuning``: whether this run may apply the modes (root,
    and not check mode), whether the host holds settings of this collection now (a recorded mode, or a baseline), and
    the note for a host that holds them but cannot be brought back to stock by this run."""
    tuning = _mapping(tuning)
    recorded = tuning.get('recorded')
    can_tune = bool(_mapping(tuning.get('user')).get('root')) and not check_mode
    tuned = recorded is not None or bool(_mapping(tuning.get('baseline')).get('present'))
    notes = []
    if tuned and not can_tune:
        notes.append('the host holds the %s tuning, which this run cannot put back (%s), so the stock arm measures the '
                     'host as found' % (_mapping(recorded).get('mode') or 'unrecorded',
                                        'check mode' if check_mode else 'no root'))
    return {'can_tune': can_tune, 'tuned': tuned, 'notes': notes}


def bench_placement(tune_result):
    """latency_bench's placement options for the arm of the mode just applied, from the tune role's profile call: the
    workers run in the latency class's slice with its scheduling policy, priority, timer slack and CPUs, and the CPU
    hogs in the batch class's slice, as the declared services do. A slice the cgroup subsystem could not make on this
    host is left out, as it is for the services."""
    tune_result = _mapping(tune_result)
    classes = _mapping(tune_result.get('placement_classes'))
    latency, batch = _mapping(classes.get('latency')), _mapping(classes.get('batch'))
    slices = _mapping(_mapping(_mapping(tune_result.get('subsystems')).get('cgroup')).get('slices'))
    made = {name: _mapping(made_slice) for name, made_slice in slices.items() if _mapping(made_slice).get('exists')}
    placement = {}
    slice_options = (('slice', 'cgroup', latency), ('load_slice', 'load_cgroup', batch))
    for slice_option, cgroup_option, placement_class in slice_options:
        name = placement_class.get('slice')
        if name in made:
            placement[slice_option] = name
            placement[cgroup_option] = made[name].get('path')
    for option, setting in CLASS_SETTINGS:
        placement[option] = latency.get(setting)
    return {option: value for option, value in placement.items() if value is not None}


def summary_lines(result, report_lines, final_mode, check_mode):
    """bench_report's lines for the host, then what the run did not measure and why, its notes, where the report is,
    and the state it left the host in."""
    lines = list(report_lines)
    if not result['tuned_arms']:
        reason = 'check mode applies nothing' if check_mode else 'applying it needs root'
        for mode, knobs in result['needs_root'].items():
            lines.append('%s not measured: %s; it would change %s' % (mode, reason, ', '.join(knobs) or 'nothing'))
    lines += ['note: %s' % note for note in result['notes']]
    lines.append('%s%s (and report.json, report.html)' % (
        'report (not written in check mode): ' if check_mode else 'report: ', result['files']['md']))
    if not result['tuned_arms']:
        lines.append('host left as it was: nothing was written')
    elif result['at_stock']:
        lines.append('host back at stock')
    else:
        lines.append('host left in the %s mode (aitune_bench_restore=true ends at stock; restore.yml puts it back)'
                     % final_mode)
    return lines


def bench_result(report, host, plan, arms, tuned_arms, needs_root, notes, at_stock, check_mode=False):
    """The host's fact benchmark_result, from bench_report's result and the host's run, with ``summary``, the lines the
    role prints."""
    report = _mapping(report)
    result = {
        'report_dir': report.get('report_dir'),
        'files': report.get('files') or {},
        'modes': plan['modes'],
        'conditions': plan['conditions'],
        'rounds': plan['rounds'],
        'tuned_arms': tuned_arms,
        'needs_root': needs_root or {},
        'notes': notes or [],
        'at_stock': at_stock,
        'comparison': _mapping(report.get('hosts')).get(host) or {},
        # Every arm's summary and placement; the per-repetition runs are in report.json.
        'arms': [{key: value for key, value in arm.items() if key != 'runs'} for arm in arms],
        'gate': report.get('gate'),
    }
    result['summary'] = summary_lines(result, _mapping(report.get('summary')).get(host) or [], plan['final_mode'],
                                      check_mode)
    return result


def gate_verdict(gate, mode, canaries, hosts, play_hosts, report_md):
    """``(passed, message)``: the first of a canary that failed during the gate, a gate that could not be evaluated,
    and a regression stops the rollout; otherwise it goes on."""
    failed = [canary for canary in canaries if canary not in hosts]
    if failed:
        return False, ('Canary gate failed: %s failed during the gate (see above). Canaries restored to stock: %s. The '
                       'rollout stops here. Report of the others: %s' % (', '.join(failed), ', '.join(canaries),
                                                                         report_md))
    if not gate.get('evaluated'):
        return False, ('Canary gate could not be evaluated: %s (check aitune_gate_metric and aitune_gate_condition '
                       'against the metrics latency_bench reports). The canaries %s were restored to stock and the '
                       'rollout stops here. Report: %s' % (gate.get('reason'), ', '.join(hosts), report_md))
    if gate.get('regressed'):
        checks = [check for check in gate.get('checks') or [] if check.get('regressed')]
        untouched = [other for other in play_hosts if other not in hosts]
        return False, ('Canary gate failed: with the %s mode, %s under %s was worse than stock by more than x%.2f with '
                       '95 %% confidence or in most interleaved pairs: %s. Canaries restored to stock: %s. The rollout '
                       'stops here; %s. Report: %s' % (
                           mode, gate.get('metric'), gate.get('condition'), gate.get('threshold'),
                           '; '.join('%s: %s' % (check['host'], check.get('reason')) for check in checks),
                           ', '.join(hosts),
                           'not touched: ' + ', '.join(untouched) if untouched else 'no other host was in this run',
                           report_md))
    return True, 'Canary gate passed: %s. The canaries keep the %s mode; report: %s' % (gate.get('reason'), mode,
                                                                                        report_md)


def bench_gate(report, mode, canaries, hosts, play_hosts):
    """The canaries' fact benchmark_gate from bench_report's result: ``ran``, ``passed``, the ``gate`` and the
    ``report_dir``, with ``verdict``, the message that stops the rollout or lets it go on."""
    report = _mapping(report)
    gate = _mapping(report.get('gate'))
    passed, verdict = gate_verdict(gate, mode, list(canaries), list(hosts), list(play_hosts),
                                   _mapping(report.get('files')).get('md'))
    return {'ran': True, 'passed': passed, 'gate': gate, 'report_dir': report.get('report_dir'), 'verdict': verdict}


def bench_failure(failed_result):
    """What failed, from a rescue's ansible_failed_result: the task's message, or for a loop (the latency_bench calls)
    each failed item's message, ending in one full stop."""
    failed_result = _mapping(failed_result)
    items = [_mapping(item) for item in failed_result.get('results') or []]
    text = '; '.join(str(item.get('msg', item)) for item in items if item.get('failed'))
    if not text:
        text = str(failed_result.get('msg', failed_result))
    return re.sub(r'\.?\s*$', '.', text, count=1)


class FilterModule(object):
    def filters(self):
        return {'bench_start': bench_start, 'bench_placement': bench_placement, 'bench_result': bench_result,
                'bench_gate': bench_gate, 'bench_failure': bench_failure}
