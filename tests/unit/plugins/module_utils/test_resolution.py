# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type


import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import KernelInfo, parse_version
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

RESOLUTION = load_cases('resolution.yml')

STATE_FILES = ('/var/lib/aitune',)


@pytest.mark.parametrize('case', RESOLUTION, ids=['%s-%s' % (c['kernel'], c['knob']) for c in RESOLUTION])
def test_probe_resolves_per_kernel(make_host, case):
    host = make_host(case['kernel'])
    with Engine(root=host.root) as engine:
        probe = engine.probe(lookup(case['knob']))
    assert probe.state == case['state'], probe.reason
    assert probe.path == case['path']
    for word in case.get('reason') or []:
        assert word in probe.reason
    if case['state'] == 'applied':
        assert probe.reason is None
        # The probe reads the live file; bracketed lists give the selected word.
        raw = host.read(case['path'])
        assert probe.raw == raw
        assert probe.value == (raw[raw.index('[') + 1:raw.index(']')] if '[' in raw else raw.strip())


@pytest.mark.parametrize('kernel, expected_path', [
    ('5.10', '/proc/sys/kernel/sched_min_granularity_ns'),
    ('6.1', '/sys/kernel/debug/sched/min_granularity_ns'),
    ('6.12', '/sys/kernel/debug/sched/base_slice_ns'),
])
def test_base_slice_writes_only_the_resolved_file(make_host, kernel, expected_path):
    host = make_host(kernel)
    before = host.snapshot(ignore=STATE_FILES)
    with Engine(root=host.root) as engine:
        report = engine.apply({'sched.base_slice_ns': 4000000})
    after = host.snapshot(ignore=STATE_FILES)
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    assert changed == sorted([expected_path, '/etc/tmpfiles.d/aitune.conf'])
    assert host.value(expected_path) == '4000000'
    assert report.knobs['sched.base_slice_ns']['path'] == expected_path
    assert 'w %s - - - - 4000000\n' % expected_path in host.read('/etc/tmpfiles.d/aitune.conf')


def test_persistence_lines_name_the_resolved_location(make_host):
    host = make_host('5.10')
    with Engine(root=host.root) as engine:
        engine.apply({'sched.base_slice_ns': 4000000, 'sched.autogroup': False})
    sysctl = host.read('/etc/sysctl.d/90-aitune.conf')
    assert 'kernel.sched_autogroup_enabled = 0\n' in sysctl
    # The scheduler knobs persist through tmpfiles by path, whichever file they resolved to.
    assert 'w /proc/sys/kernel/sched_min_granularity_ns - - - - 4000000\n' in host.read('/etc/tmpfiles.d/aitune.conf')


@pytest.mark.parametrize('release, version', [
    ('6.12.48+deb12-cloud-amd64', (6, 12, 48)),
    ('6.1.0-31-cloud-amd64', (6, 1, 0)),
    ('5.10.0-33-cloud-amd64', (5, 10, 0)),
    ('6.18', (6, 18, 0)),
    ('garbage', (0, 0, 0)),
    ('', (0, 0, 0)),
])
def test_parse_version(release, version):
    assert parse_version(release) == version


@pytest.mark.parametrize('kernel, generation', [('5.10', 'cfs'), ('6.1', 'cfs'), ('6.12', 'eevdf'), ('6.18', 'eevdf')])
def test_kernel_info_reads_the_tree(make_host, kernel, generation):
    host = make_host(kernel)
    info = KernelInfo(HostFS(host.root))
    assert info.release == host.value('/proc/sys/kernel/osrelease')
    assert info.sched_generation() == generation
    assert info.is_mounted('/sys/kernel/debug', 'debugfs')
    assert not info.is_mounted('/sys/kernel/debug', 'tracefs')
    assert info.cmdline() == host.value('/proc/cmdline')


def test_mount_points_with_escaped_spaces(make_host):
    host = make_host('6.12', debugfs_mounted=False)
    host.write('/proc/mounts', host.read('/proc/mounts') + 'debugfs /sys/kernel/debug\\040x debugfs rw 0 0\n')
    info = KernelInfo(HostFS(host.root))
    assert info.is_mounted('/sys/kernel/debug x', 'debugfs')
    assert not info.is_mounted('/sys/kernel/debug', 'debugfs')
