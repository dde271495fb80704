# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A real inference server as a benchmark tool, the agent sessions that talk to it, and a real batch job beside them.

:class:`InferenceServer` starts an OpenAI-compatible server where latency services run (through the workers' launcher,
so it gets the slice or cgroup, the CPUs, the policy and the timer slack of the latency work, exactly as the agent
workers do), waits until it answers, and stops it by PID at the end. The default command is llama.cpp's server from
``llama-cpp-python``; any other server (vLLM, SGLang, TGI, llama.cpp's own binary) is a command with the placeholders
``{python}``, ``{model}``, ``{host}``, ``{port}`` and ``{threads}``.

:func:`session_metrics` reads what the sessions' program (_bench_session) measured, and :data:`GENERATE_SOURCE` is the
batch job that can load the host instead of spin hogs: offline generation with the same model in the batch slice.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import ms_percentiles
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError, check_range
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import DISTRIBUTION_QUANTILES, percentile
from ansible_collections.aitune.kernel.plugins.module_utils._bench_worker import send_message

# llama.cpp's server from llama-cpp-python, which scripts/setup-llama-server builds and installs.
LLAMA_COMMAND = ['{python}', '-m', 'llama_cpp.server', '--model', '{model}', '--host', '{host}', '--port', '{port}',
                 '--n_threads', '{threads}', '--n_threads_batch', '{threads}', '--n_ctx', '1024',
                 # Requests wait their turn, as on a server agents share; by default llama-cpp-python ends the
                 # stream in flight when the next request comes in.
                 '--interrupt_requests', 'false']
PLACEHOLDERS = ('python', 'model', 'host', 'port', 'threads')
READY_PATH = '/v1/models'

SERVER_LIMITS = {
    'port': (1, 65535),
    'threads': (1, 1024),
    'ready_timeout_s': (1, 3600),
    'max_tokens': (1, 100000),
    'concurrency': (1, 1024),
    'rate_rps': (0.001, 100000),
    'request_timeout_s': (0.1, 3600),
}
SESSION_LIMITS = {
    'sessions': (1, 256),
    'max_tokens': (1, 100000),
    'tool_timeout_s': (0.1, 600),
}

# The tools an agent session calls in turn, each a real short process run in a small tree of the session's own: a
# search over the tree and a one-line script (an interpreter's start, as agents' python -c calls pay it).
TREE_FILES = 24


def default_tools(python):
    return [['grep', '-rn', 'def ', '.'], [python, '-c', 'import json; print(json.dumps(sorted(range(200))))']]


# Runs as ``python -c GENERATE_SOURCE`` with llama-cpp-python: one JSON line of settings on stdin, then offline
# generation for ever, its token count kept in an 8-byte counter file the benchmark reads around each window. The
# counter is written before the "ready" line, so a window never finds it missing.
GENERATE_SOURCE = r'''
import json, os, struct, sys
cfg = json.loads(sys.stdin.readline())
from llama_cpp import Llama
model = Llama(model_path=cfg["model"], n_threads=cfg["threads"], n_threads_batch=cfg["threads"], n_ctx=512,
              verbose=False)
fd = os.open(cfg["counter"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
count = 0
os.pwrite(fd, struct.pack("=Q", count), 0)
sys.stdout.write(json.dumps({"ready": True}) + "\n")
sys.stdout.flush()
while True:
    for _chunk in model.create_completion(cfg["prompt"], max_tokens=128, stream=True):
        count += 1
        os.pwrite(fd, struct.pack("=Q", count), 0)
'''


def check_server_settings(settings, name='server'):
    """The checks that need no host: the numbers in range, and a command or a model to serve. bench_plan runs them on
    the controller, with ``name`` the inventory variable that holds the settings."""
    for option in SERVER_LIMITS:
        check_range(SERVER_LIMITS, option, settings.get(option), '%s.%s' % (name, option))
    command = settings.get('command')
    if command is not None and (not isinstance(command, list) or not command or not all(command)):
        raise BenchError('%s.command must be a list of the server\'s arguments, got %r' % (name, command))
    if not command and not settings.get('model'):
        raise BenchError('%s needs model, the path of a GGUF model for llama.cpp\'s server (scripts/'
                         'setup-llama-server makes one), or command, your own server\'s command' % name)


def check_session_settings(settings, name='agent_session'):
    for option in SESSION_LIMITS:
        check_range(SESSION_LIMITS, option, settings.get(option), '%s.%s' % (name, option))
    for tool in settings.get('tools') or []:
        if not isinstance(tool, list) or not tool or not all(isinstance(arg, str) and arg for arg in tool):
            raise BenchError('%s.tools must be a list of commands, each a list of arguments, got %r' % (name, tool))


def server_python(settings, fallback):
    return settings.get('python') or fallback


def server_argv(settings, python):
    values = {'python': server_python(settings, python), 'model': settings.get('model') or '',
              'host': settings.get('host') or '127.0.0.1', 'port': str(settings.get('port') or 8089),
              'threads': str(settings.get('threads') or 1)}
    argv = []
    for argument in settings.get('command') or LLAMA_COMMAND:
        for key in PLACEHOLDERS:
            argument = argument.replace('{%s}' % key, values[key])
        argv.append(argument)
    return argv


def check_llama_python(python, what):
    """An interpreter that can import llama_cpp, or a BenchError that says how to get one."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise BenchError('%s %s is not an executable file (scripts/setup-llama-server makes one in .venv-llama)'
                         % (what, python))
    try:
        done = subprocess.run([python, '-c', 'import llama_cpp'], check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError('%s %s cannot run: %s' % (what, python, exc))
    if done.returncode != 0:
        raise BenchError('%s %s cannot import llama_cpp (scripts/setup-llama-server installs llama-cpp-python): %s'
                         % (what, python, done.stdout.decode('utf-8', 'replace').strip().splitlines()[-1:]))


def port_in_use(host, port):
    """Whether something already listens on host:port (a connect is answered)."""
    try:
        sock = socket.create_connection((host, port), timeout=1)
    except (OSError, socket.error):
        return False
    sock.close()
    return True


def check_model_file(path, what):
    if not os.path.isfile(path):
        raise BenchError('%s %s: %s' % (what, path, 'no such file' if not os.path.exists(path) else
                                        'not a regular file'))


def validate_server(settings, python, load_job=None, start=True):
    """Checks on the host that the server (where ``start``) and the generating batch job can start: the model is
    there, the programs run, the server's port is free."""
    if not settings:
        raise BenchError('the server and agent_session tools and load_job generate need server settings (a model, '
                         'or your own server\'s command)')
    check_server_settings(settings)
    if settings.get('model'):
        check_model_file(settings['model'], 'server.model')
    own_command = bool(settings.get('command'))
    if start and own_command:
        program = server_argv(settings, python)[0]
        if not (shutil.which(program) or (os.sep in program and os.access(program, os.X_OK))):
            raise BenchError('server.command: %s is not an executable file or a program on PATH' % program)
    if load_job == 'generate' and not settings.get('model'):
        raise BenchError('load_job generate runs llama.cpp over server.model; give server.model')
    if (start and not own_command) or load_job == 'generate':
        check_llama_python(server_python(settings, python), 'server.python')
    host, port = settings.get('host') or '127.0.0.1', settings.get('port') or 8089
    if start and port_in_use(host, port):
        raise BenchError('server.port %d on %s is in use by another process; stop it or choose another server.port'
                         % (port, host))


class InferenceServer(object):
    """One server process for one latency_bench call: started placed, ready when it answers, stopped by its PID."""

    def __init__(self, settings, python, processes, placement, worker_settings):
        self.settings = settings
        self.python = python
        self.processes = processes
        self.placement = placement
        self.worker_settings = worker_settings
        self.host = settings.get('host') or '127.0.0.1'
        self.port = settings.get('port') or 8089
        self.argv = server_argv(settings, python)
        self.child = None
        self.model = settings.get('model_name')
        self.report = {'argv': self.argv, 'pid': None, 'ready_s': None, 'stopped_by': None, 'returncode': None,
                       'model': None, 'url': self.url()}

    def url(self, path='/v1'):
        return 'http://%s:%d%s' % (self.host if ':' not in self.host else '[%s]' % self.host, self.port, path)

    def start(self, launcher):
        """Starts the server through the launcher (which applies the latency work's settings and then runs the
        server in its place) and waits until it answers on its ready path."""
        started = time.monotonic()
        self.child = self.processes.start(self.placement.prefix + launcher.argv, 'server')
        self.placement.place(self.child)
        self.report['pid'] = self.child.pid
        config = dict(self.worker_settings, role='exec', argv=self.argv)
        if not send_message(self.child, launcher, config):
            raise BenchError('the server\'s launcher (PID %d) exited before it got its settings%s' % (
                self.child.pid, self.child.stderr_tail(prefix=': ')))
        message = self.child.read_message(time.monotonic() + 60, 'placing the server')
        self.placement.note(message, 'server', self.child.pid)
        self.wait_ready(started)
        self.report['ready_s'] = round(time.monotonic() - started, 3)
        self.report['model'] = self.model
        return self

    def wait_ready(self, started):
        timeout = self.settings.get('ready_timeout_s') or 120
        deadline = started + timeout
        last = 'no answer yet'
        while True:
            if self.child.proc.poll() is not None:
                raise BenchError('the server command exited (rc=%s) before it answered on %s: %s%s' % (
                    self.child.proc.returncode, self.url(''), ' '.join(self.argv),
                    self.child.stderr_tail(prefix='; its output: ')))
            answer = self.get(READY_PATH)
            if answer[0] == 200:
                if not self.model:
                    self.model = served_model(answer[1])
                return
            last = answer[1] if answer[0] is None else 'HTTP %d' % answer[0]
            if time.monotonic() >= deadline:
                raise BenchError('the server did not answer on %s%s within %s s (%s); it was stopped: %s%s' % (
                    self.url(''), READY_PATH, timeout, last, ' '.join(self.argv),
                    self.child.stderr_tail(prefix='; its output: ')))
            time.sleep(0.2)

    def get(self, path):
        """(status, body) of a GET, or (None, why) where nothing answered."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            connection.request('GET', path)
            response = connection.getresponse()
            return response.status, response.read(65536).decode('utf-8', 'replace')
        except (OSError, http.client.HTTPException) as exc:
            return None, str(exc)
        finally:
            connection.close()

    def stop(self, grace_s=10.0):
        """SIGTERM to the server's process group by its PID, SIGKILL after ``grace_s``, and reaped."""
        child = self.child
        if child is None or self.report['stopped_by']:
            return
        if child.proc.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
                self.report['stopped_by'] = 'SIGTERM'
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
            try:
                child.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.report['stopped_by'] = 'SIGKILL'
        else:
            self.report['stopped_by'] = 'exited'
        self.processes.stop(child, grace_s=0)
        self.report['returncode'] = child.proc.returncode

    def client_settings(self, settings):
        """The endpoint client's settings for this server."""
        client = {'url': self.url(), 'model': self.model}
        for key in ('prompt', 'max_tokens', 'concurrency', 'rate_rps', 'request_timeout_s'):
            if settings.get(key) is not None:
                client[key] = settings[key]
        return client


def served_model(body):
    """The first model id a ``/v1/models`` answer lists (what requests must name), or 'default'."""
    try:
        data = json.loads(body).get('data') or []
        return data[0]['id']
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return 'default'


# ---------------------------------------------------------------------------------------------------------------------
# The agent sessions

def make_tree(directory):
    """The small project tree the sessions' tool calls search."""
    os.makedirs(directory)
    for index in range(TREE_FILES):
        with open(os.path.join(directory, 'module_%02d.py' % index), 'w') as handle:
            for line in range(40):
                handle.write('def step_%d_%d(value):\n    return value * %d\n' % (index, line, line))


def session_config(server, settings, tools, cwd):
    return {'host': server.host, 'port': server.port, 'path': '/v1/chat/completions', 'model': server.model,
            'sessions': settings.get('sessions') or 2, 'max_tokens': settings.get('max_tokens') or 8,
            'prompt': settings.get('prompt') or 'Find where step values are computed and report the line.',
            'tools': tools, 'cwd': cwd, 'tool_timeout_s': settings.get('tool_timeout_s') or 30.0,
            'request_timeout_s': server.settings.get('request_timeout_s') or 120.0, 'connect_timeout_s': 5.0}


def session_metrics(done, window_s):
    """The sessions' metrics from their "done" message: step latency, steps/s, the share of step time spent waiting on
    the server, the tool calls' time and the errors; plus the step time distribution."""
    steps = done.get('steps') or []
    step_ns = [row[2] for row in steps]
    server_ns = [row[3] for row in steps]
    # The endpoint client's percentiles in ms, from seconds.
    metrics = ms_percentiles([value / 1e9 for value in step_ns], 'session_step',
                             (('p50', 50), ('p99', 99), ('p999', 99.9)))
    metrics.update(ms_percentiles([row[5] / 1e9 for row in steps if row[5] is not None], 'session_ttft',
                                  (('p50', 50), ('p99', 99))))
    metrics.update(ms_percentiles([row[4] / 1e9 for row in steps], 'session_tool', (('p50', 50), ('p99', 99))))
    metrics['session_steps'] = len(steps)
    metrics['session_steps_per_s'] = round(len(steps) / window_s, 3) if window_s > 0 else None
    metrics['session_server_wait_pct'] = round(sum(server_ns) * 100.0 / sum(step_ns), 2) if sum(step_ns) else None
    metrics['session_errors'] = done.get('errors') or 0
    ordered = sorted(step_ns)
    values = [percentile(ordered, q) for q in DISTRIBUTION_QUANTILES]
    return metrics, {'metric': 'session_step_ms', 'quantiles': list(DISTRIBUTION_QUANTILES),
                     'values': [None if value is None else round(value / 1e6, 3) for value in values]}
