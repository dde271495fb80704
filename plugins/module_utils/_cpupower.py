# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What the CPU power modules (cpufreq, cpuidle) share: choosing the CPUs a run acts on, and reporting a setting that
has no knob on this host at all (no cpufreq policy, no cpuidle driver) beside the knobs the engine reports."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    PartitionUnsupported, online_cpus, option_cpus)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.plugins.module_utils._report import UNSUPPORTED
from ansible_collections.aitune.kernel.plugins.module_utils._run import ENGINE_ERRORS, RunFailed, run_engine


def select_cpus(fs, cpus):
    """``(CPUs a run acts on, why it acts on none)``: the ``cpus`` option checked against the online CPUs (a CPU word
    resolved on the host's partition), or every online CPU. Where the option names a set of a partition this host's
    shape cannot have, the run acts on no CPU and the reason says why; it never falls back to every CPU."""
    if cpus in (None, ''):
        return online_cpus(fs), None
    try:
        return option_cpus(fs, cpus, 'cpus'), None
    except PartitionUnsupported as exc:
        return set(), str(exc)


def strict_refusal(unsupported):
    """In strict mode a setting with no knob on this host is refused like an unsupported knob: the message, or None."""
    if not unsupported:
        return None
    return 'strict mode, nothing was changed: ' + '; '.join(
        '%s is unsupported: %s' % (name, reason) for name, (reason, dummy) in sorted(unsupported.items()))


def add_unsupported(report, unsupported):
    """Record ``{setting name: (reason, requested value)}`` in an engine Report as unsupported, unchanged."""
    for name, (reason, requested) in sorted(unsupported.items()):
        report.record(name, UNSUPPORTED, desired=None if requested is None else str(requested), reason=reason)


def run_plan(run, make_plan):
    """The whole life of a cpufreq or cpuidle run; returns its result.

    ``make_plan(engine)`` reads the host and validates the request, raising on bad input; the plan then carries
    ``desired`` (knobs), ``unsupported`` (settings without a knob here), ``warnings`` (what the user must know although
    nothing failed), ``owned()`` (what else the subsystem owns, for
    Engine.apply) and ``result(engine)`` (its own result keys). Nothing is written before the plan is whole.
    """
    params = run.params

    def body(engine):
        try:
            plan = make_plan(engine)
        except ValidationError as exc:
            raise RunFailed('invalid settings, nothing was changed: %s' % exc)
        except ENGINE_ERRORS as exc:
            raise RunFailed('%s; nothing was changed' % exc)
        refusal = strict_refusal(plan.unsupported) if params['strict'] else None
        if refusal:
            raise RunFailed(refusal)
        report = engine.apply(plan.desired, persist=params['persist'], strict=params['strict'], **plan.owned())
        add_unsupported(report, plan.unsupported)
        for warning in plan.warnings:
            run.warn(warning)
        return report, plan.result(engine)
    return run_engine(run, body)
