# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The agent sessions' program, and the streamed chat request it shares with the endpoint client.

An agent runner loops: it asks the model for its next step (a streamed chat completion), parses the answer, runs the
tool call the answer asks for (a real, short process: a grep over the project, a one-line script) and asks again with
the tool's output. This module is that runner, K sessions at once, as one program: the benchmark starts it as
``python -c SOURCE`` (the text of this very file, from :func:`program_source`) through the latency work's launcher,
so the sessions and every tool process they start run where a mode puts latency services.

It is a leaf of standard library only, because it runs as a program of its own. The protocol is the workers': one
JSON line of settings on stdin, a "ready" line, one "go" line with the window (CLOCK_MONOTONIC nanoseconds, shared by
every process of the host), then a "done" line with every step's timings; it then waits for stdin to close.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time


# ---------------------------------------------------------------------------------------------------------------------
# One streamed request

def token_events(payload):
    """The text one chunk carries ('' for none) and its usage block, for chat and text completions."""
    pieces = []
    for choice in payload.get('choices') or []:
        delta = choice.get('delta') or {}
        for text in (delta.get('content'), delta.get('reasoning_content'), choice.get('text')):
            if isinstance(text, str) and text:
                pieces.append(text)
    return ''.join(pieces), payload.get('usage')


class RequestResult(object):
    __slots__ = ('scheduled', 'start', 'first', 'times', 'end', 'tokens', 'error', 'text')

    def __init__(self, scheduled, start):
        self.scheduled = scheduled
        self.start = start
        self.first = None
        self.times = []
        self.end = None
        self.tokens = None
        self.error = None
        self.text = []


def stream_request(connection, path, body, headers, request_timeout, scheduled):
    """Sends one streaming request on ``connection`` and times every content chunk with time.monotonic()."""
    result = RequestResult(scheduled, time.monotonic())
    connection.request('POST', path, body=body, headers=headers)
    if connection.sock is not None:
        connection.sock.settimeout(request_timeout)
    response = connection.getresponse()
    if response.status != 200:
        detail = response.read(2000).decode('utf-8', 'replace').strip()
        result.error = 'HTTP %d %s: %s' % (response.status, response.reason, detail[:300])
        result.end = time.monotonic()
        return result
    usage_tokens = None
    while True:
        line = response.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b'data:'):
            continue
        data = line[5:].strip()
        if data == b'[DONE]':
            break
        now = time.monotonic()
        try:
            payload = json.loads(data.decode('utf-8'))
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get('error'):
            result.error = 'the server sent an error event: %s' % json.dumps(payload['error'])[:300]
            break
        text, usage = token_events(payload if isinstance(payload, dict) else {})
        if text:
            if result.first is None:
                result.first = now
            result.times.append(now)
            result.text.append(text)
        if usage and isinstance(usage.get('completion_tokens'), int):
            usage_tokens = usage['completion_tokens']
    # Read to the end so the connection can carry the next request.
    response.read()
    result.end = time.monotonic()
    result.tokens = usage_tokens if usage_tokens is not None else len(result.times)
    if result.error is None and result.first is None:
        result.error = 'the stream ended without any generated token'
    return result


# ---------------------------------------------------------------------------------------------------------------------
# The sessions

def chat_body(cfg, session, step, answer, observation):
    """The next step's request: the task, the model's last answer and the output of the tool call it led to."""
    content = 'Session %d, step %d. %s' % (session, step, cfg['prompt'])
    if observation:
        content += '\nYour last answer: %s\nTool output:\n%s' % (answer, observation)
    return json.dumps({
        'model': cfg['model'], 'max_tokens': cfg['max_tokens'], 'stream': True, 'temperature': 0,
        'messages': [{'role': 'system', 'content': 'You are an agent. Answer with the next tool call.'},
                     {'role': 'user', 'content': content}],
    }).encode('utf-8')


def run_tool(argv, cwd, timeout_s):
    """Runs one tool call to its end: (its output's head, None) or (None, why it failed)."""
    try:
        done = subprocess.run(argv, check=False, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, 'tool call %s ran past %s s' % (argv[0], timeout_s)
    except OSError as exc:
        return None, 'tool call %s: %s' % (argv[0], exc.strerror or exc)
    if done.returncode not in (0, 1):
        # grep's 1 (nothing found) is an answer too.
        return None, 'tool call %s exited %d' % (argv[0], done.returncode)
    return done.stdout[:120].decode('utf-8', 'replace'), None


class Session(object):
    """One agent session: a connection to the server and its steps, each (start, step, server, tool, first token) in
    nanoseconds, for the steps that started inside the window."""

    def __init__(self, cfg, index, go, record):
        self.cfg = cfg
        self.index = index
        self.go = go
        self.record = record
        self.headers = {'Content-Type': 'application/json', 'Accept': 'text/event-stream'}

    def connect(self):
        return http.client.HTTPConnection(self.cfg['host'], self.cfg['port'], timeout=self.cfg['connect_timeout_s'])

    def run(self):
        cfg, go = self.cfg, self.go
        connection = self.connect()
        answer_text = observation = ''
        step = 0
        now = time.monotonic_ns()
        if now < go['start_ns']:
            time.sleep((go['start_ns'] - now) / 1e9)
        while time.monotonic_ns() < go['stop_at_ns']:
            start = time.monotonic_ns()
            error = None
            try:
                answer = stream_request(connection, cfg['path'], chat_body(cfg, self.index, step, answer_text, observation),
                                        self.headers, cfg['request_timeout_s'], None)
                error = answer.error
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                answer, error = None, '%s: %s' % (type(exc).__name__, exc)
            served = time.monotonic_ns()
            tool_ns = 0
            if error is None:
                # The answer, parsed: the text of the streamed pieces, which the next step sends back. Random
                # weights ask for no tool in particular, so the step's tool is the next one of the session's list.
                answer_text = ''.join(answer.text)[:60]
                observation, error = run_tool(cfg['tools'][step % len(cfg['tools'])], cfg['cwd'],
                                              cfg['tool_timeout_s'])
                tool_ns = time.monotonic_ns() - served
            else:
                connection.close()
                connection = self.connect()
                answer_text = observation = ''
            end = time.monotonic_ns()
            if start >= go['measure_from_ns'] and end <= go['stop_at_ns'] + int(cfg['request_timeout_s'] * 1e9):
                first = int((answer.first - answer.start) * 1e9) if answer is not None and answer.first else None
                self.record(self.index, [start, end - start, served - start, tool_ns, first], error)
            step += 1
            if error is not None:
                # A failing server is not hammered: the next try waits a little.
                time.sleep(0.05)
        connection.close()


def emit(message):
    sys.stdout.write(json.dumps(message) + '\n')
    sys.stdout.flush()


def main():
    cfg = json.loads(sys.stdin.readline())
    emit({'ready': True, 'pid': os.getpid()})
    line = sys.stdin.readline()
    go = json.loads(line) if line.strip() else {}
    if not go.get('go'):
        return
    lock = threading.Lock()
    steps, errors = [], []

    def record(session, timings, error):
        with lock:
            if error is None:
                steps.append([session] + timings)
            else:
                errors.append(error)

    threads = [threading.Thread(target=Session(cfg, index, go, record).run, name='session-%d' % index)
               for index in range(cfg['sessions'])]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()
    emit({'done': True, 'steps': steps, 'errors': len(errors), 'first_error': errors[0] if errors else None})
    sys.stdin.readline()


def program_source():
    """This file's text, which runs as the sessions' program under ``python -c`` (also from an AnsiballZ zip, whose
    loader reads the source from the zip)."""
    loader = globals().get('__loader__')
    source = None
    if loader is not None and hasattr(loader, 'get_source'):
        try:
            source = loader.get_source(__name__)
        except (ImportError, OSError):
            source = None
    if source is None:
        with open(__file__, 'rb') as handle:
            source = handle.read()
    # Some loaders (Ansible's collection loader among them) give the source as bytes.
    return source.decode('utf-8') if isinstance(source, bytes) else source


if __name__ == '__main__':
    main()
