# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The benchmark's arithmetic and parsers: percentiles, ratios, and the kernel and tool outputs it reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench_host, _bench_stats, _bench_tools, _bench_verdict
from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import (
    histogram_delta, histogram_quantile, parse_histogram)
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases


MATH = load_cases('bench_math.yml')


def values_of(case):
    return list(range(1, case['range'] + 1)) if 'range' in case else case['values']


@pytest.mark.parametrize('case', MATH['percentile'], ids=[c['id'] for c in MATH['percentile']])
def test_percentile(case):
    result = _bench_stats.percentile(sorted(values_of(case)), case['q'])
    assert result == pytest.approx(case['expected']) if case['expected'] is not None else result is None


@pytest.mark.parametrize('case', MATH['cv'], ids=[c['id'] for c in MATH['cv']])
def test_coefficient_of_variation(case):
    result = _bench_stats.coefficient_of_variation(case['values'])
    if case['expected'] is None:
        assert result is None
    else:
        assert result == pytest.approx(case['expected'], abs=1e-4)


@pytest.mark.parametrize('case', MATH['ratio_stats'], ids=[c['id'] for c in MATH['ratio_stats']])
def test_ratio_stats(case):
    stats = _bench_stats.ratio_stats([_bench_stats.ratio(before, after) for before, after in case['pairs']])
    assert stats['n'] == case['n']
    for key in ('median', 'min', 'max'):
        assert stats[key] == (pytest.approx(case[key]) if case[key] is not None else None)


@pytest.mark.parametrize('case', MATH['latency_summary'], ids=[c['id'] for c in MATH['latency_summary']])
def test_latency_summary(case):
    start, stop, step = case['range_ns']
    summary = _bench_stats.latency_summary(list(range(start, stop + 1, step)), 'wake')
    for key, expected in case['expected'].items():
        assert summary[key] == (pytest.approx(expected) if expected is not None else None), key


def test_summarize_runs_gives_median_min_max_and_cv():
    runs = [{'metrics': {'wake_p50_us': v, 'wake_p99_us': v * 10, 'gpu_util_pct_mean': None},
             'distribution': {'metric': 'wake_us', 'quantiles': [50, 99], 'values': [v, v * 10]}}
            for v in (10.0, 12.0, 11.0)]
    summary = _bench_stats.summarize_runs(runs, 'wake')
    assert summary['metrics']['wake_p50_us'] == {'median': 11.0, 'min': 10.0, 'max': 12.0}
    assert summary['metrics']['gpu_util_pct_mean'] == {'median': None, 'min': None, 'max': None}
    assert summary['cv_p50'] == pytest.approx(0.0909, abs=1e-4)
    assert summary['distribution']['values'] == [11.0, 110.0]
    assert summary['repetitions'] == 3 and summary['primary'] == 'wake'


# -- kernel files -------------------------------------------------------------------------------------------------

def test_parse_schedstat_and_status():
    assert _bench_host.parse_schedstat('123456 7890 42\n') == (123456, 7890, 42)
    status = 'Name:\tpython3\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1500\nnonvoluntary_ctxt_switches:\t7\n'
    assert _bench_host.parse_ctxt_switches(status) == (1500, 7)


def test_parse_pressure_and_proc_stat():
    pressure = _bench_host.parse_pressure('some avg10=0.44 avg60=0.82 avg300=3.06 total=491726378\n'
                                          'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')
    assert pressure['some'] == {'avg10': 0.44, 'avg60': 0.82, 'avg300': 3.06, 'total': 491726378}
    assert pressure['full']['total'] == 0
    assert _bench_host.parse_pressure(None) == {}
    stat = 'cpu  100 5 50 1000 10 1 2 30 7 0\ncpu0 50 2 25 500 5 0 1 15 3 0\nintr 1\n'
    assert _bench_host.parse_proc_stat_cpu(stat) == (30, 100 + 5 + 50 + 1000 + 10 + 1 + 2 + 30)


def test_counter_metrics_per_step_and_window():
    before = {'t_ns': 0, 'threads': {'runq_wait_ns': 1000000, 'timeslices': 0, 'voluntary': 100, 'nonvoluntary': 10},
              'psi': {'avg10': 1.0, 'total': 1000}, 'cgroup_psi': None, 'steal': (10, 1000)}
    after = {'t_ns': 2000000000, 'threads': {'runq_wait_ns': 5000000, 'timeslices': 0, 'voluntary': 2100,
                                             'nonvoluntary': 30},
             'psi': {'avg10': 5.0, 'total': 201000}, 'cgroup_psi': None, 'steal': (20, 1200)}
    metrics = _bench_host.counter_metrics(before, after, steps=2000)
    assert metrics['runq_delay_per_step_us'] == 2.0
    assert metrics['vcsw_per_1k_steps'] == 1000.0 and metrics['ivcsw_per_1k_steps'] == 10.0
    assert metrics['psi_cpu_some_pct'] == 10.0 and metrics['psi_cpu_some_avg10'] == 5.0
    assert metrics['steal_pct'] == 5.0
    assert metrics['cgroup_psi_cpu_some_pct'] is None


def test_foreign_cpu_is_busy_time_less_the_benchmark_s_own():
    stat = 'cpu  100 5 50 1000 10 1 2 30 7 0\n'
    assert _bench_host.parse_proc_stat_busy(stat) == 155
    # The command name may hold spaces and parentheses; utime, stime and the reaped children's times all count.
    text = '4242 (python3 (x) y) S 4200 4242 4242 0 -1 4194560 1 0 0 0 70 30 5 2 20 0 1 0 1 1 1\n'
    assert _bench_host.parse_process_stat(text) == (4200, 70 + 30 + 5 + 2)
    before = {'t_ns': 0, 'steal': (0, 1000), 'busy': 100, 'own': 40}
    after = {'t_ns': 10 ** 9, 'steal': (0, 2000), 'busy': 700, 'own': 440}
    # 600 busy ticks of 1000, 400 of them the benchmark's: foreign work took 20 % of all CPU time.
    assert _bench_host.system_metrics(before, after)['foreign_cpu_pct'] == 20.0
    # The benchmark's own time read later than the host's can exceed it by a tick: never below zero.
    assert _bench_host.system_metrics(before, dict(after, own=760))['foreign_cpu_pct'] == 0.0
    assert _bench_host.system_metrics({'t_ns': 0}, {'t_ns': 1})['foreign_cpu_pct'] is None


def test_own_cpu_ticks_follow_the_process_tree(monkeypatch, tmp_path):
    """The benchmark's own processes are this process and every one below it, wherever they run."""
    tree = {1: (0, 500), 100: (1, 10), 101: (100, 20), 102: (101, 30), 200: (1, 1000)}
    stats = {'/proc/%d/stat' % pid: '%d (x) S %d 0 0 0 0 0 0 0 0 0 %d 0 0 0\n' % (pid, parent, used)
             for pid, (parent, used) in tree.items()}
    monkeypatch.setattr(_bench_host.os, 'listdir', lambda path: [str(pid) for pid in tree] + ['self', 'stat'])
    monkeypatch.setattr(_bench_host, 'read_text', stats.get)
    assert _bench_host.own_cpu_ticks(100) == 60
    assert _bench_host.own_cpu_ticks(1) == 1560


def test_cgroup_paths():
    assert _bench_host.parse_cgroup_v2_path('12:cpu:/x\n0::/system.slice/aitune.scope\n') == '/system.slice/aitune.scope'
    assert _bench_host.parse_cgroup_v2_path('12:cpu:/x\n') is None


def test_cpu_lists_round_trip():
    assert _bench_host.parse_cpu_list('2-5,8') == [2, 3, 4, 5, 8]
    assert _bench_host.parse_cpu_list('0') == [0]
    assert format_cpulist([8, 2, 3, 4, 5, 10, 11]) == '2-5,8,10-11'
    online = _bench_host.online_cpus()
    assert online and _bench_host.validate_cpus(format_cpulist(online)) == online


# -- tool outputs -------------------------------------------------------------------------------------------------

CYCLICTEST_OUTPUT = '''# Histogram
000000 000000\t000000
000010 000080\t000070
000011 000015\t000020
000012 000004\t000008
000050 000001\t000000
# Total: 000000100 000000099
# Min Latencies: 00010 00010
# Avg Latencies: 00011 00012
# Max Latencies: 00250 00050
# Histogram Overflows: 00000 00001
'''


def test_parse_cyclictest_histogram():
    parsed = _bench_tools.parse_cyclictest(CYCLICTEST_OUTPUT)
    metrics = parsed['metrics']
    assert parsed['total'] == 199 and metrics['overflows'] == 1
    assert metrics['latency_p50_us'] == 10.0
    assert metrics['latency_p90_us'] == 11.0
    assert metrics['latency_p99_us'] == 50.0   # rank 197.01 of 199: past the 197 at or below 12 us
    # The 99.9th percentile falls among the overflows: reported as the maximum, an upper bound.
    assert metrics['latency_p999_us'] == 250.0 and metrics['latency_max_us'] == 250.0
    assert metrics['latency_min_us'] == 10.0 and metrics['latency_mean_us'] == 11.5
    assert parsed['distribution']['values'][-1] == 250.0


def test_cyclictest_arguments_never_hold_pm_qos_nor_pass_priority_with_other():
    argv = _bench_tools.cyclictest_argv('/usr/bin/cyclictest', {'duration_s': 1.5, 'workers': 2, 'cyclictest': {}})
    assert '--default-system' in argv and '--policy=other' in argv and '--duration=2' in argv
    assert not any(arg.startswith(('-p', '--priority')) for arg in argv)
    argv = _bench_tools.cyclictest_argv('/usr/bin/cyclictest', {'duration_s': 1, 'policy': 'batch', 'cpu_ids': [1, 2]})
    assert '--policy=batch' in argv and '--affinity=1-2' in argv
    assert not any(arg.startswith(('-p', '--priority')) for arg in argv)
    argv = _bench_tools.cyclictest_argv('/usr/bin/cyclictest', {'duration_s': 1, 'policy': 'fifo', 'priority': 20})
    assert '--policy=fifo' in argv and '--priority=20' in argv


def test_fio_arguments_and_json():
    argv = _bench_tools.fio_argv('/usr/bin/fio', {'duration_s': 2, 'warmup_s': 0.5, 'fio': {'path': '/data/a:b'}})
    assert '--readonly' in argv and '--rw=randread' in argv and '--bs=4k' in argv and '--iodepth=1' in argv
    assert '--filename=/data/a\\:b' in argv and '--runtime=2000ms' in argv and '--ramp_time=500ms' in argv
    argv = _bench_tools.fio_argv('/usr/bin/fio', {'duration_s': 2, 'fio': {'path': '/f', 'rw': 'randwrite'}})
    assert '--readonly' not in argv and '--rw=randwrite' in argv
    output = 'note: a banner\n' + json.dumps({'jobs': [{'error': 0, 'read': {
        'iops': 1234.56, 'clat_ns': {'max': 900000.0, 'mean': 80500.0, 'percentile': {
            '50.000000': 75776, '90.000000': 90112, '99.000000': 250880, '99.900000': 659456}}}}]})
    metrics = _bench_tools.parse_fio(output, 'randread')
    assert metrics == {'io_p50_us': 75.776, 'io_p90_us': 90.112, 'io_p99_us': 250.88, 'io_p999_us': 659.456,
                       'io_max_us': 900.0, 'io_mean_us': 80.5, 'iops': 1234.6}
    with pytest.raises(_bench_host.BenchError):
        _bench_tools.parse_fio('fio: no JSON here', 'randread')


def test_parse_nvidia_smi():
    assert _bench_tools.parse_nvidia_smi('45, 1980\n0, [N/A]\n') == [(45.0, 1980.0), (0.0, None)]
    report_absent = {'present': False}
    assert _bench_tools.gpu_metrics(report_absent) == {'gpu_util_pct_mean': None, 'gpu_sm_clock_mhz_mean': None}


VLLM_METRICS = '''# HELP vllm:request_queue_time_seconds Histogram of time spent in WAITING phase for request.
# TYPE vllm:request_queue_time_seconds histogram
vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} %(sum)s
vllm:request_queue_time_seconds_bucket{engine="0",le="0.01",model_name="m"} %(b1)s
vllm:request_queue_time_seconds_bucket{engine="0",le="0.1",model_name="m"} %(b2)s
vllm:request_queue_time_seconds_bucket{engine="0",le="1.0",model_name="m"} %(b3)s
vllm:request_queue_time_seconds_bucket{engine="0",le="+Inf",model_name="m"} %(count)s
vllm:request_queue_time_seconds_count{engine="0",model_name="m"} %(count)s
vllm:num_requests_running{engine="0",model_name="m"} 1.0
'''


def test_prometheus_histogram_delta_and_quantiles():
    before = parse_histogram(VLLM_METRICS % {'sum': 1.0, 'b1': 10, 'b2': 10, 'b3': 10, 'count': 10},
                             'vllm:request_queue_time_seconds')
    after = parse_histogram(VLLM_METRICS % {'sum': 6.0, 'b1': 60, 'b2': 100, 'b3': 110, 'count': 110},
                            'vllm:request_queue_time_seconds')
    delta = histogram_delta(before, after)
    assert delta['count'] == 100 and delta['sum'] == pytest.approx(5.0)
    # 50 of the 100 new requests waited under 10 ms, 40 more under 100 ms, 10 more under 1 s.
    assert histogram_quantile(50, delta['buckets']) == pytest.approx(0.01)
    assert histogram_quantile(70, delta['buckets']) == pytest.approx(0.01 + 0.09 * 20 / 40)
    assert histogram_quantile(99, delta['buckets']) == pytest.approx(0.1 + 0.9 * 9 / 10)
    assert parse_histogram('vllm:other 1\n', 'vllm:request_queue_time_seconds') is None


# -- comparing arms -----------------------------------------------------------------------------------------------

def arm(label, pair, p99, p50=10.0, condition='load', workload='ring'):
    return {'label': label, 'pair': pair, 'tool': 'agent', 'workload': workload, 'condition': condition,
            'summary': {'metrics': {'wake_p99_us': {'median': p99, 'min': p99, 'max': p99},
                                    'wake_p50_us': {'median': p50, 'min': p50, 'max': p50}}}}


def test_compare_host_pairs_by_index_and_takes_median_of_paired_ratios():
    arms = [arm('stock', 1, 4000), arm('balanced', 1, 40), arm('balanced', 2, 30), arm('stock', 2, 3000),
            arm('stock', 3, 3500), arm('balanced', 3, 70), arm('balanced', 4, 10), arm('stock', 1, 100, condition='idle'),
            arm('balanced', 1, 90, condition='idle')]
    hosts = {'h1': _bench_stats.compare_host(arms, 'stock')}
    loaded = hosts['h1']['ring/load']
    comparison = loaded['comparisons']['balanced']
    assert comparison['pairs'] == [1, 2, 3]   # pair 4 has no stock arm
    p99 = comparison['metrics']['wake_p99_us']
    assert p99['ratio']['median'] == pytest.approx(0.01) and p99['ratio']['n'] == 3
    assert p99['ratio']['min'] == pytest.approx(0.01) and p99['ratio']['max'] == pytest.approx(0.02)
    assert p99['before'] == {'median': 3500, 'min': 3000, 'max': 4000, 'values': [4000, 3000, 3500]}
    assert p99['ratios'] == [pytest.approx(0.01), pytest.approx(0.01), pytest.approx(0.02)]
    assert p99['after']['median'] == 35.0     # median over all four balanced arms
    assert p99['delta_pct'] == pytest.approx(-99.0)
    assert hosts['h1']['ring/idle']['comparisons']['balanced']['metrics']['wake_p99_us']['ratio']['median'] == 0.9
    gate = _bench_verdict.gate_hosts(hosts, 'wake_p99_us', 'load', 1.10, seed=0)
    assert gate['evaluated'] and gate['regressed'] is False and len(gate['checks']) == 1
    fleet = _bench_stats.compare_fleet({'h1': hosts['h1'], 'h2': _bench_stats.compare_host(
        [arm('stock', 1, 100), arm('balanced', 1, 150)], 'stock')})
    entry = fleet['ring/load']['balanced']['wake_p99_us']
    assert entry['hosts'] == ['h1', 'h2'] and entry['ratio']['min'] == pytest.approx(0.01)
    assert entry['ratio']['max'] == pytest.approx(1.5)
    one_worse_pair = {'h2': _bench_stats.compare_host([arm('stock', 1, 100), arm('balanced', 1, 150)], 'stock')}
    gate = _bench_verdict.gate_hosts(one_worse_pair, 'wake_p99_us', 'load', 1.10, seed=0)
    assert gate['regressed'] is True and gate['checks'][0]['host'] == 'h2'


def test_arms_without_pair_index_pair_in_order():
    arms = [arm('stock', None, 100), arm('balanced', None, 50), arm('stock', None, 200), arm('balanced', None, 50)]
    comparison = _bench_stats.compare_host(arms, 'stock')['ring/load']['comparisons']['balanced']
    assert comparison['pairs'] == [1, 2]
    assert comparison['metrics']['wake_p99_us']['ratio']['median'] == pytest.approx(0.375)
