# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The server and agent_session tools against a real server process (openai_stub_server.py beside this file, started
through the tools' own launcher and placement), and their refusals: each bad input fails before a window is measured
and leaves no process and no scratch directory behind. The llama.cpp server itself is exercised by the integration
tests (tests/integration/test_benchmark.py), with the build scripts/setup-llama-server caches."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import sys

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench_session
from ansible_collections.aitune.kernel.plugins.module_utils._bench import run_benchmark
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError
from ansible_collections.aitune.kernel.plugins.module_utils._bench_procs import process_exists
from ansible_collections.aitune.kernel.plugins.module_utils._bench_server import server_argv, served_model
from ansible_collections.aitune.kernel.tests.unit.plugins.module_utils.test_bench_endpoint import closed_port

STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'openai_stub_server.py')


def options(tmp_path, tool='server', **server):
    record = str(tmp_path / 'server.json')
    settings = dict(command=[sys.executable, STUB, '{port}', record], port=closed_port(), host='127.0.0.1',
                    ready_timeout_s=30.0, max_tokens=16, concurrency=1, request_timeout_s=30.0)
    settings.update(server)
    return dict(tool=tool, condition='idle', workers=2, compute_us=100, duration_s=0.6, warmup_s=0.1, repetitions=2,
                rate_hz=1000, load_fraction=1.0, placement_required=True, gpu_sample_interval_s=0, cpus='0',
                server=settings, agent_session={'sessions': 2, 'max_tokens': 8, 'tool_timeout_s': 30.0})


def assert_nothing_left(results, private_tmp):
    assert results['pids']['remaining'] == []
    for started in results['pids']['started']:
        assert not process_exists(started['pid']), started
    assert os.listdir(str(private_tmp)) == []


def test_the_server_runs_placed_answers_and_is_stopped_by_its_pid(tmp_path, private_tmp):
    results = run_benchmark(dict(options(tmp_path), timer_slack_ns=1))
    record = json.loads((tmp_path / 'server.json').read_text())
    server = results['server']
    # The launcher ran the server in its own place: the PID the module started is the server's, on the CPU asked,
    # with the latency work's timer slack.
    assert record == {'pid': server['pid'], 'cpus': [0], 'timer_slack_ns': 1}
    assert results['placement']['workers']['cpus'] == '0'
    assert results['placement']['workers']['timer_slack_ns'] == 1
    assert results['warnings'] == []
    assert server['model'] == 'stub-model' and server['stopped_by'] == 'SIGTERM'
    assert [run['metrics']['requests_ok'] > 0 for run in results['runs']] == [True, True]
    assert all(run['metrics']['requests_failed'] == 0 for run in results['runs'])
    # The stub's first token comes 20 ms after the request, the next ones 5 ms apart.
    assert results['summary']['primary'] == 'ttft'
    assert results['summary']['metrics']['ttft_p50_ms']['median'] >= 20
    assert 'batch_cpu_pct' not in results['runs'][0]['metrics']
    assert_nothing_left(results, private_tmp)


def test_agent_sessions_step_through_model_and_tool_calls_where_latency_work_runs(tmp_path, private_tmp):
    calls = tmp_path / 'calls'
    tool = [sys.executable, '-c', 'import os\nwith open(%r, "a") as f: f.write("%%s %%s\\n" %% (sorted(os.sched_getaffinity'
            '(0)), os.path.exists("module_00.py")))' % str(calls)]
    opts = options(tmp_path, tool='agent_session')
    opts['agent_session']['tools'] = [tool]
    opts['condition'] = 'load'
    results = run_benchmark(opts)
    lines = calls.read_text().splitlines()
    steps = sum(run['metrics']['session_steps'] for run in results['runs'])
    # Every step that counted ran its tool call (steps outside the windows ran theirs too), on the sessions' CPU and
    # in the tree the sessions search.
    assert steps > 0 and len(lines) >= steps
    assert set(lines) == {'[0] True'}
    for run in results['runs']:
        metrics = run['metrics']
        assert metrics['session_errors'] == 0
        assert metrics['session_step_p50_ms'] >= metrics['session_ttft_p50_ms'] >= 20
        assert 0 < metrics['session_server_wait_pct'] < 100
        # Under load the hogs' share of the host's CPU time is reported as what the batch work got.
        assert metrics['batch_cpu_pct'] > 0
    assert results['summary']['primary'] == 'session_step'
    assert results['summary']['distribution']['metric'] == 'session_step_ms'
    assert_nothing_left(results, private_tmp)


def test_failed_tool_calls_are_counted_as_failed_steps(tmp_path, private_tmp):
    opts = options(tmp_path, tool='agent_session')
    opts['repetitions'] = 1
    opts['agent_session']['tools'] = [[sys.executable, '-c', 'pass'], [sys.executable, '-c', 'raise SystemExit(3)']]
    results = run_benchmark(opts)
    metrics = results['runs'][0]['metrics']
    # The sessions alternate between the two calls, so about every other step fails.
    assert metrics['session_errors'] >= 1 and metrics['session_steps'] >= 1
    assert any('step(s) failed' in warning and 'exited 3' in warning for warning in results['warnings'])
    assert_nothing_left(results, private_tmp)


def test_preflight_checks_one_request_and_each_tool_call_and_measures_nothing(tmp_path, private_tmp):
    opts = options(tmp_path, tool='agent_session', preflight=True)
    opts['preflight'] = True
    results = run_benchmark(opts)
    assert results['runs'] == [] and results['summary'] is None
    assert results['preflight']['request']['ok'] == 1
    assert results['preflight']['tools'] == ['grep', sys.executable]
    assert_nothing_left(results, private_tmp)


def hold_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize('case', ['exits-at-once', 'never-listens', 'missing-model', 'port-in-use', 'no-llama',
                                  'endpoint-errors', 'no-such-program'])
def test_bad_server_input_is_a_clear_error_that_leaves_nothing_behind(tmp_path, private_tmp, case):
    opts = options(tmp_path, preflight=True)
    opts['preflight'] = True
    held = None
    if case == 'exits-at-once':
        opts['server']['command'] = [sys.executable, '-c', 'import sys; sys.stderr.write("no GPU here\\n"); sys.exit(3)']
        expected = 'the server command exited (rc=3) before it answered'
    elif case == 'never-listens':
        opts['server'].update(command=[sys.executable, '-c', 'import time; time.sleep(60)'], ready_timeout_s=1.0)
        expected = '/v1/models within 1.0 s'
    elif case == 'missing-model':
        opts['server'] = dict(opts['server'], command=None, model=str(tmp_path / 'absent.gguf'))
        expected = 'server.model %s: no such file' % (tmp_path / 'absent.gguf')
    elif case == 'port-in-use':
        held = hold_port()
        opts['server']['port'] = held.getsockname()[1]
        expected = 'server.port %d on 127.0.0.1 is in use' % held.getsockname()[1]
    elif case == 'no-llama':
        model = tmp_path / 'tiny.gguf'
        model.write_bytes(b'GGUF')
        opts['server'] = dict(opts['server'], command=None, model=str(model), python=sys.executable)
        expected = 'cannot import llama_cpp'
    elif case == 'endpoint-errors':
        opts['server']['command'].append('errors')
        expected = 'failed (1); the first error: HTTP 500'
    else:
        opts['server']['command'] = ['aitune-no-such-server', '--port', '{port}']
        expected = 'server.command: aitune-no-such-server is not an executable file or a program on PATH'
    try:
        with pytest.raises(BenchError) as failure:
            run_benchmark(opts)
    finally:
        if held is not None:
            held.close()
    assert expected in str(failure.value)
    results = failure.value.results
    if results is not None:
        assert_nothing_left(results, private_tmp)
    else:
        # Refused in the checks, before anything started.
        assert os.listdir(str(private_tmp)) == []
    if case == 'exits-at-once':
        assert 'no GPU here' in str(failure.value)


def test_the_command_s_placeholders_are_filled_and_the_default_is_llama_cpp_s_server():
    settings = {'command': ['vllm', 'serve', '{model}', '--port={port}', '--host', '{host}'], 'model': '/m', 'port': 9}
    assert server_argv(settings, '/py') == ['vllm', 'serve', '/m', '--port=9', '--host', '127.0.0.1']
    default = server_argv({'model': '/m.gguf', 'python': '/venv/bin/python', 'threads': 2}, '/py')
    assert default[:3] == ['/venv/bin/python', '-m', 'llama_cpp.server']
    assert default[default.index('--model') + 1] == '/m.gguf' and default[default.index('--n_threads') + 1] == '2'


@pytest.mark.parametrize('body, model', [
    ('{"object": "list", "data": [{"id": "qwen"}, {"id": "other"}]}', 'qwen'),
    ('{"data": []}', 'default'),
    ('not json', 'default'),
])
def test_the_model_requested_is_the_first_the_server_lists(body, model):
    assert served_model(body) == model


class BytesLoader(object):
    """A loader that gives a module's source as bytes, as Ansible's collection loader does."""

    def __init__(self, source):
        self.source = source

    def get_source(self, name):
        return self.source.encode('utf-8')


def test_the_sessions_program_is_text_whichever_loader_read_it(monkeypatch):
    text = _bench_session.program_source()
    assert isinstance(text, str) and "if __name__ == '__main__':" in text
    monkeypatch.setattr(_bench_session, '__loader__', BytesLoader(text))
    assert _bench_session.program_source() == text
