# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""How sure a paired ratio is, on the controller: the 95 % bootstrap confidence interval of the median paired ratio
over the interleaved rounds (numpy), and the exact Wilcoxon signed-rank test of the pairs (scipy).

numpy and scipy are needed only here and only on the controller (bench_report); ``HAS_STATISTICS`` tells whether they
are there, and targets never import this file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback

try:
    import numpy
    from scipy import stats
    HAS_STATISTICS = True
    STATISTICS_IMPORT_ERROR = None
except ImportError:
    HAS_STATISTICS = False
    STATISTICS_IMPORT_ERROR = traceback.format_exc()

CONFIDENCE = 0.95
# Resamples of the bootstrap: with 10,000 the interval's ends move by well under 1 % between seeds.
RESAMPLES = 10000
# The fewest pairs an interval is given for. With fewer, the percentile bootstrap of a median has only a handful of
# distinct values to draw from and its "95 %" interval covers far less than 95 %; and no signed-rank test of five pairs
# reaches p < 0.05 (all five on one side give 2/32).
MIN_PAIRS = 6


def bootstrap_median_interval(values, seed, confidence=CONFIDENCE, resamples=RESAMPLES):
    """(low, high): the percentile bootstrap interval of the median of ``values``, from ``resamples`` resamples drawn
    with a generator seeded with ``seed``, so the same data and seed always give the same interval."""
    data = numpy.asarray(values, dtype=float)
    generator = numpy.random.default_rng(seed)
    draws = generator.integers(0, len(data), size=(resamples, len(data)))
    medians = numpy.median(data[draws], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = numpy.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def signed_rank_p(ratios):
    """The exact two-sided p-value of the Wilcoxon signed-rank test of the log ratios against 0: how often a mode
    with no effect gives pairs this one-sided, counting how far each pair moved. The rounds' shuffled order makes the
    two arms of a pair exchangeable when the mode does nothing, so the log ratio is then symmetric around 0, which is
    what the test assumes. Pairs with a ratio of exactly 1 are left out; 1.0 when none is left."""
    logs = numpy.log(numpy.asarray(ratios, dtype=float))
    if not numpy.any(logs != 0):
        return 1.0
    return float(stats.wilcoxon(logs, method='exact').pvalue)


def ratio_interval(ratios, seed):
    """``{median, low, high, min, max, n, lower, higher, p_signed_rank, confidence}`` of the paired ratios that exist
    (all positive); ``low`` and ``high`` are None with fewer than MIN_PAIRS ratios."""
    values = [value for value in ratios if value is not None and value > 0]
    result = {'n': len(values), 'median': float(numpy.median(values)) if values else None, 'low': None,
              'high': None, 'min': min(values) if values else None, 'max': max(values) if values else None,
              'lower': sum(1 for value in values if value < 1), 'higher': sum(1 for value in values if value > 1),
              'p_signed_rank': round(signed_rank_p(values), 6) if values else None, 'confidence': CONFIDENCE}
    if len(values) >= MIN_PAIRS:
        result['low'], result['high'] = bootstrap_median_interval(values, seed)
    return result
