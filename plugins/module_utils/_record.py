# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The local fact that records a tuning run: verify by reading back, then write /etc/ansible/facts.d/aitune.fact.

aitune.kernel.tuning_facts reads it back (the ``recorded`` subset), and the roles skip a run whose record asks the
same of the same collection on the same kernel while nothing has drifted.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json

from ansible_collections.aitune.kernel.plugins.module_utils._module import RunFailed
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State

FACTS_DIR = '/etc/ansible/facts.d'
FACT_FILE = FACTS_DIR + '/aitune.fact'
# Fields that describe what was applied; applied_at moves only when one of them does.
RECORDED_FIELDS = ('mode', 'collection_version', 'settings_hash', 'kernel_release', 'knobs', 'unsupported',
                   'not_permitted', 'reboot_required', 'restart_required')


def render(fact):
    return json.dumps(fact, indent=4, sort_keys=True) + '\n'


def check_path(path):
    """Refuse a fact file that is not a ``.fact`` file directly in the facts directory."""
    if not (path.startswith(FACTS_DIR + '/') and path.endswith('.fact') and '/' not in path[len(FACTS_DIR) + 1:]):
        raise RunFailed('record path must be a .fact file directly in %s, got %s' % (FACTS_DIR, path))


def previous_record(fs, path):
    text = fs.read_optional(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        # A file someone broke is replaced, not trusted.
        return None


def compose(request, kernel_release, previous):
    """The fact for ``request`` (mode, collection_version, settings_hash, knobs, unsupported, not_permitted,
    reboot_required, restart_required), keeping the previous applied_at when nothing recorded has changed."""
    fact = {field: request[field] for field in RECORDED_FIELDS if field != 'kernel_release'}
    fact['kernel_release'] = kernel_release
    fact['restart_required'] = sorted(fact['restart_required'])
    unchanged = previous is not None and all(previous.get(field) == fact[field] for field in RECORDED_FIELDS)
    fact['applied_at'] = previous.get('applied_at') if unchanged else \
        datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return fact


def verify_and_record(engine, path, request, fail_on_drift=True):
    """Read back every value and persistence file the collection applied, then write the fact behind the engine's
    check-mode gate. Returns ``(changed, drift, fact, diff)``; raises RunFailed, writing nothing, when the state
    cannot be read or (with ``fail_on_drift``) something drifted."""
    check_path(path)
    unreadable = State(engine.fs).unreadable
    if unreadable:
        raise RunFailed('reading back what was applied needs root: %s' % unreadable)
    drift = engine.drift()
    if drift and fail_on_drift:
        raise RunFailed('read back after applying, these differ from what was applied: %s'
                        % ', '.join('%s (desired %s, live %s)' % (name, entry['desired'], entry['live'])
                                    for name, entry in sorted(drift.items())), drift=drift)
    previous = previous_record(engine.fs, path)
    fact = compose(request, engine.kernel.release, previous)
    changed = previous != fact
    if changed and not engine.check_mode:
        engine.fs.write_file_atomic(path, render(fact))
    diff = dict(before=render(previous) if previous is not None else '', after=render(fact),
                before_header=path, after_header=path)
    return changed, drift, fact, diff
