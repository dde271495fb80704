# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What a person reads at the end of a tune or restore run, made from the modules' results on the controller.

The roles print these; the decisions behind them (what changed, what this host cannot do, what the run covered) stay
in Python, where they are tested, instead of in Jinja. Documentation: tune_summary.yml and restore_summary.yml.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

BASELINE_PATH = '/var/lib/aitune/baseline.json'
UNDO = 'ansible-playbook restore.yml puts back every original (-e aitune_restore_scope=SUBSYSTEM for one subsystem)'
SHOW_CHANGES = 'ansible-playbook changes.yml lists original -> live for every setting aitune.kernel changed'


def shown(value):
    """A knob value as the summary prints it: None is a file or cgroup that did not exist."""
    return 'absent' if value is None else str(value)


def before_after(before, after):
    return '%s -> %s' % (shown(before), shown(after))


def _mapping(value, name):
    if value is None:
        return {}
    if not isinstance(value, dict):
        # Imported here: loading Ansible's controller errors changes how modules run in the same process collect
        # their warnings, which the unit tests do (in production modules always run in their own process).
        from ansible.errors import AnsibleFilterError
        raise AnsibleFilterError('%s must be a mapping, got %s' % (name, type(value).__name__))
    return value


def _count(number, noun):
    return '%d %s%s' % (number, noun, '' if number == 1 else 's')


def _lines(headline, details, closing):
    """What the roles print: the headline, then the details that are not empty, then the closing lines, in order
    (a list keeps its order where a mapping's keys are sorted on output)."""
    shown_details = {key: value for key, value in details.items() if value or key == 'changed'}
    return [headline, shown_details] + closing


def changed_settings(results):
    """Each setting the subsystems changed (or would change), as ``before -> after``."""
    return {knob: before_after(entry.get('previous'), entry.get('value'))
            for result in results.values() for knob, entry in (result.get('knobs') or {}).items()
            if entry.get('changed')}


def outcome_of(run, changed, files):
    """One sentence on what the run did, or what it would do."""
    if run.get('in_sync'):
        return run.get('reason', 'already applied') + ': nothing to do'
    settings = _count(len(changed), 'setting')
    if run.get('preview'):
        prefix = 'check mode, nothing written' if run.get('root', True) else 'preview, nothing written'
        if not (changed or files):
            return prefix + ': nothing would change'
        return prefix + ': %s would change%s' % (settings, '' if run.get('root', True) else '; run as root to apply')
    outcome = ('applied: %s changed, each read back from the kernel' % settings if changed or files
               else 'applied: every setting already held its value')
    if not run.get('fact'):
        outcome += ' (a run of part of the mode: not recorded as the whole mode)'
    return outcome


def tune_summary(run, mode):
    """The summary of one host's tune run, from the profile module's result."""
    run = _mapping(run, 'run')
    results = _mapping(run.get('subsystems'), 'run.subsystems')
    changed = changed_settings(results)
    # Each file from before the run's first write to after its last: in check mode only the profile module knows the
    # files as the whole run leaves them.
    files = dict(run.get('file_changes') or {})
    details = {
        'subsystems': list(run.get('selected') or results),
        'changed': changed,
        'files': files,
        'unsupported': dict(run.get('unsupported') or {}),
        'not_permitted': dict(run.get('not_permitted') or {}),
        'reboot_required': bool(run.get('reboot_required')),
        'restart_required': list(run.get('restart_required') or []),
    }
    if run.get('preview'):
        closing = ['baseline: nothing recorded, a preview writes nothing']
    else:
        closing = ['baseline: %s holds every original value and file, recorded before the first change'
                   % BASELINE_PATH, 'undo: ' + UNDO, 'what changed: ' + SHOW_CHANGES]
    return _lines('%s: %s' % (mode, outcome_of(run, changed, files)), details, closing)


def restore_summary(result):
    """The summary of one host's restore: what went back, what was removed, what could not be restored."""
    result = _mapping(result, 'result')
    restored = {knob: before_after(entry.get('previous'), entry.get('value'))
                for knob, entry in (result.get('knobs') or {}).items() if entry.get('changed')}
    file_changes = result.get('file_changes') or {}
    removed = sorted(path for path, change in file_changes.items() if change == 'removed')
    removed += sorted('%s (directory)' % path for path, outcome in (result.get('dirs') or {}).items()
                      if outcome == 'removed')
    removed += sorted(action[len('stopped '):] + ' (unit stopped)' for action in result.get('actions') or ()
                      if action.startswith('stopped '))
    files = sorted(path for path, change in file_changes.items() if change != 'removed')
    kept = dict(result.get('not_permitted') or {})
    kept.update(result.get('unsupported') or {})
    kept.update((path, outcome) for path, outcome in (result.get('dirs') or {}).items()
                if outcome.startswith('kept'))
    if not (restored or removed or files):
        outcome = 'nothing to restore: no original is recorded, and nothing of aitune.kernel is left'
    elif kept:
        # An IRQ that is gone or that the kernel manages now leaves the baseline: no later restore could put it back.
        outcome = ('restored what could be put back; kept says what could not, and why (the baseline keeps those a '
                   'later restore may still put back)')
    else:
        outcome = 'restored: every recorded original is back'
    details = {
        'restored': restored,
        'files_restored': files,
        'removed': removed,
        'kept': kept,
        'reboot_required': bool(result.get('reboot_required')),
        'tuned': tuned_line(result.get('tuned')),
    }
    return _lines(outcome, details, [])


def tuned_line(tuned):
    """What the restore asked of a running tuned, in one line; None where it asked nothing."""
    if not isinstance(tuned, dict) or tuned.get('action') not in ('reapplied', 'would reapply', 'failed'):
        return None
    if tuned['action'] == 'failed':
        return 'tuned could not be asked to apply its profile again: %s' % tuned.get('reason')
    return '%s: %s' % (tuned.get('command'), 'tuned applied its profile again over the restored values'
                       if tuned['action'] == 'reapplied' else 'check mode, would be run')


class FilterModule(object):
    def filters(self):
        return {'tune_summary': tune_summary, 'restore_summary': restore_summary}
