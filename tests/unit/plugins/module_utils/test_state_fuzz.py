# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Property-based tests on fake trees: whatever JSON document stands as baseline.json or state.json, and whatever
arguments of the right shape a module gets, the module ends in a clean success or a clean failure, never a traceback;
and a refused state file leaves the tree exactly as it was.

Commands are never run: AnsibleModule.run_command and get_bin_path are replaced for the whole test, so a run that
would regenerate the bootloader finds no tool. Each property is bounded (max_examples) to keep the whole file well
under a minute on two CPUs; set AITUNE_FUZZ_EXAMPLES to run more."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import os
import shutil
import traceback

import pytest
from ansible.module_utils.basic import AnsibleModule
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import BASELINE_PATH, STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._persist import STATE_PATH
from ansible_collections.aitune.kernel.plugins.modules import (
    block, cgroup, cpufreq, cpuidle, hugepages, irq, lease, memory, placement, profile, restore, sched, tuning_facts)
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.fakehost import FakeHost
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

VALID = load_cases('state_files.yml')['valid']
EXAMPLES = int(os.environ.get('AITUNE_FUZZ_EXAMPLES', '0')) or None
# Every module that works under a root; latency_bench and bench_report have none (they measure and write on the host
# they run on), so random arguments are never given to them here.
ROOTED_MODULES = (block, cgroup, cpufreq, cpuidle, hugepages, irq, lease, memory, placement, profile, restore, sched,
                  tuning_facts)
FILES = {'baseline': BASELINE_PATH, 'state': STATE_PATH}


def _settings(examples):
    return settings(max_examples=EXAMPLES or examples, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# -- JSON documents ---------------------------------------------------------------------------------------------------
_WORDS = sorted({'format', 'created', 'knobs', 'files', 'dirs', 'cmdline', 'units', 'path', 'value', 'recorded',
                 'existed', 'content', 'mode', 'missing_dirs', 'subsystem', 'persist', 'applied_at', 'params',
                 'vm.swappiness', 'sched.autogroup', '/etc/sysctl.d/90-aitune.conf', '/proc/sys/vm/swappiness',
                 '/etc/systemd/system/aitune.slice', '/etc/passwd', '/sys/fs/cgroup/x', 'sysctl', 'tmpfiles',
                 '2026-01-31T12:00:00Z', '../x', ''})
_scalars = (st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | st.sampled_from(_WORDS))
_keys = st.sampled_from(_WORDS) | st.text(max_size=8)
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5), max_leaves=25)


def _pointers(value, prefix=()):
    """Every place in ``value``, as a tuple of keys and indexes."""
    yield prefix
    if isinstance(value, dict):
        for key in value:
            yield from _pointers(value[key], prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _pointers(item, prefix + (index,))


@st.composite
def mutated(draw, kind):
    """A valid document with one place replaced, one key added or one key removed: mostly one bad field deep down."""
    document = copy.deepcopy(VALID[kind])
    pointer = draw(st.sampled_from(sorted(_pointers(document), key=repr)))
    action = draw(st.sampled_from(['replace', 'add', 'remove']))
    parent = document
    for part in pointer[:-1]:
        parent = parent[part]
    if not pointer:
        return draw(json_values)
    target = parent[pointer[-1]]
    if action == 'add' and isinstance(target, dict):
        target[draw(_keys)] = draw(json_values)
    elif action == 'remove' and isinstance(parent, dict):
        del parent[pointer[-1]]
    else:
        parent[pointer[-1]] = draw(json_values)
    return document


def documents(kind):
    return st.one_of(json_values, mutated(kind), st.just(copy.deepcopy(VALID[kind])))


# -- fake tree reset between examples ---------------------------------------------------------------------------------
class Tree(object):
    """One fake host for a whole property, put back to its pristine copy before each example."""

    def __init__(self, host, pristine):
        self.host = host
        self.pristine = pristine

    def reset(self):
        for name in ('root', 'debugfs_store'):
            shutil.rmtree(getattr(self.host, name))
            shutil.copytree(getattr(self.pristine, name), getattr(self.host, name), symlinks=True)


@pytest.fixture
def tree(make_host, tmp_path, monkeypatch):
    monkeypatch.setattr(AnsibleModule, 'run_command', lambda self, argv, **kwargs: (0, '', ''))
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda self, name, *args, **kwargs: None)
    host = make_host('6.12')
    return Tree(host, FakeHost(tmp_path / 'pristine', kernel='6.12'))


class Tally(object):
    def __init__(self, name):
        self.name = name
        self.examples = 0
        self.runs = 0
        self.refused = 0
        self.tracebacks = []
        self.writes_on_refusal = []

    def report(self):
        print('\nfuzz %s: %d examples, %d module runs, %d refused with the tree unchanged, %d tracebacks, %d writes '
              'on refusal' % (self.name, self.examples, self.runs, self.refused - len(self.writes_on_refusal),
                              len(self.tracebacks), len(self.writes_on_refusal)))
        assert not self.tracebacks, self.tracebacks[0]
        assert not self.writes_on_refusal, self.writes_on_refusal[0]


def _run(tally, module, args, check_mode=False):
    tally.runs += 1
    try:
        return run_module(module, args, check_mode=check_mode)
    except Exception:  # pylint: disable=broad-except
        tally.tracebacks.append('%s %s:\n%s' % (module.__name__, json.dumps(args, default=repr)[:500],
                                                traceback.format_exc()))
        return None, None


# -- state files --------------------------------------------------------------------------------------------------------
STATE_RUNS = (
    (tuning_facts, {}),
    (restore, {}),
    (memory, {'swappiness': 10}),
    (profile, {'subsystems': {'memory': {'swappiness': 10}, 'sched': {'autogroup': False}}}),
)


def test_any_state_document_gives_a_clean_result_and_a_refusal_writes_nothing(tree):
    tally = Tally('state files')

    @_settings(60)
    @given(kind=st.sampled_from(sorted(FILES)), data=st.data())
    def run(kind, data):
        tally.examples += 1
        document = data.draw(documents(kind))
        for module, args in STATE_RUNS:
            tree.reset()
            host = tree.host
            host.write(FILES[kind], json.dumps(document))
            os.chmod(host.path(FILES[kind]), 0o600)
            os.chmod(host.path(STATE_DIR), 0o700)
            before = host.snapshot()
            code, result = _run(tally, module, dict(args, root=host.root))
            if code is None:
                continue
            if code != 0 and result['msg'].startswith(FILES[kind] + ':') and 'move the file aside' in result['msg']:
                tally.refused += 1
                if host.snapshot() != before:
                    tally.writes_on_refusal.append('%s wrote after refusing %s: %s'
                                                   % (module.__name__, json.dumps(document)[:300], result['msg']))

    run()
    tally.report()


# -- module arguments ---------------------------------------------------------------------------------------------------
class _Captured(Exception):
    pass


def argument_spec(module, monkeypatch):
    """The argument spec ``module.main()`` hands AnsibleModule, the common options included."""
    captured = {}

    def capture(self, argument_spec, **kwargs):
        captured.update(argument_spec)
        raise _Captured()

    with monkeypatch.context() as patch:
        patch.setattr(AnsibleModule, '__init__', capture)
        with pytest.raises(_Captured):
            module.main()
    return captured


_TYPED = {
    'str': st.text(max_size=16) | st.sampled_from(['', '0', 'max', '0-1', 'all', 'vllm.service', 'aitune.slice']),
    'int': st.integers(min_value=-2 ** 64, max_value=2 ** 64) | st.integers(min_value=-2, max_value=300),
    'float': st.floats(allow_nan=True),
    'bool': st.booleans(),
    'path': st.sampled_from(['/etc/ansible/facts.d/aitune.fact', '/etc/passwd', 'relative', '/../x', '']),
    'raw': json_values,
}


# A float option may be infinite or NaN; any other option never sees one of those (ansible-core's int check raises
# OverflowError on an infinite float, a traceback of AnsibleModule's own before any module code runs).
def option_values(spec):
    """A strategy for one option: a value of its type (a choice where it has choices). A scalar is now and then a
    value of any JSON type, which AnsibleModule converts or refuses; a list or a dict keeps its shape, which is what
    AnsibleModule relies on before it checks what is inside."""
    kind = spec.get('type', 'str')
    if kind == 'list':
        element = dict(spec, type=spec.get('elements', 'str'))
        element.pop('elements', None)
        return st.lists(option_values(element), max_size=4)
    if kind == 'dict':
        if spec.get('options'):
            return options(spec['options'])
        return st.dictionaries(st.sampled_from(['memory', 'sched', 'hugepages', 'block', 'cpufreq', 'cpuidle',
                                                'cgroup', 'placement', 'irq', 'swappiness', 'autogroup', 'name',
                                                'slice', 'x']), json_values, max_size=4)
    if spec.get('choices'):
        return st.sampled_from(list(spec['choices'])) | _scalars
    return (_TYPED.get(kind, json_values) | _scalars).filter(_not_infinite)


def _not_infinite(value):
    # ansible-core's int check raises OverflowError on "Infinity" as it does on an infinite float.
    return not (isinstance(value, str) and value.strip().lower().lstrip('+-') in ('inf', 'infinity'))


def options(spec):
    """A strategy for a whole options dict: required options always, each other one now and then."""
    required = {name: option_values(option) for name, option in spec.items() if option.get('required')}
    optional = {name: option_values(option) for name, option in spec.items() if not option.get('required')}
    return st.fixed_dictionaries(required, optional=optional)


@pytest.mark.parametrize('module', ROOTED_MODULES, ids=[module.__name__.rsplit('.', 1)[1] for module in ROOTED_MODULES])
def test_any_arguments_of_the_right_shape_give_a_clean_result(tree, module, monkeypatch):
    spec = argument_spec(module, monkeypatch)
    assert spec.get('root', {}).get('type') == 'path'
    del spec['root']
    tally = Tally('arguments of %s' % module.__name__.rsplit('.', 1)[1])

    @_settings(25)
    @given(args=options(spec), check_mode=st.booleans())
    def run(args, check_mode):
        tally.examples += 1
        tree.reset()
        before = tree.host.snapshot()
        code, result = _run(tally, module, dict(args, root=tree.host.root), check_mode=check_mode)
        if code is not None:
            assert code in (0, 1) and ('msg' in result or code == 0), result
        if code == 1:
            tally.refused += 1
            if tree.host.snapshot() != before:
                tally.writes_on_refusal.append('%s wrote after refusing %s: %s'
                                               % (module.__name__, json.dumps(args, default=repr)[:300], result['msg']))

    run()
    tally.report()
