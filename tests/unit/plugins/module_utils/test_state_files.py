# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The collection's own state files are used only when they are root's alone and in the exact shape the collection
writes them: a refused file fails every module that reads it with a message naming the file and the first bad field,
and nothing under the tree changes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import BASELINE_PATH, STATE_DIR, Baseline
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import REFUSED, FsError, HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._persist import STATE_PATH, State
from ansible_collections.aitune.kernel.plugins.module_utils._state_schema import StateFileError
from ansible_collections.aitune.kernel.plugins.modules import memory, profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

TABLE = load_cases('state_files.yml')
VALID = TABLE['valid']
CASES = TABLE['cases']
PATHS = {'baseline': BASELINE_PATH, 'state': STATE_PATH}
DELETE = '<delete>'
SWAPPINESS = '/proc/sys/vm/swappiness'


def _unescape(part):
    return part.replace('~1', '/').replace('~0', '~')


def build(case):
    """The document of ``case``: its own, or the valid one with its ``set`` applied."""
    if 'document' in case:
        document = case['document']
        return None if document == 'null' else document
    document = copy.deepcopy(VALID[case['file']])
    for pointer, value in case['set']:
        parts = [_unescape(part) for part in pointer.split('/')]
        parent = document
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        if parts[-1] == '-':
            parent.append(value)
        elif value == DELETE:
            del parent[parts[-1]]
        else:
            parent[parts[-1]] = value
    return document


def case_id(case):
    return '%s:%s' % (case['file'], json.dumps(case.get('set') or case.get('document'))[:60])


def plant(host, path, document):
    """Write ``document`` as the state file at ``path``, as root would leave it (mode 0600 in a 0700 directory)."""
    host.write(path, json.dumps(document))
    os.chmod(host.path(path), 0o600)
    os.chmod(host.path(STATE_DIR), 0o700)


def assert_refusal(message, path, says):
    assert message.startswith(path + ': '), message
    assert 'move the file aside (mv %s %s.bad) to start from the live values' % (path, path) in message, message
    assert 'Traceback' not in message
    for fragment in says:
        assert fragment in message, message


# -- the valid documents -----------------------------------------------------------------------------------------------
def test_the_valid_documents_load(make_host):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, VALID['baseline'])
    plant(host, STATE_PATH, VALID['state'])
    fs = HostFS(host.root)
    assert Baseline(fs).data == VALID['baseline']
    assert State(fs).knobs() == VALID['state']['knobs']


def test_what_the_collection_writes_is_what_it_reads_back(make_host):
    host = make_host('6.12')
    code, result = run_module(profile, {'root': host.root, 'subsystems': {'memory': {'swappiness': 10},
                                                                          'sched': {'autogroup': False}},
                                        'record': {'mode': 'balanced', 'collection_version': '0.1.0',
                                                   'settings_hash': 'abc'}})
    assert code == 0, result
    fs = HostFS(host.root)
    assert Baseline(fs).exists and State(fs).exists
    code, result = run_module(restore, {'root': host.root})
    assert code == 0 and result['changed'], result


# -- every refusal class, on the loader and through restore ------------------------------------------------------------
@pytest.mark.parametrize('case', CASES, ids=[case_id(case) for case in CASES])
def test_each_bad_document_is_refused_by_name_and_field(make_host, case):
    host = make_host('6.12')
    path = PATHS[case['file']]
    plant(host, path, build(case))
    with pytest.raises(StateFileError) as info:
        (Baseline if case['file'] == 'baseline' else State)(HostFS(host.root))
    assert_refusal(str(info.value), path, case['says'])
    before = host.snapshot()
    code, result = run_module(restore, {'root': host.root})
    assert code == 1, result
    assert_refusal(result['msg'], path, case['says'])
    assert host.snapshot() == before


@pytest.mark.parametrize('document, says', [
    ({'format': True, 'knobs': {}, 'files': {}}, 'format must be the integer 1, got true'),
    ({'format': 1}, 'knobs is missing'),
], ids=['format-true', 'format-only'])
@pytest.mark.parametrize('file', ['baseline', 'state'])
def test_format_true_and_a_bare_format_fail_every_module_cleanly(make_host, document, says, file):
    host = make_host('6.12')
    path = PATHS[file]
    if file == 'state':
        # A state of format 1 alone is an empty state; only a bad format is refused there.
        if document == {'format': 1}:
            document, says = {'format': 1, 'knobs': []}, 'knobs must be an object, got array'
        else:
            document = {'format': True}
    plant(host, path, document)
    before = host.snapshot()
    calls = [
        (restore, {}),
        (tuning_facts, {}),
        (memory, {'swappiness': 10}),
        (profile, {'subsystems': {'memory': {'swappiness': 10}}}),
    ]
    for module, args in calls:
        for check_mode in (False, True):
            code, result = run_module(module, dict(args, root=host.root), check_mode=check_mode)
            assert code == 1, (module.__name__, result)
            assert path in result['msg'] and says in result['msg'], (module.__name__, result['msg'])
            assert host.snapshot() == before, module.__name__
    assert host.value(SWAPPINESS) == '60'


def test_the_facts_name_a_refused_baseline_in_their_baseline_part(make_host):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, {'format': 1})
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['baseline', 'changes']})
    assert code == 0, result
    facts = result['ansible_facts']['aitune_tuning']
    assert 'knobs is missing' in facts['baseline']['error'] and 'knobs is missing' in facts['changes']['error']


# -- owner and mode ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('target, mode, says', [
    ('file', 0o666, 'mode 0666 is writable by group and others'),
    ('file', 0o620, 'mode 0620 is writable by group'),
    ('file', 0o602, 'mode 0602 is writable by others'),
    ('dir', 0o777, 'mode 0777 is writable by group and others'),
    ('dir', 0o770, 'mode 0770 is writable by group'),
])
def test_a_state_file_or_directory_others_may_write_is_refused(make_host, target, mode, says):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, VALID['baseline'])
    os.chmod(host.path(BASELINE_PATH if target == 'file' else STATE_DIR), mode)
    where = BASELINE_PATH if target == 'file' else STATE_DIR
    with pytest.raises(FsError) as info:
        Baseline(HostFS(host.root))
    assert info.value.kind == REFUSED
    assert str(info.value).startswith('refused %s: %s' % (where, says)), str(info.value)
    before = host.snapshot()
    for module, args in ((restore, {}), (memory, {'swappiness': 10})):
        code, result = run_module(module, dict(args, root=host.root))
        assert code == 1 and says in result['msg'] and 'root alone' in result['msg'], result
        assert host.snapshot() == before


def test_a_directory_others_may_write_is_refused_before_any_file_is_in_it(make_host):
    host = make_host('6.12')
    os.makedirs(host.path(STATE_DIR))
    os.chmod(host.path(STATE_DIR), 0o777)
    before = host.snapshot()
    code, result = run_module(memory, {'root': host.root, 'swappiness': 10})
    assert code == 1 and 'refused %s: mode 0777' % STATE_DIR in result['msg'], result
    assert host.snapshot() == before and host.value(SWAPPINESS) == '60'


def test_root_only_files_are_trusted(make_host):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, VALID['baseline'])
    os.chmod(host.path(BASELINE_PATH), 0o644)
    os.chmod(host.path(STATE_DIR), 0o755)
    assert Baseline(HostFS(host.root)).exists


def test_the_expected_owner_is_a_parameter(make_host):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, VALID['baseline'])
    me = os.geteuid()
    assert HostFS(host.root).owner == me and HostFS('/').owner == 0
    assert Engine(root=host.root).fs.owner == me
    other = me + 4242
    for fs in (HostFS(host.root, owner=other), Engine(root=host.root, owner=other).fs):
        with pytest.raises(FsError) as info:
            Baseline(fs)
        assert 'refused %s: owned by uid %d, not uid %d' % (STATE_DIR, me, other) in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason='giving a file to another user takes root')
@pytest.mark.parametrize('target', ['file', 'dir'])
def test_a_state_file_or_directory_owned_by_another_user_is_refused(make_host, target):
    host = make_host('6.12')
    plant(host, BASELINE_PATH, VALID['baseline'])
    where = BASELINE_PATH if target == 'file' else STATE_DIR
    os.chown(host.path(where), 1000, 1000)
    before = host.snapshot()
    for module, args in ((restore, {}), (tuning_facts, {}), (memory, {'swappiness': 10})):
        code, result = run_module(module, dict(args, root=host.root))
        assert code == 1, result
        assert 'refused %s: owned by uid 1000, not root' % where in result['msg'], result['msg']
        assert host.snapshot() == before


def test_a_fifo_in_place_of_the_baseline_is_refused_without_hanging(make_host):
    host = make_host('6.12')
    os.makedirs(host.path(STATE_DIR), mode=0o700)
    os.mkfifo(host.path(BASELINE_PATH), 0o600)
    with pytest.raises(FsError) as info:
        Baseline(HostFS(host.root))
    assert 'is not a regular file' in str(info.value)
