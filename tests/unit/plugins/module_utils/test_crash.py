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


# -- temp files beside every kind of owned file ----------------------------------------------------------------------
OWNED_DRIVER = '''
import json, sys
from ansible_collections.aitune.kernel.tests.unit.fakehost import FakeHost
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine


class Systemctl(object):
    def __getattr__(self, name):
        return lambda *args, **kwargs: True


spec = json.loads(sys.argv[1])
host = FakeHost(spec['base'], kernel=spec['kernel'], build=False)
with Engine(root=host.root, systemctl=Systemctl()) as engine:
    engine.apply({}, files=('owned', {spec['path']: spec['content']}))
'''

OWNED_KINDS = ('/etc/systemd/system/aitunetest.slice', '/etc/systemd/system/vllm.service.d/90-aitune.conf',
               '/etc/udev/rules.d/60-aitune-test.rules', '/etc/default/irqbalance', '/etc/sysconfig/irqbalance',
               '/etc/ansible/facts.d/aitune.fact')


class _AnySystemctl(object):
    def __getattr__(self, name):
        return lambda *args, **kwargs: True


def _kill_while_writing(host, path, content):
    env = dict(os.environ, PYTHONPATH=_python_path(), **{_engine.FAILPOINT_ENV: 'file_rename'})
    spec = {'base': os.path.dirname(host.root), 'kernel': host.kernel_version, 'path': path, 'content': content}
    proc = subprocess.run([sys.executable, '-c', OWNED_DRIVER, json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode('utf-8', 'replace')


def _temp_files(host):
    return sorted(os.path.join(top, name) for top, dummy, names in os.walk(host.root)
                  for name in names if '.aitune-' in name and name.endswith('.tmp'))


@pytest.mark.parametrize('path', OWNED_KINDS)
def test_temp_file_of_a_killed_owned_write_is_swept_by_apply_and_by_restore(make_host, path):
    host = make_host('6.1')
    # Directories the host has and the collection never creates.
    for directory in ('/etc/default', '/etc/sysconfig', '/etc/udev'):
        os.makedirs(host.path(directory), exist_ok=True)
    _kill_while_writing(host, path, 'first\n')
    assert _temp_files(host)
    with Engine(root=host.root, systemctl=_AnySystemctl()) as engine:
        engine.apply({}, files=('owned', {path: 'first\n'}))
    assert _temp_files(host) == []
    _kill_while_writing(host, path, 'second\n')
    assert _temp_files(host)
    with Engine(root=host.root, systemctl=_AnySystemctl()) as engine:
        engine.restore()
    assert _temp_files(host) == []
    assert not host.exists(path)


def test_the_sweep_leaves_other_files_and_symlinks_alone(make_host, tmp_path):
    host = make_host('6.1')
    units = '/etc/systemd/system'
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / '.x.slice.aitune-1.tmp').write_text('theirs\n')
    host.write(units + '/.sshd.conf.aitune-7.tmp', 'not a unit name\n')
    host.write(units + '/.vllm.service.aitune-12.tmp', 'ours\n')
    os.symlink(str(outside), host.path(units + '/linked.service.d'))
    with Engine(root=host.root, systemctl=_AnySystemctl()) as engine:
        engine.apply({'vm.swappiness': 10})
    assert not host.exists(units + '/.vllm.service.aitune-12.tmp')
    assert host.exists(units + '/.sshd.conf.aitune-7.tmp')
    assert (outside / '.x.slice.aitune-1.tmp').exists()
