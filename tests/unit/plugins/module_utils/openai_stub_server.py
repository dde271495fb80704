# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A small OpenAI-compatible server run as its own process, for the tests of the server and agent_session tools:
``python openai_stub_server.py PORT RECORD [errors]``. It lists one model on ``/v1/models``, streams four tokens
per chat completion (the first after 20 ms, then 5 ms apart), and writes its PID and CPU affinity to RECORD once
it listens, with its timer slack. With ``errors`` every completion is answered with HTTP 500."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    errors = False

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        # Each token leaves at once, as an inference server's do.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def send_json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != '/v1/models':
            self.send_json(404, {'error': 'no such route'})
            return
        self.send_json(200, {'object': 'list', 'data': [{'id': 'stub-model', 'object': 'model'}]})

    def do_POST(self):
        json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        if self.errors:
            self.send_json(500, {'error': {'message': 'the stub fails on purpose'}})
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        time.sleep(0.02)
        for index in range(4):
            if index:
                time.sleep(0.005)
            self.chunk({'choices': [{'index': 0, 'delta': {'content': 'grep%d ' % index}}]})
        self.chunk('[DONE]')
        self.wfile.write(b'0\r\n\r\n')

    def chunk(self, payload):
        data = ('data: %s\n\n' % (payload if isinstance(payload, str) else json.dumps(payload))).encode()
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        self.wfile.flush()


def main():
    port, record = int(sys.argv[1]), sys.argv[2]
    Handler.errors = sys.argv[3:] == ['errors']
    httpd = ThreadingHTTPServer(('127.0.0.1', port), Handler)
    httpd.daemon_threads = True
    with open('/proc/self/timerslack_ns') as handle:
        slack = int(handle.read())
    with open(record, 'w') as handle:
        json.dump({'pid': os.getpid(), 'cpus': sorted(os.sched_getaffinity(0)), 'timer_slack_ns': slack}, handle)
    httpd.serve_forever(poll_interval=0.05)


if __name__ == '__main__':
    main()
