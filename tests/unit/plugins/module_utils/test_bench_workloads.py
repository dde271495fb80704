# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The real workloads, run briefly on this machine: the numbers must be sane, placement must be applied or refused
clearly, and no process the benchmark started may outlive it, also when it is terminated mid-run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench, _bench_host, _bench_native

# The Python worker: test_bench_native runs the native one.
BRIEF = dict(tool='agent', workload='ring', condition='idle', workers=2, compute_us=100, duration_s=0.5,
             warmup_s=0.1, repetitions=1, rate_hz=1000.0, load_fraction=1.0, placement_required=True,
             gpu_sample_interval_s=1.0, worker='python')


def gone(pid):
    """True when no process has this PID: kill(pid, 0) fails with ESRCH and /proc has no entry."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not os.path.exists('/proc/%d' % pid)
    return False


def assert_nothing_left(results):
    assert results['pids']['started'], 'the run should have started processes'
    assert results['pids']['remaining'] == []
    for entry in results['pids']['started']:
        assert gone(entry['pid']), entry


@pytest.fixture(scope='module')
def calibration_file(tmp_path_factory):
    """One calibration for the whole file, as on a real host; the tests then run with a fixed step size."""
    path = str(tmp_path_factory.mktemp('calibration') / 'bench-calibration.json')
    scratch = tempfile.mkdtemp()
    try:
        with _bench.ProcessSet(scratch) as processes:
            _bench.spin_calibration(processes, _bench.PythonWorker(sys.executable), path, False, True, [])
    finally:
        shutil.rmtree(scratch)
    return path


def run(calibration_file, **overrides):
    options = dict(BRIEF, calibration_file=calibration_file)
    options.update(overrides)
    return _bench.run_benchmark(options)


def assert_ordered_latencies(metrics, prefix='wake'):
    values = [metrics['%s_%s_us' % (prefix, name)] for name in ('p50', 'p90', 'p99', 'p999', 'max')]
    assert all(value is not None and value > 0 for value in values), metrics
    assert values == sorted(values), metrics


def test_ring_idle_measures_sane_numbers_and_leaves_no_process(calibration_file):
    results = run(calibration_file, repetitions=2)
    assert [r['repetition'] for r in results['runs']] == [1, 2]
    assert results['host']['calibration']['source'] == 'file'
    for rep in results['runs']:
        metrics = rep['metrics']
        assert_ordered_latencies(metrics)
        # Each wake is the first part of its step, which adds the compute: smaller sample by sample, so at every
        # percentile. (No bound in time on the wake itself: on a busy host a wake can take a whole time slice.)
        assert metrics['wake_p50_us'] < metrics['step_p50_us'] and metrics['wake_p99_us'] < metrics['step_p99_us']
        # Each step includes the ~100 us of compute, so two workers in turn manage at most ~10000 steps/s. How many
        # they manage depends on the load, so there is no lower bound; some there must be.
        assert metrics['step_p50_us'] >= 50
        assert 0 < metrics['steps_per_s'] <= 12000
        assert rep['window_s'] == BRIEF['duration_s']
        assert metrics['steps'] == pytest.approx(metrics['steps_per_s'] * rep['window_s'], rel=0.01)
        # The ring carries one token, so its steps follow each other through the window: the mean step is
        # 1e6 / steps_per_s us, and a median is at most twice a mean (x4 leaves room for the steps across the window's
        # ends). This holds however busy the host is, and ties the step's unit to the rate's.
        assert metrics['step_p50_us'] <= 4e6 / metrics['steps_per_s'], metrics
        # Every step is a sleep on the eventfd and a wake: about one voluntary switch per step.
        assert 300 <= metrics['vcsw_per_1k_steps'] <= 1500
        assert metrics['runq_delay_per_step_us'] >= 0
        assert rep['gpu']['present'] in (True, False)
        assert rep['distribution']['metric'] == 'wake_us' and len(rep['distribution']['values']) == 14
    summary = results['summary']
    assert summary['repetitions'] == 2 and summary['primary'] == 'wake'
    p50 = summary['metrics']['wake_p50_us']
    assert p50['min'] <= p50['median'] <= p50['max']
    assert summary['cv_p50'] is not None
    roles = sorted(entry['role'] for entry in results['pids']['started'])
    assert roles == ['worker'] * 4
    assert results['worker'] == 'python' and results['parameters']['worker'] == 'python'
    assert results['worker_build']['fallback'] is None
    assert results['parameters']['primitive'] == ('eventfd' if hasattr(os, 'eventfd') else 'pipe')
    assert results['host']['nproc'] >= 1 and results['host']['kernel']
    assert_nothing_left(results)


def test_periodic_under_load_keeps_the_rate_and_stops_the_hogs(calibration_file):
    results = run(calibration_file, workload='periodic', condition='load', rate_hz=500.0, load_fraction=0.5)
    metrics = results['runs'][0]['metrics']
    assert_ordered_latencies(metrics)
    assert metrics['wake_p50_us'] < metrics['step_p50_us'] and metrics['wake_p99_us'] < metrics['step_p99_us']
    # The dispatcher posts at most one token per 2 ms slot and skips the slots it missed rather than catching up, so the
    # workers never run faster than the rate. How close to it they come depends on the load (hogs here, and whatever
    # else runs on the host), so there is no lower bound on the rate: the workers must serve a fair share of what the
    # dispatcher did post, which fails when tokens are lost or steps are not counted.
    assert 0 < metrics['steps_per_s'] <= 1.05 * 500
    assert metrics['timer_lateness_p50_us'] is not None and metrics['timer_lateness_p50_us'] >= 0
    assert metrics['posted'] >= metrics['steps'] - 2
    assert metrics['steps'] >= 0.2 * metrics['posted'], metrics
    roles = [entry['role'] for entry in results['pids']['started']]
    expected_hogs = max(1, int(results['host']['nproc'] * 0.5 + 0.5))
    assert roles.count('load') == expected_hogs and results['placement']['load']['hogs'] == expected_hogs
    assert roles.count('worker') == 2 and roles.count('dispatcher') == 1
    assert_nothing_left(results)


def test_missing_cgroup_fails_clearly_unless_placement_is_optional(calibration_file):
    missing = '/sys/fs/cgroup/aitune-no-such-group-%d' % os.getpid()
    with pytest.raises(_bench.BenchError) as error:
        run(calibration_file, cgroup=missing, condition='load')
    assert missing in str(error.value) and 'placement_required' in str(error.value)
    # Refused before any hog or worker started.
    assert error.value.results['pids']['started'] == []
    results = run(calibration_file, cgroup=missing, placement_required=False)
    assert results['placement']['workers']['method'] is None
    assert any(missing in message for message in results['placement']['workers']['skipped'])
    assert any(missing in message for message in results['warnings'])
    assert results['runs'][0]['metrics']['steps'] > 0
    assert_nothing_left(results)


def test_slice_without_systemd_is_refused(calibration_file):
    if _bench_host.systemd_is_pid1():
        pytest.skip('systemd is PID 1 here')
    with pytest.raises(_bench.BenchError) as error:
        run(calibration_file, slice='aitune-latency.slice')
    assert 'systemd is not PID 1' in str(error.value)


def writable_cgroup_parent():
    if os.geteuid() != 0:
        return None
    for parent in (_bench_host.cgroup2_mount(), '/sys/fs/cgroup/cpu'):
        if parent and os.path.isdir(parent) and os.access(parent, os.W_OK):
            return parent
    return None


def test_workers_and_load_run_in_their_cgroups(calibration_file):
    parent = writable_cgroup_parent()
    if parent is None:
        pytest.skip('needs root and a writable cgroup hierarchy')
    workers_dir = os.path.join(parent, 'aitune-test-workers-%d' % os.getpid())
    load_dir = os.path.join(parent, 'aitune-test-load-%d' % os.getpid())
    os.mkdir(workers_dir)
    os.mkdir(load_dir)
    try:
        results = run(calibration_file, condition='load', load_fraction=0.5, cgroup=workers_dir,
                      load_cgroup=load_dir)
    finally:
        os.rmdir(workers_dir)
        os.rmdir(load_dir)
    assert results['placement']['workers']['method'] == 'cgroup.procs'
    assert results['placement']['workers']['cgroup'] == workers_dir
    assert results['placement']['load']['cgroup'] == load_dir
    assert results['runs'][0]['metrics']['steps'] > 0
    if os.path.exists(os.path.join(parent, 'cpu.pressure')) or parent == _bench_host.cgroup2_mount():
        assert results['runs'][0]['cgroup_pressure_file'] == os.path.join(workers_dir, 'cpu.pressure')
        assert results['runs'][0]['metrics']['cgroup_psi_cpu_some_pct'] is not None
    assert_nothing_left(results)


def test_policy_slack_and_affinity_are_applied_or_refused(calibration_file):
    first_cpu = _bench.online_cpus()[0]
    options = dict(policy='fifo', priority=5, timer_slack_ns=1, cpus=str(first_cpu))
    if os.geteuid() != 0:
        with pytest.raises(_bench.BenchError) as error:
            run(calibration_file, **options)
        assert 'policy' in str(error.value) and 'placement_required' in str(error.value)
        return
    results = run(calibration_file, **options)
    placement = results['placement']['workers']
    assert placement['policy'] == 'fifo' and placement['priority'] == 5
    assert placement['timer_slack_ns'] == 1 and placement['cpus'] == str(first_cpu)
    assert results['runs'][0]['metrics']['steps'] > 0
    assert_nothing_left(results)


def test_check_mode_measures_but_does_not_store_the_calibration(tmp_path):
    path = str(tmp_path / 'sub' / 'calibration.json')
    options = dict(BRIEF, calibration_file=path)
    results = _bench.run_benchmark(options, check_mode=True)
    assert not os.path.exists(path)
    assert 'check mode' in results['host']['calibration']['source']
    assert [e['role'] for e in results['pids']['started']].count('calibrate') == 1
    assert_nothing_left(results)


def test_gpu_sampling_reads_nvidia_smi_when_present(calibration_file, tmp_path, monkeypatch):
    fake = tmp_path / 'nvidia-smi'
    fake.write_text('#!/bin/sh\necho "37, 1410"\necho "[N/A], 1980"\n')
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (tmp_path, os.environ.get('PATH', '')))
    results = run(calibration_file, gpu_sample_interval_s=0.1)
    gpu = results['runs'][0]['gpu']
    assert gpu['present'] is True and len(gpu['gpus']) == 2
    assert gpu['gpus'][0]['util_pct_mean'] == 37.0 and gpu['gpus'][1]['util_pct_mean'] is None
    assert results['runs'][0]['metrics']['gpu_util_pct_mean'] == 37.0
    assert results['runs'][0]['metrics']['gpu_sm_clock_mhz_mean'] == pytest.approx((1410 + 1980) / 2.0)
    assert any(entry['role'] == 'nvidia-smi' for entry in results['pids']['started'])
    assert_nothing_left(results)


def children_of(parent_pid):
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        stat = _bench_host.read_text('/proc/%s/stat' % name)
        if stat and int(stat[stat.rindex(')') + 2:].split()[1]) == parent_pid:
            found.append(int(name))
    return found


@pytest.mark.parametrize('worker', ['python', 'native'])
def test_sigterm_mid_run_kills_every_started_process(calibration_file, tmp_path, worker):
    if worker == 'native' and _bench_native.find_compiler() is None:
        pytest.skip('no C compiler (cc, gcc or clang) on PATH')
    script = tmp_path / 'bench.py'
    script.write_text(textwrap.dedent('''
        import json, sys
        sys.path[:0] = json.loads(sys.argv[1])
        from ansible_collections.aitune.kernel.plugins.module_utils import _bench
        options = json.loads(sys.argv[2])
        try:
            _bench.run_benchmark(options)
        except _bench.BenchError as exc:
            print(json.dumps({'msg': str(exc), 'pids': exc.results['pids']}))
            sys.exit(3)
    '''))
    options = dict(BRIEF, calibration_file=calibration_file, condition='load', load_fraction=0.5, duration_s=30,
                   worker=worker)
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(sys.path), json.dumps(options)],
                            stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        children = []
        # One hog and two workers.
        while len(children) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            children = children_of(proc.pid)
        assert len(children) >= 3, children
        time.sleep(0.2)
        children = children_of(proc.pid)
        programs = [(_bench_host.read_text('/proc/%d/cmdline' % pid) or '').split('\0')[0] for pid in children]
        assert (worker == 'native') == any(program.endswith('/worker') for program in programs), programs
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert 'interrupted' in report['msg'] and 'signal 15' in report['msg']
    assert report['pids']['remaining'] == []
    started = {entry['pid'] for entry in report['pids']['started']}
    assert set(children) <= started
    for pid in started:
        assert gone(pid), pid
