# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What a run reports: the state each knob ends in (applied, unsupported, not_permitted), the files and directories
it changed, and the diff, shaped for a module result.

The engine (_engine.py) fills a Report as it applies or restores; the subsystem rooms add outcomes of their own to it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._persist import GRUB_FILE

APPLIED = 'applied'
UNSUPPORTED = 'unsupported'
NOT_PERMITTED_STATE = 'not_permitted'
STATES = (APPLIED, UNSUPPORTED, NOT_PERMITTED_STATE)


def file_change(before, after):
    """What a write did to a file, from its content before and after (None: absent): created, removed or updated."""
    return 'created' if before is None else 'removed' if after is None else 'updated'


def _shown(value):
    """A value in a diff: None is a file that does not exist (yet), such as a cgroup this run creates."""
    return '(absent)' if value is None else value


class Report(object):
    """Per-knob outcomes, file changes and the diff, shaped for a module result."""

    def __init__(self, engine):
        self.engine = engine
        self.knobs = {}
        self.files = {}
        self.reboot_required = False
        self.boot_params = ([], [])
        self.bootloader = None
        self.dirs = {}
        self.actions = []
        # Units whose files were already as wanted but that systemd did not run: starting them is a change too.
        self.units_started = []

    def record(self, name, state, path=None, previous=None, desired=None, value=None, reason=None, changed=False):
        self.knobs[name] = {'state': state, 'path': path, 'previous': previous, 'desired': desired,
                            'value': value, 'reason': reason, 'changed': changed}

    def add(self, probe, wanted):
        will_change = probe.usable and probe.value != wanted
        reason = probe.reason
        if will_change and self.engine.check_mode:
            reason = 'check mode: would change %r to %r' % (probe.value, wanted)
        self.record(probe.knob.name, probe.state, path=probe.path, previous=probe.value, desired=wanted,
                    value=wanted if will_change and self.engine.check_mode else probe.value,
                    reason=reason, changed=will_change and self.engine.check_mode)

    def add_expected(self, probe, wanted):
        """Check mode for a value systemd will set: a file that does not exist yet will come with its unit."""
        if probe.usable or probe.state == NOT_PERMITTED_STATE:
            self.add(probe, wanted)
            return
        self.record(probe.knob.name, APPLIED, path=probe.path, previous=None, desired=wanted, value=wanted,
                    changed=True, reason='check mode: systemd would create it with %r' % (wanted,))

    def outcome(self, name, state, value=None, changed=False, reason=None):
        entry = self.knobs[name]
        entry.update(state=state, changed=changed or entry['changed'], reason=reason)
        if value is not None:
            entry['value'] = value

    def add_files(self, targets):
        self.files = {path: {'before': before, 'after': after} for path, (before, after) in targets.items()}

    def finish(self, state):
        before, after = self.boot_params
        self.reboot_required = self.engine.reboot_required(state, [p for p in before if p not in after])
        return self

    @property
    def bootloader_stale(self):
        """True when the grub drop-in changed and the boot configuration must be regenerated."""
        return GRUB_FILE in self.files

    @property
    def changed(self):
        return bool(self.files) or bool(self.dirs) or bool(self.units_started) or any(entry['changed'] for entry in self.knobs.values())

    def by_state(self):
        grouped = {state: [] for state in STATES}
        for name in sorted(self.knobs):
            grouped.setdefault(self.knobs[name]['state'], []).append(name)
        return grouped

    def diff(self):
        live = [(name, entry) for name, entry in sorted(self.knobs.items()) if entry['changed']]
        diffs = []
        if live:
            diffs.append({
                'before_header': 'live kernel values',
                'after_header': 'live kernel values',
                'before': ''.join('%s: %s\n' % (name, _shown(entry['previous'])) for name, entry in live),
                'after': ''.join('%s: %s\n' % (name, _shown(entry['value'])) for name, entry in live),
            })
        for path in sorted(self.files):
            entry = self.files[path]
            diffs.append({'before_header': path if entry['before'] is not None else '%s (absent)' % path,
                          'after_header': path if entry['after'] is not None else '%s (absent)' % path,
                          'before': entry['before'] or '', 'after': entry['after'] or ''})
        return diffs

    def file_changes(self):
        """``{path: created, updated or removed}`` for the files this run wrote (or would write)."""
        return {path: file_change(entry['before'], entry['after'])
                for path, entry in self.files.items()}

    def result(self):
        grouped = self.by_state()
        return {
            'changed': self.changed,
            'knobs': self.knobs,
            'applied': grouped[APPLIED],
            'unsupported': {n: self.knobs[n]['reason'] for n in grouped[UNSUPPORTED]},
            'not_permitted': {n: self.knobs[n]['reason'] for n in grouped[NOT_PERMITTED_STATE]},
            'files': sorted(self.files),
            'file_changes': self.file_changes(),
            'dirs': self.dirs,
            'actions': self.actions,
            'reboot_required': self.reboot_required,
            'bootloader': self.bootloader,
            'kernel': self.engine.kernel.release,
            'diff': self.diff(),
        }
