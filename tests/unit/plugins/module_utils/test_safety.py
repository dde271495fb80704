# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, HostFS, REFUSED
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

WRITE_PATHS = load_cases('write_paths.yml')

AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
STATE_FILES = ('/var/lib/aitune',)


def _changed(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


# -- allowlist and path rules ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('case', WRITE_PATHS, ids=[repr(c['path']) for c in WRITE_PATHS])
@pytest.mark.parametrize('operation', ['write_file_atomic', 'write_value', 'remove_file', 'open_lock_file'])
def test_writes_outside_the_rules_are_refused(make_host, case, operation):
    host = make_host('6.12')
    host.write('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n')
    host.write('/etc/sysctl.d/90-aitune.conf', 'kept\n')
    before = host.snapshot()
    fs = HostFS(host.root)
    call = getattr(fs, operation)
    args = (case['path'], 'owned\n') if operation.startswith('write') else (case['path'],)
    with pytest.raises(FsError) as info:
        call(*args)
    assert info.value.kind == REFUSED
    for word in case['reason']:
        assert word in str(info.value)
    assert host.snapshot() == before


def test_allowed_write_lands_under_root_only(make_host, tmp_path):
    host = make_host('6.12')
    fs = HostFS(host.root)
    fs.write_file_atomic('/etc/sysctl.d/50-test.conf', 'vm.swappiness = 1\n', mode=0o640)
    assert host.read('/etc/sysctl.d/50-test.conf') == 'vm.swappiness = 1\n'
    assert host.mode('/etc/sysctl.d/50-test.conf') == 0o640
    assert not os.path.exists('/etc/sysctl.d/50-test.conf') or host.root == '/'
    assert [name for name in os.listdir(host.path('/etc/sysctl.d')) if name.startswith('.')] == []


def test_read_refuses_symlinked_knob_but_follow_reads_mounts(make_host, tmp_path):
    host = make_host('6.12')
    victim = tmp_path / 'victim'
    victim.write_text('1\n')
    os.remove(host.path(AUTOGROUP))
    os.symlink(str(victim), host.path(AUTOGROUP))
    fs = HostFS(host.root)
    with pytest.raises(FsError) as info:
        fs.read(AUTOGROUP)
    assert info.value.kind == REFUSED
    assert 'debugfs' in fs.read('/proc/mounts', follow=True)


# -- symlinks planted in the tree --------------------------------------------------------------------------------------
@pytest.mark.parametrize('kernel, knob, path', [
    ('6.12', 'sched.autogroup', AUTOGROUP),
    ('6.12', 'sched.base_slice_ns', '/sys/kernel/debug/sched/base_slice_ns'),
    ('5.10', 'sched.base_slice_ns', '/proc/sys/kernel/sched_min_granularity_ns'),
])
def test_symlink_in_place_of_a_knob_fails_and_leaves_the_target(make_host, tmp_path, kernel, knob, path):
    host = make_host(kernel)
    victim = tmp_path / 'victim'
    victim.write_text('important\n')
    os.remove(host.path(path))
    os.symlink(str(victim), host.path(path))
    before = host.snapshot(ignore=STATE_FILES)
    with Engine(root=host.root) as engine:
        with pytest.raises(EngineError, match='symlink'):
            engine.apply({knob: 0 if knob == 'sched.autogroup' else 4000000})
    assert victim.read_text() == 'important\n'
    assert host.snapshot(ignore=STATE_FILES) == before


def test_symlink_as_a_knob_parent_directory_is_refused(make_host, tmp_path):
    host = make_host('6.12')
    elsewhere = tmp_path / 'elsewhere'
    os.rename(host.path('/sys/kernel/debug/sched'), str(elsewhere))
    os.symlink(str(elsewhere), host.path('/sys/kernel/debug/sched'))
    with Engine(root=host.root) as engine:
        with pytest.raises(EngineError, match='symlink'):
            engine.apply({'sched.base_slice_ns': 4000000})
    assert (elsewhere / 'base_slice_ns').read_text() == '3000000\n'


@pytest.mark.parametrize('linked', ['/etc/sysctl.d', '/etc/tmpfiles.d', '/etc', '/var/lib/aitune'])
def test_symlinked_persistence_directory_is_refused(make_host, tmp_path, linked):
    host = make_host('6.12')
    if linked == '/var/lib/aitune':
        os.makedirs(host.path(linked))
    elsewhere = tmp_path / 'elsewhere'
    os.rename(host.path(linked), str(elsewhere))
    os.symlink(str(elsewhere), host.path(linked))
    listing = sorted(os.listdir(str(elsewhere)))
    live = host.values([AUTOGROUP, '/sys/kernel/debug/sched/base_slice_ns'])
    with Engine(root=host.root) as engine:
        with pytest.raises((EngineError, FsError)) as info:
            engine.apply({'sched.autogroup': False, 'sched.base_slice_ns': 4000000})
    assert 'symlink' in str(info.value)
    assert sorted(os.listdir(str(elsewhere))) == listing
    assert host.values(live) == live


def test_symlinked_managed_file_is_refused_and_its_target_untouched(make_host, tmp_path):
    host = make_host('6.12')
    victim = tmp_path / 'passwd'
    victim.write_text('root:x:0:0::/root:/bin/sh\n')
    os.symlink(str(victim), host.path('/etc/sysctl.d/90-aitune.conf'))
    with Engine(root=host.root) as engine:
        with pytest.raises((EngineError, FsError), match='symlink'):
            engine.apply({'sched.autogroup': False})
    assert victim.read_text() == 'root:x:0:0::/root:/bin/sh\n'
    assert host.value(AUTOGROUP) == '1'


def test_write_file_atomic_refuses_a_symlink_planted_before_the_rename(make_host, tmp_path):
    host = make_host('6.12')
    victim = tmp_path / 'victim'
    victim.write_text('keep\n')
    target = host.path('/etc/sysctl.d/90-aitune.conf')

    def plant(tmp):
        os.symlink(str(victim), target)

    with pytest.raises(FsError) as info:
        HostFS(host.root).write_file_atomic('/etc/sysctl.d/90-aitune.conf', 'new\n', before_rename=plant)
    assert info.value.kind == REFUSED
    assert victim.read_text() == 'keep\n'
    assert os.path.islink(target)
    assert os.listdir(host.path('/etc/sysctl.d')) == ['90-aitune.conf']


# -- read-only and interrupted writes ----------------------------------------------------------------------------------
def test_read_only_knob_is_not_permitted_and_not_written(make_host):
    host = make_host('6.12')
    os.chmod(host.path('/proc/sys/kernel/sched_rt_runtime_us'), 0o444)
    with Engine(root=host.root) as engine:
        report = engine.apply({'sched.rt_runtime_us': 990000, 'sched.autogroup': False})
    entry = report.knobs['sched.rt_runtime_us']
    assert entry['state'] == 'not_permitted'
    assert 'read-only' in entry['reason']
    assert entry['changed'] is False
    assert host.value('/proc/sys/kernel/sched_rt_runtime_us') == '950000'
    assert [p for p, dummy in host.kernel.writes] == [AUTOGROUP]
    assert 'rt_runtime' not in host.read('/etc/sysctl.d/90-aitune.conf')


def test_kernel_keeping_its_value_is_not_permitted_and_not_persisted(make_host):
    host = make_host('6.12')
    host.kernel.keep.add('/proc/sys/kernel/timer_migration')
    with Engine(root=host.root) as engine:
        report = engine.apply({'sched.timer_migration': False, 'sched.autogroup': False})
    entry = report.knobs['sched.timer_migration']
    assert entry['state'] == 'not_permitted'
    assert 'kept' in entry['reason']
    assert 'timer_migration' not in host.read('/etc/sysctl.d/90-aitune.conf')
    assert 'sched.timer_migration' in report.result()['not_permitted']


class Interrupted(Exception):
    pass


def test_interrupted_atomic_write_leaves_the_old_file(make_host):
    host = make_host('6.12')
    host.write('/etc/sysctl.d/90-aitune.conf', 'old\n')
    os.chmod(host.path('/etc/sysctl.d/90-aitune.conf'), 0o640)
    seen = []

    def stop(tmp):
        seen.append(tmp)
        raise Interrupted()

    with pytest.raises(Interrupted):
        HostFS(host.root).write_file_atomic('/etc/sysctl.d/90-aitune.conf', 'new\n', before_rename=stop)
    assert host.read('/etc/sysctl.d/90-aitune.conf') == 'old\n'
    assert host.mode('/etc/sysctl.d/90-aitune.conf') == 0o640
    # The temporary file was complete and durable when the callback ran.
    assert len(seen) == 1 and seen[0].startswith('.90-aitune.conf.')


def test_interrupted_atomic_write_removes_its_temp_file(make_host):
    host = make_host('6.12')
    host.write('/etc/sysctl.d/90-aitune.conf', 'old\n')

    def stop(tmp):
        raise Interrupted()

    with pytest.raises(Interrupted):
        HostFS(host.root).write_file_atomic('/etc/sysctl.d/90-aitune.conf', 'new\n', before_rename=stop)
    assert sorted(os.listdir(host.path('/etc/sysctl.d'))) == ['90-aitune.conf']


def test_failed_atomic_write_removes_its_temp_file(make_host):
    host = make_host('6.12')
    os.makedirs(host.path('/etc/sysctl.d/90-aitune.conf'))
    with pytest.raises(FsError):
        HostFS(host.root).write_file_atomic('/etc/sysctl.d/90-aitune.conf', 'new\n')
    assert sorted(os.listdir(host.path('/etc/sysctl.d'))) == ['90-aitune.conf']


def test_atomic_write_replaces_a_stale_temp_file_of_the_same_pid(make_host):
    host = make_host('6.12')
    stale = '/etc/sysctl.d/.90-aitune.conf.aitune-%d.tmp' % os.getpid()
    host.write(stale, 'half-writ')
    HostFS(host.root).write_file_atomic('/etc/sysctl.d/90-aitune.conf', 'new\n')
    assert host.read('/etc/sysctl.d/90-aitune.conf') == 'new\n'
    assert not host.exists(stale)


def test_remove_file_of_missing_file_is_false(make_host):
    host = make_host('6.12')
    fs = HostFS(host.root)
    assert fs.remove_file('/etc/sysctl.d/90-aitune.conf') is False
    assert fs.remove_file('/etc/default/grub.d/90-aitune.cfg') is False
    host.write('/etc/sysctl.d/90-aitune.conf', 'x\n')
    assert fs.remove_file('/etc/sysctl.d/90-aitune.conf') is True
    assert not host.exists('/etc/sysctl.d/90-aitune.conf')


def test_missing_directories_are_created_only_inside_the_allowed_roots(make_host):
    host = make_host('6.12')
    fs = HostFS(host.root)
    os.rmdir(host.path('/etc/default'))
    with pytest.raises(FsError):
        fs.write_file_atomic('/etc/default/grub.d/90-aitune.cfg', 'x\n')
    assert not host.exists('/etc/default')
    os.mkdir(host.path('/etc/default'))
    fs.write_file_atomic('/etc/default/grub.d/90-aitune.cfg', 'x\n')
    assert host.read('/etc/default/grub.d/90-aitune.cfg') == 'x\n'


def test_restore_removes_the_directories_the_first_write_created(make_host):
    host = make_host('6.12')
    original = host.snapshot(ignore=('/var/lib/aitune',))
    assert not host.exists('/etc/default/grub.d')
    with Engine(root=host.root) as engine:
        engine.apply({}, cmdline=('hugepages.boot', 'hugepages', ['hugepagesz=1G', 'hugepages=2']))
    assert host.exists('/etc/default/grub.d/90-aitune.cfg')
    with Engine(root=host.root) as engine:
        engine.restore()
    assert host.snapshot(ignore=('/var/lib/aitune',)) == original
