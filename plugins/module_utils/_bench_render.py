# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report's text: the numbers, ratios and verdicts as the tables show them, the summary lines for the play's
output, report.md, and report.html around the charts that _bench_charts draws."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import html

from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import scenario_of
from ansible_collections.aitune.kernel.plugins.module_utils._bench_verdict import BETTER, MIN_PAIRS, MIN_PAIRS_NOISY, WORSE, plural

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


def table_rows(metrics):
    """(metric, display name) for the metrics present, in TABLE_METRICS order."""
    return [(metric, name) for metric, name in TABLE_METRICS if metric in metrics]


# ---------------------------------------------------------------------------------------------------------------------
# Summary lines

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
