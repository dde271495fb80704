# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The inference endpoint client against a real HTTP server on 127.0.0.1 that streams server-sent events the way
vLLM does (chunked transfer, ``data: {...}`` lines, a usage chunk, ``data: [DONE]``) and serves a Prometheus page."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _bench_endpoint, _bench_session
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError
from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import (
    Target, run_endpoint, validate_endpoint)

QUEUE_TIME_S = 0.004
# The tests against the real server assert no upper bound in time: a loaded host only makes every figure larger. The
# server's sleeps are lower bounds, though: time.sleep never returns early, and the client starts its clock before it
# sends. These only absorb the rounding of the figures (to a microsecond, and window_s to a millisecond).
ROUNDING_MS = 0.01
WINDOW_ROUNDING_S = 0.001


class FakeInferenceServer(object):
    """Streams ``tokens`` chunks per request: the first after ``first_delay_s``, the rest ``token_gap_s`` apart."""

    def __init__(self, first_delay_s=0.05, token_gap_s=0.01, tokens=4):
        self.first_delay_s = first_delay_s
        self.token_gap_s = token_gap_s
        self.tokens = tokens
        self.lock = threading.Lock()
        self.served = 0
        self.bodies = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != '/metrics':
                    self.send_error(404)
                    return
                with server.lock:
                    count = server.served
                body = ('# TYPE vllm:request_queue_time_seconds histogram\n'
                        'vllm:request_queue_time_seconds_sum{model_name="m"} %f\n'
                        'vllm:request_queue_time_seconds_bucket{le="0.001",model_name="m"} 0\n'
                        'vllm:request_queue_time_seconds_bucket{le="0.01",model_name="m"} %d\n'
                        'vllm:request_queue_time_seconds_bucket{le="+Inf",model_name="m"} %d\n'
                        'vllm:request_queue_time_seconds_count{model_name="m"} %d\n'
                        % (count * QUEUE_TIME_S, count, count, count)).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain; version=0.0.4')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                with server.lock:
                    server.bodies.append(body)
                if self.path != '/v1/chat/completions':
                    self.send_error(404, 'no such route')
                    return
                self.send_response(200)
                self.send_header('Content-Type', 'text/event-stream')
                self.send_header('Transfer-Encoding', 'chunked')
                self.end_headers()
                time.sleep(server.first_delay_s)
                for index in range(server.tokens):
                    if index:
                        time.sleep(server.token_gap_s)
                    self.chunk({'choices': [{'index': 0, 'delta': {'content': 'tok%d ' % index}}]})
                self.chunk({'choices': [], 'usage': {'prompt_tokens': 9, 'completion_tokens': server.tokens}})
                self.chunk('[DONE]')
                self.wfile.write(b'0\r\n\r\n')
                with server.lock:
                    server.served += 1

            def chunk(self, payload):
                data = ('data: %s\n\n' % (payload if isinstance(payload, str) else json.dumps(payload))).encode()
                self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                       name='fake-inference-server')
        self.thread.daemon = True

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def closed_port():
    """A 127.0.0.1 port that nothing listens on: bound, then released."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def record_connects(monkeypatch):
    """Lets every TCP connect through and records its ``(address, timeout)``: how fast an unreachable endpoint fails
    is then told by how it tried (one connect, with the configured timeout), not by a stopwatch on a busy host."""
    calls = []
    real = socket.create_connection

    def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, *args, **kwargs):
        calls.append((address, timeout))
        return real(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, 'create_connection', create_connection)
    return calls


class ScriptedClock(object):
    """Stands in for the time module in _bench_endpoint: time moves only when the client sleeps or a scripted chunk
    arrives, so every figure the client derives is exact, whatever the load on the host."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(0.0, seconds)


class ScriptedConnection(object):
    """Stands in for http.client.HTTPConnection: every response streams ``chunks`` content chunks, the first
    ``first_delay_s`` after the request and the rest ``gap_s`` apart on the scripted clock, then a usage chunk that
    counts ``usage_tokens`` (a chunk may carry several tokens) and ``[DONE]``."""

    sock = None
    status = 200
    reason = 'OK'

    def __init__(self, clock, first_delay_s, gap_s, chunks, usage_tokens):
        self.clock = clock
        self.lines = []
        content = b'data: {"choices": [{"index": 0, "delta": {"content": "tok "}}]}\n'
        self.script = [(first_delay_s if index == 0 else gap_s, content) for index in range(chunks)] + [
            (0.0, b'data: {"choices": [], "usage": {"completion_tokens": %d}}\n' % usage_tokens),
            (0.0, b'data: [DONE]\n')]

    def request(self, method, path, body=None, headers=None):
        self.lines = list(self.script)

    def getresponse(self):
        return self

    def readline(self):
        if not self.lines:
            return b''
        delay, line = self.lines.pop(0)
        self.clock.sleep(delay)
        return line

    def read(self, size=None):
        return b''

    def close(self):
        pass


def test_ttft_matches_the_servers_first_token_delay_and_itl_its_gap():
    with FakeInferenceServer(first_delay_s=0.05, token_gap_s=0.01, tokens=4) as server:
        settings = {'url': server.url, 'model': 'm', 'requests': 4, 'concurrency': 2, 'metrics_url': server.url + '/metrics'}
        validate_endpoint(settings)
        outcome = run_endpoint(settings, duration_s=5)
    metrics = outcome['metrics']
    assert outcome['requests'] == {'sent': 4, 'ok': 4, 'failed': 0, 'first_error': None}
    # The server holds the first token 50 ms after the request: TTFT measured from the request's start cannot be less.
    assert 50 - ROUNDING_MS <= metrics['ttft_p50_ms'] <= metrics['ttft_p95_ms'] <= metrics['ttft_p99_ms'], metrics
    # A request ends after its last token, and the tokens come 3 x 10 ms after the first: each request's latency is at
    # least its TTFT and at least 80 ms. Both lists hold one value per request, so the percentiles keep that order.
    assert metrics['ttft_p50_ms'] <= metrics['request_p50_ms'] and metrics['ttft_p99_ms'] <= metrics['request_p99_ms']
    assert 80 - ROUNDING_MS <= metrics['request_p50_ms'] <= metrics['request_p99_ms'], metrics
    # Gaps between tokens of one stream: there are some, and they take time. Their exact size is checked on the
    # scripted clock below; on a busy host the client may read two chunks in one go.
    assert 0 < metrics['itl_p50_ms'] <= metrics['itl_p99_ms'], metrics
    assert metrics['requests_ok'] == 4 and metrics['requests_failed'] == 0
    # 16 tokens, from the usage chunks, over the run's window; each client thread ran at least two of the four requests
    # of at least 80 ms one after the other, so the window is at least 160 ms.
    assert outcome['window_s'] >= 0.16 - WINDOW_ROUNDING_S, outcome
    assert metrics['tokens_per_s'] == pytest.approx(16 / outcome['window_s'], rel=0.01), outcome
    assert metrics['queue_time_mean_ms'] == pytest.approx(QUEUE_TIME_S * 1000, abs=0.01)
    assert 1 < metrics['queue_time_p50_ms'] <= 10
    assert outcome['distribution']['metric'] == 'ttft_ms'
    assert outcome['distribution']['values'] == sorted(outcome['distribution']['values'])
    assert outcome['distribution']['values'][0] >= 50 - ROUNDING_MS
    body = server.bodies[0]
    assert body['stream'] is True and body['model'] == 'm' and body['messages'][0]['role'] == 'user'


def test_open_loop_rate_spaces_the_requests():
    with FakeInferenceServer(first_delay_s=0.005, token_gap_s=0.001, tokens=2) as server:
        outcome = run_endpoint({'url': server.url + '/v1', 'model': 'm', 'requests': 5, 'rate_rps': 20,
                                'concurrency': 2}, duration_s=5)
    # Request i is due at i / 20 s, so five of them take at least 0.2 s.
    assert outcome['window_s'] >= 0.2
    assert outcome['metrics']['requests_per_s'] <= 25
    # An open loop reports how late its requests started (on a busy host, more than nothing); its exact value is
    # checked on the scripted clock below.
    assert outcome['metrics']['client_delay_p99_ms'] is not None and outcome['metrics']['client_delay_p99_ms'] >= 0


def test_duration_bounded_closed_loop():
    with FakeInferenceServer(first_delay_s=0.01, token_gap_s=0.001, tokens=2) as server:
        outcome = run_endpoint({'url': server.url, 'model': 'm', 'concurrency': 1}, duration_s=0.3)
    ok = outcome['requests']['ok']
    # Each request takes at least the server's 11 ms, one after the other: no more than 28 start within 0.3 s (a run
    # that ignored its duration would go on far past that), and the window holds them all.
    assert outcome['requests']['failed'] == 0 and 1 <= ok <= 30, outcome
    assert outcome['window_s'] >= ok * 0.011 - WINDOW_ROUNDING_S, outcome


# Three requests whose responses stream 4 chunks, the first 50 ms after the request and the rest 10 ms apart: 80 ms
# each. The usage chunk counts 8 tokens per response.
@pytest.mark.parametrize('settings, duration_s, expected', [
    # Closed loop: back to back, over 240 ms.
    ({'requests': 3}, 5,
     {'window_s': 0.24, 'requests_ok': 3, 'tokens_per_s': 100.0, 'requests_per_s': 12.5, 'client_delay_p99_ms': None}),
    # Open loop the client keeps up with (due at 0, 100 and 200 ms): every request starts on time.
    ({'requests': 3, 'rate_rps': 10}, 5,
     {'window_s': 0.28, 'requests_ok': 3, 'tokens_per_s': 85.71, 'requests_per_s': 10.714, 'client_delay_p99_ms': 0.0}),
    # Open loop faster than one client (due every 10 ms): the requests start at 0, 80 and 160 ms, 0, 70 and 140 ms late.
    ({'requests': 3, 'rate_rps': 100}, 5,
     {'window_s': 0.24, 'requests_ok': 3, 'tokens_per_s': 100.0, 'requests_per_s': 12.5, 'client_delay_p99_ms': 138.6}),
    # Duration-bounded closed loop: requests start at 0, 80, 160 and 240 ms, within the 300 ms; none at 320 ms.
    ({}, 0.3,
     {'window_s': 0.32, 'requests_ok': 4, 'tokens_per_s': 100.0, 'requests_per_s': 12.5, 'client_delay_p99_ms': None}),
], ids=['closed-loop', 'open-loop-on-time', 'open-loop-behind', 'duration-bounded'])
def test_figures_are_exact_on_a_scripted_clock(monkeypatch, settings, duration_s, expected):
    clock = ScriptedClock()
    monkeypatch.setattr(_bench_endpoint, 'time', clock)
    # The streamed request, which the agent sessions' program shares, keeps its own clock.
    monkeypatch.setattr(_bench_session, 'time', clock)
    monkeypatch.setattr(_bench_endpoint.Target, 'connection',
                        lambda target, connect_timeout, validate_certs: ScriptedConnection(clock, 0.05, 0.01, 4, 8))
    outcome = run_endpoint(dict(settings, url='http://inference.invalid:8000', model='m', concurrency=1), duration_s)
    metrics = outcome['metrics']
    assert outcome['requests'] == {'sent': expected['requests_ok'], 'ok': expected['requests_ok'], 'failed': 0,
                                   'first_error': None}
    assert outcome['window_s'] == pytest.approx(expected['window_s'])
    # TTFT from the request's start to the first chunk, ITL between chunks of one stream, latency to the stream's end.
    for name in ('ttft_p50_ms', 'ttft_p95_ms', 'ttft_p99_ms'):
        assert metrics[name] == pytest.approx(50.0), (name, metrics)
    assert metrics['itl_p50_ms'] == pytest.approx(10.0) and metrics['itl_p99_ms'] == pytest.approx(10.0), metrics
    assert metrics['request_p50_ms'] == pytest.approx(80.0) and metrics['request_p99_ms'] == pytest.approx(80.0)
    assert outcome['distribution']['values'] == pytest.approx([50.0] * len(outcome['distribution']['values']))
    # Tokens are the usage chunks' counts (8 a response), not the content chunks (4).
    for name in ('requests_ok', 'tokens_per_s', 'requests_per_s', 'client_delay_p99_ms'):
        assert metrics[name] == pytest.approx(expected[name], abs=0.001), (name, metrics)
    assert metrics['requests_failed'] == 0


def test_unreachable_endpoint_fails_fast_and_clearly(monkeypatch):
    port = closed_port()
    connects = record_connects(monkeypatch)
    with pytest.raises(BenchError) as error:
        validate_endpoint({'url': 'http://127.0.0.1:%d' % port, 'model': 'm', 'connect_timeout_s': 2.0})
    # Fast: one connect, bounded by the configured timeout, and the refusal is the error at once: no retry, no
    # waiting the timeout out (that would read "no answer ... within 2.0 s").
    assert connects == [(('127.0.0.1', port), 2.0)]
    assert 'unreachable' in str(error.value) and str(port) in str(error.value)
    assert 'refused' in str(error.value).lower() and 'within' not in str(error.value)


def test_http_error_is_reported_with_status():
    with FakeInferenceServer() as server:
        with pytest.raises(BenchError) as error:
            run_endpoint({'url': server.url + '/other/chat/completions', 'model': 'm', 'requests': 2}, duration_s=5)
    assert 'HTTP 404' in str(error.value) and 'every request' in str(error.value)


def test_target_paths():
    assert Target('http://h:8000').path == '/v1/chat/completions'
    assert Target('http://h:8000/v1/').path == '/v1/chat/completions'
    assert Target('https://h/proxy/v1/chat/completions').port == 443
    for bad in ('ftp://h', 'http://', '127.0.0.1:8000', 'http://h:99999'):
        with pytest.raises(BenchError):
            Target(bad)


def test_metrics_url_that_does_not_serve_metrics_is_an_error():
    with FakeInferenceServer() as server:
        with pytest.raises(BenchError) as error:
            validate_endpoint({'url': server.url, 'model': 'm', 'metrics_url': server.url + '/not-metrics'})
    assert 'metrics_url' in str(error.value) and 'HTTP 404' in str(error.value)
