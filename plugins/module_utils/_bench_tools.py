# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The optional tools around the agent workload: cyclictest and fio (their arguments, the checks before they run,
and their output read into metrics) and the GPU sampler, which runs nvidia-smi during a measurement window."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import os
import shutil
import stat
import subprocess
import threading
import time

from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError, check_range
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import DISTRIBUTION_QUANTILES
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import format_cpulist


# ---------------------------------------------------------------------------------------------------------------------
# GPU sampling

class GpuSampler(object):
    """Samples GPU utilisation and SM clock with nvidia-smi during the window, when nvidia-smi is on PATH."""

    QUERY = ['--query-gpu=utilization.gpu,clocks.sm', '--format=csv,noheader,nounits']

    def __init__(self, processes, interval_s):
        self.binary = shutil.which('nvidia-smi') if interval_s else None
        self.processes = processes
        self.interval_s = interval_s
        self.samples = []
        self.errors = []
        self.stop_event = threading.Event()
        self.thread = None

    def start(self):
        if self.binary:
            self.thread = threading.Thread(target=self._loop, name='aitune-gpu-sampler')
            self.thread.daemon = True
            self.thread.start()
        return self

    def _loop(self):
        while not self.stop_event.is_set():
            self.sample_once()
            self.stop_event.wait(self.interval_s)

    def sample_once(self):
        child = self.processes.start([self.binary] + self.QUERY, 'nvidia-smi', stdin=False)
        try:
            output = self._read_all(child, time.monotonic() + 10)
            child.proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, TimeoutError):
            output = None
        finally:
            self.processes.stop(child, grace_s=0)
        if child.proc.returncode != 0 or output is None:
            message = 'nvidia-smi failed (rc=%s)%s' % (child.proc.returncode, child.stderr_tail(prefix=': '))
            if message not in self.errors:
                self.errors.append(message)
            return
        self.samples.append(parse_nvidia_smi(output))

    @staticmethod
    def _read_all(child, deadline):
        lines = []
        while True:
            line = child.channel.read_line(deadline)
            if line is None:
                return '\n'.join(lines)
            lines.append(line)

    def stop(self):
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=15)

    def report(self):
        if not self.binary:
            return {'present': False, 'reason': 'nvidia-smi is not on PATH' if self.interval_s else 'not sampled'}
        gpus = {}
        for sample in self.samples:
            for index, (util, clock) in enumerate(sample):
                gpus.setdefault(index, {'util': [], 'clock': []})
                if util is not None:
                    gpus[index]['util'].append(util)
                if clock is not None:
                    gpus[index]['clock'].append(clock)
        if not gpus:
            return {'present': False, 'reason': '; '.join(self.errors) or 'no sample was taken'}
        per_gpu = []
        for index in sorted(gpus):
            util, clock = gpus[index]['util'], gpus[index]['clock']
            per_gpu.append({'index': index, 'samples': len(util),
                            'util_pct_mean': round(sum(util) / len(util), 2) if util else None,
                            'util_pct_max': max(util) if util else None,
                            'sm_clock_mhz_mean': round(sum(clock) / len(clock), 1) if clock else None,
                            'sm_clock_mhz_min': min(clock) if clock else None})
        return {'present': True, 'gpus': per_gpu}


def parse_nvidia_smi(text):
    """[(utilisation %, SM clock MHz), ...] per GPU from ``--format=csv,noheader,nounits`` output; "[N/A]" fields
    become None."""
    rows = []
    for line in text.strip().splitlines():
        values = []
        for field in line.split(',')[:2]:
            field = field.strip()
            try:
                values.append(float(field))
            except ValueError:
                values.append(None)
        values += [None] * (2 - len(values))
        rows.append(tuple(values))
    return rows


def gpu_metrics(report):
    if not report.get('present'):
        return {'gpu_util_pct_mean': None, 'gpu_sm_clock_mhz_mean': None}
    utils = [gpu['util_pct_mean'] for gpu in report['gpus'] if gpu['util_pct_mean'] is not None]
    clocks = [gpu['sm_clock_mhz_mean'] for gpu in report['gpus'] if gpu['sm_clock_mhz_mean'] is not None]
    return {'gpu_util_pct_mean': round(sum(utils) / len(utils), 2) if utils else None,
            'gpu_sm_clock_mhz_mean': round(sum(clocks) / len(clocks), 1) if clocks else None}


# ---------------------------------------------------------------------------------------------------------------------
# cyclictest and fio

CYCLICTEST_LIMITS = {
    'interval_us': (50, 1000000),
    'histogram_us': (10, 1000000),
}


def check_fio_settings(fio, name='fio'):
    """The checks that need no host: fio writes only where that was allowed. bench_plan runs them on the controller,
    with ``name`` the inventory variable that holds the settings."""
    if fio.get('rw', 'randread') not in (None, 'randread') and not fio.get('allow_write'):
        raise BenchError('%s.rw %s writes to %s; set %s.allow_write: true to allow that (it destroys the data on '
                         'a block device)' % (name, fio.get('rw'), fio.get('path'), name))


def validate_fio(options):
    """fio needs a regular file or block device to read, and writes to it only when that was allowed."""
    fio = options.get('fio') or {}
    path = fio.get('path')
    if not path:
        raise BenchError('tool fio needs fio.path, a regular file or a block device to read')
    check_fio_settings(fio)
    if not shutil.which('fio'):
        raise BenchError('tool fio was asked for, but fio is not installed (not on PATH)')
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise BenchError('fio.path %s: %s' % (path, os.strerror(exc.errno)))
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise BenchError('fio.path %s is neither a regular file nor a block device' % path)
    if stat.S_ISREG(mode) and os.path.getsize(path) < 4096:
        raise BenchError('fio.path %s is smaller than one 4 KiB block; give a file of some size' % path)


def check_cyclictest_settings(settings, name='cyclictest'):
    """The checks that need no host, which bench_plan runs on the controller (``name`` as for check_fio_settings)."""
    for option in CYCLICTEST_LIMITS:
        check_range(CYCLICTEST_LIMITS, option, settings.get(option), '%s.%s' % (name, option))


def validate_cyclictest(options):
    if not shutil.which('cyclictest'):
        raise BenchError('tool cyclictest was asked for, but cyclictest is not installed (package rt-tests)')
    check_cyclictest_settings(options.get('cyclictest') or {})


def cyclictest_argv(binary, opts):
    """cyclictest's arguments. --default-system keeps it from holding /dev/cpu_dma_latency at 0 (which would
    measure PM QoS instead of the host as tuned), and -p is passed only with an RT policy, because
    ``--policy=other -p 0`` silently runs SCHED_FIFO."""
    settings = opts.get('cyclictest') or {}
    threads = settings.get('threads') or opts.get('workers') or 1
    argv = [binary, '--default-system', '--quiet', '--duration=%d' % max(1, int(math.ceil(opts['duration_s']))),
            '--interval=%d' % (settings.get('interval_us') or 1000), '--threads=%d' % threads,
            '--histogram=%d' % (settings.get('histogram_us') or 10000)]
    policy = opts.get('policy')
    if policy in ('fifo', 'rr'):
        argv += ['--policy=%s' % policy, '--priority=%d' % opts.get('priority', 1)]
    elif policy:
        argv.append('--policy=%s' % policy)
    else:
        argv.append('--policy=other')
    if opts.get('cpu_ids'):
        argv.append('--affinity=%s' % format_cpulist(opts['cpu_ids']))
    return argv


def parse_cyclictest(text):
    """Percentiles from cyclictest's ``--histogram`` output (one column per thread, one row per microsecond), merged
    over its threads. A percentile that falls among the overflows (beyond the histogram) is reported as the largest
    maximum latency, which is an upper bound, and counted in ``overflows``."""
    counts = {}
    overflows = 0
    maxima = []
    minima = []
    averages = []
    total = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line[0].isdigit():
            fields = line.split()
            try:
                bucket = int(fields[0])
                counts[bucket] = counts.get(bucket, 0) + sum(int(v) for v in fields[1:])
            except ValueError:
                continue
        elif line.startswith('# Max Latencies:'):
            maxima = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Min Latencies:'):
            minima = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Avg Latencies:'):
            averages = [int(v) for v in line.split(':', 1)[1].split()]
        elif line.startswith('# Histogram Overflows:'):
            overflows = sum(int(v) for v in line.split(':', 1)[1].split())
    total = sum(counts.values()) + overflows
    maximum = max(maxima) if maxima else (max(counts) if counts else None)

    def quantile(q):
        if not total:
            return None
        target = q / 100.0 * total
        seen = 0
        for bucket in sorted(counts):
            seen += counts[bucket]
            if seen >= target and counts[bucket]:
                return float(bucket)
        return float(maximum) if maximum is not None else None

    metrics = {
        'latency_p50_us': quantile(50), 'latency_p90_us': quantile(90), 'latency_p99_us': quantile(99),
        'latency_p999_us': quantile(99.9), 'latency_max_us': float(maximum) if maximum is not None else None,
        'latency_min_us': float(min(minima)) if minima else None,
        'latency_mean_us': round(sum(averages) / len(averages), 2) if averages else None,
        'overflows': overflows, 'samples': total,
    }
    values = [quantile(q) if q < 100 else metrics['latency_max_us'] for q in DISTRIBUTION_QUANTILES]
    return {'metrics': metrics, 'total': total,
            'distribution': {'metric': 'latency_us', 'quantiles': list(DISTRIBUTION_QUANTILES), 'values': values}}


def fio_argv(binary, opts):
    """4 KiB random I/O at queue depth 1. Reads pass --readonly, which makes fio itself refuse any write."""
    settings = opts.get('fio') or {}
    rw = settings.get('rw') or 'randread'
    # fio splits --filename at ':'; a literal colon must be escaped.
    filename = settings['path'].replace(':', '\\:')
    argv = [binary, '--name=aitune-bench', '--filename=%s' % filename, '--rw=%s' % rw, '--bs=4k', '--iodepth=1',
            '--numjobs=1', '--ioengine=%s' % (settings.get('ioengine') or 'psync'),
            '--direct=%d' % (1 if settings.get('direct', True) else 0), '--time_based',
            '--runtime=%dms' % int(opts['duration_s'] * 1000), '--output-format=json']
    if opts.get('warmup_s'):
        argv.append('--ramp_time=%dms' % int(opts['warmup_s'] * 1000))
    if rw == 'randread':
        argv.append('--readonly')
    if opts.get('cpu_ids'):
        argv.append('--cpus_allowed=%s' % format_cpulist(opts['cpu_ids']))
    return argv


def parse_fio(text, rw):
    start = text.find('{')
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not data or not data.get('jobs'):
        raise BenchError('fio printed no JSON result: %s' % text[:400])
    job = data['jobs'][0]
    if job.get('error'):
        raise BenchError('fio reported error %s' % job['error'])
    side = job['write'] if rw.endswith('write') else job['read']
    percentiles = (side.get('clat_ns') or {}).get('percentile') or {}

    def at(q):
        for key, value in percentiles.items():
            if abs(float(key) - q) < 1e-6:
                return round(value / 1000.0, 3)
        return None

    clat = side.get('clat_ns') or {}
    return {'io_p50_us': at(50), 'io_p90_us': at(90), 'io_p99_us': at(99), 'io_p999_us': at(99.9),
            'io_max_us': round(clat['max'] / 1000.0, 3) if 'max' in clat else None,
            'io_mean_us': round(clat['mean'] / 1000.0, 3) if 'mean' in clat else None,
            'iops': round(side.get('iops', 0.0), 1)}
