# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.tests.unit.fakehost import DebugfsMounter, FailingMounter

SLICE = '/sys/kernel/debug/sched/base_slice_ns'
STATE_FILES = ('/var/lib/aitune',)


def test_unmounted_debugfs_is_mounted_on_demand_and_left_as_found(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    mounts_before = host.read('/proc/mounts')
    assert not host.exists(SLICE)
    mounter = DebugfsMounter(host)
    with Engine(root=host.root, mounter=mounter) as engine:
        report = engine.apply({'sched.base_slice_ns': 4000000})
        assert host.mounted
    assert report.knobs['sched.base_slice_ns']['state'] == 'applied'
    assert mounter.calls == [('mount', host.path('/sys/kernel/debug')), ('umount', host.path('/sys/kernel/debug'))]
    assert host.read('/proc/mounts') == mounts_before
    assert not host.exists(SLICE)
    assert host.debugfs_value(SLICE) == '4000000'


def test_mounted_debugfs_is_not_mounted_again_nor_unmounted(make_host):
    host = make_host('6.12')
    mounts_before = host.read('/proc/mounts')
    mounter = DebugfsMounter(host)
    with Engine(root=host.root, mounter=mounter) as engine:
        engine.apply({'sched.base_slice_ns': 4000000})
    assert mounter.calls == []
    assert host.read('/proc/mounts') == mounts_before
    assert host.value(SLICE) == '4000000'


def test_sysctl_knobs_never_mount_debugfs(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    mounter = DebugfsMounter(host)
    with Engine(root=host.root, mounter=mounter) as engine:
        engine.apply({'sched.autogroup': False, 'sched.timer_migration': False})
    assert mounter.calls == []


def test_debugfs_mounted_once_for_several_knobs(make_host):
    host = make_host('6.1', debugfs_mounted=False)
    mounter = DebugfsMounter(host)
    with Engine(root=host.root, mounter=mounter) as engine:
        report = engine.apply({'sched.base_slice_ns': 4000000, 'sched.nr_migrate': 16, 'sched.migration_cost_ns': 250000})
    assert [call[0] for call in mounter.calls] == ['mount', 'umount']
    assert report.by_state()['applied'] == ['sched.base_slice_ns', 'sched.migration_cost_ns', 'sched.nr_migrate']
    assert host.debugfs_value('/sys/kernel/debug/sched/nr_migrate') == '16'


def test_mount_failure_reports_not_permitted(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    before = host.snapshot(ignore=STATE_FILES)
    mounter = FailingMounter()
    with Engine(root=host.root, mounter=mounter) as engine:
        report = engine.apply({'sched.base_slice_ns': 4000000, 'sched.autogroup': False})
    entry = report.knobs['sched.base_slice_ns']
    assert entry['state'] == 'not_permitted'
    assert 'debugfs' in entry['reason'] and 'mount' in entry['reason']
    assert report.knobs['sched.autogroup']['state'] == 'applied'
    # The failed mount is not undone with an umount, and no debugfs entry reached the persistence files.
    assert mounter.calls == [('mount', host.path('/sys/kernel/debug'))]
    assert 'debug' not in host.read('/etc/sysctl.d/90-aitune.conf')
    assert not host.exists('/etc/tmpfiles.d/aitune.conf')
    after = host.snapshot(ignore=STATE_FILES)
    assert sorted(p for p in after if before.get(p) != after[p]) == [
        '/etc/sysctl.d/90-aitune.conf', '/proc/sys/kernel/sched_autogroup_enabled']


def test_no_mounter_reports_why(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    with Engine(root=host.root) as engine:
        probe = engine.probe(lookup('sched.base_slice_ns'))
    assert probe.state == 'not_permitted'
    assert 'cannot be mounted' in probe.reason


def test_mount_failure_still_reports_removed_knob_as_unsupported(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    with Engine(root=host.root, mounter=FailingMounter()) as engine:
        probe = engine.probe(lookup('sched.wakeup_granularity_ns'))
    assert probe.state == 'unsupported'
    assert '6.6' in probe.reason


def test_mount_failure_with_strict_fails_without_writing(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    before = host.snapshot(ignore=STATE_FILES)
    with Engine(root=host.root, mounter=FailingMounter()) as engine:
        with pytest.raises(EngineError, match='strict'):
            engine.apply({'sched.base_slice_ns': 4000000, 'sched.autogroup': False}, strict=True)
    assert host.snapshot(ignore=STATE_FILES) == before


def test_lockdown_eperm_is_not_permitted_and_names_lockdown(make_host):
    host = make_host('6.18')
    before = host.snapshot(ignore=STATE_FILES)
    with Engine(root=host.root, mounter=DebugfsMounter(host)) as engine:
        report = engine.apply({'sched.base_slice_ns': 2000000, 'sched.autogroup': False})
    entry = report.knobs['sched.base_slice_ns']
    assert entry['state'] == 'not_permitted'
    assert entry['path'] == SLICE
    assert 'lockdown' in entry['reason'] and '"integrity"' in entry['reason']
    assert entry['changed'] is False
    assert report.knobs['sched.autogroup']['state'] == 'applied'
    assert not [path for path, dummy in host.kernel.writes if path.startswith('/sys/kernel/debug')]
    after = host.snapshot(ignore=STATE_FILES)
    assert sorted(p for p in after if before.get(p) != after[p]) == [
        '/etc/sysctl.d/90-aitune.conf', '/proc/sys/kernel/sched_autogroup_enabled']
    assert report.result()['not_permitted'] == {'sched.base_slice_ns': entry['reason']}


def test_eperm_without_lockdown_gives_the_generic_reason(make_host):
    host = make_host('6.18', files={'/sys/kernel/security/lockdown': '[none] integrity confidentiality\n'})
    with Engine(root=host.root) as engine:
        probe = engine.probe(lookup('sched.base_slice_ns'))
    assert probe.state == 'not_permitted'
    assert 'Operation not permitted' in probe.reason
    assert 'restricted' in probe.reason
    assert '"none"' not in probe.reason
