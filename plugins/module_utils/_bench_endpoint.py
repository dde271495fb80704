# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A load generator for OpenAI-compatible inference servers (vLLM, SGLang, TGI and others): streaming
``/v1/chat/completions`` requests at a given concurrency and request rate, timed per token on the client, plus the
server's queue time from a vLLM Prometheus ``/metrics`` endpoint. Standard library only (http.client)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import json
import re
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError, check_range
from ansible_collections.aitune.kernel.plugins.module_utils._bench_session import RequestResult, stream_request
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import DISTRIBUTION_QUANTILES, percentile

CHAT_PATH = '/v1/chat/completions'
QUEUE_METRIC = 'vllm:request_queue_time_seconds'
SAMPLE_LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
LE_LABEL = re.compile(r'le="([^"]+)"')

LIMITS = {
    'concurrency': (1, 1024),
    'max_tokens': (1, 1000000),
    'requests': (1, 1000000),
    'rate_rps': (0.001, 100000),
    'connect_timeout_s': (0.05, 120),
    'request_timeout_s': (0.1, 3600),
}


class Target(object):
    """The parsed endpoint URL."""

    def __init__(self, url, what='endpoint.url', chat=True):
        parts = urlsplit(url or '')
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise BenchError('%s %r is not an http:// or https:// URL with a host' % (what, url))
        try:
            port = parts.port
        except ValueError:
            raise BenchError('%s %r has an invalid port' % (what, url))
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == 'https' else 80)
        path = parts.path.rstrip('/')
        if not chat:
            self.path = parts.path or '/'
        elif path.endswith('/chat/completions'):
            self.path = path
        elif path.endswith('/v1'):
            self.path = path + '/chat/completions'
        else:
            self.path = path + CHAT_PATH
        if parts.query:
            self.path += '?' + parts.query

    def connection(self, connect_timeout, validate_certs):
        if self.scheme == 'https':
            context = ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=connect_timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout)


def check_reachable(target, connect_timeout):
    """A plain TCP connect, so a wrong address fails in connect_timeout with the socket's own reason."""
    try:
        sock = socket.create_connection((target.host, target.port), timeout=connect_timeout)
    except socket.timeout:
        raise BenchError('endpoint %s is unreachable: no answer to a TCP connect to %s:%d within %s s'
                         % (target.url, target.host, target.port, connect_timeout))
    except (OSError, socket.error) as exc:
        raise BenchError('endpoint %s is unreachable: connecting to %s:%d: %s'
                         % (target.url, target.host, target.port, exc.strerror or exc))
    sock.close()


def check_endpoint_settings(settings, name='endpoint'):
    """The checks that need no server: every number in range and the URLs' form. bench_plan runs them on the
    controller, with ``name`` the inventory variable that holds the settings."""
    for option in LIMITS:
        check_range(LIMITS, option, settings.get(option), '%s.%s' % (name, option))
    Target(settings.get('url'), '%s.url' % name)
    if settings.get('metrics_url'):
        Target(settings['metrics_url'], '%s.metrics_url' % name, chat=False)


def validate_endpoint(settings):
    """Checks the endpoint settings and that the server (and its metrics URL, when given) answers."""
    if not settings or not settings.get('url'):
        raise BenchError('tool endpoint needs endpoint.url, the base URL of an OpenAI-compatible server')
    if not settings.get('model'):
        raise BenchError('tool endpoint needs endpoint.model, the model name the server serves')
    check_endpoint_settings(settings)
    timeout = settings.get('connect_timeout_s') or 3.0
    check_reachable(Target(settings['url']), timeout)
    if settings.get('metrics_url'):
        scrape_histogram(settings['metrics_url'], QUEUE_METRIC, timeout, settings.get('validate_certs', True))


# ---------------------------------------------------------------------------------------------------------------------
# Prometheus

def parse_histogram(text, name):
    """``{'sum': s, 'count': c, 'buckets': {le: cumulative count}}`` for one histogram, summed over its label sets
    (one per model or engine); None when the text does not have it."""
    found = False
    result = {'sum': 0.0, 'count': 0.0, 'buckets': {}}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        match = SAMPLE_LINE.match(line)
        if not match:
            continue
        metric, labels, value = match.group(1), match.group(2) or '', match.group(3)
        try:
            number = float(value)
        except ValueError:
            continue
        if metric == name + '_sum':
            result['sum'] += number
            found = True
        elif metric == name + '_count':
            result['count'] += number
            found = True
        elif metric == name + '_bucket':
            le = LE_LABEL.search(labels)
            if le:
                bound = float('inf') if le.group(1) in ('+Inf', 'Inf') else float(le.group(1))
                result['buckets'][bound] = result['buckets'].get(bound, 0.0) + number
                found = True
    return result if found else None


def histogram_delta(before, after):
    if not before or not after:
        return None
    return {'sum': after['sum'] - before['sum'], 'count': after['count'] - before['count'],
            'buckets': {le: after['buckets'].get(le, 0.0) - before['buckets'].get(le, 0.0) for le in after['buckets']}}


def histogram_quantile(q, buckets):
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank; a rank in the +Inf
    bucket gives the highest finite bound."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q / 100.0 * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float('inf'):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound


def scrape_histogram(url, name, timeout, validate_certs=True):
    """GETs a Prometheus page and returns the histogram ``name`` from it (None when the page lacks it)."""
    target = Target(url, 'endpoint.metrics_url', chat=False)
    connection = target.connection(timeout, validate_certs)
    try:
        connection.request('GET', target.path, headers={'Accept': 'text/plain'})
        response = connection.getresponse()
        text = response.read().decode('utf-8', 'replace')
        if response.status != 200:
            raise BenchError('endpoint.metrics_url %s answered HTTP %d %s' % (url, response.status, response.reason))
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError('endpoint.metrics_url %s cannot be read: %s' % (url, exc))
    finally:
        connection.close()
    return parse_histogram(text, name)


# ---------------------------------------------------------------------------------------------------------------------
# The load

class LoadGenerator(object):
    """``concurrency`` client threads. With ``rate_rps`` they follow a fixed open-loop schedule (request i is due at
    i / rate_rps), and a request that finds every thread busy starts late, which shows as client delay. Without it
    each thread sends its next request as soon as the previous one ends (closed loop)."""

    def __init__(self, settings, duration_s):
        self.settings = settings
        self.target = Target(settings['url'])
        self.duration_s = duration_s
        self.requests = settings.get('requests')
        self.rate = settings.get('rate_rps')
        self.lock = threading.Lock()
        self.next_index = 0
        self.results = []
        self.body = json.dumps({
            'model': settings['model'],
            'messages': [{'role': 'user', 'content': settings.get('prompt') or 'Say hello.'}],
            'max_tokens': settings.get('max_tokens') or 64,
            'stream': True,
            'stream_options': {'include_usage': True},
        }).encode('utf-8')
        self.headers = {'Content-Type': 'application/json', 'Accept': 'text/event-stream'}
        if settings.get('api_key'):
            self.headers['Authorization'] = 'Bearer %s' % settings['api_key']
        self.t0 = None

    def _ticket(self):
        """The next request's scheduled start, or None when the run is over."""
        with self.lock:
            index = self.next_index
            self.next_index += 1
        if self.requests is not None and index >= self.requests:
            return None
        now = time.monotonic()
        scheduled = self.t0 + index / float(self.rate) if self.rate else now
        if self.requests is None and max(scheduled, now) >= self.t0 + self.duration_s:
            return None
        return scheduled

    def _client(self):
        connect_timeout = self.settings.get('connect_timeout_s') or 3.0
        request_timeout = self.settings.get('request_timeout_s') or 120.0
        validate_certs = self.settings.get('validate_certs', True)
        connection = None
        while True:
            scheduled = self._ticket()
            if scheduled is None:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if connection is None:
                connection = self.target.connection(connect_timeout, validate_certs)
            try:
                result = stream_request(connection, self.target.path, self.body, self.headers, request_timeout, scheduled)
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                result = RequestResult(scheduled, scheduled)
                result.end = time.monotonic()
                result.error = '%s: %s' % (type(exc).__name__, exc)
            if result.error:
                connection.close()
                connection = None
            with self.lock:
                self.results.append(result)
        if connection is not None:
            connection.close()

    def run(self):
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self._client, name='aitune-endpoint-%d' % index)
                   for index in range(self.settings.get('concurrency') or 1)]
        for thread in threads:
            thread.daemon = True
            thread.start()
        for thread in threads:
            thread.join()
        return self.results


def ms_percentiles(values_s, prefix, quantiles):
    ordered = sorted(values_s)
    result = {}
    for name, q in quantiles:
        value = percentile(ordered, q)
        result['%s_%s_ms' % (prefix, name)] = None if value is None else round(value * 1000.0, 3)
    return result


def queue_time_metrics(metrics_url, before, after, warnings):
    """The server's queue time during the run, from two scrapes of its histogram around it; None where there is no
    metrics URL, the server has no such histogram (with a warning) or queued nothing."""
    metrics = {'queue_time_mean_ms': None, 'queue_time_p50_ms': None, 'queue_time_p99_ms': None}
    if not metrics_url:
        return metrics
    delta = histogram_delta(before, after)
    if delta is None:
        warnings.append('%s has no %s histogram; queue time is not reported' % (metrics_url, QUEUE_METRIC))
    elif delta['count'] > 0:
        metrics['queue_time_mean_ms'] = round(delta['sum'] / delta['count'] * 1000.0, 3)
        for name, q in (('p50', 50), ('p99', 99)):
            value = histogram_quantile(q, delta['buckets'])
            metrics['queue_time_%s_ms' % name] = None if value is None else round(value * 1000.0, 3)
    return metrics


def run_endpoint(settings, duration_s):
    """One repetition against the endpoint: returns metrics, the TTFT distribution and request counts."""
    warnings = []
    timeout = settings.get('connect_timeout_s') or 3.0
    validate_certs = settings.get('validate_certs', True)
    metrics_url = settings.get('metrics_url')
    queue_before = scrape_histogram(metrics_url, QUEUE_METRIC, timeout, validate_certs) if metrics_url else None
    generator = LoadGenerator(settings, duration_s)
    results = generator.run()
    queue_after = scrape_histogram(metrics_url, QUEUE_METRIC, timeout, validate_certs) if metrics_url else None
    good = [r for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    if not results:
        raise BenchError('no request was sent to %s (duration too short?)' % generator.target.url)
    if not good:
        raise BenchError('every request to %s%s failed (%d); the first error: %s' % (
            generator.target.url, generator.target.path if generator.target.path != CHAT_PATH else '',
            len(failed), failed[0].error))
    if failed:
        warnings.append('%d of %d requests to %s failed; the first error: %s'
                        % (len(failed), len(results), generator.target.url, failed[0].error))
    window_s = max(r.end for r in results) - generator.t0
    ttft = [r.first - r.start for r in good]
    itl = [later - earlier for r in good for earlier, later in zip(r.times, r.times[1:])]
    latency = [r.end - r.start for r in good]
    delays = [max(0.0, r.start - r.scheduled) for r in good] if generator.rate else []
    tokens = sum(r.tokens or 0 for r in good)
    metrics = {}
    metrics.update(ms_percentiles(ttft, 'ttft', (('p50', 50), ('p95', 95), ('p99', 99))))
    metrics.update(ms_percentiles(itl, 'itl', (('p50', 50), ('p99', 99))))
    metrics.update(ms_percentiles(latency, 'request', (('p50', 50), ('p99', 99))))
    metrics['tokens_per_s'] = round(tokens / window_s, 2) if window_s > 0 else None
    metrics['requests_per_s'] = round(len(good) / window_s, 3) if window_s > 0 else None
    metrics['requests_ok'] = len(good)
    metrics['requests_failed'] = len(failed)
    metrics['client_delay_p99_ms'] = ms_percentiles(delays, 'delay', (('p99', 99),))['delay_p99_ms'] \
        if delays else None
    metrics.update(queue_time_metrics(metrics_url, queue_before, queue_after, warnings))
    ordered = sorted(ttft)
    return {
        'metrics': metrics, 'window_s': round(window_s, 3), 'warnings': warnings,
        'distribution': {'metric': 'ttft_ms', 'quantiles': list(DISTRIBUTION_QUANTILES),
                         'values': [round(percentile(ordered, q) * 1000.0, 3) for q in DISTRIBUTION_QUANTILES]},
        'requests': {'sent': len(results), 'ok': len(good), 'failed': len(failed),
                     'first_error': failed[0].error if failed else None},
    }
