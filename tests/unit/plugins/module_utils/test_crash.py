# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A run killed (SIGKILL) at any step leaves the host restorable: each failpoint of the engine is hit in a child
process, then restore runs here and every original value and file must be back."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import signal
import subprocess
import sys

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _engine
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine

APPLY_FAILPOINTS = ('after_baseline', 'baseline_rename', 'after_live_write', 'after_state', 'file_rename', 'after_files')
FIRST = {'sched.base_slice_ns': 4000000, 'sched.autogroup': False, 'vm.swappiness': 10, 'thp.enabled': 'never',
         'vm.dirty_bytes': 268435456}
SECOND = {'sched.base_slice_ns': 5000000, 'sched.autogroup': False, 'vm.swappiness': 1, 'thp.enabled': 'always',
          'vm.dirty_ratio': 30, 'sched.nr_migrate': 4}
TMPFILES = '/etc/tmpfiles.d/aitune.conf'

DRIVER = '''
import json, sys
from ansible_collections.aitune.kernel.tests.unit.fakehost import FakeHost
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
spec = json.loads(sys.argv[1])
host = FakeHost(spec['base'], kernel=spec['kernel'], build=False)
host.kernel.install(setattr)
with Engine(root=host.root) as engine:
    if spec['action'] == 'apply':
        engine.apply(spec['desired'])
    else:
        engine.restore()
'''


def _python_path():
    # The directory that holds ansible_collections, as this process imported it.
    base = os.path.abspath(_engine.__file__)
    for _dummy in range(len(_engine.__name__.split('.'))):
        base = os.path.dirname(base)
    return os.pathsep.join([base] + [p for p in sys.path if p])


def run_child(host, action, failpoint=None, desired=None):
    env = dict(os.environ, PYTHONPATH=_python_path())
    env.pop(_engine.FAILPOINT_ENV, None)
    if failpoint:
        env[_engine.FAILPOINT_ENV] = failpoint
    spec = {'base': os.path.dirname(host.root), 'kernel': host.kernel_version, 'action': action, 'desired': desired}
    proc = subprocess.run([sys.executable, '-c', DRIVER, json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, check=False)
    return proc.returncode, proc.stderr.decode('utf-8', 'replace')


def _comparable(host):
    """The whole tree, temp files a killed run left included, and /var/lib/aitune too: a restore of everything leaves
    none of the collection's own files (baseline, state, lock) behind."""
    return host.snapshot()


def _make(make_host):
    host = make_host('6.1')
    # A file of the managed name that was there before, with its own mode, must come back as it was.
    host.write(TMPFILES, '# local\nw /sys/kernel/mm/transparent_hugepage/defrag - - - - defer\n')
    os.chmod(host.path(TMPFILES), 0o640)
    return host


def _assert_json_or_absent(host, path):
    if host.exists(path):
        assert isinstance(json.loads(host.read(path)), dict)


@pytest.mark.parametrize('failpoint', APPLY_FAILPOINTS)
def test_killed_first_apply_is_fully_restorable(make_host, failpoint):
    host = _make(make_host)
    original = _comparable(host)
    code, err = run_child(host, 'apply', failpoint, FIRST)
    assert code == -signal.SIGKILL, err
    _assert_json_or_absent(host, '/var/lib/aitune/baseline.json')
    _assert_json_or_absent(host, '/var/lib/aitune/state.json')
    with Engine(root=host.root) as engine:
        engine.restore()
    assert _comparable(host) == original
    with Engine(root=host.root) as engine:
        assert engine.restore().changed is False


@pytest.mark.parametrize('failpoint', APPLY_FAILPOINTS)
def test_killed_second_apply_restores_the_first_originals(make_host, failpoint):
    host = _make(make_host)
    original = _comparable(host)
    assert run_child(host, 'apply', None, FIRST)[0] == 0
    code, err = run_child(host, 'apply', failpoint, SECOND)
    assert code == -signal.SIGKILL, err
    with Engine(root=host.root) as engine:
        engine.restore()
    assert _comparable(host) == original


def test_killed_restore_can_be_finished(make_host):
    host = _make(make_host)
    original = _comparable(host)
    assert run_child(host, 'apply', None, FIRST)[0] == 0
    code, err = run_child(host, 'restore', 'after_restore_write')
    assert code == -signal.SIGKILL, err
    with Engine(root=host.root) as engine:
        engine.restore()
    assert _comparable(host) == original


def test_child_without_failpoint_completes(make_host):
    # The driver itself works: without a failpoint the same run exits cleanly and applies everything.
    host = _make(make_host)
    code, err = run_child(host, 'apply', None, FIRST)
    assert code == 0, err
    assert host.value('/sys/kernel/debug/sched/min_granularity_ns') == '4000000'
    assert host.read('/sys/kernel/mm/transparent_hugepage/enabled') == 'always madvise [never]\n'
