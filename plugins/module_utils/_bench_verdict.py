# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""When bench_report states a ratio as a change: the interleaved pairs a verdict needs, the signs of a noisy scenario
that raise that number, and the verdicts per host and over the fleet."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import HIGHER_IS_BETTER, arm_metrics

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


def plural(count, noun):
    return '%d %s%s' % (count, noun, '' if count == 1 else 's')


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
