# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

# The documentation of the action plugin plugins/action/bench_plan.py, which does the work on the controller.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: bench_plan
short_description: Check the settings of a benchmark run and plan it, on the controller
version_added: 0.1.0
description:
  - Checks the settings of a benchmark of stock against tuning modes, as the aitune.kernel.benchmark role takes them,
    and plans the run. Runs on the controller and touches no host, so the role refuses bad settings before any host
    is reached.
  - Every number is checked against the bounds M(aitune.kernel.latency_bench) checks its own options with, and the
    modes, conditions, tools and workload against the words they take. A tool that needs settings (V(endpoint) its
    URL and model, V(fio) its path) must have them, and what can be checked of them without the host (the endpoint's
    numbers and URLs, whether fio may write, cyclictest's intervals) is checked as latency_bench checks it.
  - The settings of each measurement, O(workers), O(compute_us), O(duration_s), O(warmup_s), O(repetitions),
    O(rate_hz) and O(load_fraction), are only checked here, without defaults; the role passes them on to
    latency_bench.
  - Every problem is listed in one failure, each named by the inventory variable that sets it (for example
    C(aitune_bench_interleave must be between 1 and 20, got 0)); the gate's settings are C(aitune_gate_*), the others
    C(aitune_bench_*).
  - The plan lists every arm in the order it runs. Each round measures stock and every mode once, in an order
    shuffled afresh for each round by a generator seeded with O(seed), so slow drift falls on every arm alike. The
    arms of one round share their pair number, so the report compares each mode with the stock arm of its own round.
  - A run that keeps one mode (O(restore=false), the default for one mode, and the canary gate) and whose last arm
    is the stock one applies the mode once more at the end (RV(finish_in)).
author:
  - aitune.kernel maintainers (@aitune)
options:
  gate:
    description:
      - Plan the canary gate instead of a benchmark. The gate measures the first of O(modes) only, under
        O(gate_condition) only, in O(gate_interleave) pairs.
    type: bool
    default: false
  modes:
    description:
      - The modes to compare with stock, each once. A comma-separated string is taken as a list.
    type: list
    elements: str
    default: []
  conditions:
    description:
      - The conditions each arm is measured under, V(idle) and V(load), each once. A comma-separated string is taken
        as a list.
    type: list
    elements: str
    default: [idle, load]
  tools:
    description:
      - What each arm measures, V(agent), V(cyclictest), V(fio), V(endpoint), V(server) or V(agent_session), each
        once. A comma-separated string is taken as a list. V(server) and V(agent_session) need O(server).
    type: list
    elements: str
    default: [agent]
  interleave:
    description:
      - Rounds of stock and every mode, from 1 to 20. The report gives an interval and a verdict from 6 rounds on.
    type: int
    default: 1
  seed:
    description:
      - Seeds the shuffled order of the arms in each round (and the report's bootstrap), from 0 to 2147483647. Unset,
        one is drawn from the system's randomness; RV(seed) and the report name it, so an order can be run again.
    type: int
  worker:
    description:
      - The agent workload's worker, V(auto), V(native) or V(python), as latency_bench's
        O(aitune.kernel.latency_bench#module:worker) takes it. Two of them (V(native,python)) measure each arm with both, side by side; the
        report compares each only with its own kind.
    type: list
    elements: str
    default: [auto]
  restore:
    description:
      - Whether the run ends with the host at stock. Unset, a run of one mode leaves the host in it and a run of several
        ends at stock.
    type: bool
  title:
    description:
      - Title of the benchmark's report; empty names the modes and rounds. The gate's title always says what it gates.
    type: str
    default: ''
  workload:
    description:
      - The agent workload, V(ring) or V(periodic).
    type: str
    default: ring
  workers:
    description:
      - Worker processes of the agent workload, from 1 to 64.
    type: int
  compute_us:
    description:
      - Compute per step in microseconds, from 1 to 100000.
    type: int
  duration_s:
    description:
      - Measurement window of each repetition in seconds, from 0.5 to 600.
    type: float
  warmup_s:
    description:
      - Warm-up before each window in seconds, from 0 to 60.
    type: float
  repetitions:
    description:
      - Repetitions per latency_bench call, from 1 to 50.
    type: int
  rate_hz:
    description:
      - Posts per second of the periodic workload, from 1 to 100000.
    type: float
  load_fraction:
    description:
      - Share of the CPUs that get a CPU hog under load, from 0.001 to 1.
    type: float
  endpoint:
    description:
      - latency_bench's O(aitune.kernel.latency_bench#module:endpoint) settings, for the V(endpoint) tool.
    type: dict
    default: {}
  fio:
    description:
      - latency_bench's O(aitune.kernel.latency_bench#module:fio) settings, for the V(fio) tool.
    type: dict
    default: {}
  cyclictest:
    description:
      - latency_bench's O(aitune.kernel.latency_bench#module:cyclictest) settings, for the V(cyclictest) tool.
    type: dict
    default: {}
  server:
    description:
      - latency_bench's O(aitune.kernel.latency_bench#module:server) settings, for the V(server) and V(agent_session)
        tools and O(load_job=generate). It needs a model or a command; its numbers are checked here.
    type: dict
    default: {}
  agent_session:
    description:
      - latency_bench's O(aitune.kernel.latency_bench#module:agent_session) settings, for the V(agent_session) tool.
    type: dict
    default: {}
  load_job:
    description:
      - The batch work under load, V(spin) hogs or V(generate) (llama.cpp generating offline with O(server)'s model).
    type: str
    default: spin
  gate_interleave:
    description:
      - Interleaved pairs the canary gate measures, from 1 to 20.
    type: int
    default: 3
  gate_metric:
    description:
      - The metric the gate checks, as latency_bench names it; it names the gate's report.
    type: str
    default: wake_p99_us
  gate_condition:
    description:
      - The condition the gate measures, V(idle) or V(load).
    type: str
    default: load
  gate_threshold:
    description:
      - The factor by which a mode must be worse than stock, with 95 % confidence or in a majority of the pairs, to
        fail the gate, from 1 to 100.
    type: float
    default: 1.10
attributes:
  action:
    description: Runs on the controller, as an action plugin.
    support: full
  check_mode:
    description: Checks and plans the same in check mode; it changes nothing either way.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  platform:
    description: Runs on the controller and reaches no host.
    support: full
    platforms: all
seealso:
  - module: aitune.kernel.latency_bench
  - module: aitune.kernel.bench_report
'''

EXAMPLES = r'''
- name: Check the settings and plan stock against balanced and aggressive, in seven shuffled rounds
  aitune.kernel.bench_plan:
    modes: balanced,aggressive
    interleave: 7
    seed: 1234
    duration_s: 10
  register: plan

- name: Show the order of the arms
  ansible.builtin.debug:
    msg: "{{ plan.arms | map(attribute='step') }}"
'''

RETURN = r'''
modes:
  description: The modes the run applies, in order (the gate's one mode for O(gate=true)).
  returned: success
  type: list
  elements: str
  sample: [balanced, aggressive]
conditions:
  description: The conditions every arm is measured under (the gate's condition for O(gate=true)).
  returned: success
  type: list
  elements: str
  sample: [idle, load]
tools:
  description: The tools every arm runs.
  returned: success
  type: list
  elements: str
  sample: [agent]
rounds:
  description: How many rounds (or the gate's pairs) the run has.
  returned: success
  type: int
  sample: 5
seed:
  description: The seed of the shuffled order (O(seed), or the one drawn).
  returned: success
  type: int
  sample: 1234
order:
  description: The labels of each round's arms in the order they run.
  returned: success
  type: list
  elements: list
  sample: [[balanced, stock, aggressive], [stock, aggressive, balanced]]
report_plan:
  description: What bench_report shows of the plan, C(seed), C(rounds) and C(order); the role passes it as
    bench_report's O(aitune.kernel.bench_report#module:plan).
  returned: success
  type: dict
  sample: {seed: 1234, rounds: 2, order: [[balanced, stock, aggressive], [stock, aggressive, balanced]]}
arms:
  description:
    - Every arm in the order it runs. C(label) names it (V(stock) or the mode), C(mode) is the mode to apply (null
      for stock), C(kind) is V(stock) or V(mode), C(pair) is the number of its round, and C(step) says where the run
      is, for a failure message.
  returned: success
  type: list
  elements: dict
  sample:
    - {label: balanced, mode: balanced, kind: mode, pair: 1, step: 'round 1, balanced arm'}
    - {label: stock, mode: null, kind: stock, pair: 1, step: 'round 1, stock arm'}
calls:
  description:
    - The latency_bench calls of every arm, one per tool and condition (and, for the agent, per worker) in this
      order. Each has C(name) (V(tool/condition), or V(agent-worker/condition) with two workers), C(tool),
      C(condition), C(load_job) with O(load_job=generate), and its tool's own settings only, C(workload) and C(worker) for the agent and
      C(endpoint), C(fio), C(cyclictest) or C(agent_session) where given, and C(server) for the tools that start the
      server (and for every call with O(load_job=generate)).
  returned: success
  type: list
  elements: dict
  sample:
    - {name: agent/idle, tool: agent, condition: idle, workload: ring, worker: auto}
preflight:
  description:
    - The latency_bench calls the role makes once at stock before the first arm, one per tool that starts the server
      (C(name), C(tool), C(condition), C(server), C(agent_session), C(load_job)); empty without such a tool.
  returned: success
  type: list
  elements: dict
  sample:
    - {name: server/preflight, tool: server, condition: idle, server: {model: /srv/tiny.gguf}, load_job: spin}
restore:
  description: Whether the run ends with the host at stock (O(restore), or the default for the number of modes).
  returned: success
  type: bool
  sample: true
finish_in:
  description: The mode applied once more after the last arm, where the run keeps one mode and its last arm was the
    stock one; null otherwise.
  returned: success
  type: str
  sample: balanced
final_mode:
  description: The mode the host holds at the end unless the run restores (RV(finish_in), or the mode of the last
    arm); null when that is stock.
  returned: success
  type: str
  sample: aggressive
title:
  description: The report's title.
  returned: success
  type: str
  sample: Stock vs balanced vs aggressive, 5 interleaved rounds
'''
