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

from ansible_collections.aitune.kernel.plugins.module_utils._bench import BenchError
from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import (
    Target, run_endpoint, validate_endpoint)

QUEUE_TIME_S = 0.004


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


def test_ttft_matches_the_servers_first_token_delay_and_itl_its_gap():
    with FakeInferenceServer(first_delay_s=0.05, token_gap_s=0.01, tokens=4) as server:
        settings = {'url': server.url, 'model': 'm', 'requests': 4, 'concurrency': 2, 'metrics_url': server.url + '/metrics'}
        validate_endpoint(settings)
        outcome = run_endpoint(settings, duration_s=5)
    metrics = outcome['metrics']
    assert outcome['requests'] == {'sent': 4, 'ok': 4, 'failed': 0, 'first_error': None}
    assert 50 <= metrics['ttft_p50_ms'] < 90, metrics
    assert 50 <= metrics['ttft_p99_ms'] < 150, metrics
    assert 9 <= metrics['itl_p50_ms'] < 30, metrics
    assert 80 <= metrics['request_p50_ms'] < 200, metrics
    assert metrics['requests_ok'] == 4 and metrics['requests_failed'] == 0
    # 16 tokens, from the usage chunks, in two rounds of two concurrent requests of about 80 ms.
    assert 16 / 1.0 < metrics['tokens_per_s'] < 16 / 0.15, metrics
    assert metrics['queue_time_mean_ms'] == pytest.approx(QUEUE_TIME_S * 1000, abs=0.01)
    assert 1 < metrics['queue_time_p50_ms'] <= 10
    assert outcome['distribution']['metric'] == 'ttft_ms'
    body = server.bodies[0]
    assert body['stream'] is True and body['model'] == 'm' and body['messages'][0]['role'] == 'user'


def test_open_loop_rate_spaces_the_requests():
    with FakeInferenceServer(first_delay_s=0.005, token_gap_s=0.001, tokens=2) as server:
        outcome = run_endpoint({'url': server.url + '/v1', 'model': 'm', 'requests': 5, 'rate_rps': 20,
                                'concurrency': 2}, duration_s=5)
    # Request i is due at i / 20 s, so five of them take at least 0.2 s.
    assert outcome['window_s'] >= 0.2
    assert outcome['metrics']['requests_per_s'] <= 25
    assert outcome['metrics']['client_delay_p99_ms'] < 50


def test_duration_bounded_closed_loop():
    with FakeInferenceServer(first_delay_s=0.01, token_gap_s=0.001, tokens=2) as server:
        outcome = run_endpoint({'url': server.url, 'model': 'm', 'concurrency': 1}, duration_s=0.3)
    assert 5 <= outcome['requests']['ok'] <= 30
    assert outcome['window_s'] < 1.0


def test_unreachable_endpoint_fails_fast_and_clearly():
    port = closed_port()
    start = time.monotonic()
    with pytest.raises(BenchError) as error:
        validate_endpoint({'url': 'http://127.0.0.1:%d' % port, 'model': 'm', 'connect_timeout_s': 2.0})
    assert time.monotonic() - start < 2.0
    assert 'unreachable' in str(error.value) and str(port) in str(error.value)
    assert 'refused' in str(error.value).lower()


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
