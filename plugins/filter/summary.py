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


# What a file went through over several writes of one run, first change first: created then updated is created,
# created then removed is nothing.
_FILE_SEQUENCE = {('created', 'updated'): 'created', ('created', 'removed'): None, ('removed', 'created'): 'updated',
                  ('updated', 'updated'): 'updated', ('updated', 'removed'): 'removed'}


def merge_file_changes(merged, changes):
    for path, change in sorted(changes.items()):
        if path in merged:
            change = _FILE_SEQUENCE.get((merged[path], change), change)
        if change is None:
            merged.pop(path, None)
        else:
            merged[path] = change
    return merged


def _lines(headline, details, closing):
    """What the roles print: the headline, then the details that are not empty, then the closing lines, in order
    (a list keeps its order where a mapping's keys are sorted on output)."""
    shown_details = {key: value for key, value in details.items() if value or key == 'changed'}
    return [headline, shown_details] + closing


def tune_summary(run, mode, selected, recorded=None, in_sync=False, preview=False, root=True):
    """The summary of one host's tune run. ``run`` is the profile module's result (skipped when ``in_sync``),
    ``selected`` the subsystems the run covers, ``recorded`` the host's record of its last whole run."""
    run = _mapping(run, 'run')
    recorded = _mapping(recorded, 'recorded')
    selected = list(selected or [])
    results = _mapping(run.get('subsystems'), 'run.subsystems')
    changed = {}
    files = {}
    unsupported = {}
    not_permitted = {}
    if in_sync:
        # The record's knob lists say which subsystem each knob belongs to; a run limited by tags reports only its own.
        managed = _mapping(recorded.get('subsystems'), 'recorded.subsystems')
        own = {knob for name in selected for knob in managed.get(name, ())} if managed else None
        unsupported = {knob: reason for knob, reason in (recorded.get('unsupported') or {}).items()
                       if own is None or knob in own}
        not_permitted = {knob: reason for knob, reason in (recorded.get('not_permitted') or {}).items()
                         if own is None or knob in own}
        outcome = ('already applied on %s, and every value and file reads back unchanged: nothing to do'
                   % recorded.get('applied_at', 'an earlier run'))
    else:
        for _name, result in results.items():
            for knob, entry in (result.get('knobs') or {}).items():
                if entry.get('changed'):
                    changed[knob] = before_after(entry.get('previous'), entry.get('value'))
            merge_file_changes(files, result.get('file_changes') or {})
            unsupported.update(result.get('unsupported') or {})
            not_permitted.update(result.get('not_permitted') or {})
        # The profile module's own account, where it gives one: in check mode only it knows the files as the whole
        # run leaves them.
        if 'file_changes' in run:
            files = dict(run['file_changes'])
        settings = _count(len(changed), 'setting')
        if preview and not root:
            outcome = ('preview, nothing written: %s would change; run as root to apply' % settings
                       if changed or files else 'preview, nothing written: nothing would change')
        elif preview:
            outcome = ('check mode, nothing written: %s would change' % settings
                       if changed or files else 'check mode, nothing written: nothing would change')
        elif changed or files:
            outcome = 'applied: %s changed, each read back from the kernel' % settings
        else:
            outcome = 'applied: every setting already held its value'
        if not preview and not run.get('fact'):
            outcome += ' (a run of part of the mode: not recorded as the whole mode)'
    details = {
        'subsystems': selected,
        'changed': changed,
        'files': files,
        'unsupported': unsupported,
        'not_permitted': not_permitted,
        'reboot_required': bool(run.get('reboot_required', recorded.get('reboot_required', False))),
        'restart_required': list(run.get('restart_required', recorded.get('restart_required')) or []),
    }
    if preview:
        closing = ['baseline: nothing recorded, a preview writes nothing']
    else:
        closing = ['baseline: %s holds every original value and file, recorded before the first change'
                   % BASELINE_PATH, 'undo: ' + UNDO, 'what changed: ' + SHOW_CHANGES]
    return _lines('%s: %s' % (mode, outcome), details, closing)


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
        outcome = 'restored what could be put back; the baseline keeps the rest (see kept)'
    else:
        outcome = 'restored: every recorded original is back'
    details = {
        'restored': restored,
        'files_restored': files,
        'removed': removed,
        'kept': kept,
        'reboot_required': bool(result.get('reboot_required')),
    }
    return _lines(outcome, details, [])


class FilterModule(object):
    def filters(self):
        return {'tune_summary': tune_summary, 'restore_summary': restore_summary}
