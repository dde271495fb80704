# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A whole tuning profile in one module call: what the run covers decided (skip list, tags, declared services), every
subsystem's options checked, the host left alone when it already holds the profile, every subsystem planned before
the first write (plan_subsystems), then each subsystem run as its own module would run it, and, when asked, every
applied value read back and the run recorded.

One call instead of one per subsystem saves a round trip and an AnsiballZ build for each subsystem: about 0.35 s
each on a 2-vCPU host, where Ansible's own floor (a one-task ping playbook) is 0.63 s. Deciding here, in Python, what
the roles used to decide in Jinja keeps the decision in one tested place.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._cpus import CpuPartition
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import shown
from ansible_collections.aitune.kernel.plugins.module_utils._lease import MAX_WAIT
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import (
    PPD, TUNED, TUNED_PLUGIN_SUBSYSTEMS, describe_tuned, neighbours)
from ansible_collections.aitune.kernel.plugins.module_utils._run import ENGINE_ERRORS, Run, RunFailed, open_engine
from ansible_collections.aitune.kernel.plugins.module_utils._persist import (
    FACT_FILE, PreviewState, State, file_owners, file_targets)
from ansible_collections.aitune.kernel.plugins.module_utils._report import file_change
from ansible_collections.aitune.kernel.plugins.module_utils._record import (
    applied_drift, check_path, previous_record, verify_and_record)
from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import OPTION_CHECKS, SUBSYSTEM_RUNS

RECORD_SPEC = dict(
    path=dict(type='path', default=FACT_FILE),
    mode=dict(type='str', required=True),
    collection_version=dict(type='str', required=True),
    settings_hash=dict(type='str'),
    fail_on_drift=dict(type='bool', default=True),
)
ARGUMENT_SPEC = dict(
    subsystems=dict(type='dict', required=True),
    workloads=dict(type='dict', options=dict(
        latency=dict(type='list', elements='str', default=[]),
        batch=dict(type='list', elements='str', default=[]),
    )),
    skip=dict(type='list', elements='str', default=[]),
    run_tags=dict(type='list', elements='str', default=['all']),
    skip_tags=dict(type='list', elements='str', default=[]),
    housekeeping_cpus=dict(type='str'),
    restart=dict(type='bool', default=False),
    record=dict(type='dict', options=RECORD_SPEC),
    other_tuners=dict(type='str', default='refuse', choices=['refuse', 'allow']),
    wait=dict(type='int', default=60),
)
# The common options every subsystem takes from the profile's own, never from its entry.
SHARED_OPTIONS = ('root', 'persist', 'strict', 'run_id')


class ProfileRequest(object):
    """What a call asks of this host, decided before anything runs: the subsystems it covers, each one's module
    options, whether it is the whole profile (so its record is a record of the mode), and a hash of the whole."""

    def __init__(self, params, fs):
        names = sorted(set(params['subsystems']) | set(params['skip']))
        unknown = [name for name in names if name not in SUBSYSTEM_RUNS]
        if unknown:
            raise RunFailed('invalid settings, nothing was changed: %s: not a subsystem (one of %s)'
                            % (', '.join(unknown), ', '.join(SUBSYSTEM_RUNS)))
        housekeeping = params['housekeeping_cpus']
        if housekeeping is not None and not housekeeping.replace(',', '').strip():
            # Empty is not "the default": leaving the option out is. An empty housekeeping set is refused everywhere.
            raise RunFailed('invalid settings, nothing was changed: housekeeping_cpus: an empty CPU list (%s) is '
                            'refused: the kernel needs at least one CPU for IRQs and its own threads; leave the option '
                            'out for the irq entry\'s own or the default' % shown(housekeeping))
        skip = set(params['skip'])
        profile = {name: entry for name, entry in params['subsystems'].items() if entry and name not in skip}
        self.classes = {}
        self.requests = self._module_options(params, profile)
        # The CPU words (@latency_cpus, ...) reach the subsystems as they are, and each resolves them on this host's
        # partition (_cpus.CpuPartition), reporting what it cannot carry where the shape leaves no partition.
        self.partition = CpuPartition(fs).result()
        run_tags, skip_tags = set(params['run_tags']), set(params['skip_tags'])
        # Each subsystem is a tag: --tags cgroup covers cgroup alone, --skip-tags placement all but placement.
        covered = [name for name in SUBSYSTEM_RUNS if name in self.requests]
        if not run_tags & {'all', 'tagged'}:
            covered = [name for name in covered if name in run_tags]
        self.selected = [name for name in covered if name not in skip_tags]
        # Only a run of the whole profile is a record of the mode. Skip tags that name no subsystem (Molecule always
        # passes "molecule-notest,notest") leave it whole.
        self.whole = run_tags == {'all'} and not skip_tags & (set(SUBSYSTEM_RUNS) | {'always'})
        # The partition is hashed with the request: the same words ask for other CPUs once the host's CPUs change.
        self.settings_hash = hashlib.sha256(json.dumps(
            {'requests': self.requests, 'persist': params['persist'], 'mode': (params['record'] or {}).get('mode'),
             'cpu_partition': self.partition}, sort_keys=True).encode('utf-8')).hexdigest()

    def _module_options(self, params, profile):
        """Each subsystem's module options: the profile's entry, except placement when ``workloads`` declares the
        services (each gets its class's settings; a service in both classes is placed as latency) and irq (an explicit
        ``housekeeping_cpus`` wins). Placement without services is left out: there is nothing to place."""
        requests = dict(profile)
        workloads = params['workloads']
        if workloads is not None and isinstance(requests.get('placement'), dict):
            self.classes = {name: dict(requests['placement'].get(name) or {}) for name in ('latency', 'batch')}
            by_unit = dict.fromkeys(workloads['batch'], 'batch')
            by_unit.update(dict.fromkeys(workloads['latency'], 'latency'))
            services = [dict(self.classes[kind], name=unit) for unit, kind in by_unit.items()]
            requests['placement'] = {'services': services, 'restart': params['restart']}
            if not services:
                del requests['placement']
        if params['housekeeping_cpus'] is not None and 'irq' in requests:
            requests['irq'] = dict(requests['irq'], housekeeping_cpus=params['housekeeping_cpus'])
        return requests

    def selected_requests(self):
        return {name: self.requests[name] for name in self.selected}


def validate_requests(requests):
    """``[(subsystem, validated options)]`` in run order, or RunFailed naming every problem of every subsystem."""
    problems = ['%s: not a subsystem (one of %s)' % (name, ', '.join(SUBSYSTEM_RUNS))
                for name in sorted(requests) if name not in SUBSYSTEM_RUNS]
    validated = []
    for name, subsystem in SUBSYSTEM_RUNS.items():
        if name not in requests:
            continue
        options = requests[name]
        if options is None:
            options = {}
        if not isinstance(options, dict):
            problems.append('%s: expected a mapping of aitune.kernel.%s options, got %s'
                            % (name, name, type(options).__name__))
            continue
        result = ArgumentSpecValidator(subsystem.argument_spec,
                                       mutually_exclusive=list(subsystem.mutually_exclusive) or None).validate(options)
        problems.extend('%s: %s' % (name, message) for message in result.error_messages)
        if not result.error_messages and name in OPTION_CHECKS:
            try:
                OPTION_CHECKS[name](result.validated_parameters)
            except ENGINE_ERRORS as exc:
                problems.append('%s: %s' % (name, exc))
        validated.append((subsystem, result.validated_parameters))
    if problems:
        raise RunFailed('invalid settings, nothing was changed: ' + '; '.join(problems))
    return validated


class PlanningModule(object):
    """The module as the planning pass sees it (plan_subsystems): in check mode, and quiet, as the run that follows
    gives every warning itself."""

    check_mode = True

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def warn(self, message):
        pass


def plan_subsystems(module, requests):
    """Plan every subsystem of the call, in run order, before the first one writes; raise RunFailed, nothing written,
    where one refuses.

    The planning pass is the call's own check mode (ProfileRun on a shared PreviewState), run in full: each
    subsystem validates its options against the host, decides what it would write and checks the rules between
    subsystems (_invariants), on top of what the ones before it would have applied, their live values included. So a
    refusal that a later subsystem would only meet after the earlier ones wrote (placement's fifo against the RT
    throttling sched sets, the hugepage pools against memory's min_free_kbytes, a CPU set the host cannot hold) is
    met here, with the host untouched. Reusing check mode rather than a planning step per subsystem keeps one code
    path for deciding: what is planned is exactly what the run then does, and no room has a second way to decide.
    It costs one more read of each setting; the writes follow under the same host lock, so the host cannot change
    in between. A write the kernel refuses can still stop the run part way; it says what ran before it."""
    planning = ProfileRun(PlanningModule(module))
    for subsystem, options in requests:
        try:
            planning.run(subsystem, options)
        except RunFailed as exc:
            raise RunFailed('%s: %s (found while planning, before anything was written; subsystems planned before '
                            'it: %s)' % (subsystem.name, exc, ', '.join(planning.results) or 'none'),
                            changed=False, failed_subsystem=subsystem.name)


class ProfileRun(object):
    """The subsystems' results, gathered as they run, and what the record is made of.

    In check mode the subsystems plan on one shared state (``preview_state``), each on top of what the ones before it
    would have applied, and the files they render are previewed once, from the end of the run: a file two subsystems
    write (the sysctl.d file holds sched's and memory's values) shows once, as it will be.
    """

    LIVE_HEADER = 'live kernel values'

    def __init__(self, module):
        self.module = module
        self.results = {}
        self.live_diffs = []
        # path -> [before, after, [subsystems]]: the first write's before, the last write's after.
        self.file_diffs = {}
        self.preview_state = PreviewState(HostFS(module.params['root'])) if module.check_mode else None
        # The host lock, held from the first subsystem to the record (set by run_profile): another call cannot slip
        # in between two subsystems, or between the last one and the read-back.
        self.held_lock = None

    def run(self, subsystem, options):
        params = dict(options)
        params.update((option, self.module.params[option]) for option in SHARED_OPTIONS)
        result = subsystem.run(Run(self.module, params, label=subsystem.name, preview_state=self.preview_state,
                                   held_lock=self.held_lock))
        self.add_diffs(subsystem.name, result.pop('diff', []))
        self.results[subsystem.name] = result

    def add_diffs(self, name, diffs):
        for diff in diffs:
            if diff['before_header'] == self.LIVE_HEADER:
                self.live_diffs.append(dict(diff, before_header='%s: %s' % (name, self.LIVE_HEADER),
                                            after_header='%s: %s' % (name, self.LIVE_HEADER)))
                continue
            path = diff['after_header'].split(' (absent)')[0]
            before = None if diff['before_header'].endswith(' (absent)') else diff['before']
            after = None if diff['after_header'].endswith(' (absent)') else diff['after']
            entry = self.file_diffs.setdefault(path, [before, after, []])
            entry[1] = after
            if name not in entry[2]:
                entry[2].append(name)

    def open_engine(self):
        return open_engine(self.module, preview_state=self.preview_state, held_lock=self.held_lock)

    def hold_host(self):
        """The host lock for the whole call (none in check mode), taken once the state files are known good."""
        engine = open_engine(self.module, preview_state=self.preview_state, lock_timeout=self.module.params['wait'])
        try:
            engine.check_state_files()
            return engine.lock()
        finally:
            engine.close()

    def finish_preview(self):
        """Check mode: every file as the whole run would leave it, compared with the file on disk now; a
        subsystem whose only change was a file the run as a whole leaves as it is changes nothing."""
        fs = HostFS(self.module.params['root'])
        baseline = Baseline(fs)
        targets = file_targets(fs, self.preview_state, baseline)
        previewed = {}
        for path, (before, after) in targets.items():
            # Named after the subsystems whose entries the file will hold (or, for one going away, that wrote it).
            owners = file_owners(self.preview_state, path) or self.file_diffs.get(path, [None, None, []])[2]
            previewed[path] = [before, after, owners]
        self.file_diffs = previewed
        for result in self.results.values():
            files = set(result.get('files') or ())
            if result['changed'] and files and not files & set(targets) and not result.get('dirs') \
                    and not any(entry.get('changed') for entry in result['knobs'].values()):
                result['changed'] = False
            if 'file_changes' in result:
                result['files'] = sorted(files & set(targets))
                result['file_changes'] = {path: change for path, change in result['file_changes'].items()
                                          if path in targets}

    def file_changes(self):
        """``{path: created, updated or removed}`` over the whole run: each file from before its first write to
        after its last."""
        return {path: file_change(before, after)
                for path, (before, after, dummy) in self.file_diffs.items() if before != after}

    def diffs(self):
        diffs = list(self.live_diffs)
        for path, (before, after, owners) in sorted(self.file_diffs.items()):
            if before == after:
                continue
            label = '%s (%s)' % (path, ', '.join(owners)) if owners else path
            diffs.append({'before_header': label if before is not None else '%s (absent)' % label,
                          'after_header': label if after is not None else '%s (absent)' % label,
                          'before': before or '', 'after': after or ''})
        return diffs

    def summary(self):
        """What the record holds, merged over the subsystems that ran."""
        knobs, unsupported, not_permitted, restart_required = {}, {}, {}, []
        for result in self.results.values():
            knobs.update(result['knobs'])
            unsupported.update(result['unsupported'])
            not_permitted.update(result['not_permitted'])
            restart_required.extend(result.get('restart_required', []))
        return dict(
            knobs={name: entry['state'] for name, entry in knobs.items()},
            changed_knobs=sorted(name for name, entry in knobs.items() if entry['changed']),
            unsupported=unsupported,
            not_permitted=not_permitted,
            reboot_required=any(result.get('reboot_required') for result in self.results.values()),
            restart_required=sorted(set(restart_required)),
        )

    def managed(self):
        """Each subsystem that ran and the knobs it manages, for the record."""
        return {name: sorted(result['knobs']) for name, result in self.results.items()}

    def result(self, **extra):
        result = dict(self.summary(), subsystems=self.results, file_changes=self.file_changes(),
                      changed=any(result['changed'] for result in self.results.values()))
        result.update(extra)
        return result


def in_sync(engine, request, record, fact):
    """Why the host already holds exactly this request, or None. It does when its record asks the same of the same
    collection on the same kernel, left nothing pending, and every value and file the collection applied reads back
    unchanged; each subsystem would then report ok, so nothing runs."""
    if fact is None or State(engine.fs).unreadable:
        return None
    same = (fact.get('settings_hash') == request.settings_hash
            and fact.get('collection_version') == record['collection_version']
            and fact.get('kernel_release') == engine.kernel.release
            and fact.get('reboot_required') is False and fact.get('restart_required') == [])
    if not same or applied_drift(engine):
        return None
    return 'already applied on %s, and every value and file reads back unchanged' % fact.get('applied_at')


def held_result(request, fact, reason):
    """The result of a call that found the host holding its request: nothing ran, nothing changed."""
    own = {knob for name in request.selected for knob in (fact.get('subsystems') or {}).get(name, ())}
    return dict(changed=False, in_sync=True, reason=reason, selected=request.selected, subsystems={},
                knobs={knob: state for knob, state in fact['knobs'].items() if knob in own},
                changed_knobs=[], file_changes={}, reboot_required=False, restart_required=[],
                unsupported={knob: why for knob, why in fact['unsupported'].items() if knob in own},
                not_permitted={knob: why for knob, why in fact['not_permitted'].items() if knob in own},
                recorded=fact, placement_classes=request.classes)


# The cpufreq settings power-profiles-daemon writes itself on every profile change: the governor on drivers without
# EPP, the energy-performance preference on intel_pstate and amd-pstate.
PPD_CPUFREQ_OPTIONS = ('governor', 'energy_performance_preference')
STOP_TUNED = 'systemctl disable --now tuned'
STOP_PPD = 'systemctl mask --now power-profiles-daemon'


def other_tuner_conflicts(found, requests):
    """``[(tool, description, {subsystem: what of the tool writes it})]`` for each running tuner that writes what
    ``requests`` (``[(subsystem, options)]``) sets."""
    conflicts = []
    selected = {subsystem.name: options for subsystem, options in requests}
    tuned = found[TUNED]
    if tuned['running']:
        writers = {}
        for name in selected:
            if name not in tuned['subsystems']:
                continue
            plugins = [plugin for plugin in tuned['plugins'] or () if name in TUNED_PLUGIN_SUBSYSTEMS.get(plugin, ())]
            writers[name] = ('its %s plugin' % '/'.join(plugins) if plugins
                             else 'its profile, whose tuned.conf could not be read')
        if writers:
            conflicts.append((TUNED, describe_tuned(tuned), writers))
    ppd = found[PPD]
    cpufreq = selected.get('cpufreq') or {}
    written = [option for option in PPD_CPUFREQ_OPTIONS if cpufreq.get(option) is not None]
    if ppd['running'] and written:
        conflicts.append((PPD, 'power-profiles-daemon (pid %d, profile %s)' % (ppd['pid'], ppd['profile'] or 'unknown'),
                          {'cpufreq': 'its profile (%s)' % ', '.join(written)}))
    return conflicts


def _conflict_text(conflicts, found):
    parts = []
    for tool, description, writers in conflicts:
        text = '%s is running and writes what this run sets: %s' % (description, '; '.join(
            '%s through %s' % (name, writer) for name, writer in sorted(writers.items())))
        if tool == TUNED and found[TUNED]['reapply_sysctl'] and ({'sched', 'memory'} & set(writers)):
            text += (' (with reapply_sysctl on, tuned applies /etc/sysctl.d again after its own sysctl values, so '
                     'aitune\'s file wins there and tuned-adm verify reports the difference)')
        parts.append(text)
    return '; '.join(parts)


def other_tuners_policy(module, requests):
    """The ``other_tuners`` policy, before anything is written: with ``refuse``, RunFailed naming each running tuner
    that writes what this run sets and the ways out; with ``allow``, a warning saying what will fight. Returns the
    tuners found, for the result."""
    found = neighbours(HostFS(module.params['root']))
    conflicts = other_tuner_conflicts(found, requests)
    if not conflicts:
        return {}
    text = _conflict_text(conflicts, found)
    tools = [tool for tool, dummy, dummy_writers in conflicts]
    if module.params['other_tuners'] == 'refuse':
        ways = []
        if TUNED in tools:
            ways.append('stop tuned (%s)' % STOP_TUNED)
        if PPD in tools:
            ways.append('stop power-profiles-daemon (%s)' % STOP_PPD)
        raise RunFailed('other tuner running, nothing was changed: %s. Two tuners writing the same settings undo each '
                        'other and each one\'s verify blames the other. Either %s, or set other_tuners: allow '
                        '(aitune_other_tuners: allow for tune.yml) to apply anyway'
                        % (text, ' or '.join(ways)), changed=False, other_tuners={tool: found[tool] for tool in tools})
    module.warn('other_tuners=allow: %s. Both will keep writing these settings; whichever writes last holds them '
                '(tuned on its next profile apply or restart)' % text)
    return {tool: found[tool] for tool in tools}


def run_profile(module):
    """The profile module's run: returns its result, or raises RunFailed with what had run by then."""
    params = module.params
    root_user = os.geteuid() == 0
    if not root_user:
        # Without root nothing can be written: the run previews, exactly as check mode does.
        module.check_mode = True
    if not 0 <= params['wait'] <= MAX_WAIT:
        raise RunFailed('invalid settings, nothing was changed: wait must be between 0 and %d seconds, got %d'
                        % (MAX_WAIT, params['wait']))
    request = ProfileRequest(params, HostFS(params['root']))
    record = params['record']
    if record is not None:
        check_path(record['path'])
        if record['settings_hash']:
            request.settings_hash = record['settings_hash']
    requests = validate_requests(request.selected_requests())
    other_tuners = other_tuners_policy(module, requests)
    profile = ProfileRun(module)
    preview = dict(preview=module.check_mode, root=root_user, selected=request.selected,
                   placement_classes=request.classes, cpu_partition=request.partition, other_tuners=other_tuners)
    try:
        held = profile.hold_host()
        held.__enter__()
    except ENGINE_ERRORS as exc:
        raise RunFailed(str(exc))
    try:
        profile.held_lock = None if module.check_mode else held
        return _run_held(module, profile, request, record, requests, preview, root_user)
    finally:
        held.__exit__(None, None, None)


def _run_held(module, profile, request, record, requests, preview, root_user):
    """The run from the in-sync check to the record, holding the host lock (outside check mode)."""
    if record is not None and root_user:
        engine = profile.open_engine()
        try:
            fact = previous_record(engine.fs, record['path'])
            reason = in_sync(engine, request, record, fact)
        finally:
            engine.close()
        if reason:
            return dict(held_result(request, fact, reason), **preview)
    if not module.check_mode:
        plan_subsystems(module, requests)
    for subsystem, options in requests:
        try:
            profile.run(subsystem, options)
        except RunFailed as exc:
            done = ', '.join(profile.results) or 'none'
            raise RunFailed('%s: %s (subsystems run before it: %s)' % (subsystem.name, exc, done),
                            **profile.result(failed_subsystem=subsystem.name))
    extra = dict(preview, in_sync=False)
    # Only a run of the whole profile is a record of the mode; without root the record cannot even be read.
    if record is not None and request.whole and root_user:
        extra.update(record_run(profile, record, request.settings_hash))
    if module.check_mode:
        profile.finish_preview()
    result = profile.result(**extra)
    result['changed'] = result['changed'] or extra.get('record_changed', False)
    if module._diff:
        result['diff'] = profile.diffs()
    return result


def record_run(profile, record, settings_hash):
    """Read back everything applied and write the record; the result keys it adds."""
    request = dict(profile.summary(), subsystems=profile.managed(), mode=record['mode'],
                   collection_version=record['collection_version'], settings_hash=settings_hash)
    engine = profile.open_engine()
    try:
        changed, drift, fact, diffs = verify_and_record(engine, record['path'], request, record['fail_on_drift'])
    except ENGINE_ERRORS as exc:
        raise RunFailed(str(exc), **profile.result())
    except RunFailed as exc:
        raise RunFailed(str(exc), **profile.result(**exc.result))
    finally:
        engine.close()
    profile.add_diffs('record', diffs)
    return dict(record_changed=changed, drift=drift, fact=fact)
