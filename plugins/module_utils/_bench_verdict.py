# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What bench_report concludes from the paired ratios, on the controller: the verdict on each ratio (better, worse or
no effect, from its 95 % interval), the verdict over the fleet, the arms measured under foreign load, the canary gate,
and the list of metrics a mode makes worse (do no harm)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._bench_interval import CONFIDENCE, MIN_PAIRS, ratio_interval
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import (
    HIGHER_IS_BETTER, arm_metrics, is_worse, median, ratio, scenario_of)

# Verdicts of a ratio: a change in one direction, or none shown with 95 % confidence.
BETTER = 'better'
WORSE = 'worse'
NO_EFFECT = 'no effect'

# The significance the signed-rank test must reach beside the interval. The percentile bootstrap of a median runs
# narrow over few pairs: over 7, one pair against the six others already leaves 1 outside the interval, however far
# that pair moved. The signed-rank test weighs how far each pair moved, so six pairs at x0.02 against one at x1.01
# count as a change (p 0.031) and six at x0.5 against one at x2.5 do not (p 0.30); a change is stated only where the
# interval and the test agree.
SIGNIFICANCE = 1 - CONFIDENCE

# Foreign load, from which an arm counts as measured beside other work. CPU time of processes that are not the
# benchmark's (every CPU's busy time less the benchmark's own processes), as a share of the window's CPU time: a quiet
# host stays under 2 %, an editor or a build beside it goes well over 10 %.
NOISY_FOREIGN_CPU_PCT = 10.0
# Host CPU pressure (PSI "some"), idle arms only: the idle ring keeps about one worker runnable at a time, while under
# load the benchmark's own hogs hold pressure near 100 % by design.
NOISY_PSI_PCT = 20.0
# CPU time the hypervisor gave to other guests (either condition: the benchmark's hogs run inside the guest).
NOISY_STEAL_PCT = 5.0

# The metrics a user feels: a mode that makes one of them worse with 95 % confidence pays that as its price (docs/
# modes.md). Host counters (pressure, switches, steal, GPU clocks) explain a change but are not one.
HARM_PREFIXES = ('wake_', 'step_', 'steps_per_s', 'runq_delay', 'timer_lateness', 'latency_', 'io_', 'iops',
                 'ttft_', 'itl_', 'request_', 'tokens_per_s', 'queue_time', 'session_step_p', 'session_ttft',
                 'session_steps_per_s', 'batch_')


def plural(count, noun):
    return '%d %s%s' % (count, noun, '' if count == 1 else 's')


def effect_of(metric, lower):
    """BETTER or WORSE for a ratio below 1 (``lower``) or above it, by the metric's direction."""
    return BETTER if lower != (metric in HIGHER_IS_BETTER) else WORSE


def ratio_verdict(metric, stats):
    """The verdict on one metric's paired ratios (``stats`` from _bench_interval.ratio_interval): a change only where
    the 95 % interval of the median ratio lies on one side of 1 and the signed-rank test agrees; no effect where the
    interval includes 1; none at all (effect None) with too few pairs for an interval."""
    verdict = {'effect': None, 'reason': None, 'pairs': stats['n'], 'lower': stats['lower'], 'higher': stats['higher'],
               'better_pairs': stats['higher'] if metric in HIGHER_IS_BETTER else stats['lower'],
               'p_signed_rank': stats['p_signed_rank']}
    if not stats['n']:
        return verdict
    if stats['low'] is None:
        verdict['reason'] = 'too few rounds for an interval: %s, %d needed' % (plural(stats['n'], 'pair'), MIN_PAIRS)
    elif stats['low'] <= 1 <= stats['high']:
        verdict.update(effect=NO_EFFECT, reason='the interval includes x1')
    elif stats['p_signed_rank'] >= SIGNIFICANCE:
        verdict.update(effect=NO_EFFECT, reason='%d of %d pairs on one side, not enough (signed-rank p %.2g)' % (
            max(stats['lower'], stats['higher']), stats['n'], stats['p_signed_rank']))
    else:
        verdict['effect'] = effect_of(metric, stats['high'] < 1)
    return verdict


def fleet_verdict(host_verdicts):
    """The fleet's figure is a change only where every host's is, in the same direction; hosts that disagree, or
    some without a change, make it no effect; a host without an interval leaves the fleet without a verdict."""
    verdict = {'effect': None, 'reason': None, 'hosts': len(host_verdicts)}
    effects = [host['effect'] for host in host_verdicts]
    if not effects:
        return verdict
    counts = {effect: effects.count(effect) for effect in (BETTER, WORSE, NO_EFFECT, None)}
    if counts[None]:
        verdict['reason'] = '%d of %d hosts without an interval' % (counts[None], len(effects))
    elif counts[BETTER] == len(effects) or counts[WORSE] == len(effects):
        verdict['effect'] = effects[0]
    else:
        verdict.update(effect=NO_EFFECT, reason='%d of %d hosts better, %d worse' % (
            counts[BETTER], len(effects), counts[WORSE]))
    return verdict


def arm_findings(arm, condition):
    """Why one arm counts as measured under foreign load; an arm's value is the median over its repetitions."""
    metrics = arm_metrics(arm)
    checks = [('foreign_cpu_pct', 'foreign CPU', NOISY_FOREIGN_CPU_PCT), ('steal_pct', 'steal', NOISY_STEAL_PCT)]
    if condition == 'idle':
        checks.append(('psi_cpu_some_pct', 'CPU pressure', NOISY_PSI_PCT))
    return ['%s %.3g %%' % (name, metrics[metric]) for metric, name, threshold in checks
            if metrics.get(metric) is not None and metrics[metric] >= threshold]


def shared_vcpu_warning(host, arms):
    """A warning for a host whose vCPUs share their physical CPUs with other guests: steal time of NOISY_STEAL_PCT or
    more in any arm (an arm's median over its repetitions); None otherwise. Such a host's figures carry its neighbours'
    load, and settings that spin instead of halting (halt polling, a PM QoS limit of 0) take host CPU from them."""
    steals = [arm_metrics(arm).get('steal_pct') for arm in arms]
    steals = [value for value in steals if value is not None]
    shared = [value for value in steals if value >= NOISY_STEAL_PCT]
    if not shared:
        return None
    return ('%s: steal time reached %.3g %% (%s of %s at %.3g %% or more): its vCPUs share physical CPUs with other '
            'guests, so its figures carry their load, and the modes\' polling (the haltpoll window, a PM QoS limit '
            'of 0) spins on CPU time the neighbours could use; measure on dedicated vCPUs before trusting a verdict '
            'here' % (host, max(shared), len(shared), plural(len(steals), 'arm'), NOISY_STEAL_PCT))


def noise_findings(arms, condition):
    """The arms of one host's scenario measured under foreign load, each as ``balanced round 3: foreign CPU 23 %``;
    empty for a quiet scenario."""
    findings = []
    for arm in arms:
        found = arm_findings(arm, condition)
        if found:
            findings.append('%s round %s: %s' % (arm['label'], arm.get('pair') or '?', ', '.join(found)))
    return findings


# ---------------------------------------------------------------------------------------------------------------------
# The canary gate

def gate_check(pairs, metric, threshold, seed):
    """The gate over one host's interleaved pairs of stock and the mode. The mode regresses when the gate metric is
    worse than ``threshold`` (a factor: 1.10 is 10 % worse) with 95 % confidence (the whole interval past it), or when
    it is worse by more than the threshold in a majority of the pairs: one noisy pair fails nothing, and a regression
    in 4 of 5 pairs is not excused by the fifth."""
    if threshold is None or threshold < 1:
        raise ValueError('the gate threshold is a factor of at least 1, got %r' % (threshold,))
    checked = []
    for pair in pairs:
        before, after = (pair.get('before') or {}).get(metric), (pair.get('after') or {}).get(metric)
        worse = is_worse(metric, before, after, threshold)
        if worse is not None:
            checked.append((ratio(before, after), worse))
    stats = ratio_interval([value for value, _worse in checked], seed)
    worse_pairs = sum(1 for _value, worse in checked if worse)
    if metric in HIGHER_IS_BETTER:
        surely_worse = stats['high'] is not None and stats['high'] < 1.0 / threshold
    else:
        surely_worse = stats['low'] is not None and stats['low'] > threshold
    majority = worse_pairs * 2 > len(checked)
    return {'metric': metric, 'threshold': threshold, 'pairs': len(checked), 'ratios': [v for v, _w in checked],
            'worse': [w for _v, w in checked], 'worse_pairs': worse_pairs, 'interval': stats,
            'regressed': bool(checked) and (surely_worse or majority), 'evaluated': bool(checked),
            'reason': gate_reason(metric, threshold, stats, worse_pairs, surely_worse)}


def gate_reason(metric, threshold, stats, worse_pairs, surely_worse):
    if not stats['n']:
        return 'no pair has %s in both arms' % metric
    text = '%s x%.3g' % (metric, stats['median'])
    if stats['low'] is not None:
        text += ' [%.3g-%.3g]%s' % (stats['low'], stats['high'],
                                    ', worse than x%.2f with 95 %% confidence' % threshold if surely_worse else '')
    else:
        text += ' (%s: no interval, the majority of pairs decides)' % plural(stats['n'], 'pair')
    return '%s; worse by more than x%.2f in %d of %d pairs' % (text, threshold, worse_pairs, stats['n'])


def gate_hosts(hosts, metric, condition, threshold, seed):
    """The gate for every host, scenario of the gate's condition and tuned label; regressed when any of them is."""
    checks = []
    for host in sorted(hosts):
        for scenario, data in sorted(hosts[host].items()):
            if data['condition'] != condition:
                continue
            for label, comparison in data['comparisons'].items():
                outcome = gate_check(comparison['gate_pairs'], metric, threshold, seed)
                if outcome['evaluated']:
                    outcome.update(host=host, scenario=scenario, label=label)
                    checks.append(outcome)
    regressed = [check for check in checks if check['regressed']]
    if not checks:
        reason = 'no interleaved pair under condition %s has %s' % (condition, metric)
    elif regressed:
        reason = 'regressed: ' + '; '.join('%s %s %s: %s' % (c['host'], c['scenario'], c['label'], c['reason'])
                                           for c in regressed)
    else:
        reason = 'no host is worse than x%.2f with 95 %% confidence or in most pairs' % threshold
    return {'metric': metric, 'condition': condition, 'threshold': threshold, 'evaluated': bool(checks),
            'regressed': bool(regressed), 'reason': reason, 'checks': checks}


# ---------------------------------------------------------------------------------------------------------------------
# Do no harm

def is_harm_metric(metric):
    return metric.startswith(HARM_PREFIXES)


def harm_list(hosts):
    """Every metric a user feels that a mode makes worse with 95 % confidence, per host and scenario:
    ``[{host, scenario, label, metric, ratio, worse_pairs}]`` in a stable order."""
    harms = []
    for host, scenarios in sorted(hosts.items()):
        for scenario, data in sorted(scenarios.items()):
            for label, comparison in sorted(data['comparisons'].items()):
                for metric, values in sorted(comparison['metrics'].items()):
                    verdict = values['verdict']
                    if verdict['effect'] == WORSE and is_harm_metric(metric):
                        harms.append({'host': host, 'scenario': scenario, 'label': label, 'metric': metric,
                                      'ratio': values['ratio'], 'worse_pairs': verdict['pairs'] - verdict['better_pairs']})
    return harms


# ---------------------------------------------------------------------------------------------------------------------
# Under load against idle

# The tail latencies whose loaded figure is set against the same arm's idle one.
LOAD_FACTOR_METRICS = ('wake_p99_us', 'latency_p99_us', 'io_p99_us', 'ttft_p99_ms', 'itl_p99_ms',
                       'session_step_p99_ms')
# A host under full batch load serves as if idle when its loaded tail stays within this factor of its idle one.
AS_IF_IDLE = 1.5
WITHIN = 'within'
BEYOND = 'beyond'
UNDECIDED = 'undecided'


def load_factor_verdict(stats):
    """WITHIN where the 95 % interval of the loaded/idle factor lies at or under AS_IF_IDLE, BEYOND where it lies
    above, UNDECIDED where it spans it, and None without an interval (too few rounds)."""
    if stats['low'] is None:
        return None
    if stats['high'] <= AS_IF_IDLE:
        return WITHIN
    if stats['low'] > AS_IF_IDLE:
        return BEYOND
    return UNDECIDED


def load_factors(arms, seed):
    """Per tool and arm label, the factor by which full batch load stretches the tail: each round's loaded figure over
    the same round's idle one, with the interval of its median. Stock's factor beside a mode's is what the mode's
    placement buys under load."""
    rounds = {}
    for arm in arms:
        tool, condition = scenario_of(arm).rsplit('/', 1)
        rounds.setdefault((tool, arm['label']), {}).setdefault(condition, {})[arm.get('pair')] = arm_metrics(arm)
    factors = []
    for (tool, label), conditions in sorted(rounds.items()):
        idle, load = conditions.get('idle') or {}, conditions.get('load') or {}
        pairs = sorted((pair for pair in idle if pair in load), key=str)
        for metric in LOAD_FACTOR_METRICS:
            ratios = [ratio(idle[pair].get(metric), load[pair].get(metric)) for pair in pairs]
            if not any(value is not None for value in ratios):
                continue
            stats = ratio_interval(ratios, seed)
            factors.append({'tool': tool, 'label': label, 'metric': metric, 'rounds': stats['n'],
                            'idle': median([idle[pair].get(metric) for pair in pairs]),
                            'load': median([load[pair].get(metric) for pair in pairs]),
                            'factor': stats, 'verdict': load_factor_verdict(stats)})
    return factors
