# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The native worker: its input format, a real build with this host's compiler and brief real runs of it, the
fallback to the Python worker, and the faults (no compiler, a compiler that fails, a binary that fails its check, a
worker that crashes), each a clear message with no process and no temporary file left behind."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import unquote

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench, _bench_native, _bench_worker
from ansible_collections.aitune.kernel.tests.unit.plugins.module_utils.test_bench_endpoint import FakeInferenceServer
from ansible_collections.aitune.kernel.tests.unit.plugins.module_utils.test_bench_workloads import (
    BRIEF, assert_nothing_left, assert_ordered_latencies)

COMPILER = _bench_native.find_compiler()
needs_compiler = pytest.mark.skipif(COMPILER is None, reason='no C compiler (cc, gcc or clang) on PATH')

# A worker program in sh that a fake compiler "builds": it passes the build's check and calibrates, and then fails the
# way the test asks for (FAULT): before it is ready, or on the go line, by a signal.
FAKE_WORKER = r'''#!/bin/sh
if [ "$1" = "--check" ]; then
    read -r probe
    echo '%(check)s'
    exit 0
fi
read -r settings
case "$settings" in
    *role=calibrate*) echo '{"iterations_per_us": 100.0, "iterations": 10000, "p10_ns": 100000}'; exit 0 ;;
esac
if [ "%(fault)s" = "before-ready" ]; then
    echo "fake worker: crashed on its settings" >&2
    exit 3
fi
echo "{\"ready\": true, \"pid\": $$, \"applied\": {}, \"errors\": {}}"
read -r go
echo "fake worker: crashing mid-run" >&2
kill -SEGV $$
'''

# A compiler that answers --version and writes the fake worker to the -o path.
FAKE_CC = r'''#!/bin/sh
if [ "$1" = "--version" ]; then echo "fakecc 1.0"; exit 0; fi
out=
while [ $# -gt 0 ]; do
    if [ "$1" = "-o" ]; then out="$2"; shift; fi
    shift
done
cp "%(worker)s" "$out" && chmod 700 "$out"
'''


def write_script(path, text):
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """An empty directory that is the whole PATH, for the fake compilers (or none)."""
    directory = tmp_path / 'bin'
    directory.mkdir()
    monkeypatch.setenv('PATH', str(directory))
    return directory


@pytest.fixture
def fake_compiler(bin_dir, tmp_path, monkeypatch):
    """``fake_compiler(fault, check=None)``: a ``cc`` first on PATH (before the system's, for its cp and chmod) that
    builds the fake worker."""
    monkeypatch.setenv('PATH', '%s:%s' % (bin_dir, os.defpath))

    def make(fault, check=None):
        answer = check or {'ok': True, 'protocol': _bench_native.PROTOCOL, 'clock_ns': 1, 'fields': {
            key: _bench_native.flat_text(value) for key, value in _bench_native.CHECK_PROBE.items()}}
        worker = write_script(tmp_path / 'fake-worker', FAKE_WORKER % {
            'check': json.dumps(answer), 'fault': fault})
        return write_script(bin_dir / 'cc', FAKE_CC % {'worker': worker})
    return make


@pytest.fixture(scope='module')
def calibration_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp('calibration') / 'bench-calibration.json')


@pytest.fixture(scope='module')
def native_worker(tmp_path_factory):
    """One real build for the tests that use the binary directly."""
    if COMPILER is None:
        pytest.skip('no C compiler (cc, gcc or clang) on PATH')
    scratch = str(tmp_path_factory.mktemp('native'))
    with _bench.ProcessSet(scratch) as processes:
        yield _bench_native.build_native_worker(processes, scratch)


def run(calibration_file, **overrides):
    # Without the worker option, as a task that leaves it at its default (auto).
    options = {key: value for key, value in BRIEF.items() if key != 'worker'}
    options.update(calibration_file=calibration_file, duration_s=0.5, warmup_s=0.1)
    options.update(overrides)
    return _bench.run_benchmark(options)


def run_failing(calibration_file, **overrides):
    with pytest.raises(_bench.BenchError) as error:
        run(calibration_file, **overrides)
    return str(error.value), error.value.results


def assert_no_temporary_left(directory):
    assert os.listdir(str(directory)) == []


# ---------------------------------------------------------------------------------------------------------------------
# The input format

def test_the_flat_encoding_is_one_line_of_sorted_percent_encoded_fields():
    line = _bench_native.encode_message({
        'role': 'ring', 'in_fd': 5, 'cpus': [0, 2, 3], 'policy': None, 'go': True, 'rate_hz': 1000.5,
        'samples': '/tmp/scratch dir/w=0%\n\u00e9'})
    assert line.endswith(b'\n') and line.count(b'\n') == 1
    fields = line.decode('ascii').split()
    # None is left out (as a missing key is to the Python worker); the keys come sorted.
    assert [field.split('=', 1)[0] for field in fields] == ['cpus', 'go', 'in_fd', 'rate_hz', 'role', 'samples']
    decoded = {key: unquote(value) for key, value in (field.split('=', 1) for field in fields)}
    assert decoded == {'cpus': '0,2,3', 'go': '1', 'in_fd': '5', 'rate_hz': '1000.5', 'role': 'ring',
                       'samples': '/tmp/scratch dir/w=0%\n\u00e9'}
    # No value holds a separator: a space, a newline, an '=' or a bare '%'.
    assert all(field.count('=') == 1 for field in fields)
    assert _bench_native.encode_message({'go': False, 'cpus': []}) == b'cpus= go=0\n'
    assert _bench_native.encode_message({}) == b'\n'


def test_a_key_the_native_worker_cannot_read_is_refused():
    with pytest.raises(ValueError):
        _bench_native.encode_message({'bad key': 1})


def test_the_python_worker_still_gets_json():
    assert json.loads(_bench_worker.PythonWorker(sys.executable).encode({'go': True, 'cpus': [1]})) == {
        'go': True, 'cpus': [1]}


# ---------------------------------------------------------------------------------------------------------------------
# A real build

def check_fields(worker, message):
    """What the built binary decodes from ``message``, through its --check."""
    proc = subprocess.run([worker.binary, '--check'], input=_bench_native.encode_message(message),
                          stdout=subprocess.PIPE, timeout=30, check=True)
    return json.loads(proc.stdout.decode('utf-8'))['fields']


def test_the_built_worker_reads_back_what_the_encoding_writes(native_worker):
    message = {'samples': '/a b/%41=x\t\u00e9"\\', 'cpus': [0, 15, 1023], 'rate_hz': 0.25, 'go': True,
               'stop_at_ns': 2 ** 62, 'policy': None}
    expected = {key: _bench_native.flat_text(value) for key, value in message.items() if value is not None}
    assert check_fields(native_worker, message) == expected


def test_the_build_records_the_compiler_and_checks_the_binary(native_worker):
    report = native_worker.build_report()
    assert report['compiler'] == COMPILER and report['fallback'] is None and report['build_s'] > 0
    assert report['compiler_version'], report
    # Private to this user, like the scratch directory it lives in.
    assert os.stat(os.path.dirname(native_worker.binary)).st_mode & 0o077 == 0
    assert os.path.basename(os.path.dirname(native_worker.binary)).startswith('aitune-native-')


@needs_compiler
def test_a_native_ring_run_measures_and_leaves_nothing_behind(calibration_file, private_tmp):
    results = run(calibration_file, worker='native')
    assert results['worker'] == 'native' and results['parameters']['worker'] == 'native'
    build = results['worker_build']
    assert build['compiler'] == COMPILER and build['fallback'] is None and build['build_s'] > 0
    assert results['host']['calibration']['worker'] == 'native'
    metrics = results['runs'][0]['metrics']
    assert_ordered_latencies(metrics)
    assert metrics['wake_p50_us'] < metrics['step_p50_us'] and metrics['wake_p99_us'] < metrics['step_p99_us']
    assert metrics['steps'] > 0 and metrics['step_p50_us'] >= 50
    assert 300 <= metrics['vcsw_per_1k_steps'] <= 1500
    roles = [entry['role'] for entry in results['pids']['started']]
    assert roles.count('worker') == 2 and 'compile' in roles and 'native-check' in roles
    assert not results['warnings']
    assert_nothing_left(results)
    assert_no_temporary_left(private_tmp)


@needs_compiler
def test_a_native_periodic_run_keeps_the_rate(calibration_file, private_tmp):
    results = run(calibration_file, worker='native', workload='periodic', rate_hz=500.0)
    assert results['worker'] == 'native'
    metrics = results['runs'][0]['metrics']
    assert_ordered_latencies(metrics)
    assert 0 < metrics['steps_per_s'] <= 1.05 * 500
    assert metrics['timer_lateness_p50_us'] is not None and metrics['timer_lateness_p50_us'] >= 0
    assert metrics['posted'] >= metrics['steps'] - 2 and metrics['steps'] >= 0.2 * metrics['posted'], metrics
    roles = [entry['role'] for entry in results['pids']['started']]
    assert roles.count('worker') == 2 and roles.count('dispatcher') == 1
    assert_nothing_left(results)
    assert_no_temporary_left(private_tmp)


@needs_compiler
def test_auto_picks_the_native_worker_where_it_builds(calibration_file):
    results = run(calibration_file)
    assert results['worker'] == 'native' and results['worker_build']['fallback'] is None
    assert_nothing_left(results)


def test_native_and_python_calibrations_are_kept_apart(native_worker, tmp_path):
    python = _bench_worker.PythonWorker(sys.executable)
    assert native_worker.calibration_key() != python.calibration_key()
    assert native_worker.calibration_key().startswith('native|%s|' % os.path.realpath(COMPILER))
    path = str(tmp_path / 'calibration.json')
    with _bench.ProcessSet(str(tmp_path)) as processes:
        for worker in (python, native_worker):
            entry = _bench_worker.spin_calibration(processes, worker, path, False, True, [])
            assert entry['source'] == 'measured' and entry['worker'] == worker.kind
    with open(path) as handle:
        entries = json.load(handle)['entries']
    assert sorted(entries) == sorted([python.calibration_key(), native_worker.calibration_key()])
    assert entries[native_worker.calibration_key()]['compiler_version'] == native_worker.compiler_version


# ---------------------------------------------------------------------------------------------------------------------
# The fallback and the faults

def test_auto_without_a_compiler_falls_back_to_python_with_a_warning(calibration_file, bin_dir, private_tmp):
    results = run(calibration_file)
    assert results['worker'] == 'python' and results['parameters']['worker'] == 'python'
    assert 'no C compiler' in results['worker_build']['fallback']
    assert results['worker_build']['compiler'] is None
    assert any('Python worker ran' in message and 'no C compiler' in message for message in results['warnings'])
    assert results['runs'][0]['metrics']['steps'] > 0
    assert_nothing_left(results)
    assert_no_temporary_left(private_tmp)


def test_python_is_used_as_asked_without_a_build(calibration_file):
    results = run(calibration_file, worker='python')
    assert results['worker'] == 'python'
    assert results['worker_build'] == {'compiler': None, 'compiler_version': None, 'fallback': None, 'build_s': None}
    assert 'compile' not in [entry['role'] for entry in results['pids']['started']]
    assert_nothing_left(results)


def test_native_without_a_compiler_fails_naming_the_cause(calibration_file, bin_dir, private_tmp):
    message, results = run_failing(calibration_file, worker='native')
    assert 'worker: native' in message and 'no C compiler (cc, gcc, clang) on PATH' in message
    assert results['worker'] is None and results['pids'] == {'started': [], 'remaining': []}
    assert_no_temporary_left(private_tmp)


def test_a_failing_compiler_is_reported_with_its_messages(calibration_file, bin_dir, private_tmp):
    compiler = write_script(bin_dir / 'cc', '#!/bin/sh\necho "cc: fatal error: no space left on the build" >&2\n'
                                            'exit 1\n')
    message, results = run_failing(calibration_file, worker='native')
    assert 'failed to compile it (rc=1)' in message and 'no space left on the build' in message, message
    assert compiler in message
    assert results['worker_build']['compiler'] == compiler
    assert results['pids']['remaining'] == []
    assert_no_temporary_left(private_tmp)
    results = run(calibration_file, worker='auto')
    assert results['worker'] == 'python'
    assert any('no space left on the build' in warning for warning in results['warnings'])
    assert_nothing_left(results)
    assert_no_temporary_left(private_tmp)


def test_a_binary_that_fails_its_check_is_not_used(calibration_file, fake_compiler, private_tmp):
    fake_compiler('none', check={'ok': True, 'protocol': 0})
    message, results = run_failing(calibration_file, worker='native')
    assert 'failed its check' in message and 'protocol 0' in message, message
    assert results['worker_build']['compiler_version'] == 'fakecc 1.0'
    assert results['pids']['remaining'] == []
    assert_no_temporary_left(private_tmp)


@pytest.mark.parametrize('fault, expected', [
    ('before-ready', ['exited', 'while starting', 'crashed on its settings']),
    ('mid-run', ['exited', 'while finishing the run', 'crashing mid-run'])])
def test_a_crashing_worker_fails_the_run_and_leaves_nothing(tmp_path, fake_compiler, private_tmp, fault, expected):
    fake_compiler(fault)
    message, results = run_failing(str(tmp_path / 'calibration.json'), worker='native')
    for part in expected:
        assert part in message, message
    assert results['worker'] == 'native'
    assert_nothing_left(results)
    assert_no_temporary_left(private_tmp)


def test_worker_is_noted_as_unused_for_other_tools_only_when_set(calibration_file):
    with FakeInferenceServer(first_delay_s=0.001, token_gap_s=0.001, tokens=2) as server:
        endpoint = {'url': server.url, 'model': 'm', 'requests': 1}
        results = run(calibration_file, tool='endpoint', worker='native', endpoint=endpoint)
        assert results['worker'] is None and results['worker_build'] is None
        assert results['parameters']['worker'] is None
        assert 'worker does not apply to tool endpoint and was not used' in results['warnings']
        results = run(calibration_file, tool='endpoint', endpoint=endpoint)
        assert not any(message.startswith('worker ') for message in results['warnings'])


def test_an_unknown_worker_is_refused_before_anything_starts(calibration_file):
    message, results = run_failing(calibration_file, worker='java')
    assert message == 'worker must be one of auto, native, python, got java'
    assert results is None


def test_a_compiler_that_cannot_run_is_reported(tmp_path, monkeypatch):
    # Found on PATH, but not executable by the time the build starts it.
    monkeypatch.setattr(_bench_native, 'find_compiler', lambda: str(tmp_path / 'gone' / 'cc'))
    scratch = str(tmp_path / 'scratch')
    os.mkdir(scratch)
    with _bench.ProcessSet(scratch) as processes:
        with pytest.raises(_bench_native.NativeUnavailable) as error:
            _bench_native.build_native_worker(processes, scratch)
    assert 'could not be run' in str(error.value) and error.value.compiler_version is None
    assert not [name for name in os.listdir(scratch) if name.startswith('aitune-native-')], \
        'the build directory is removed when the build fails'
    shutil.rmtree(scratch)
