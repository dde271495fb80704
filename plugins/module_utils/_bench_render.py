# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""bench_report's text: the numbers, ratios and verdicts as the tables show them, the summary lines for the play's
output, report.md, and report.html around the charts that _bench_charts draws."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import html

from ansible_collections.aitune.kernel.plugins.module_utils._bench_interval import CONFIDENCE, MIN_PAIRS
from ansible_collections.aitune.kernel.plugins.module_utils._bench_verdict import (
    AS_IF_IDLE, BETTER, BEYOND, NO_EFFECT, UNDECIDED, WITHIN, WORSE, plural)

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
    ('session_step_p50_ms', 'session step p50'), ('session_step_p99_ms', 'session step p99'),
    ('session_step_p999_ms', 'session step p99.9'), ('session_steps_per_s', 'session steps/s'),
    ('session_ttft_p99_ms', 'session TTFT p99'), ('session_tool_p99_ms', 'tool call p99'),
    ('session_server_wait_pct', 'share of step waiting on the server'), ('session_errors', 'failed steps'),
    ('requests_failed', 'failed requests'),
    ('batch_cpu_pct', 'batch work CPU'), ('batch_tokens_per_s', 'batch tokens/s'),
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
td:nth-child(2), td:nth-child(3), td:nth-child(4) { white-space: nowrap; }
th { background: #f3f3f3; }
.better { color: #1a7f37; font-weight: bold; } .worse { color: #b42318; font-weight: bold; }
.no-effect { color: #6b6b6b; } .no-verdict { color: #6b6b6b; font-style: italic; }
.harm { background: #fdecea; padding: 0.5em; } .no-harm { background: #e7f6ec; padding: 0.5em; }
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
    """``3904 µs, CV 0.12``: the median over the arm's rounds and its coefficient of variation over them."""
    if not stats or stats.get('median') is None:
        return 'n/a'
    text = fmt_number(stats['median']) + unit_of(metric)
    if stats.get('cv') is not None:
        text += ', CV %.2f' % stats['cv']
    return text


def fmt_ratio(stats):
    """``×0.503 [0.487–0.518]``: the median paired ratio with its 95 % interval, or alone where there is none."""
    if not stats or stats.get('median') is None:
        return 'n/a'
    text = '×%s' % fmt_number(stats['median'])
    if stats.get('low') is not None:
        text += ' [%s–%s]' % (fmt_number(stats['low']), fmt_number(stats['high']))
    return text


def fmt_pairs(verdict):
    """``6 of 7``: the pairs in which the mode did better."""
    if not verdict or not verdict.get('pairs'):
        return 'n/a'
    return '%d of %d' % (verdict['better_pairs'], verdict['pairs'])


def fmt_verdict(verdict, delta_pct):
    """``better (−49.7 %)``, ``worse (+24.0 %)``, ``no effect: the interval includes x1`` or ``no verdict: ...``."""
    if not verdict or (verdict['effect'] is None and not verdict.get('reason')):
        return 'n/a'
    if verdict['effect'] in (BETTER, WORSE):
        return ('%s (%+.1f %%)' % (verdict['effect'], delta_pct)).replace('-', '−')
    if verdict['effect'] == NO_EFFECT:
        return 'no effect: %s' % verdict['reason'] if verdict.get('reason') else NO_EFFECT
    return 'no verdict: %s' % verdict['reason']


def verdict_class(verdict):
    """The CSS class of a verdict: the colour follows the verdict, never the ratio's direction."""
    if not verdict:
        return ''
    if verdict['effect'] in (BETTER, WORSE):
        return verdict['effect']
    return 'no-effect' if verdict['effect'] == NO_EFFECT else 'no-verdict'


def table_rows(metrics):
    """(metric, display name) for the metrics present, in TABLE_METRICS order."""
    return [(metric, name) for metric, name in TABLE_METRICS if metric in metrics]


# ---------------------------------------------------------------------------------------------------------------------
# Summary lines

# The metrics the summary lines show, where a scenario has them.
SUMMARY_METRICS = ('wake_p50_us', 'wake_p99_us', 'wake_p999_us', 'steps_per_s', 'latency_p99_us', 'io_p99_us',
                   'ttft_p99_ms', 'itl_p99_ms', 'session_step_p99_ms', 'batch_cpu_pct', 'batch_tokens_per_s')


def summary_ratio(stats):
    """``x0.00651 [0.00633-0.00732] 7/7 better (-99.3 %)``, ``x0.912 [0.61-1.3] 3/5 no effect``, or
    ``x0.599 1/1 (no verdict: too few rounds for an interval: 1 pair, 6 needed)``."""
    ratio, verdict = stats['ratio'], stats['verdict']
    text = 'x%.3g' % ratio['median']
    if ratio.get('low') is not None:
        text += ' [%.3g-%.3g]' % (ratio['low'], ratio['high'])
    text += ' %d/%d' % (verdict['better_pairs'], verdict['pairs'])
    if verdict['effect'] in (BETTER, WORSE):
        return text + ' %s (%+.1f %%)' % (verdict['effect'], stats['delta_pct'])
    if verdict['effect'] == NO_EFFECT:
        return text + ' no effect'
    return '%s (no verdict: %s)' % (text, verdict['reason'])


def noisy_line(scenario, findings):
    return 'foreign load: %s: %s' % (scenario, '; '.join(findings))


def gate_heading(gate):
    return 'Gate (%s under %s: fails when worse than x%.2f with 95 %% confidence or in most pairs)' % (
        gate['metric'], gate['condition'], gate['threshold'])


def host_gate_line(gate, host):
    """The gate's verdict on one host's checks, for its summary."""
    checks = [check for check in gate['checks'] if check['host'] == host]
    if not checks:
        return '%s: not evaluated on this host, no interleaved pair under condition %s has %s' % (
            gate_heading(gate), gate['condition'], gate['metric'])
    regressed = [check for check in checks if check['regressed']]
    return '%s: %s: %s' % (gate_heading(gate), 'REGRESSED' if regressed else 'passed', '; '.join(
        '%s %s: %s' % (check['scenario'], check['label'], check['reason']) for check in regressed or checks))


def harm_text(harm):
    """``balanced ring-native/idle wake p99: x1.24 [1.1-1.4], worse in 7 of 7 pairs``."""
    ratio, name = harm['ratio'], DISPLAY.get(harm['metric'], harm['metric'])
    return '%s %s %s: x%.3g [%.3g-%.3g], worse in %d of %d pairs' % (
        harm['label'], harm['scenario'], name, ratio['median'], ratio['low'], ratio['high'], harm['worse_pairs'],
        ratio['n'])


def plan_sentence(report):
    """How the run was laid out: its rounds, their shuffled order's seed, and which worker ran the agent arms."""
    plan, parts = report['plan'], []
    if plan.get('rounds'):
        parts.append('%s, every arm once per round in an order shuffled with seed %s' % (
            plural(plan['rounds'], 'round'), plan.get('seed')))
    if report['workers']:
        parts.append('agent worker: %s' % ', '.join('%s (%s)' % (worker, plural(count, 'arm'))
                                                    for worker, count in sorted(report['workers'].items())))
    text = '; '.join(parts)
    return text[:1].upper() + text[1:] + '.' if parts else ''


def summary_lines(report):
    """{host: [line]}: the run's layout, each scenario's comparisons in one line each, the arms measured under foreign
    load, the gate's verdict when a gate was asked for, and the metrics a mode made worse."""
    lines = {}
    for host, scenarios in report['hosts'].items():
        lines[host] = [plan_sentence(report)] if plan_sentence(report) else []
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
        for factor in (report.get('load_factors') or {}).get(host, []):
            if factor['metric'] in LOAD_SUMMARY_METRICS:
                lines[host].append(load_line(factor))
        if report['gate']['requested']:
            lines[host].append(host_gate_line(report['gate'], host))
        harms = [harm_text(harm) for harm in report['harm'] if harm['host'] == host]
        lines[host].append('worse with 95 %% confidence: %s' % ('; '.join(harms) if harms else 'nothing'))
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# Under load against idle

LOAD_HEADING = 'Under load against idle'
LOAD_HEADER = ('Tool', 'Arm', 'Metric', 'Idle', 'Loaded', 'Factor [95 % CI]', 'Rounds', 'As if idle (x%.3g)'
               % AS_IF_IDLE)
LOAD_VERDICTS = {WITHIN: 'yes', BEYOND: 'no', UNDECIDED: 'undecided'}
# The loaded tails the play's summary lines give: those of the inference server and the agent sessions.
LOAD_SUMMARY_METRICS = ('ttft_p99_ms', 'itl_p99_ms', 'session_step_p99_ms')


def load_sentence():
    return ('Each round\'s loaded figure over the same arm\'s idle one, with the 95 %% interval of the median. The arm '
            'serves as if idle where the whole interval lies at or under x%.3g.' % AS_IF_IDLE)


def load_rows(factors):
    rows = []
    for factor in factors:
        stats, metric = factor['factor'], factor['metric']
        rows.append((factor['tool'], factor['label'], DISPLAY.get(metric, metric),
                     fmt_number(factor['idle']) + unit_of(metric), fmt_number(factor['load']) + unit_of(metric),
                     fmt_ratio(stats), str(factor['rounds']),
                     LOAD_VERDICTS.get(factor['verdict'], 'no verdict: %s' % plural(factor['rounds'], 'round'))))
    return rows


def load_line(factor):
    """``server balanced ttft_p99_ms under load x1.21 [1.1-1.3] of idle, as if idle``."""
    stats = factor['factor']
    text = '%s %s %s under load x%.3g' % (factor['tool'], factor['label'], factor['metric'], stats['median'])
    if stats['low'] is not None:
        text += ' [%.3g-%.3g]' % (stats['low'], stats['high'])
    verdict = {WITHIN: 'as if idle', BEYOND: 'not as if idle', UNDECIDED: 'undecided'}.get(
        factor['verdict'], 'no verdict')
    return '%s of idle, %s' % (text, verdict)


# ---------------------------------------------------------------------------------------------------------------------
# Markdown

HEADER = ('Metric', 'Before', 'After', 'Ratio [95 % CI]', 'Pairs better', 'Verdict')


def markdown_table(rows):
    lines = ['| %s |' % ' | '.join(HEADER), '|%s' % ('---|' * len(HEADER))]
    lines += ['| %s |' % ' | '.join(row[:len(HEADER)]) for row in rows]
    return '\n'.join(lines)


def comparison_rows(comparison):
    """(name, before, after, ratio, pairs, verdict text, verdict) per metric of a host's comparison."""
    rows = []
    for metric, name in table_rows(comparison['metrics']):
        values = comparison['metrics'][metric]
        rows.append((name, fmt_value(values['before'], metric), fmt_value(values['after'], metric),
                     fmt_ratio(values['ratio']), fmt_pairs(values['verdict']),
                     fmt_verdict(values['verdict'], values['delta_pct']), values['verdict']))
    return rows


def fleet_rows(metrics):
    """The same over the fleet: the hosts' medians, the median of their ratios with its spread over the hosts."""
    rows = []
    for metric, name in table_rows(metrics):
        values = metrics[metric]
        spread = values['ratio']
        ratio = '×%s' % fmt_number(spread['median']) if spread['median'] is not None else 'n/a'
        if spread['median'] is not None and spread['min'] != spread['max']:
            ratio += ' (hosts %s–%s)' % (fmt_number(spread['min']), fmt_number(spread['max']))
        rows.append((name, fmt_value({'median': values['before']}, metric),
                     fmt_value({'median': values['after']}, metric), ratio, plural(len(values['hosts']), 'host'),
                     fmt_verdict(values['verdict'], values['delta_pct']), values['verdict']))
    return rows


def gate_sentence(gate):
    """The gate's verdict for the report, or None where no gate was asked for."""
    if not gate['requested']:
        return None
    if not gate['evaluated']:
        return '%s: not evaluated, %s.' % (gate_heading(gate), gate['reason'])
    return '%s: %s, %s.' % (gate_heading(gate), 'REGRESSED' if gate['regressed'] else 'passed', gate['reason'])


INTRODUCTION = (
    'Generated %s. Before is the %s arm and After the mode, each the median over the rounds with its coefficient '
    'of variation (CV) over them. Ratio is the median of the paired ratios After/Before, each pair from one round, '
    'with its %d %% bootstrap confidence interval over the rounds; Pairs better counts the rounds in which the mode '
    'did better. The verdict is a change (better or worse, coloured) only where the interval lies on one side of ×1 '
    'and the Wilcoxon signed-rank test of the pairs agrees (p < %.2f); an interval that includes ×1 is no effect; '
    'with fewer than %d pairs there is no interval and no verdict.')


def introduction(report, code):
    return INTRODUCTION % (report['generated_at'], code(report['baseline_label']), round(CONFIDENCE * 100),
                           1 - CONFIDENCE, MIN_PAIRS)


def noisy_sentence(scenario, findings):
    return 'Measured under foreign load in %s: %s. Their pairs count as the others do; the intervals carry the ' \
           'extra spread.' % (scenario, '; '.join(findings))


HARM_HEADING = 'Do no harm: what a mode makes worse with 95 % confidence'


def harm_items(report):
    return [harm['host'] + ': ' + harm_text(harm) for harm in report['harm']]


def render_markdown(report):
    out = ['# %s' % report['title'], '', introduction(report, lambda text: '`%s`' % text), '']
    if plan_sentence(report):
        out += [plan_sentence(report), '']
    if gate_sentence(report['gate']):
        out += [gate_sentence(report['gate']), '']
    if report['fleet'] and len(report['hosts']) > 1:
        out += ['## Fleet', '']
        for scenario, labels in sorted(report['fleet'].items()):
            for label, metrics in labels.items():
                hosts = max((len(v['hosts']) for v in metrics.values()), default=0)
                out += ['### %s: %s vs %s (%s)' % (scenario, label, report['baseline_label'], plural(hosts, 'host')), '',
                        markdown_table(fleet_rows(metrics)), '']
    for host, scenarios in sorted(report['hosts'].items()):
        out += ['## %s' % host, '']
        for scenario, data in sorted(scenarios.items()):
            if not data['comparisons']:
                arms = ', '.join('%s (%d)' % (label, info['arms']) for label, info in data['labels'].items())
                out += ['### %s' % scenario, '', 'Arms: %s; nothing to compare.' % arms, '']
            for label, comparison in data['comparisons'].items():
                pairs = plural(len(comparison['pairs']), 'pair')
                out += ['### %s: %s vs %s (%s)' % (scenario, label, report['baseline_label'], pairs), '',
                        markdown_table(comparison_rows(comparison)), '']
            if data['noise']:
                out += [noisy_sentence(scenario, data['noise']), '']
        factors = (report.get('load_factors') or {}).get(host)
        if factors:
            rows = load_rows(factors)
            out += ['### %s' % LOAD_HEADING, '', load_sentence(), '', '| %s |' % ' | '.join(LOAD_HEADER),
                    '|%s' % ('---|' * len(LOAD_HEADER))] + ['| %s |' % ' | '.join(row) for row in rows] + ['']
    if report['warnings']:
        out += ['## Warnings', ''] + ['- %s' % warning for warning in report['warnings']] + ['']
    out += ['## %s' % HARM_HEADING, '']
    out += ['- %s' % item for item in harm_items(report)] or ['Nothing: no metric is worse with 95 % confidence.']
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------------------------------------------------------------
# HTML

def html_table(rows):
    escape = html.escape
    lines = ['<table>', '<tr>%s</tr>' % ''.join('<th>%s</th>' % escape(name) for name in HEADER)]
    for name, before, after, ratio, pairs, verdict_text, verdict in rows:
        css = ' class="%s"' % verdict_class(verdict) if verdict_class(verdict) else ''
        lines.append('<tr><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td><td>%s</td><td%s>%s</td></tr>' % (
            escape(name), escape(before), escape(after), css, escape(ratio), escape(pairs), css,
            escape(verdict_text)))
    lines.append('</table>')
    return '\n'.join(lines)


def html_harm(report):
    escape = html.escape
    items = harm_items(report)
    if not items:
        return '<h2>%s</h2><p class="no-harm">Nothing: no metric is worse with 95 %% confidence.</p>' % escape(
            HARM_HEADING)
    return '<h2>%s</h2><ul class="harm">%s</ul>' % (escape(HARM_HEADING),
                                                    ''.join('<li>%s</li>' % escape(item) for item in items))


def render_html(report, charts):
    escape = html.escape
    gate = report['gate']
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<title>%s</title>' % escape(report['title']), '<style>%s</style></head><body>' % CSS,
           '<h1>%s</h1>' % escape(report['title']),
           '<p>%s</p>' % introduction(report, lambda text: '<code>%s</code>' % escape(text))]
    if plan_sentence(report):
        out.append('<p>%s</p>' % escape(plan_sentence(report)))
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
        factors = (report.get('load_factors') or {}).get(host)
        if factors:
            out.append('<h3>%s</h3><p>%s</p><table><tr>%s</tr>' % (
                escape(LOAD_HEADING), escape(load_sentence()), ''.join('<th>%s</th>' % escape(h) for h in LOAD_HEADER)))
            for row, factor in zip(load_rows(factors), factors):
                css = {WITHIN: ' class="better"', BEYOND: ' class="worse"'}.get(factor['verdict'], '')
                out.append('<tr>%s<td%s>%s</td></tr>' % (''.join('<td>%s</td>' % escape(cell) for cell in row[:-1]),
                                                         css, escape(row[-1])))
            out.append('</table>')
    if report['warnings']:
        out.append('<h2>Warnings</h2><ul>%s</ul>' % ''.join('<li>%s</li>' % escape(w) for w in report['warnings']))
    out.append(html_harm(report))
    out.append('</body></html>')
    return '\n'.join(out) + '\n'
