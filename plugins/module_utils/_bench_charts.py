# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report's charts, drawn with matplotlib as inline SVG: the latency distribution of every arm per host and
scenario, and the per-host bars of the paired ratios of the key metrics.

matplotlib is needed only for the charts and only on the controller; ``HAS_MATPLOTLIB`` tells whether it is there,
and it is set up (Agg backend, pyplot) only when the charts are drawn.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import math
import traceback

from ansible_collections.aitune.kernel.plugins.module_utils._bench_render import DISPLAY
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import scenario_of
from ansible_collections.aitune.kernel.plugins.module_utils._bench_verdict import BETTER, WORSE

try:
    import matplotlib
    HAS_MATPLOTLIB = True
    MATPLOTLIB_IMPORT_ERROR = None
except ImportError:
    HAS_MATPLOTLIB = False
    MATPLOTLIB_IMPORT_ERROR = traceback.format_exc()

# Ratio bars show these, where an arm has them.
BAR_METRICS = ('wake_p50_us', 'wake_p99_us', 'steps_per_s', 'latency_p99_us', 'io_p99_us', 'ttft_p99_ms',
               'itl_p99_ms', 'tokens_per_s', 'session_step_p99_ms', 'session_steps_per_s', 'batch_cpu_pct',
               'batch_tokens_per_s')
# Where the ratio bars' log axis gets a labelled tick.
RATIO_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


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
        """Horizontal bars of the median paired ratio per host and metric, its 95 % interval as error bars, log scale.
        A ratio that is not a change (no effect, or no verdict) is drawn faded and hatched, so it does not read as
        one."""
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
                # Without an interval (too few pairs) the bar stands alone: a min-max bar would look like one.
                interval = (stats['low'], stats['high']) if stats.get('low') is not None else (stats['median'],) * 2
                low.append(stats['median'] - interval[0])
                high.append(interval[1] - stats['median'])
                extent.extend(value for value in interval if value and value > 0)
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
        axes.set_xlabel('%s / %s, median of paired ratios (bars: 95 %% interval; faded, hatched: no change shown)'
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
