# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The report's statistics on data with a known answer: the bootstrap interval of a median, the signed-rank test,
the verdicts built on them, the gate's decisions, and the arms flagged for foreign load."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import random

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench_interval, _bench_verdict
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

pytestmark = pytest.mark.skipif(not _bench_interval.HAS_STATISTICS, reason='numpy or scipy is not installed')

GATE = load_cases('bench_gate.yml')


def lognormal_ratios(count, median, sigma, generator):
    return [median * math.exp(generator.gauss(0, sigma)) for _index in range(count)]


def test_the_interval_covers_a_known_median_about_95_times_in_100():
    """Paired ratios drawn around a known median: the 95 % interval holds it in about 95 % of the data sets (the
    percentile bootstrap of a median runs a little narrow over small samples, so the floor is 88 %)."""
    generator = random.Random(20261206)
    covered = 0
    for data_set in range(200):
        ratios = lognormal_ratios(15, 0.8, 0.3, generator)
        low, high = _bench_interval.bootstrap_median_interval(ratios, seed=data_set, resamples=2000)
        covered += low <= 0.8 <= high
    assert 176 <= covered <= 200


def test_the_interval_is_reproducible_and_brackets_the_median():
    ratios = [0.51, 0.48, 0.55, 0.47, 0.52, 0.5, 0.49]
    first = _bench_interval.ratio_interval(ratios, seed=7)
    assert first == _bench_interval.ratio_interval(ratios, seed=7)
    assert first['low'] <= first['median'] == 0.5 <= first['high'] < 1
    assert min(ratios) <= first['low'] and first['high'] <= max(ratios)
    assert (first['n'], first['lower'], first['higher']) == (7, 7, 0)


def test_too_few_pairs_get_no_interval():
    stats = _bench_interval.ratio_interval([0.5, 0.4, None, 0.45, 0.5, 0.42], seed=1)
    assert stats['n'] == 5 and stats['low'] is None and stats['high'] is None
    assert _bench_interval.ratio_interval([], seed=1)['median'] is None


@pytest.mark.parametrize('ratios, expected', [
    # All on one side: 2 of the 2^n equally likely sign patterns are as extreme.
    ([0.5] * 7, 2 / 128.0), ([2.0, 3.0, 1.5, 1.2, 1.1, 4.0, 2.5], 2 / 128.0), ([0.5] * 5, 2 / 32.0),
    # One pair against six: it matters how far it moved. Smallest move: W = 1, 2 patterns of 128 as low each side.
    ([0.02] * 6 + [1.01], 4 / 128.0),
    # Largest move: W = 7, 19 of 128 patterns as low each side.
    ([0.5, 0.52, 0.48, 0.51, 0.49, 0.5, 2.5], 38 / 128.0),
    # A pair with a ratio of exactly 1 is left out, and so is a run of only such pairs.
    ([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.55], 2 / 64.0), ([1.0] * 4, 1.0)])
def test_signed_rank_test_is_exact(ratios, expected):
    assert _bench_interval.signed_rank_p(ratios) == pytest.approx(expected)


def verdict(metric, ratios):
    return _bench_verdict.ratio_verdict(metric, _bench_interval.ratio_interval(ratios, seed=3))


def test_verdicts_follow_the_interval_and_the_metric_s_direction():
    lower = [0.5, 0.52, 0.48, 0.51, 0.49, 0.5, 0.53]
    assert verdict('wake_p99_us', lower)['effect'] == 'better'
    assert verdict('steps_per_s', lower)['effect'] == 'worse'
    assert verdict('steps_per_s', lower)['better_pairs'] == 0
    higher = [2.0 / value for value in lower]
    assert verdict('wake_p99_us', higher)['effect'] == 'worse'
    assert verdict('wake_p99_us', higher)['better_pairs'] == 0


def test_an_interval_that_includes_one_is_no_effect():
    outcome = verdict('wake_p99_us', [0.7, 1.3, 0.9, 1.2, 0.8, 1.1, 0.95])
    assert outcome['effect'] == 'no effect' and 'includes x1' in outcome['reason']


def test_one_pair_that_moved_far_against_six_is_no_effect_by_the_signed_rank_test():
    """Over 7 pairs the bootstrap's interval already leaves 1 out when one pair disagrees, however far it moved; the
    signed-rank test (p 0.30) keeps a far move against the others from being called a change."""
    ratios = [0.5, 0.52, 0.48, 0.51, 0.49, 0.5, 2.5]
    stats = _bench_interval.ratio_interval(ratios, seed=3)
    assert stats['high'] < 1
    outcome = _bench_verdict.ratio_verdict('wake_p99_us', stats)
    assert outcome['effect'] == 'no effect'
    assert outcome['reason'] == '6 of 7 pairs on one side, not enough (signed-rank p 0.3)'


def test_one_pair_that_barely_moved_does_not_hide_a_large_change():
    """Six rounds at x0.02 and one where stock happened to land as low as the mode: a change (p 0.031)."""
    outcome = verdict('wake_p99_us', [0.0184, 0.019, 0.02, 0.021, 0.0195, 0.0201, 1.01])
    assert outcome['effect'] == 'better' and outcome['better_pairs'] == 6


def test_too_few_rounds_give_no_verdict_and_say_why():
    outcome = verdict('wake_p99_us', [0.5, 0.5, 0.5])
    assert outcome['effect'] is None
    assert outcome['reason'] == 'too few rounds for an interval: 3 pairs, 6 needed'


@pytest.mark.parametrize('hosts, effect', [
    (['better', 'better'], 'better'), (['worse', 'worse', 'worse'], 'worse'), (['better', 'worse'], 'no effect'),
    (['better', 'no effect'], 'no effect'), (['better', None], None), ([], None)])
def test_the_fleet_states_a_change_only_where_every_host_does(hosts, effect):
    assert _bench_verdict.fleet_verdict([{'effect': host} for host in hosts])['effect'] == effect


@pytest.mark.parametrize('case', GATE, ids=[c['id'] for c in GATE])
def test_gate(case):
    metric = case.get('metric', 'wake_p99_us')
    pairs = [{'before': {metric: before}, 'after': {metric: after}} for before, after in case['pairs']]
    outcome = _bench_verdict.gate_check(pairs, metric, case.get('threshold', 1.10), seed=0)
    assert outcome['regressed'] is case['regressed'], outcome['reason']
    assert outcome['evaluated'] is case.get('evaluated', True)
    if 'surely_worse' in case:
        assert ('with 95 % confidence' in outcome['reason']) is case['surely_worse'], outcome['reason']


def test_gate_refuses_a_threshold_below_one():
    with pytest.raises(ValueError):
        _bench_verdict.gate_check([], 'wake_p99_us', 0.9, seed=0)


def arm(label, pair, condition, **metrics):
    return {'label': label, 'pair': pair, 'condition': condition,
            'summary': {'metrics': {name: {'median': value} for name, value in metrics.items()}}}


def test_arms_under_foreign_load_are_named_with_their_round():
    arms = [arm('stock', 1, 'load', foreign_cpu_pct=1.0, steal_pct=0.0, psi_cpu_some_pct=99.0),
            arm('balanced', 2, 'load', foreign_cpu_pct=23.4),
            arm('stock', 3, 'load', steal_pct=6.0)]
    assert _bench_verdict.noise_findings(arms, 'load') == [
        'balanced round 2: foreign CPU 23.4 %', 'stock round 3: steal 6 %']
    # Idle arms also count host CPU pressure; under load it is the benchmark's own hogs.
    assert _bench_verdict.noise_findings([arm('stock', 1, 'idle', psi_cpu_some_pct=35.0)], 'idle') == [
        'stock round 1: CPU pressure 35 %']
