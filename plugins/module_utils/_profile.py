# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A whole tuning profile in one module call: every subsystem's options checked first, then each subsystem run as its
own module would run it, then, when asked, every applied value read back and the run recorded.

One call instead of one per subsystem saves a round trip and an AnsiballZ build for each subsystem: about 0.35 s
each on a 2-vCPU host, where Ansible's own floor (a one-task ping playbook) is 0.63 s.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._run import ENGINE_ERRORS, Run, RunFailed, open_engine
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State, file_owners, file_targets
from ansible_collections.aitune.kernel.plugins.module_utils._record import FACT_FILE, check_path, verify_and_record
from ansible_collections.aitune.kernel.plugins.module_utils._subsystems import SUBSYSTEM_RUNS

RECORD_SPEC = dict(
    path=dict(type='path', default=FACT_FILE),
    mode=dict(type='str', required=True),
    collection_version=dict(type='str', required=True),
    settings_hash=dict(type='str', required=True),
    fail_on_drift=dict(type='bool', default=True),
)
# The common options every subsystem takes from the profile's own, never from its entry.
SHARED_OPTIONS = ('root', 'persist', 'strict')


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
            problems.append('%s: expected a mapping of %s options, got %s'
                            % (name, subsystem.module, type(options).__name__))
            continue
        result = ArgumentSpecValidator(subsystem.argument_spec,
                                       mutually_exclusive=list(subsystem.mutually_exclusive) or None).validate(options)
        problems.extend('%s: %s' % (name, message) for message in result.error_messages)
        validated.append((subsystem, result.validated_parameters))
    if problems:
        raise RunFailed('invalid settings, nothing was changed: ' + '; '.join(problems))
    return validated


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
        self.preview_state = State(HostFS(module.params['root'])) if module.check_mode else None

    def run(self, subsystem, options):
        params = dict(options)
        params.update((option, self.module.params[option]) for option in SHARED_OPTIONS)
        result = subsystem.run(Run(self.module, params, label=subsystem.name, preview_state=self.preview_state))
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
        return open_engine(self.module, preview_state=self.preview_state)

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
        return {path: 'created' if before is None else 'removed' if after is None else 'updated'
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


def run_profile(module):
    """The profile module's run: returns its result, or raises RunFailed with what had run by then."""
    record = module.params['record']
    if record is not None:
        check_path(record['path'])
    requests = validate_requests(module.params['subsystems'])
    profile = ProfileRun(module)
    for subsystem, options in requests:
        try:
            profile.run(subsystem, options)
        except RunFailed as exc:
            done = ', '.join(profile.results) or 'none'
            raise RunFailed('%s: %s (subsystems run before it: %s)' % (subsystem.name, exc, done),
                            **profile.result(failed_subsystem=subsystem.name))
    extra = {}
    if record is not None:
        summary = profile.summary()
        request = dict(summary, subsystems=profile.managed(), mode=record['mode'],
                       collection_version=record['collection_version'], settings_hash=record['settings_hash'])
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
        extra = dict(record_changed=changed, drift=drift, fact=fact)
    if module.check_mode:
        profile.finish_preview()
    result = profile.result(**extra)
    result['changed'] = result['changed'] or extra.get('record_changed', False)
    if module._diff:
        result['diff'] = profile.diffs()
    return result
