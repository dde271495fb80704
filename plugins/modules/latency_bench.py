#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: latency_bench
short_description: Measure wake latency and throughput of an agent-like workload, idle or under CPU load
version_added: 0.1.0
description:
  - Runs a latency benchmark on the target and returns per-repetition results and their medians. It never changes a
    host setting, so it runs the same in check mode and always reports C(changed=false).
  - O(tool=agent) runs an agent-like workload of worker processes, native ones built on the target from C source
    shipped with the collection, or ones of the target's own Python (see O(worker)). O(workload=ring) is a
    closed loop. Each worker waits on an eventfd (a pipe before Python 3.10), wakes, computes for O(compute_us) and
    signals the next worker. O(workload=periodic) is an open loop. A dispatcher posts work at O(rate_hz) to the
    workers in turn.
  - Wake latency is the time from the signal or post to the wake, from CLOCK_MONOTONIC timestamps taken in the
    processes themselves. The signaller stamps before it signals and the waiter after it wakes.
  - The compute step is a spin loop whose speed is measured once per host and worker program (each interpreter, and
    the native worker per compiler), on the first run, and stored in O(calibration_file), so every later run, tuned
    or not, does the same work per step.
  - O(condition=load) starts one CPU hog process per online CPU (or per O(load_fraction) of them) for the whole run.
  - Around each measurement window the module reads the run-queue wait and context switches of every worker thread
    (C(/proc/<pid>/task/*/schedstat) and C(status)). It also reads CPU pressure (C(/proc/pressure/cpu), and the
    workers' cgroup C(cpu.pressure) where there is one), steal time from C(/proc/stat) and the load average. When
    C(nvidia-smi) is on PATH it samples GPU utilisation and SM clock.
  - O(tool=cyclictest) and O(tool=fio) run those programs when installed. O(tool=endpoint) drives an OpenAI-compatible
    inference server with streaming chat completions and reports time to first token, inter-token latency and
    throughput. O(tool=server) starts a real inference server itself, placed as latency work, and drives it the same
    way; O(tool=agent_session) runs agent sessions against that server. See O(server).
  - Every process the module starts is killed and reaped by PID before it returns, also on failure or when the task
    is cancelled, and the result lists those PIDs and any that remained (none, or the task fails).
author:
  - aitune.kernel maintainers (@aitune)
options:
  tool:
    description:
      - What to measure. V(agent) is the built-in workload chosen by O(workload).
      - V(cyclictest) runs C(cyclictest) (package rt-tests) with C(--default-system), so it does not hold
        C(/dev/cpu_dma_latency) at 0 itself, and with C(-p) only for the V(fifo) and V(rr) policies.
      - V(fio) runs 4 KiB random I/O at queue depth 1 with C(fio); see O(fio).
      - V(endpoint) drives an inference server; see O(endpoint).
      - V(server) starts the inference server of O(server) where latency work runs (O(slice) or O(cgroup), O(cpus),
        O(policy), O(priority) and O(timer_slack_ns), applied by a launcher that then runs the server in its place),
        waits until C(GET /v1/models) answers, sends streaming chat completions for each window after O(warmup_s) of
        the same, and at the end stops the server by its PID (SIGTERM, then SIGKILL after 10 s). It reports the
        V(endpoint) metrics.
      - V(agent_session) starts the same server and runs O(agent_session.sessions) agent sessions in one process
        placed the same way. Each session loops over steps of a streamed chat completion, the parsing of its answer,
        and one tool call that runs a real short process (a C(grep) over a small tree, a C(python -c)), whose output
        goes into the next request.
    type: str
    choices: [agent, cyclictest, fio, endpoint, server, agent_session]
    default: agent
  workload:
    description:
      - The agent workload. V(ring) is a closed loop of O(workers) processes passing one token. V(periodic) is an open
        loop where a dispatcher posts work at O(rate_hz), and its timer lateness is reported as well.
    type: str
    choices: [ring, periodic]
    default: ring
  condition:
    description:
      - V(idle) runs the measurement alone. V(load) runs it against one CPU hog process per online CPU (see
        O(load_fraction)), which is where scheduling and placement show.
    type: str
    choices: [idle, load]
    default: idle
  workers:
    description:
      - Number of worker processes, from 1 to 64. Also the default thread count of cyclictest.
    type: int
    default: 2
  worker:
    description:
      - The program the agent workload's processes run. The other tools ignore it.
      - V(native) compiles the worker, a C program shipped as source in the collection, with the first of C(cc),
        C(gcc) and C(clang) on PATH into a private temporary directory, checks the binary, and removes it when the
        run ends. It fails when there is no compiler, the compile fails (with the compiler's messages) or the binary
        fails its check, for example in a C(noexec) temporary directory.
      - V(python) runs the same program in the target's Python. The interpreter adds tens of microseconds to every
        step, which puts a floor under the wake latency, so its numbers are not comparable with the native worker's.
      - V(auto) uses the native worker where it builds, and the Python worker with a warning that says why where it
        does not.
      - The worker that ran is in RV(benchmark.worker); compare only arms that ran the same one.
    type: str
    choices: [auto, native, python]
    default: auto
  compute_us:
    description:
      - Work per step in microseconds, from 1 to 100000, done as a calibrated spin loop.
    type: int
    default: 100
  duration_s:
    description:
      - Length of each repetition's measurement window in seconds, from 0.5 to 600. With O(tool=endpoint) and no
        O(endpoint.requests), how long to send requests.
    type: float
    default: 10.0
  warmup_s:
    description:
      - Seconds, from 0 to 60, that each repetition runs before its window opens; nothing from them is recorded.
        cyclictest and the endpoint client do not use it; fio uses it as its ramp time.
    type: float
    default: 1.0
  repetitions:
    description:
      - How many times to repeat the measurement, from 1 to 50. Each repetition starts fresh worker processes, and the
        summary gives the median, minimum and maximum over them.
      - To compare settings, interleave them (A B A B ...) with separate calls and compare with
        M(aitune.kernel.bench_report), since noise on shared machines drifts over minutes.
    type: int
    default: 3
  rate_hz:
    description:
      - Posts per second of the V(periodic) workload, from 1 to 100000, spread over the workers in turn.
    type: float
    default: 1000.0
  load_fraction:
    description:
      - The share of online CPUs that get a hog under O(condition=load), from 0.001 to 1. At least one hog always
        runs.
    type: float
    default: 1.0
  slice:
    description:
      - A systemd slice (for example C(aitune-latency.slice)) to run the workers in, through
        C(systemd-run --scope --slice=...). It is used when systemd is PID 1. Non-root users get their user manager's
        slice.
      - When both O(slice) and O(cgroup) are given, the module uses O(slice) on systemd hosts and O(cgroup) elsewhere,
        so one task fits both kinds of host.
    type: str
  cgroup:
    description:
      - A cgroup directory under C(/sys/fs/cgroup) (v2, or a v1 controller's hierarchy) to run the workers in, by
        writing their PIDs to its C(cgroup.procs). It is used when systemd is not PID 1, or when no O(slice) is given.
    type: path
  policy:
    description:
      - Scheduling policy for the workers (and for cyclictest). Unset leaves the inherited policy.
      - V(fifo) and V(rr) are real-time and need C(CAP_SYS_NICE) or an C(RLIMIT_RTPRIO).
    type: str
    choices: [other, batch, idle, fifo, rr]
  priority:
    description:
      - Real-time priority from 1 to 99 for O(policy=fifo) or O(policy=rr); defaults to 1 there. Other policies take
        none.
    type: int
  timer_slack_ns:
    description:
      - Timer slack of each worker in nanoseconds, from 1 to 1000000000, set with C(prctl(PR_SET_TIMERSLACK)) in the
        worker itself. Unset keeps the default of 50 microseconds.
    type: int
  cpus:
    description:
      - CPUs the workers may run on, as a list such as C(2-5,8). Every CPU must be online. Also passed to cyclictest
        and fio.
    type: str
  load_slice:
    description:
      - Like O(slice), for the CPU hogs of O(condition=load).
    type: str
  load_cgroup:
    description:
      - Like O(cgroup), for the CPU hogs of O(condition=load).
    type: path
  load_job:
    description:
      - The batch work of O(condition=load). V(spin) starts one CPU hog process per online CPU (or per
        O(load_fraction) of them). V(generate) starts, in their place, single-threaded llama.cpp processes that
        generate text offline with the model of O(server.model), a real batch job; it needs the interpreter of
        O(server.python).
      - Either way, under load every run adds C(batch_cpu_pct), the batch work's share of all CPU time in the window,
        and V(generate) adds C(batch_tokens_per_s), what the batch work got done beside the measured work.
    type: str
    choices: [spin, generate]
    default: spin
  preflight:
    description:
      - For O(tool=server) and O(tool=agent_session), only check that the run can go ahead. Start the server, send it
        one request, run each of the sessions' tool calls once, load the batch job's model when
        O(load_job=generate), then stop everything and return no runs. The benchmark role does this at stock before
        its first arm.
    type: bool
    default: false
  placement_required:
    description:
      - Fail when a requested placement cannot be done (no permission, no such slice or cgroup, no systemd for a slice,
        a refused policy, timer slack or affinity), before anything is measured.
      - With V(false) the run goes on without it, and the skipped placements are listed in RV(benchmark.placement) and
        in RV(benchmark.warnings).
    type: bool
    default: true
  label:
    description:
      - Names the arm this measurement belongs to, such as V(stock) or V(balanced), in RV(benchmark.label), so the
        registered C(benchmark) goes to M(aitune.kernel.bench_report) as it is.
    type: str
  pair:
    description:
      - Numbers the interleaved pair (round) the arm belongs to, in RV(benchmark.pair); arms of one pair ran back to
        back.
    type: int
  calibration_file:
    description:
      - JSON file that keeps the spin-loop speed per worker program (each interpreter, and the native worker per
        compiler), measured on the first run.
      - Defaults to C(/var/lib/aitune/bench-calibration.json) for root and C(~/.cache/aitune/bench-calibration.json)
        for other users. It is not written in check mode.
    type: path
  recalibrate:
    description:
      - Measure the spin-loop speed again and store it, for example after a CPU or interpreter change. Runs measured
        before and after a recalibration do different work per step and should not be compared.
    type: bool
    default: false
  gpu_sample_interval_s:
    description:
      - Seconds between C(nvidia-smi) samples during a window, from 0 to 60. V(0) turns GPU sampling off.
    type: float
    default: 1.0
  cyclictest:
    description:
      - Settings for O(tool=cyclictest).
    type: dict
    suboptions:
      interval_us:
        description:
          - Wake-up interval of each measuring thread, from 50 to 1000000 microseconds.
        type: int
        default: 1000
      histogram_us:
        description:
          - Histogram size in microseconds, from 10 to 1000000; latencies beyond it count as overflows and
            percentiles that fall there are reported as the maximum.
        type: int
        default: 10000
      threads:
        description:
          - Number of measuring threads. Defaults to O(workers).
        type: int
  fio:
    description:
      - Settings for O(tool=fio), which runs 4 KiB random I/O at queue depth 1, one job, time based, with JSON
        output.
    type: dict
    suboptions:
      path:
        description:
          - A regular file (of at least 4 KiB) or a block device. Anything else is an error.
        type: path
        required: true
      rw:
        description:
          - V(randread) reads only, and fio runs with C(--readonly). V(randwrite) overwrites data in O(fio.path) and
            needs O(fio.allow_write).
        type: str
        choices: [randread, randwrite]
        default: randread
      allow_write:
        description:
          - Allow O(fio.rw=randwrite). On a block device it destroys the data on it.
        type: bool
        default: false
      direct:
        description:
          - Use O_DIRECT, bypassing the page cache, so the device is measured rather than memory. tmpfs does not
            support it.
        type: bool
        default: true
      ioengine:
        description:
          - fio's I/O engine.
        type: str
        choices: [psync, sync, libaio, io_uring]
        default: psync
  endpoint:
    description:
      - Settings for O(tool=endpoint). The client runs inside the module on the target and sends streaming
        C(/v1/chat/completions) requests.
    type: dict
    suboptions:
      url:
        description:
          - Base URL of the OpenAI-compatible server, such as C(http://127.0.0.1:8000). The client appends
            C(/v1/chat/completions) unless the URL already ends in C(/v1) or C(/chat/completions).
          - The module fails at once, after O(endpoint.connect_timeout_s) at most, when nothing accepts a connection
            there.
        type: str
        required: true
      model:
        description:
          - Model name to request.
        type: str
        required: true
      prompt:
        description:
          - The user message of every request.
        type: str
        default: Write one sentence about operating system kernels.
      max_tokens:
        description:
          - Tokens to generate per request.
        type: int
        default: 64
      concurrency:
        description:
          - Client threads, from 1 to 1024, which caps the requests in flight.
        type: int
        default: 1
      rate_rps:
        description:
          - Request rate per second for an open-loop run; request i is due at i / O(endpoint.rate_rps) seconds. Unset
            sends requests back to back on each client thread (closed loop).
        type: float
      requests:
        description:
          - Number of requests per repetition. Unset sends requests for O(duration_s).
        type: int
      metrics_url:
        description:
          - The server's Prometheus endpoint, such as C(http://127.0.0.1:8000/metrics). When given, the queue time is
            reported from the change in vLLM's C(vllm:request_queue_time_seconds) histogram over each repetition.
        type: str
      api_key:
        description:
          - Bearer token sent in the C(Authorization) header.
        type: str
      connect_timeout_s:
        description:
          - Connect timeout in seconds.
        type: float
        default: 3.0
      request_timeout_s:
        description:
          - Timeout in seconds for each read while a response streams.
        type: float
        default: 120.0
      validate_certs:
        description:
          - Verify the server's TLS certificate for C(https) URLs.
        type: bool
        default: true
  server:
    description:
      - The inference server of O(tool=server), O(tool=agent_session) and O(load_job=generate).
      - Before it starts, the module refuses a missing model file, a server program that does not exist, an
        interpreter without C(llama_cpp), and a port that already answers. It also fails, with the server's output,
        when the server exits before it answers or does not answer within O(server.ready_timeout_s). Either way no
        process is left behind.
    type: dict
    suboptions:
      command:
        description:
          - Your own server's command, one argument per item, with the placeholders C({python}), C({model}),
            C({host}), C({port}) and C({threads}) replaced. For example
            V([vllm, serve, /models/qwen, --host, {host}, --port, {port}]).
          - Unset runs llama.cpp's server from llama-cpp-python. That is
            C({python} -m llama_cpp.server --model {model} --host {host} --port {port} --n_threads {threads}
            --n_threads_batch {threads} --n_ctx 1024 --interrupt_requests false), and it needs O(server.model). The
            last option makes concurrent requests wait their turn instead of ending the stream in flight.
        type: list
        elements: str
      python:
        description:
          - The interpreter that has llama-cpp-python, for the default command and O(load_job=generate). In a checkout,
            C(scripts/setup-llama-server) makes C(.venv-llama). Defaults to the module's own interpreter.
        type: path
      model:
        description:
          - The GGUF model file to serve. In a checkout, C(scripts/setup-llama-server) generates a small one,
            C(.build/bench/aitune-tiny-llama.gguf).
        type: path
      model_name:
        description:
          - The model name the requests ask for. Defaults to the first model C(/v1/models) lists.
        type: str
      host:
        description:
          - The address the server listens on and the client connects to.
        type: str
        default: 127.0.0.1
      port:
        description:
          - The server's port, 1 to 65535. It must be free when the server starts.
        type: int
        default: 8089
      threads:
        description:
          - The server's threads, for C({threads}), 1 to 1024.
        type: int
        default: 1
      ready_timeout_s:
        description:
          - How long the server may take to answer C(GET /v1/models) after it starts, in seconds.
        type: float
        default: 120.0
      prompt:
        description:
          - The user message of every request of O(tool=server).
        type: str
        default: Write one sentence about operating system kernels.
      max_tokens:
        description:
          - Tokens to generate per request of O(tool=server).
        type: int
        default: 16
      concurrency:
        description:
          - Client threads of O(tool=server), 1 to 1024.
        type: int
        default: 1
      rate_rps:
        description:
          - Request rate per second of O(tool=server) for an open loop; unset sends requests back to back.
        type: float
      request_timeout_s:
        description:
          - Timeout in seconds for each read while a response streams.
        type: float
        default: 120.0
  agent_session:
    description:
      - Settings of O(tool=agent_session).
    type: dict
    suboptions:
      sessions:
        description:
          - Concurrent sessions, 1 to 256, as threads of one process.
        type: int
        default: 2
      max_tokens:
        description:
          - Tokens the model generates per step.
        type: int
        default: 8
      prompt:
        description:
          - The task every step states, before the last answer and tool output.
        type: str
      tools:
        description:
          - The tool calls the sessions make in turn, each a command as a list of arguments, run in a small tree of
            Python files that the module writes in its scratch directory. The default alternates between
            V([grep, -rn, "def ", .]) and a C(python -c) one-liner. A call that fails or exits with a status above
            1 counts as a failed step.
        type: list
        elements: list
      tool_timeout_s:
        description:
          - How long one tool call may run, in seconds.
        type: float
        default: 30.0
attributes:
  check_mode:
    description: Runs the measurement in check mode too; it changes no host setting. Only the calibration file is
      left unwritten.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
notes:
  - Needs Python 3.8 or later on the target, and a C compiler with the C library's headers (for example the
    C(gcc) and C(libc6-dev) packages) for the native worker. Ring workers use an eventfd from Python 3.10 on and a
    pipe before.
  - Run-queue delay needs C(CONFIG_SCHED_INFO) (C(schedstat) files); PSI needs C(CONFIG_PSI) and is reported as null
    without it.
  - Percentiles are computed from every recorded sample, interpolated between ranks. C(p999) is the 99.9th
    percentile.
seealso:
  - module: aitune.kernel.bench_report
'''

EXAMPLES = r'''
- name: Measure the agent ring under one CPU hog per CPU
  aitune.kernel.latency_bench:
    workload: ring
    condition: load
    duration_s: 10
    repetitions: 5
  register: loaded

- name: Show wake latency p99, median over the repetitions
  ansible.builtin.debug:
    msg: "{{ loaded.benchmark.summary.metrics.wake_p99_us.median }} us"

- name: The same with the workers in a weighted cgroup (systemd hosts use the slice, others the cgroup directory)
  aitune.kernel.latency_bench:
    condition: load
    slice: aitune-latency.slice
    cgroup: /sys/fs/cgroup/aitune-latency
    load_cgroup: /sys/fs/cgroup/aitune-batch
    placement_required: false

- name: Open loop at 2 kHz with SCHED_FIFO workers on CPUs 2-3 and 1 ns timer slack
  aitune.kernel.latency_bench:
    workload: periodic
    rate_hz: 2000
    policy: fifo
    priority: 10
    cpus: 2-3
    timer_slack_ns: 1

- name: Time to first token of a local vLLM server, 4 clients at 2 requests per second
  aitune.kernel.latency_bench:
    tool: endpoint
    condition: load
    repetitions: 3
    endpoint:
      url: http://127.0.0.1:8000
      model: Qwen/Qwen2.5-0.5B-Instruct
      concurrency: 4
      rate_rps: 2
      requests: 40
      metrics_url: http://127.0.0.1:8000/metrics

- name: A llama.cpp server started in the latency slice, and 4 agent sessions against it, with batch generation
  aitune.kernel.latency_bench:
    tool: agent_session
    condition: load
    load_job: generate
    slice: aitune-latency.slice
    load_slice: aitune-batch.slice
    server:
      python: /opt/aitune/.venv-llama/bin/python
      model: /opt/aitune/.build/bench/aitune-tiny-llama.gguf
    agent_session:
      sessions: 4

- name: Your own server, placed and driven by the module
  aitune.kernel.latency_bench:
    tool: server
    server:
      command: [/usr/local/bin/llama-server, -m, /models/qwen.gguf, --host, "{host}", --port, "{port}"]
      concurrency: 2

- name: 4 KiB random reads at QD1 from the model disk, read-only
  aitune.kernel.latency_bench:
    tool: fio
    fio:
      path: /dev/nvme0n1
'''

RETURN = r'''
benchmark:
  description:
    - The measurement. (Not called C(results), which Ansible reserves for loops and renames when a module returns a
      dict under it.)
  returned: always; on failure as far as the run got, and null when the input was refused
  type: dict
  contains:
    tool:
      description: The O(tool) that ran.
      type: str
      returned: always
      sample: agent
    workload:
      description: The agent workload, or null for the other tools.
      type: str
      returned: always
      sample: ring
    condition:
      description: V(idle) or V(load).
      type: str
      returned: always
    parameters:
      description: The options the run used, with C(primitive) (V(eventfd) or V(pipe)), the C(worker) that ran and the
        calibrated C(iterations) per step. The endpoint settings are listed without C(api_key).
      type: dict
      returned: always
    worker:
      description: The worker program the agent workload ran, V(native) or V(python); null for the other tools and
        when the run failed before it was chosen.
      type: str
      returned: always
      sample: native
    worker_build:
      description: How the worker was chosen, for the agent workload (null for the other tools). C(compiler) is the
        compiler's path and C(compiler_version) the first line of its C(--version) (null when none was found or
        O(worker=python)). C(fallback) is why the native worker could not be used under O(worker=auto), else null.
        C(build_s) is how long the compile and the check took, null when there was none.
      type: dict
      returned: always
      sample: {compiler: /usr/bin/cc, compiler_version: cc (Debian 12.2.0-14) 12.2.0, fallback: null, build_s: 0.21}
    runs:
      description:
        - One entry per repetition, with C(repetition), C(started_at) (UTC), C(window_s), C(metrics), C(distribution)
          and C(gpu). cyclictest and fio runs add C(argv), and endpoint runs add C(requests) (C(sent), C(ok),
          C(failed), C(first_error)).
        - C(metrics) is flat, in microseconds (C(_us)), milliseconds (C(_ms)), percent (C(_pct)) or per second
          (C(_per_s)). The agent gives C(wake_p50_us), C(wake_p90_us), C(wake_p99_us), C(wake_p999_us),
          C(wake_max_us), C(wake_mean_us), C(step_p50_us), C(step_p99_us), C(steps), C(steps_per_s),
          C(runq_delay_per_step_us), C(vcsw_per_1k_steps) and C(ivcsw_per_1k_steps). The periodic workload adds
          C(timer_lateness_p50_us), C(timer_lateness_p99_us), C(posted) and C(missed_posts).
        - cyclictest gives C(latency_p50_us) to C(latency_max_us), C(latency_min_us), C(latency_mean_us), C(overflows)
          and C(samples). fio gives C(io_p50_us) to C(io_max_us), C(io_mean_us) and C(iops). The endpoint gives
          C(ttft_p50_ms), C(ttft_p95_ms), C(ttft_p99_ms), C(itl_p50_ms), C(itl_p99_ms), C(request_p50_ms),
          C(request_p99_ms), C(tokens_per_s), C(requests_per_s), C(requests_ok), C(requests_failed),
          C(client_delay_p99_ms), C(queue_time_mean_ms), C(queue_time_p50_ms) and C(queue_time_p99_ms); the server
          tool gives the same. The agent sessions give C(session_step_p50_ms), C(session_step_p99_ms),
          C(session_step_p999_ms), C(session_steps), C(session_steps_per_s), C(session_server_wait_pct) (the share of
          step time spent waiting on the server), C(session_ttft_p50_ms), C(session_ttft_p99_ms),
          C(session_tool_p50_ms), C(session_tool_p99_ms) and C(session_errors) (failed steps).
        - Under load every tool adds C(batch_cpu_pct), and O(load_job=generate) adds C(batch_tokens_per_s).
        - Every tool adds C(psi_cpu_some_avg10), C(psi_cpu_some_pct) (stall time over the window),
          C(cgroup_psi_cpu_some_avg10), C(cgroup_psi_cpu_some_pct), C(steal_pct), C(loadavg_1), C(loadavg_5),
          C(loadavg_15), C(gpu_util_pct_mean) and C(gpu_sm_clock_mhz_mean). Metrics the host cannot give are null.
        - C(distribution) holds the primary latency at fixed C(quantiles) (1 to 100) as C(values), for charts.
        - C(gpu) is C({present, gpus}) with per-GPU C(util_pct_mean), C(util_pct_max), C(sm_clock_mhz_mean) and
          C(sm_clock_mhz_min), or C({present false, reason}).
      type: list
      elements: dict
      returned: always
      sample:
        - repetition: 1
          started_at: '2026-11-23T09:38:42Z'
          window_s: 10.0
          metrics: {wake_p50_us: 13.9, wake_p99_us: 3904.1, steps_per_s: 3460.0, runq_delay_per_step_us: 86.6}
    summary:
      description:
        - C(metrics) gives each metric's C(median), C(min) and C(max) over the repetitions. C(cv_p50) is the
          coefficient of variation of the primary p50 (null with one repetition). C(primary) is the primary latency
          prefix (V(wake), V(latency), V(io), V(ttft) or V(session_step)). C(distribution) is the per-quantile median of the
          repetitions' distributions. C(repetitions) is the count.
      type: dict
      returned: success
      sample:
        repetitions: 5
        primary: wake
        cv_p50: 0.031
        metrics: {wake_p99_us: {median: 3904.1, min: 3512.0, max: 4120.7}}
    host:
      description: C(nproc), C(cpus_online), C(cpus_allowed), C(cpu_model), C(kernel), C(cpuidle_driver),
        C(systemd_pid1), C(cgroup2_mount), C(python), C(euid), and for the agent C(calibration) (C(iterations_per_us),
        C(calibrated_at), C(worker), C(source), C(file), and C(python) and C(executable) or C(compiler) and
        C(compiler_version)).
      type: dict
      returned: always
    placement:
      description: What was actually used, for C(workers) and C(load). Each has C(method) (V(systemd-run),
        V(cgroup.procs) or null), C(slice), C(cgroup), C(skipped) (the placements that could not be done), and what
        the workers applied (C(policy), C(priority), C(timer_slack_ns), C(cpus)) or how many C(hogs) ran.
      type: dict
      returned: always
    server:
      description:
        - The inference server of O(tool=server) and O(tool=agent_session). C(argv) is the command it ran, C(pid)
          its PID, C(url) where it answered, C(model) the model name requested, C(ready_s) how long it took to answer,
          C(stopped_by) how it was stopped (V(SIGTERM), V(SIGKILL), or V(exited) when it had exited already) and
          C(returncode) its exit status.
      type: dict
      returned: for O(tool=server) and O(tool=agent_session), null otherwise
      sample: {argv: [/srv/.venv-llama/bin/python, -m, llama_cpp.server], pid: 4242, ready_s: 2.1, stopped_by: SIGTERM}
    preflight:
      description: With O(preflight=true), what was checked, C(request) (C(sent), C(ok), C(failed), C(first_error)),
        C(ttft_ms), the C(tools) whose calls ran and the C(batch_job) that loaded.
      type: dict
      returned: when O(preflight=true)
    pids:
      description: C(started), every process the module started (C(pid) and C(role)), and C(remaining), those still
        alive after cleanup, always empty on success.
      type: dict
      returned: always
    warnings:
      description: Placements that were skipped, overload of the periodic workload and other caveats.
      type: list
      elements: str
      returned: always
    label:
      description: The O(label) given.
      type: str
      returned: when O(label) was given
      sample: balanced
    pair:
      description: The O(pair) given.
      type: int
      returned: when O(pair) was given
      sample: 1
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aitune.kernel.plugins.module_utils._bench import BenchError, run_benchmark
from ansible_collections.aitune.kernel.plugins.module_utils._bench_options import ARGUMENT_SPEC, REQUIRED_IF


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, required_if=REQUIRED_IF)
    try:
        results = run_benchmark(module.params, check_mode=module.check_mode)
    except BenchError as exc:
        module.fail_json(msg=str(exc), benchmark=exc.results)
    for message in results['warnings']:
        module.warn(message)
    # The arm's name and round travel with the measurement, which makes the result an arm of bench_report's input.
    results.update((key, module.params[key]) for key in ('label', 'pair') if module.params[key] is not None)
    module.exit_json(changed=False, benchmark=results)


if __name__ == '__main__':
    main()
