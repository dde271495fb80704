# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""latency_bench's options: the argument spec the module declares, the bounds of each number, and the checks that
refuse input before anything starts.

The bounds and the words each option takes are also those of a benchmark run (bench_plan checks the benchmark role's
settings against them on the controller), so a value is refused by the same table wherever it is given; the table
also holds the bounds of what only a run has, its rounds and the canary gate's pairs and threshold.

The checks also fill in what the options imply, in the options dict they are given: the priority of a real-time
policy, the normalised cgroup paths, and ``cpu_ids``, the CPUs that ``cpus`` names.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import validate_endpoint
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import (
    BenchError, check_range, validate_cgroup, validate_cpus, validate_slice)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_server import (
    check_session_settings, validate_server)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_tools import validate_cyclictest, validate_fio

TOOLS = ('agent', 'cyclictest', 'fio', 'endpoint', 'server', 'agent_session')
# The batch work of the loaded condition: spin hogs, or a llama.cpp process generating offline with the server's model.
LOAD_JOBS = ('spin', 'generate')
WORKLOADS = ('ring', 'periodic')
CONDITIONS = ('idle', 'load')
# The agent workload's worker program: the C one where it builds (auto), the C one or nothing, or the Python one.
WORKERS = ('auto', 'native', 'python')
# The tuning modes a benchmark run applies, each by the role of its name.
MODES = ('conservative', 'balanced', 'aggressive')

# The settings a tool cannot run without: its dict option, with the keys that must be in it.
TOOL_SETTINGS = {'fio': ('path',), 'endpoint': ('url', 'model')}
# The tools that start the inference server, from the server option (a model or a command: either will do).
SERVER_TOOLS = ('server', 'agent_session')

ARGUMENT_SPEC = dict(
    tool=dict(type='str', default='agent', choices=list(TOOLS)),
    workload=dict(type='str', default='ring', choices=list(WORKLOADS)),
    condition=dict(type='str', default='idle', choices=list(CONDITIONS)),
    workers=dict(type='int', default=2),
    worker=dict(type='str', default='auto', choices=list(WORKERS)),
    compute_us=dict(type='int', default=100),
    duration_s=dict(type='float', default=10.0),
    warmup_s=dict(type='float', default=1.0),
    repetitions=dict(type='int', default=3),
    rate_hz=dict(type='float', default=1000.0),
    load_fraction=dict(type='float', default=1.0),
    slice=dict(type='str'),
    cgroup=dict(type='path'),
    policy=dict(type='str', choices=['other', 'batch', 'idle', 'fifo', 'rr']),
    priority=dict(type='int'),
    timer_slack_ns=dict(type='int'),
    cpus=dict(type='str'),
    load_slice=dict(type='str'),
    load_cgroup=dict(type='path'),
    placement_required=dict(type='bool', default=True),
    load_job=dict(type='str', default='spin', choices=list(LOAD_JOBS)),
    preflight=dict(type='bool', default=False),
    label=dict(type='str'),
    pair=dict(type='int'),
    calibration_file=dict(type='path'),
    recalibrate=dict(type='bool', default=False),
    gpu_sample_interval_s=dict(type='float', default=1.0),
    cyclictest=dict(type='dict', options=dict(
        interval_us=dict(type='int', default=1000),
        histogram_us=dict(type='int', default=10000),
        threads=dict(type='int'),
    )),
    fio=dict(type='dict', options=dict(
        path=dict(type='path', required=True),
        rw=dict(type='str', default='randread', choices=['randread', 'randwrite']),
        allow_write=dict(type='bool', default=False),
        direct=dict(type='bool', default=True),
        ioengine=dict(type='str', default='psync', choices=['psync', 'sync', 'libaio', 'io_uring']),
    )),
    endpoint=dict(type='dict', options=dict(
        url=dict(type='str', required=True),
        model=dict(type='str', required=True),
        prompt=dict(type='str', default='Write one sentence about operating system kernels.'),
        max_tokens=dict(type='int', default=64, no_log=False),
        concurrency=dict(type='int', default=1),
        rate_rps=dict(type='float'),
        requests=dict(type='int'),
        metrics_url=dict(type='str'),
        api_key=dict(type='str', no_log=True),
        connect_timeout_s=dict(type='float', default=3.0),
        request_timeout_s=dict(type='float', default=120.0),
        validate_certs=dict(type='bool', default=True),
    )),
    server=dict(type='dict', options=dict(
        command=dict(type='list', elements='str'),
        python=dict(type='path'),
        model=dict(type='path'),
        model_name=dict(type='str'),
        host=dict(type='str', default='127.0.0.1'),
        port=dict(type='int', default=8089),
        threads=dict(type='int', default=1),
        ready_timeout_s=dict(type='float', default=120.0),
        prompt=dict(type='str', default='Write one sentence about operating system kernels.'),
        max_tokens=dict(type='int', default=16, no_log=False),
        concurrency=dict(type='int', default=1),
        rate_rps=dict(type='float'),
        request_timeout_s=dict(type='float', default=120.0),
    )),
    agent_session=dict(type='dict', options=dict(
        sessions=dict(type='int', default=2),
        max_tokens=dict(type='int', default=8, no_log=False),
        prompt=dict(type='str'),
        tools=dict(type='list', elements='list'),
        tool_timeout_s=dict(type='float', default=30.0),
    )),
)

REQUIRED_IF = [('tool', tool, [tool]) for tool in sorted(TOOL_SETTINGS)] + [
    ('tool', tool, ['server']) for tool in SERVER_TOOLS] + [('load_job', 'generate', ['server'])]

# The lowest and highest value of each number, both allowed.
LIMITS = {
    'workers': (1, 64),
    'compute_us': (1, 100000),
    'duration_s': (0.5, 600),
    'warmup_s': (0, 60),
    'repetitions': (1, 50),
    'rate_hz': (1, 100000),
    'load_fraction': (0.001, 1),
    'timer_slack_ns': (1, 1000000000),
    'gpu_sample_interval_s': (0, 60),
    # A run's rounds of stock and every mode, the canary gate's pairs, and the factor of the gate's regression.
    'interleave': (1, 20),
    'gate_interleave': (1, 20),
    'gate_threshold': (1, 100),
}


def validate_policy(opts):
    """A real-time policy takes a priority of 1 to 99 (1 when none is given); the other policies take none (0)."""
    policy, priority = opts.get('policy'), opts.get('priority')
    if policy in ('fifo', 'rr'):
        if priority is None:
            opts['priority'] = 1
        elif not 1 <= priority <= 99:
            raise BenchError('priority must be between 1 and 99 for policy %s, got %s' % (policy, priority))
    elif priority not in (None, 0):
        raise BenchError('priority applies only to the fifo and rr policies (got priority %s with policy %s)'
                         % (priority, policy or 'unset'))
    elif policy:
        opts['priority'] = 0


def validate_options(opts, python):
    """Refuses options that cannot run as given and fills in what they imply (see the module docstring)."""
    for name in ARGUMENT_SPEC:
        if name in LIMITS:
            check_range(LIMITS, name, opts.get(name))
    if opts.get('worker') not in (None,) + WORKERS:
        raise BenchError('worker must be one of %s, got %s' % (', '.join(WORKERS), opts['worker']))
    validate_policy(opts)
    validate_slice(opts.get('slice'))
    validate_slice(opts.get('load_slice'), 'load_slice')
    opts['cgroup'] = validate_cgroup(opts.get('cgroup'))
    opts['load_cgroup'] = validate_cgroup(opts.get('load_cgroup'), 'load_cgroup')
    opts['cpu_ids'] = validate_cpus(opts['cpus']) if opts.get('cpus') else None
    tool = opts.get('tool') or 'agent'
    if tool == 'fio':
        validate_fio(opts)
    elif tool == 'cyclictest':
        validate_cyclictest(opts)
    elif tool == 'endpoint':
        validate_endpoint(opts.get('endpoint'))
    generate = opts.get('load_job') == 'generate' and (opts.get('condition') == 'load' or opts.get('preflight'))
    if tool in SERVER_TOOLS or generate:
        validate_server(opts.get('server'), python, 'generate' if generate else None, start=tool in SERVER_TOOLS)
    if tool == 'agent_session':
        check_session_settings(opts.get('agent_session') or {})
