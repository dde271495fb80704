# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The latency benchmark's runner: :class:`Bench` validates latency_bench's options, places and starts the processes,
runs the repetitions of the agent workload or of one of the tools, and summarises them; ``run_benchmark`` is what the
module calls.

The agent workload is measured with in-app CLOCK_MONOTONIC timestamps taken by its workers, with the host counters
around each window. Everything is standard library, for targets running Python 3.8 or later. The rooms it draws on:
_bench_options (the options and their checks), _bench_host (the host's counters and facts), _bench_worker (the
worker program and its calibration), _bench_native (the same program in C, built on the target), _bench_procs
(process supervision and placement), _bench_tools (cyclictest, fio and GPU sampling), _bench_endpoint (the inference
endpoint client) and _bench_stats (percentiles and summaries).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import os
import shutil
import sys
import tempfile
import time
from array import array

from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import run_endpoint
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import (
    BenchError, cgroup_pressure_path, counter_metrics, host_info, host_snapshot, online_cpus, process_cpu_ticks,
    read_counter, system_metrics, utc_now)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_native import NativeUnavailable, build_native_worker
from ansible_collections.aitune.kernel.plugins.module_utils._bench_options import SERVER_TOOLS, validate_options
from ansible_collections.aitune.kernel.plugins.module_utils._bench_procs import Placement, ProcessSet, TerminationGuard
from ansible_collections.aitune.kernel.plugins.module_utils._bench_server import (
    GENERATE_SOURCE, InferenceServer, default_tools, make_tree, server_python, session_config, session_metrics)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_session import program_source, run_tool
from ansible_collections.aitune.kernel.plugins.module_utils._bench_stats import distribution, latency_summary, summarize_runs
from ansible_collections.aitune.kernel.plugins.module_utils._bench_tools import (
    GpuSampler, cyclictest_argv, fio_argv, gpu_metrics, parse_cyclictest, parse_fio)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_worker import (
    HOG_SOURCE, PythonWorker, default_calibration_file, send_message, spin_calibration)


def sleep_until_ns(deadline_ns):
    while True:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining <= 0:
            return
        time.sleep(min(remaining / 1e9, 0.5))


def load_samples(path):
    values = array('q')
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as handle:
            values.fromfile(handle, size // values.itemsize)
    except (IOError, OSError):
        pass
    return values


class Bench(object):
    """One latency_bench invocation: validated options in, ``results`` out."""

    def __init__(self, options, check_mode=False):
        self.options = options
        self.check_mode = check_mode
        self.python = sys.executable
        self.warnings = []
        self.scratch = None
        self.processes = None
        self.hogs = []
        self.workers_placement = None
        self.load_placement = None
        self.iterations = None
        self.worker = None
        self.server = None
        self.tree = None
        # The batch work's processes and, for the generating job, their token counters: read around every window.
        self.load_pids = []
        self.load_counters = []

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def run(self):
        validate_options(self.options, self.python)
        opts = self.options
        tool = opts.get('tool') or 'agent'
        results = {'tool': tool, 'workload': opts.get('workload') if tool == 'agent' else None,
                   'condition': opts.get('condition'), 'parameters': self.parameters(), 'runs': [],
                   'summary': None, 'host': host_info(), 'placement': None, 'pids': {'started': [], 'remaining': []},
                   'warnings': self.warnings, 'worker': None, 'worker_build': None, 'server': None}
        self.scratch = tempfile.mkdtemp(prefix='aitune-bench-')
        self.processes = ProcessSet(self.scratch)
        failure = None
        try:
            with TerminationGuard():
                self._run(results)
        except BenchError as exc:
            failure = str(exc)
        except TerminationGuard.Terminated as exc:
            failure = 'the benchmark was interrupted: %s' % exc
        except KeyboardInterrupt:
            failure = 'the benchmark was interrupted'
        finally:
            if self.server is not None:
                self.server.stop()
                results['server'] = self.server.report
            self.processes.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            results['pids'] = {'started': self.processes.started(), 'remaining': self.processes.remaining()}
            results['placement'] = {
                'workers': self.workers_placement.report() if self.workers_placement else None,
                'load': self.load_placement.report() if self.load_placement else None}
        if results['pids']['remaining']:
            failure = (failure + '; ' if failure else '') + 'processes still running after cleanup: %s' % (
                results['pids']['remaining'],)
        if failure:
            raise BenchError(failure, results)
        return results

    def parameters(self):
        opts = self.options
        keys = ('tool', 'workload', 'condition', 'workers', 'compute_us', 'duration_s', 'warmup_s', 'repetitions',
                'rate_hz', 'load_fraction', 'policy', 'priority', 'timer_slack_ns', 'cpus')
        params = {key: opts.get(key) for key in keys}
        params['primitive'] = self.primitive() if params['tool'] in (None, 'agent') else None
        # The worker that actually ran, once select_worker has chosen it; none for the other tools.
        params['worker'] = None
        for name in ('cyclictest', 'fio'):
            if params['tool'] == name and opts.get(name):
                params[name] = dict(opts[name])
        if params['tool'] == 'endpoint' and opts.get('endpoint'):
            params['endpoint'] = {key: value for key, value in opts['endpoint'].items() if key != 'api_key'}
        return params

    def primitive(self):
        if (self.options.get('workload') or 'ring') == 'periodic':
            return 'pipe'
        return 'eventfd' if hasattr(os, 'eventfd') else 'pipe'

    def _run(self, results):
        opts = self.options
        tool = results['tool']
        self.workers_placement = Placement('workers', opts.get('placement_required', True), self.warnings)
        self.load_placement = Placement('load', opts.get('placement_required', True), self.warnings)
        if tool != 'endpoint':
            # The endpoint client runs inside this process; there is nothing to place.
            self.workers_placement.resolve(opts.get('slice'), opts.get('cgroup'), self.processes, self.python)
        if tool == 'agent':
            self.prepare_agent(results)
        else:
            self._note_unused_settings(tool)
        if tool in ('server', 'agent_session'):
            self.start_server()
        if opts.get('preflight'):
            self.preflight(results)
            return
        if opts.get('condition') == 'load':
            self.load_placement.resolve(opts.get('load_slice'), opts.get('load_cgroup'), self.processes, self.python)
            self.start_load()
        runner = {'agent': self.agent_repetition, 'cyclictest': self.cyclictest_repetition,
                  'fio': self.fio_repetition, 'endpoint': self.endpoint_repetition,
                  'server': self.server_repetition, 'agent_session': self.session_repetition}[tool]
        for repetition in range(1, opts['repetitions'] + 1):
            run = runner(repetition)
            run['repetition'] = repetition
            results['runs'].append(run)
        primary = {'agent': 'wake', 'cyclictest': 'latency', 'fio': 'io', 'endpoint': 'ttft', 'server': 'ttft',
                   'agent_session': 'session_step'}[tool]
        results['summary'] = summarize_runs(results['runs'], primary)

    def prepare_agent(self, results):
        """The work per step from the calibrated speed of the compute loop, and a warning where the periodic workload
        is offered more work than its workers can do."""
        opts = self.options
        if opts.get('timer_slack_ns') is not None:
            self.workers_placement.applied['timer_slack_ns'] = opts['timer_slack_ns']
        self.worker = self.select_worker(results)
        calibration_path = opts.get('calibration_file') or default_calibration_file()
        results['host']['calibration'] = spin_calibration(
            self.processes, self.worker, calibration_path, opts.get('recalibrate'), not self.check_mode,
            self.warnings)
        self.iterations = max(1, int(round(results['host']['calibration']['iterations_per_us'] * opts['compute_us'])))
        results['parameters']['iterations'] = self.iterations
        if opts.get('workload') == 'periodic':
            capacity = opts['workers'] * 1e6 / opts['compute_us']
            if opts['rate_hz'] > capacity:
                self.warnings.append('rate_hz %s offers more work than %d workers of %d us can do (%.0f/s); the '
                                     'wake latency will include a growing backlog' % (
                                         opts['rate_hz'], opts['workers'], opts['compute_us'], capacity))

    def select_worker(self, results):
        """The worker program the ``worker`` option asks for: the native one where it builds and passes its check
        (required with ``native``), else the Python one, with a warning under ``auto`` that says why. The build lives
        in the scratch directory (private, and removed when the run ends, however it ends)."""
        wanted = self.options.get('worker') or 'auto'
        worker = PythonWorker(self.python)
        report = {'compiler': None, 'compiler_version': None, 'fallback': None, 'build_s': None}
        results['worker_build'] = report
        if wanted != 'python':
            try:
                worker = build_native_worker(self.processes, self.scratch)
                report.update(worker.build_report())
            except NativeUnavailable as exc:
                report.update(compiler=exc.compiler, compiler_version=exc.compiler_version)
                if wanted == 'native':
                    raise BenchError('the native worker (worker: native) cannot be used: %s' % exc)
                report['fallback'] = str(exc)
                self.warnings.append('the native worker could not be used, so the Python worker ran, whose '
                                     'interpreter adds to every step: %s' % exc)
        results['worker'] = results['parameters']['worker'] = worker.kind
        return worker

    def _note_unused_settings(self, tool):
        opts = self.options
        # The launcher of the server tools applies the timer slack, as the agent's workers apply it to themselves.
        unused = [name for name in ('timer_slack_ns',) if opts.get(name) is not None and tool not in SERVER_TOOLS]
        # The default (auto) is no choice of the user's, so it is not reported as unused.
        unused += [name for name in ('worker',) if opts.get(name) not in (None, 'auto')]
        if tool in ('fio', 'endpoint'):
            unused += [name for name in ('policy',) if opts.get(name)]
        if tool == 'endpoint':
            unused += [name for name in ('slice', 'cgroup', 'cpus') if opts.get(name)]
        for name in unused:
            self.warnings.append('%s does not apply to tool %s and was not used' % (name, tool))

    def load_count(self):
        return max(1, int(len(online_cpus()) * self.options.get('load_fraction', 1.0) + 0.5))

    def start_load(self):
        """The batch work of the loaded condition: spin hogs, or llama.cpp generating offline (``load_job``)."""
        if self.options.get('load_job') == 'generate':
            self.start_generate()
        else:
            self.start_hogs()
        self.load_pids = [child.pid for child in self.hogs]

    def start_generate(self, count=None, placed=True):
        """llama.cpp generating offline, one single-threaded process where there would be a hog (independent
        processes, as batch jobs are: a multi-threaded one would stall at its threads' barrier whenever one of them
        waits for a CPU), in the batch placement, each counting its tokens; ready once each has loaded the model."""
        settings = self.options['server']
        count = count or self.load_count()
        prefix = self.load_placement.prefix if placed else []
        children = []
        for index in range(count):
            counter = os.path.join(self.scratch, 'batch-tokens-%d' % index)
            child = self.processes.start(prefix + [server_python(settings, self.python), '-c', GENERATE_SOURCE],
                                         'batch-generate')
            if placed:
                self.load_placement.place(child)
            child.send({'model': settings['model'], 'threads': 1, 'counter': counter,
                        'prompt': 'Once upon a time, in a data centre far away,'})
            children.append(child)
            self.hogs.append(child)
            self.load_counters.append(counter)
        for child in children:
            child.read_message(time.monotonic() + 300, 'loading the model for the batch job')
        if placed:
            self.load_placement.applied['batch_job'] = 'llama.cpp generation, %d single-threaded processes' % count
        return children

    def snapshot(self, pids=(), pressure=None):
        """The host's counters, and the batch work's CPU time and tokens where it runs."""
        snapshot = host_snapshot(pids, pressure)
        if self.load_pids:
            snapshot['load_ticks'] = process_cpu_ticks(self.load_pids)
            counts = [read_counter(path) for path in self.load_counters]
            snapshot['load_tokens'] = sum(counts) if counts and None not in counts else None
        return snapshot

    @staticmethod
    def batch_metrics(before, after):
        """What the batch work got done in the window: its share of all CPU time, and its tokens/s when it
        generates. None of it under the idle condition."""
        if 'load_ticks' not in before or 'load_ticks' not in after:
            return {}
        window_s = (after['t_ns'] - before['t_ns']) / 1e9
        capacity = window_s * os.sysconf('SC_CLK_TCK') * len(online_cpus())
        metrics = {'batch_cpu_pct': round((after['load_ticks'] - before['load_ticks']) * 100.0 / capacity, 2)
                   if capacity > 0 else None}
        if before.get('load_tokens') is not None and after.get('load_tokens') is not None and window_s > 0:
            metrics['batch_tokens_per_s'] = round((after['load_tokens'] - before['load_tokens']) / window_s, 2)
        return metrics

    def start_hogs(self):
        count = self.load_count()
        for _index in range(count):
            child = self.processes.start(self.load_placement.prefix + [self.python, '-c', HOG_SOURCE], 'load')
            self.load_placement.place(child)
            child.send(None)
            self.hogs.append(child)
        # Let the hogs reach every CPU before the first window.
        time.sleep(0.2)
        for child in self.hogs:
            if child.proc.poll() is not None:
                raise BenchError('a CPU hog (PID %d) exited at once (rc=%s)%s' % (
                    child.pid, child.proc.returncode, child.stderr_tail(prefix=': ')))
        self.load_placement.applied['hogs'] = count

    # -- the agent workload -------------------------------------------------------------------------------------------

    def worker_settings(self):
        opts = self.options
        return {'timer_slack_ns': opts.get('timer_slack_ns'), 'cpus': opts.get('cpu_ids'),
                'policy': opts.get('policy'), 'priority': opts.get('priority')}

    def start_worker(self, role, config, pass_fds):
        child = self.processes.start(self.workers_placement.prefix + self.worker.argv, role, pass_fds=pass_fds)
        self.workers_placement.place(child)
        if not send_message(child, self.worker, config):
            raise BenchError('%s (PID %d) exited before it got its settings%s' % (
                role, child.pid, child.stderr_tail(prefix=': ')))
        return child

    def check_ready(self, child, deadline):
        message = child.read_message(deadline, 'starting')
        self.workers_placement.note(message, child.role, child.pid)
        return message

    def make_channels(self, count, periodic):
        """(read fd, write fd) per worker: an eventfd (one fd for both ends) for the ring where Python has it,
        pipes otherwise."""
        channels = []
        for _index in range(count):
            if not periodic and hasattr(os, 'eventfd'):
                fd = os.eventfd(0)
                channels.append((fd, fd))
            else:
                channels.append(os.pipe())
        return channels

    def start_agent(self, children, channels, fds, samples_dir, periodic):
        """Start the workers, each waking on its own channel and signalling the next one's (a ring), and for the
        periodic workload the dispatcher that posts to all of them. Each child joins ``children`` as it starts, so a
        failure part way still stops the ones already running."""
        opts = self.options
        count = opts['workers']
        for index in range(count):
            config = dict(self.worker_settings(), role='periodic' if periodic else 'ring',
                          in_fd=channels[index][0], out_fd=channels[(index + 1) % count][1],
                          iterations=self.iterations, samples=os.path.join(samples_dir, 'w%d' % index))
            children.append(self.start_worker('worker', config, fds))
        if periodic:
            config = dict(self.worker_settings(), role='dispatcher', out_fds=[pair[1] for pair in channels],
                          rate_hz=opts['rate_hz'], samples=os.path.join(samples_dir, 'dispatcher'))
            children.append(self.start_worker('dispatcher', config, fds))

    def agent_window(self, children, channels, periodic):
        """Start the run once every child is ready, take the host counters and the GPU samples around the measurement
        window, and collect each child's last message (in the order of ``children``)."""
        opts = self.options
        deadline = time.monotonic() + 60
        for child in children:
            self.check_ready(child, deadline)
        pids = [child.pid for child in children[:opts['workers']]]
        pressure = cgroup_pressure_path(pids[0], self.workers_placement.cgroup)
        go = self.window_plan()
        for child in children:
            send_message(child, self.worker, go)
        if not periodic:
            sleep_until_ns(go['start_ns'])
            token = time.monotonic_ns()
            os.write(channels[0][1], token.to_bytes(8, sys.byteorder))
        before, after, gpu = self.sample_window(go, pids, pressure)
        # A step may be in its compute when the window closes, so allow for the longest step and a slow host.
        done_deadline = time.monotonic() + 30 + opts['compute_us'] * opts['workers'] / 1e6
        done = [child.read_message(done_deadline, 'finishing the run') for child in children]
        return {'window_s': (go['stop_at_ns'] - go['measure_from_ns']) / 1e9, 'before': before, 'after': after,
                'gpu': gpu, 'pressure': pressure, 'done': done}

    def window_plan(self):
        """The next window's bounds in CLOCK_MONOTONIC nanoseconds, as the "go" line the processes get: the start
        (20 ms ahead, so every process has its line by then), the end of the warm-up and the end of the window."""
        opts = self.options
        start_ns = time.monotonic_ns() + 20000000
        measure_from = start_ns + int(opts['warmup_s'] * 1e9)
        return {'go': True, 'start_ns': start_ns, 'measure_from_ns': measure_from,
                'stop_at_ns': measure_from + int(opts['duration_s'] * 1e9)}

    def sample_window(self, go, pids, pressure):
        """Waits for the window of ``go``, takes the counters at its two ends and samples the GPU in between:
        (before, after, the GPU sampler)."""
        gpu = GpuSampler(self.processes, self.options.get('gpu_sample_interval_s'))
        sleep_until_ns(go['measure_from_ns'])
        before = self.snapshot(pids, pressure)
        gpu.start()
        try:
            sleep_until_ns(go['stop_at_ns'])
            after = self.snapshot(pids, pressure)
        finally:
            gpu.stop()
        return before, after, gpu

    def agent_metrics(self, samples_dir, window, periodic):
        """The repetition's metrics from the samples the children wrote and the counters around the window, and the
        wake samples themselves."""
        wake, step = array('q'), array('q')
        for index in range(self.options['workers']):
            wake.extend(load_samples(os.path.join(samples_dir, 'w%d.wake' % index)))
            step.extend(load_samples(os.path.join(samples_dir, 'w%d.step' % index)))
        steps = len(wake)
        metrics = latency_summary(wake, 'wake')
        step_summary = latency_summary(step, 'step')
        metrics['step_p50_us'] = step_summary['step_p50_us']
        metrics['step_p99_us'] = step_summary['step_p99_us']
        metrics['steps'] = steps
        metrics['steps_per_s'] = round(steps / window['window_s'], 2)
        if periodic:
            lateness = load_samples(os.path.join(samples_dir, 'dispatcher.lateness'))
            late = latency_summary(lateness, 'timer_lateness')
            metrics['timer_lateness_p50_us'] = late['timer_lateness_p50_us']
            metrics['timer_lateness_p99_us'] = late['timer_lateness_p99_us']
            # The dispatcher starts last, so its message is the last one.
            info = window['done'][-1]
            metrics['posted'] = info.get('posted')
            metrics['missed_posts'] = info.get('missed')
        metrics.update(counter_metrics(window['before'], window['after'], steps))
        metrics.update(self.batch_metrics(window['before'], window['after']))
        return metrics, wake

    def agent_repetition(self, repetition):
        """One repetition of the agent workload: its children started, the window measured, the children stopped,
        and their samples read."""
        periodic = self.options.get('workload') == 'periodic'
        channels = self.make_channels(self.options['workers'], periodic)
        fds = sorted({fd for pair in channels for fd in pair})
        samples_dir = tempfile.mkdtemp(prefix='rep%d-' % repetition, dir=self.scratch)
        children = []
        finished = False
        started_at = utc_now()
        try:
            self.start_agent(children, channels, fds, samples_dir, periodic)
            window = self.agent_window(children, channels, periodic)
            finished = True
        finally:
            for fd in fds:
                os.close(fd)
            # Finished workers exit as soon as their stdin closes; on any other way out they are killed at once.
            for child in children:
                self.processes.stop(child, grace_s=2.0 if finished else 0)
        metrics, wake = self.agent_metrics(samples_dir, window, periodic)
        gpu_report = window['gpu'].report()
        metrics.update(gpu_metrics(gpu_report))
        shutil.rmtree(samples_dir, ignore_errors=True)
        if metrics['steps'] == 0:
            self.warnings.append('repetition %d recorded no step in its %.1f s window' % (
                repetition, window['window_s']))
        return {'started_at': started_at, 'window_s': window['window_s'], 'metrics': metrics,
                'distribution': distribution(wake, 'wake_us'), 'gpu': gpu_report,
                'cgroup_pressure_file': window['pressure']}

    # -- external tools -----------------------------------------------------------------------------------------------

    def run_tool(self, argv, role, timeout_s, what):
        """Run an external tool under the workers' placement and return its stdout, with the host counters taken
        around it."""
        child = self.processes.start(self.workers_placement.prefix + argv, role)
        self.workers_placement.place(child)
        child.close_stdin()
        gpu = GpuSampler(self.processes, self.options.get('gpu_sample_interval_s'))
        pressure = cgroup_pressure_path(child.pid, self.workers_placement.cgroup)
        before = self.snapshot((), pressure)
        gpu.start()
        chunks = []
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    line = child.channel.read_line(deadline)
                except TimeoutError:
                    raise BenchError('%s did not finish within %d s; it was killed' % (what, timeout_s))
                if line is None:
                    break
                chunks.append(line)
            child.proc.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            gpu.stop()
            after = self.snapshot((), pressure)
            self.processes.stop(child, grace_s=0)
        if child.proc.returncode != 0:
            raise BenchError('%s failed (rc=%s)%s' % (what, child.proc.returncode, child.stderr_tail(prefix=': ')))
        metrics = system_metrics(before, after)
        metrics.update(self.batch_metrics(before, after))
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        return '\n'.join(chunks), metrics, gpu_report, child

    def cyclictest_repetition(self, repetition):
        opts = self.options
        argv = cyclictest_argv(shutil.which('cyclictest'), opts)
        started_at = utc_now()
        duration = max(1, int(math.ceil(opts['duration_s'])))
        output, metrics, gpu_report, child = self.run_tool(argv, 'cyclictest', duration + 60, 'cyclictest')
        parsed = parse_cyclictest(output)
        if not parsed['total']:
            raise BenchError('cyclictest reported no sample%s' % child.stderr_tail(prefix=': '))
        metrics.update(parsed['metrics'])
        return {'started_at': started_at, 'window_s': float(duration), 'metrics': metrics,
                'distribution': parsed['distribution'], 'gpu': gpu_report, 'argv': argv}

    def fio_repetition(self, repetition):
        opts = self.options
        argv = fio_argv(shutil.which('fio'), opts)
        started_at = utc_now()
        timeout = opts['duration_s'] + opts['warmup_s'] + 120
        output, metrics, gpu_report, _child = self.run_tool(argv, 'fio', timeout, 'fio')
        metrics.update(parse_fio(output, (opts.get('fio') or {}).get('rw') or 'randread'))
        return {'started_at': started_at, 'window_s': float(opts['duration_s']), 'metrics': metrics, 'gpu': gpu_report,
                'argv': argv}

    def endpoint_repetition(self, repetition):
        opts = self.options
        return self.client_window(opts['endpoint'])

    def client_window(self, client, pids=(), pressure=None):
        """One window of the endpoint client's streamed requests, with the host counters (and those of ``pids``, the
        server's) and the GPU samples around it."""
        opts = self.options
        gpu = GpuSampler(self.processes, opts.get('gpu_sample_interval_s'))
        before = self.snapshot(pids, pressure)
        started_at = utc_now()
        gpu.start()
        try:
            outcome = run_endpoint(client, opts['duration_s'])
        finally:
            gpu.stop()
        after = self.snapshot(pids, pressure)
        metrics = system_metrics(before, after)
        metrics.update(self.batch_metrics(before, after))
        metrics.update(outcome['metrics'])
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        for message in outcome.get('warnings', []):
            if message not in self.warnings:
                self.warnings.append(message)
        return {'started_at': started_at, 'window_s': outcome['window_s'], 'metrics': metrics,
                'distribution': outcome['distribution'], 'gpu': gpu_report, 'requests': outcome['requests']}

    # -- the inference server and the agent sessions ------------------------------------------------------------------

    def start_server(self):
        """The server where latency work runs, through the workers' launcher; for the sessions also their tree."""
        launcher = PythonWorker(self.python)
        self.server = InferenceServer(self.options['server'], self.python, self.processes, self.workers_placement,
                                      self.worker_settings())
        self.server.start(launcher)
        if self.options.get('tool') == 'agent_session':
            self.tree = os.path.join(self.scratch, 'tree')
            make_tree(self.tree)

    def session_tools(self):
        return (self.options.get('agent_session') or {}).get('tools') or default_tools(self.python)

    def preflight(self, results):
        """The checks of a run before any mode is applied: the server answers one request, every tool call of the
        sessions runs, and the batch job loads its model."""
        client = dict(self.server.client_settings(self.options['server']), requests=1, concurrency=1)
        client.pop('rate_rps', None)
        outcome = run_endpoint(client, 60.0)
        checked = {'request': outcome['requests'], 'ttft_ms': outcome['metrics']['ttft_p50_ms'], 'tools': [],
                   'batch_job': None}
        if self.options.get('tool') == 'agent_session':
            timeout = (self.options.get('agent_session') or {}).get('tool_timeout_s') or 30.0
            for argv in self.session_tools():
                _output, error = run_tool(argv, self.tree, timeout)
                if error:
                    raise BenchError('the agent sessions cannot run their tool call: %s' % error)
                checked['tools'].append(argv[0])
        if self.options.get('load_job') == 'generate':
            for child in self.start_generate(count=1, placed=False):
                self.processes.stop(child, grace_s=0)
            checked['batch_job'] = 'llama.cpp generation loaded %s' % self.options['server']['model']
        results['preflight'] = checked

    def server_repetition(self, repetition):
        """One window of streamed requests to the server, after a warm-up of the same requests."""
        opts = self.options
        client = self.server.client_settings(opts['server'])
        if opts['warmup_s']:
            run_endpoint(client, opts['warmup_s'])
        pressure = cgroup_pressure_path(self.server.child.pid, self.workers_placement.cgroup)
        return self.client_window(client, [self.server.child.pid], pressure)

    def start_sessions(self, settings):
        """The sessions' program, placed as latency work through the launcher, with its settings given."""
        launcher = PythonWorker(self.python)
        child = self.processes.start(self.workers_placement.prefix + launcher.argv, 'sessions')
        self.workers_placement.place(child)
        config = dict(self.worker_settings(), role='exec', keep_stdio=True,
                      argv=[self.python, '-c', program_source()])
        if not send_message(child, launcher, config):
            raise BenchError('the sessions\' launcher (PID %d) exited before it got its settings%s' % (
                child.pid, child.stderr_tail(prefix=': ')))
        deadline = time.monotonic() + 60
        placed = child.read_message(deadline, 'placing the sessions')
        self.workers_placement.note(placed, 'sessions', child.pid)
        child.send(session_config(self.server, settings, self.session_tools(), self.tree))
        child.read_message(deadline, 'starting the sessions')
        return child

    def session_repetition(self, repetition):
        """One window of K agent sessions stepping through model calls and tool calls."""
        opts = self.options
        settings = opts.get('agent_session') or {}
        child = self.start_sessions(settings)
        finished = False
        try:
            pids = [child.pid, self.server.child.pid]
            pressure = cgroup_pressure_path(child.pid, self.workers_placement.cgroup)
            go = self.window_plan()
            child.send(go)
            started_at = utc_now()
            before, after, gpu = self.sample_window(go, pids, pressure)
            request_timeout = self.options['server'].get('request_timeout_s') or 120.0
            tool_timeout = settings.get('tool_timeout_s') or 30.0
            done = child.read_message(time.monotonic() + request_timeout + tool_timeout + 30, 'finishing the sessions')
            finished = True
        finally:
            self.processes.stop(child, grace_s=2.0 if finished else 0)
        window_s = (go['stop_at_ns'] - go['measure_from_ns']) / 1e9
        metrics, step_distribution = session_metrics(done, window_s)
        metrics.update(counter_metrics(before, after, metrics['session_steps']))
        metrics.update(self.batch_metrics(before, after))
        gpu_report = gpu.report()
        metrics.update(gpu_metrics(gpu_report))
        if done.get('errors'):
            message = 'agent sessions: %d step(s) failed; the first error: %s' % (done['errors'], done['first_error'])
            self.warnings.append(message)
        if not metrics['session_steps']:
            raise BenchError('the agent sessions completed no step in the %.1f s window%s' % (
                window_s, '; the first error: %s' % done['first_error'] if done.get('first_error') else ''))
        return {'started_at': started_at, 'window_s': window_s, 'metrics': metrics,
                'distribution': step_distribution, 'gpu': gpu_report,
                'sessions': {'steps': metrics['session_steps'], 'errors': metrics['session_errors']}}


def run_benchmark(options, check_mode=False):
    """Validate, run and clean up; returns the results dict or raises BenchError (whose ``results`` holds what was
    measured and the PID report)."""
    return Bench(dict(options), check_mode=check_mode).run()
