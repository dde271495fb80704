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

from ansible_collections.aitune.kernel.plugins.module_utils._module import ENGINE_ERRORS, Run, RunFailed, open_engine
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
    """The subsystems' results, gathered as they run, and what the record is made of."""

    def __init__(self, module):
        self.module = module
        self.results = {}
        self.diffs = []

    def run(self, subsystem, options):
        params = dict(options)
        params.update((option, self.module.params[option]) for option in SHARED_OPTIONS)
        result = subsystem.run(Run(self.module, params, label=subsystem.name))
        for diff in result.pop('diff', []):
            diff = dict(diff, before_header='%s: %s' % (subsystem.name, diff['before_header']),
                        after_header='%s: %s' % (subsystem.name, diff['after_header']))
            self.diffs.append(diff)
        self.results[subsystem.name] = result

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

    def result(self, **extra):
        result = dict(self.summary(), subsystems=self.results,
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
        request = dict(summary, mode=record['mode'], collection_version=record['collection_version'],
                       settings_hash=record['settings_hash'])
        engine = open_engine(module)
        try:
            changed, drift, fact, diff = verify_and_record(engine, record['path'], request, record['fail_on_drift'])
        except ENGINE_ERRORS as exc:
            raise RunFailed(str(exc), **profile.result())
        except RunFailed as exc:
            raise RunFailed(str(exc), **profile.result(**exc.result))
        finally:
            engine.close()
        profile.diffs.append(diff)
        extra = dict(record_changed=changed, drift=drift, fact=fact)
    result = profile.result(**extra)
    result['changed'] = result['changed'] or extra.get('record_changed', False)
    if module._diff:
        result['diff'] = profile.diffs
    return result
