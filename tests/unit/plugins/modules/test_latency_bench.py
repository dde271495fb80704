# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""latency_bench through its real main(): brief real runs, the tools where installed, and the input it refuses."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.aitune.kernel.plugins.modules import latency_bench
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.plugins.module_utils.test_bench_endpoint import (
    ROUNDING_MS, FakeInferenceServer, closed_port, record_connects)
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

BAD_INPUT = load_cases('bench_bad_input.yml')

BRIEF = {'duration_s': 0.5, 'warmup_s': 0.1, 'repetitions': 1}


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not os.path.exists('/proc/%d' % pid)
    return False


@pytest.fixture(scope='module')
def calibration_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp('calibration') / 'bench-calibration.json')


def bench(calibration_file, check_mode=False, **args):
    options = dict(BRIEF, calibration_file=calibration_file)
    options.update(args)
    return run_module(latency_bench, options, check_mode=check_mode)


def assert_clean(results):
    assert results['pids']['remaining'] == []
    for entry in results['pids']['started']:
        assert gone(entry['pid']), entry


@pytest.mark.parametrize('check_mode', [False, True], ids=['run', 'check-mode'])
def test_ring_runs_in_both_modes_and_never_reports_changed(calibration_file, check_mode):
    code, result = bench(calibration_file, check_mode=check_mode)
    assert code == 0, result
    assert result['changed'] is False
    results = result['benchmark']
    assert set(results) == {'tool', 'workload', 'condition', 'parameters', 'runs', 'summary', 'host', 'placement',
                            'pids', 'warnings', 'worker', 'worker_build', 'server'}
    assert results['server'] is None
    assert results['worker'] in ('native', 'python') and results['parameters']['worker'] == results['worker']
    assert results['tool'] == 'agent' and results['workload'] == 'ring' and results['condition'] == 'idle'
    metrics = results['summary']['metrics']
    assert 0 < metrics['wake_p50_us']['median'] <= metrics['wake_p99_us']['median']
    assert metrics['steps_per_s']['median'] > 0
    assert results['host']['calibration']['iterations_per_us'] > 0
    assert results['parameters']['iterations'] >= 1
    assert_clean(results)


def test_an_arm_s_label_and_pair_come_back_with_the_measurement(calibration_file):
    # So the registered benchmark is an arm of bench_report's input as it is.
    code, result = bench(calibration_file, label='balanced', pair=2)
    assert code == 0, result
    assert result['benchmark']['label'] == 'balanced' and result['benchmark']['pair'] == 2
    assert_clean(result['benchmark'])


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_is_refused_clearly(calibration_file, case):
    if case.get('needs') and not shutil.which(case['needs']):
        pytest.skip('%s is not installed' % case['needs'])
    code, result = bench(calibration_file, **case['args'])
    assert code == 1 and result['failed'] is True, result
    for word in case['error']:
        assert word in result['msg'], (word, result['msg'])
    # Nothing was started for input that is refused up front.
    assert not (result.get('benchmark') or {}).get('pids', {}).get('started')


def test_tool_options_must_come_with_their_settings(calibration_file):
    code, result = bench(calibration_file, tool='fio')
    assert code == 1 and 'fio' in result['msg']


def test_endpoint_reports_ttft_near_the_servers_delay_and_hides_the_key(calibration_file):
    with FakeInferenceServer(first_delay_s=0.08, token_gap_s=0.005, tokens=3) as server:
        code, result = bench(calibration_file, tool='endpoint', condition='load', load_fraction=0.5,
                             endpoint={'url': server.url, 'model': 'm', 'requests': 3, 'concurrency': 1,
                                       'api_key': 'sekrit-key', 'metrics_url': server.url + '/metrics'})
    assert code == 0, result
    results = result['benchmark']
    metrics = results['summary']['metrics']
    # The server holds the first token 80 ms and the two others 5 ms each: TTFT cannot be less than 80 ms, nor a
    # request less than 90 ms, nor more than its request (one repetition: the medians are its figures). No upper bound
    # in time: the run's own CPU hogs and a busy host only add to them.
    ttft, request = metrics['ttft_p50_ms']['median'], metrics['request_p50_ms']['median']
    assert 80 - ROUNDING_MS <= ttft <= request and request >= 90 - ROUNDING_MS, metrics
    assert ttft <= metrics['ttft_p99_ms']['median'] <= metrics['request_p99_ms']['median'], metrics
    assert metrics['requests_ok']['median'] == 3
    assert metrics['queue_time_mean_ms']['median'] is not None
    assert results['summary']['primary'] == 'ttft'
    assert 'api_key' not in results['parameters']['endpoint']
    assert 'sekrit-key' not in repr(result)
    assert [e['role'] for e in results['pids']['started']].count('load') >= 1
    assert_clean(results)


def test_unreachable_endpoint_fails_fast(calibration_file, monkeypatch):
    port = closed_port()
    connects = record_connects(monkeypatch)
    code, result = bench(calibration_file, tool='endpoint', condition='load',
                         endpoint={'url': 'http://127.0.0.1:%d' % port, 'model': 'm', 'connect_timeout_s': 1.0})
    assert code == 1
    # Fast: one connect with the configured timeout, failed on the refusal, before any load or window was started.
    assert connects == [(('127.0.0.1', port), 1.0)]
    assert 'refused' in result['msg'].lower()
    assert not (result.get('benchmark') or {}).get('pids', {}).get('started')
    assert 'unreachable' in result['msg'] and '127.0.0.1:%d' % port in result['msg']


@pytest.mark.skipif(not shutil.which('cyclictest'), reason='cyclictest is not installed')
def test_cyclictest_runs_with_default_system_and_its_histogram_is_parsed(calibration_file):
    code, result = bench(calibration_file, tool='cyclictest', cyclictest={'interval_us': 500, 'histogram_us': 2000})
    assert code == 0, result
    run = result['benchmark']['runs'][0]
    assert '--default-system' in run['argv'] and '--policy=other' in run['argv']
    assert not any(arg.startswith('--priority') for arg in run['argv'])
    # The settings reach cyclictest. How many wakes it then gets in its second depends on the load, so the count has
    # no floor; the histogram's rows must have been read, though, not only its overflow count: of some thousands of
    # wakes, not one within 2 ms would mean the host is not running this test at all. (The parser's arithmetic is
    # checked on fixed output in test_bench_stats.)
    assert '--interval=500' in run['argv'] and '--histogram=2000' in run['argv'] and '--duration=1' in run['argv']
    metrics = run['metrics']
    assert 0 <= metrics['overflows'] < metrics['samples'], metrics
    assert 0 <= metrics['latency_p50_us'] <= metrics['latency_p99_us'] <= metrics['latency_max_us']
    assert_clean(result['benchmark'])


@pytest.mark.parametrize('target, words', [
    ('directory', 'is neither a regular file nor a block device'),
    ('/dev/null', 'is neither a regular file nor a block device'),
    ('missing', 'No such file or directory'),
    ('small', 'smaller than one 4 KiB block'),
    ('write', 'set fio.allow_write: true'),
])
def test_fio_refuses_a_path_it_must_not_use(calibration_file, tmp_path, monkeypatch, target, words):
    # Only fio's presence is stood in for (these checks run before fio would); the path checks are the real ones.
    real_which = shutil.which
    monkeypatch.setattr(shutil, 'which', lambda name, *args, **kwargs: '/usr/bin/fio' if name == 'fio'
                        else real_which(name, *args, **kwargs))
    data = tmp_path / 'data.bin'
    data.write_bytes(b'\0' * (8192 if target != 'small' else 100))
    fio = {'path': {'directory': str(tmp_path), '/dev/null': '/dev/null', 'missing': str(tmp_path / 'none')}.get(
        target, str(data)), 'direct': False}
    if target == 'write':
        fio['rw'] = 'randwrite'
    before = data.read_bytes()
    code, result = bench(calibration_file, tool='fio', fio=fio)
    assert code == 1 and words in result['msg'], result
    assert data.read_bytes() == before


@pytest.mark.skipif(not shutil.which('fio'), reason='fio is not installed')
def test_fio_reads_a_file_read_only_and_writes_only_when_allowed(calibration_file, tmp_path):
    data = tmp_path / 'data.bin'
    data.write_bytes(os.urandom(1024 * 1024))
    before = data.read_bytes()
    code, result = bench(calibration_file, tool='fio', fio={'path': str(data), 'direct': False})
    assert code == 0, result
    run = result['benchmark']['runs'][0]
    assert '--readonly' in run['argv']
    assert run['metrics']['iops'] > 0 and run['metrics']['io_p50_us'] > 0
    assert data.read_bytes() == before
    assert_clean(result['benchmark'])
    code, result = bench(calibration_file, tool='fio', fio={'path': str(data), 'rw': 'randwrite', 'direct': False})
    assert code == 1 and 'allow_write' in result['msg']
    assert data.read_bytes() == before
    writable = {'path': str(data), 'rw': 'randwrite', 'direct': False, 'allow_write': True}
    code, result = bench(calibration_file, tool='fio', fio=writable)
    assert code == 0, result
    assert result['benchmark']['runs'][0]['metrics']['iops'] > 0
    assert os.path.getsize(str(data)) == len(before)
