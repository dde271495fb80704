# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The local fact that records a tuning run: verify by reading back, then write /etc/ansible/facts.d/aitune.fact.

aitune.kernel.tuning_facts reads it back (the ``recorded`` subset), and the roles skip a run whose record asks the
same of the same collection on the same kernel while nothing has drifted. The fact is written through the engine as
a file the collection owns, so its absence is in the baseline and restore removes it (and /etc/ansible/facts.d, where
the first write created it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json

from ansible_collections.aitune.kernel.plugins.module_utils._run import RunFailed
from ansible_collections.aitune.kernel.plugins.module_utils._persist import (
    FACTS_DIR, FILE_FACT, RECORD_OWNER, State, owned_file_kind)
# Fields that describe what was applied; applied_at moves only when one of them does.
RECORDED_FIELDS = ('mode', 'collection_version', 'settings_hash', 'kernel_release', 'knobs', 'subsystems',
                   'unsupported', 'not_permitted', 'reboot_required', 'restart_required')


def render(fact):
    return json.dumps(fact, indent=4, sort_keys=True) + '\n'


def check_path(path):
    """Refuse a fact file that is not a ``.fact`` file directly in the facts directory, with a plain name."""
    if owned_file_kind(path) != FILE_FACT:
        raise RunFailed('record path must be a .fact file directly in %s, named with letters, digits, "_" and "-", '
                        'got %s' % (FACTS_DIR, path))


def previous_record(fs, path):
    text = fs.read_optional(path)
    try:
        fact = json.loads(text) if text else None
    except ValueError:
        # A file someone broke is replaced, not trusted.
        return None
    # So is one that holds no record (a list, a number): every reader takes fields from it.
    return fact if isinstance(fact, dict) else None


def compose(request, kernel_release, previous):
    """The fact for ``request`` (mode, collection_version, settings_hash, knobs, subsystems, unsupported,
    not_permitted, reboot_required, restart_required), keeping the previous applied_at when nothing recorded has
    changed."""
    fact = {field: request[field] for field in RECORDED_FIELDS if field != 'kernel_release'}
    fact['kernel_release'] = kernel_release
    fact['restart_required'] = sorted(fact['restart_required'])
    unchanged = previous is not None and all(previous.get(field) == fact[field] for field in RECORDED_FIELDS)
    fact['applied_at'] = previous.get('applied_at') if unchanged else \
        datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return fact


def applied_drift(engine):
    """What differs from what the collection applied, by knob name or file path. The records themselves are left out:
    a missing or edited record is no drift of what was applied, and the next recorded run writes it again."""
    return {name: entry for name, entry in engine.drift().items() if owned_file_kind(name) != FILE_FACT}


def describe_drift(name, entry):
    """``vm.swappiness (desired 10, live 60; probably: tuned is running ...)`` for a message."""
    writer = entry.get('probable_writer')
    return '%s (desired %s, live %s%s)' % (name, entry['desired'], entry['live'],
                                           '; probably: %s' % writer if writer else '')


def verify_and_record(engine, path, request, fail_on_drift=True):
    """Read back every value and persistence file the collection applied, then write the fact through the engine
    (behind its check-mode gate, its absence recorded first). Returns ``(changed, drift, fact, diffs)``; raises
    RunFailed, writing nothing, when the state cannot be read or (with ``fail_on_drift``) something drifted."""
    check_path(path)
    unreadable = State(engine.fs).unreadable
    if unreadable:
        raise RunFailed('reading back what was applied needs root: %s' % unreadable)
    # In check mode nothing was applied, so there is nothing to read back: the preview shows the record as it would be.
    drift = {} if engine.check_mode else applied_drift(engine)
    if drift and fail_on_drift:
        raise RunFailed('read back after applying, these differ from what was applied: %s'
                        % ', '.join(describe_drift(name, entry) for name, entry in sorted(drift.items())), drift=drift)
    previous = previous_record(engine.fs, path)
    fact = compose(request, engine.kernel.release, previous)
    report = engine.apply({}, files=(RECORD_OWNER, {path: render(fact)}))
    # In check mode the engine compares every managed file with the preview; the record answers for its own file.
    diffs = [diff for diff in report.diff() if diff['after_header'].split(' (absent)')[0] == path]
    return path in report.files, drift, fact, diffs
