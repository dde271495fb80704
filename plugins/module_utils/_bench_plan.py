# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A benchmark run as the benchmark role makes it, decided before any host is touched (bench_plan, on the controller).

The role's settings are checked against the tables latency_bench checks its own options with, the list settings are
read (a command line's -e gives ``"a,b"``), and the run is laid out: every arm in the order it runs, with its pair, and
the latency_bench calls each arm makes. The role then only carries the plan out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random

from ansible_collections.aitune.kernel.plugins.module_utils._bench_endpoint import check_endpoint_settings
from ansible_collections.aitune.kernel.plugins.module_utils._bench_host import BenchError, check_range
from ansible_collections.aitune.kernel.plugins.module_utils._bench_options import (
    ARGUMENT_SPEC as MEASURE_SPEC, CONDITIONS, LIMITS, LOAD_JOBS, MODES, SERVER_TOOLS, TOOL_SETTINGS, TOOLS, WORKERS,
    WORKLOADS)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_server import (
    check_server_settings, check_session_settings)
from ansible_collections.aitune.kernel.plugins.module_utils._bench_tools import (
    check_cyclictest_settings, check_fio_settings)

# The plan's own numbers beside latency_bench's: the seed of the rounds' shuffled order.
PLAN_LIMITS = dict(LIMITS, seed=(0, 2 ** 31 - 1))

STOCK = 'stock'

# The settings bench_plan only checks, which the role passes on to latency_bench as they are.
PASSED_ON = ('workers', 'compute_us', 'duration_s', 'warmup_s', 'repetitions', 'rate_hz', 'load_fraction')

# bench_plan's options, as the benchmark role passes its settings. Ansible converts the numbers (those passed on to
# latency_bench typed as latency_bench types them); the checks here then name the inventory variable in every refusal.
ARGUMENT_SPEC = dict(
    gate=dict(type='bool', default=False),
    modes=dict(type='list', elements='str', default=[]),
    conditions=dict(type='list', elements='str', default=list(CONDITIONS)),
    tools=dict(type='list', elements='str', default=['agent']),
    interleave=dict(type='int', default=1),
    restore=dict(type='bool'),
    title=dict(type='str', default=''),
    workload=dict(type='str', default=MEASURE_SPEC['workload']['default']),
    endpoint=dict(type='dict', default={}),
    fio=dict(type='dict', default={}),
    cyclictest=dict(type='dict', default={}),
    server=dict(type='dict', default={}),
    agent_session=dict(type='dict', default={}),
    load_job=dict(type='str', default='spin'),
    gate_interleave=dict(type='int', default=3),
    gate_metric=dict(type='str', default='wake_p99_us'),
    gate_condition=dict(type='str', default='load'),
    gate_threshold=dict(type='float', default=1.10),
    seed=dict(type='int'),
    worker=dict(type='list', elements='str', default=['auto']),
)
ARGUMENT_SPEC.update((name, dict(type=MEASURE_SPEC[name]['type'])) for name in PASSED_ON)

# The numbers, in the order their problems are listed.
NUMBERS = ('interleave', 'gate_interleave', 'seed', 'workers', 'compute_us', 'duration_s', 'warmup_s', 'repetitions',
           'rate_hz', 'load_fraction', 'gate_threshold')

# The lists, with the words each takes.
LISTS = (('modes', MODES), ('conditions', CONDITIONS), ('tools', TOOLS), ('worker', WORKERS))

# Where a refusal of an empty list says more than which words it takes.
NOTHING_GIVEN = {'modes': 'no mode to benchmark: set -e mode=balanced or aitune_bench_modes'}

# The settings of each tool that can be checked without its host, by the tool's own checks.
TOOL_CHECKS = {'endpoint': check_endpoint_settings, 'fio': check_fio_settings, 'cyclictest': check_cyclictest_settings,
               'agent_session': check_session_settings}


def variable_of(setting):
    """The inventory (or -e) variable a person gives ``setting`` with: aitune_gate_* for the canary gate's,
    aitune_bench_* for the others."""
    return 'aitune_' + setting if setting.startswith('gate_') else 'aitune_bench_' + setting


def as_list(value):
    """A list setting as its words: ``"balanced, aggressive"`` is ``['balanced', 'aggressive']``, and empty words
    are dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(',')
    return [word for word in (str(item).strip() for item in value) if word]


def alternatives(words):
    return ', '.join(words[:-1]) + ' or ' + words[-1] if len(words) > 1 else words[0]


def list_problems(setting, words, vocabulary):
    variable = variable_of(setting)
    if not words:
        return [NOTHING_GIVEN.get(setting) or '%s names nothing: give one or more of %s' % (
            variable, alternatives(vocabulary))]
    unknown = [word for word in words if word not in vocabulary]
    if unknown:
        return ['%s must name only %s, got %s' % (variable, alternatives(vocabulary), ', '.join(unknown))]
    repeated = [word for index, word in enumerate(words) if word in words[:index]]
    if repeated:
        return ['%s may name each once, got %s more than once' % (variable, ', '.join(sorted(set(repeated))))]
    return []


def word_problems(setting, word, vocabulary):
    if word in vocabulary:
        return []
    return ['%s must be %s, got %s' % (variable_of(setting), alternatives(vocabulary), word)]


def tool_problems(settings, tools):
    """What the tools of this run lack or have wrong in their own settings (aitune_bench_endpoint and the like)."""
    problems = []
    if any(tool in SERVER_TOOLS for tool in tools) or settings.get('load_job') == 'generate':
        try:
            check_server_settings(settings.get('server') or {}, variable_of('server'))
        except BenchError as exc:
            problems.append(str(exc))
    for tool in tools:
        given, variable = settings.get(tool) or {}, variable_of(tool)
        needed = TOOL_SETTINGS.get(tool, ())
        if not all(given.get(key) for key in needed):
            problems.append('the %s tool needs %s with %s' % (tool, variable, ' and '.join(needed)))
        elif tool in TOOL_CHECKS:
            try:
                TOOL_CHECKS[tool](given, variable)
            except BenchError as exc:
                problems.append(str(exc))
    return problems


def settings_problems(settings):
    """Every problem of the settings, each naming the variable a person sets; an empty list for settings that run."""
    problems = []
    for setting in NUMBERS:
        try:
            check_range(PLAN_LIMITS, setting, settings.get(setting), variable_of(setting))
        except BenchError as exc:
            problems.append(str(exc))
    lists = {setting: as_list(settings.get(setting)) for setting, dummy in LISTS}
    for setting, vocabulary in LISTS:
        problems += list_problems(setting, lists[setting], vocabulary)
    problems += word_problems('workload', settings.get('workload'), WORKLOADS)
    problems += word_problems('gate_condition', settings.get('gate_condition'), CONDITIONS)
    problems += word_problems('load_job', settings.get('load_job') or 'spin', LOAD_JOBS)
    problems += tool_problems(settings, [tool for tool in lists['tools'] if tool in TOOLS])
    return problems


def arm(pair, mode=None):
    """One arm: the stock arm without a mode, else the mode's. ``step`` says where the run is, for a failure."""
    label = mode or STOCK
    return {'label': label, 'mode': mode, 'kind': 'mode' if mode else 'stock', 'pair': pair,
            'step': 'round %d, %s arm' % (pair, label)}


def new_seed():
    """A seed for a run that was given none, from the system's randomness; the plan and the report carry it, so the
    run's order can be laid out again."""
    return random.SystemRandom().randrange(1, 2 ** 31)


def round_plan(modes, rounds, seed):
    """The arms of each round, in the order they run: stock and every mode once (each mode applied from stock), in an
    order shuffled afresh for each round by a generator seeded with ``seed``, so slow drift (a neighbour's job, heat,
    the page cache) falls on every arm alike instead of on the last ones. The arms of a round share its number as
    their pair, so the report compares each mode with the stock arm of its own round."""
    shuffler = random.Random(seed)
    plan = []
    for number in range(1, rounds + 1):
        arms = [arm(number)] + [arm(number, mode) for mode in modes]
        shuffler.shuffle(arms)
        plan.append(arms)
    return plan


def finishing_mode(modes, arms, restore):
    """The mode to apply once more after the last arm: a run of one mode that keeps it (as tune.yml would leave the
    host, and as the canary gate needs) whose shuffled last arm was the stock one."""
    if restore or len(modes) != 1 or arms[-1]['mode']:
        return None
    return modes[0]


def measure_calls(settings, tools, conditions, workers):
    """One latency_bench call per tool and condition (and, for the agent, per worker), in this order, for every arm;
    each call has its own tool's settings only (the workload and worker for the agent, aitune_bench_endpoint for the
    endpoint and so on)."""
    calls = []
    for tool in tools:
        for condition in conditions:
            for worker in workers if tool == 'agent' else [None]:
                call = {'name': '%s/%s' % (tool, condition), 'tool': tool, 'condition': condition}
                if tool == 'agent':
                    call.update(workload=settings['workload'], worker=worker)
                    if len(workers) > 1:
                        call['name'] = '%s-%s/%s' % (tool, worker, condition)
                elif settings.get(tool):
                    call[tool] = settings[tool]
                if tool in SERVER_TOOLS or settings.get('load_job') == 'generate':
                    call['server'] = settings.get('server') or {}
                if settings.get('load_job') == 'generate':
                    call['load_job'] = 'generate'
                calls.append(call)
    return calls


def preflight_calls(settings, tools, conditions):
    """latency_bench calls that start the server once at stock, before the first arm: a server that cannot start,
    answer or serve a session fails there, with nothing of a mode on the host."""
    generate = settings.get('load_job') == 'generate' and 'load' in conditions
    calls = []
    for tool in tools:
        if tool in SERVER_TOOLS:
            calls.append({'name': '%s/preflight' % tool, 'tool': tool, 'condition': 'idle',
                          'server': settings.get('server') or {}, 'agent_session': settings.get('agent_session') or {},
                          'load_job': 'generate' if generate else 'spin'})
            generate = False
    return calls


def title_of(settings, modes, rounds):
    if settings['gate']:
        return 'Canary gate: stock vs %s, %d interleaved pairs, %s under %s' % (
            modes[0], rounds, settings['gate_metric'], settings['gate_condition'])
    return settings.get('title') or 'Stock vs %s, %d interleaved round%s' % (
        ' vs '.join(modes), rounds, '' if rounds == 1 else 's')


def plan_run(settings):
    """The plan of a benchmark run (or, with ``gate``, of the canary gate: the first mode, under the gate's condition,
    in the gate's pairs), or a BenchError that lists every problem of the settings."""
    problems = settings_problems(settings)
    if problems:
        raise BenchError('Bad benchmark settings: %s' % '; '.join(problems))
    modes, tools = as_list(settings['modes']), as_list(settings['tools'])
    if settings['gate']:
        modes, conditions, rounds = modes[:1], [settings['gate_condition']], settings['gate_interleave']
    else:
        conditions, rounds = as_list(settings['conditions']), settings['interleave']
    seed = settings['seed'] if settings.get('seed') is not None else new_seed()
    rounds_of_arms = round_plan(modes, rounds, seed)
    arms = [planned for planned_round in rounds_of_arms for planned in planned_round]
    # Restore when asked; unasked, a single mode stays on the host as tune.yml would leave it, while a comparison of
    # several has no chosen mode to keep and ends at stock.
    restore = settings['restore'] if settings.get('restore') is not None else len(modes) > 1
    finish = finishing_mode(modes, arms, restore)
    return {
        'gate': settings['gate'],
        'modes': modes,
        'conditions': conditions,
        'tools': tools,
        'rounds': rounds,
        'seed': seed,
        'order': [[planned['label'] for planned in planned_round] for planned_round in rounds_of_arms],
        'arms': arms,
        'calls': measure_calls(settings, tools, conditions, as_list(settings['worker'])),
        # The checks before any mode is applied (the server answers, the sessions' tool calls and the batch job run),
        # one per tool that starts the server.
        'preflight': preflight_calls(settings, tools, conditions),
        'restore': restore,
        'finish_in': finish,
        'final_mode': finish or arms[-1]['mode'],
        # What bench_report shows of the plan (the calls stay out: an endpoint's settings may hold its API key).
        'report_plan': {'seed': seed, 'rounds': rounds,
                        'order': [[planned['label'] for planned in planned_round] for planned_round in rounds_of_arms]},
        'title': title_of(settings, modes, rounds),
    }
