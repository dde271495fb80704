#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: record
short_description: Verify applied settings by reading them back, and record the outcome as a local fact
version_added: 0.1.0
description:
  - Reads back from the kernel every value the collection has applied on this host, and every persistence file it
    wrote. Any difference is drift; with O(fail_on_drift) the module fails and writes nothing.
  - Then records the run in a local fact file, so C(ansible_local.aitune) shows the fleet's mode and state; the file
    is JSON and written atomically.
  - The record's C(applied_at) keeps its time while the settings and outcomes stay the same, so a second run with the
    same profile changes nothing.
  - The roles call it once at the end of a run. A later run that finds the record's settings hash, collection version
    and kernel release unchanged and no drift (M(aitune.kernel.tuning_facts)) has nothing to do.
author:
  - aitune.kernel maintainers (@aitune)
extends_documentation_fragment:
  - aitune.kernel.common
  - aitune.kernel.common.attributes
options:
  path:
    description:
      - The fact file. It must lie in C(/etc/ansible/facts.d) and end in C(.fact); its name is the key under
        C(ansible_local).
    type: path
    default: /etc/ansible/facts.d/aitune.fact
  mode:
    description: The mode that was applied, such as V(balanced).
    type: str
    required: true
  collection_version:
    description: The version of the collection that applied it.
    type: str
    required: true
  settings_hash:
    description: A hash of everything the run was asked to apply, so a later run can tell whether it asks the same.
    type: str
    required: true
  outcomes:
    description: Each knob's outcome, V(applied), V(unsupported) or V(not_permitted), by knob name.
    type: dict
    default: {}
  unsupported:
    description: The reason of each V(unsupported) knob, by knob name.
    type: dict
    default: {}
  not_permitted:
    description: The reason of each V(not_permitted) knob, by knob name.
    type: dict
    default: {}
  reboot_required:
    description: Whether boot parameters wait for a reboot.
    type: bool
    default: false
  restart_required:
    description: Services that must be restarted for their placement to take effect.
    type: list
    elements: str
    default: []
  fail_on_drift:
    description: Fail, writing nothing, when a value or file read back differs from what was applied.
    type: bool
    default: true
attributes:
  check_mode:
    description: Reads back and reports whether the record would change, without writing it.
    support: full
  diff_mode:
    description: Returns the record before and after.
    support: full
'''

EXAMPLES = r'''
- name: Verify and record a balanced run
  aitune.kernel.record:
    mode: balanced
    collection_version: 0.1.0
    settings_hash: "{{ {'mode': 'balanced', 'profile': profile} | to_json(sort_keys=True) | hash('sha256') }}"
    outcomes: {vm.swappiness: applied, cpufreq.governor: unsupported}
    unsupported: {cpufreq.governor: no cpufreq driver on this host}
'''

RETURN = r'''
drift:
  description: What differs from what was applied, by knob name or file path, with C(desired) and C(live).
  returned: always
  type: dict
  sample: {vm.swappiness: {desired: '10', live: '60'}}
fact:
  description: The record as written (or, in check mode, as it would be written).
  returned: success
  type: dict
  sample: {mode: balanced, collection_version: 0.1.0, applied_at: '2026-11-23T10:00:00Z',
           settings_hash: 5f1c..., kernel_release: 6.12.48+deb12-cloud-amd64, knobs: {vm.swappiness: applied},
           unsupported: {}, not_permitted: {}, reboot_required: false, restart_required: []}
'''

import datetime
import json

from ansible_collections.aitune.kernel.plugins.module_utils._module import ENGINE_ERRORS, build_module, open_engine
from ansible_collections.aitune.kernel.plugins.module_utils._persist import State

FACTS_DIR = '/etc/ansible/facts.d'
# Fields that describe what was applied; applied_at moves only when one of them does.
RECORDED_FIELDS = ('mode', 'collection_version', 'settings_hash', 'kernel_release', 'knobs', 'unsupported',
                   'not_permitted', 'reboot_required', 'restart_required')


def render(fact):
    return json.dumps(fact, indent=4, sort_keys=True) + '\n'


def previous_record(fs, path):
    text = fs.read_optional(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        # A file someone broke is replaced, not trusted.
        return None


def compose(params, kernel_release, previous):
    fact = {
        'mode': params['mode'],
        'collection_version': params['collection_version'],
        'settings_hash': params['settings_hash'],
        'kernel_release': kernel_release,
        'knobs': params['outcomes'],
        'unsupported': params['unsupported'],
        'not_permitted': params['not_permitted'],
        'reboot_required': params['reboot_required'],
        'restart_required': sorted(params['restart_required']),
    }
    unchanged = previous is not None and all(previous.get(field) == fact[field] for field in RECORDED_FIELDS)
    fact['applied_at'] = previous.get('applied_at') if unchanged else \
        datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return fact


def main():
    module = build_module(dict(
        path=dict(type='path', default=FACTS_DIR + '/aitune.fact'),
        mode=dict(type='str', required=True),
        collection_version=dict(type='str', required=True),
        settings_hash=dict(type='str', required=True),
        outcomes=dict(type='dict', default={}),
        unsupported=dict(type='dict', default={}),
        not_permitted=dict(type='dict', default={}),
        reboot_required=dict(type='bool', default=False),
        restart_required=dict(type='list', elements='str', default=[]),
        fail_on_drift=dict(type='bool', default=True),
    ), apply_options=False)
    path = module.params['path']
    if not (path.startswith(FACTS_DIR + '/') and path.endswith('.fact') and '/' not in path[len(FACTS_DIR) + 1:]):
        module.fail_json(msg='path must be a .fact file directly in %s, got %s' % (FACTS_DIR, path))

    engine = open_engine(module)
    try:
        unreadable = State(engine.fs).unreadable
        if unreadable:
            module.fail_json(msg='reading back what was applied needs root: %s' % unreadable)
        drift = engine.drift()
        if drift and module.params['fail_on_drift']:
            module.fail_json(msg='read back after applying, these differ from what was applied: %s'
                             % ', '.join('%s (desired %s, live %s)' % (name, entry['desired'], entry['live'])
                                         for name, entry in sorted(drift.items())), drift=drift)
        previous = previous_record(engine.fs, path)
        fact = compose(module.params, engine.kernel.release, previous)
        changed = previous != fact
        if changed and not module.check_mode:
            engine.fs.write_file_atomic(path, render(fact))
    except ENGINE_ERRORS as exc:
        module.fail_json(msg=str(exc))
    finally:
        engine.close()
    result = dict(changed=changed, drift=drift, fact=fact)
    if module._diff:
        result['diff'] = dict(before=render(previous) if previous is not None else '', after=render(fact),
                              before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
