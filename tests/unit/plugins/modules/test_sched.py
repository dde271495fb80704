# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.aitune.kernel.plugins.modules import restore, sched
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
SLICE = '/sys/kernel/debug/sched/base_slice_ns'
SYSCTL = '/etc/sysctl.d/90-aitune.conf'
TMPFILES = '/etc/tmpfiles.d/aitune.conf'


def test_sched_check_mode_with_diff_changes_nothing(make_host):
    host = make_host('6.12')
    before = host.snapshot()
    code, result = run_module(sched, {'root': host.root, 'autogroup': False, 'base_slice_ns': 4000000},
                              check_mode=True, diff=True)
    assert code == 0, result
    assert result['changed'] is True
    assert host.snapshot() == before
    assert result['files'] == [SYSCTL, TMPFILES]
    headers = [d['before_header'] for d in result['diff']]
    assert headers == ['live kernel values', SYSCTL + ' (absent)', TMPFILES + ' (absent)']
    assert result['diff'][0]['before'] == 'sched.autogroup: 1\nsched.base_slice_ns: 3000000\n'
    assert result['diff'][0]['after'] == 'sched.autogroup: 0\nsched.base_slice_ns: 4000000\n'
    assert result['kernel'] == '6.12.48+deb12-cloud-amd64'


def test_sched_applies_then_is_idempotent_then_restores(make_host):
    host = make_host('6.12')
    original = host.snapshot(ignore=('/var/lib/aitune',))
    code, result = run_module(sched, {'root': host.root, 'autogroup': False, 'base_slice_ns': 4000000})
    assert code == 0, result
    assert result['changed'] is True
    assert result['applied'] == ['sched.autogroup', 'sched.base_slice_ns']
    assert 'diff' not in result
    assert host.value(AUTOGROUP) == '0' and host.value(SLICE) == '4000000'
    assert result['knobs']['sched.base_slice_ns']['path'] == SLICE
    code, again = run_module(sched, {'root': host.root, 'autogroup': False, 'base_slice_ns': 4000000}, diff=True)
    assert code == 0 and again['changed'] is False and again['diff'] == [] and again['files'] == []
    code, preview = run_module(restore, {'root': host.root}, check_mode=True, diff=True)
    assert code == 0 and preview['changed'] is True
    assert host.value(AUTOGROUP) == '0'
    assert preview['diff'][0]['after'] == 'sched.autogroup: 1\nsched.base_slice_ns: 3000000\n'
    code, done = run_module(restore, {'root': host.root})
    assert code == 0 and done['changed'] is True
    assert sorted(done['files']) == [SYSCTL, TMPFILES]
    assert host.snapshot(ignore=('/var/lib/aitune',)) == original
    code, again = run_module(restore, {'root': host.root})
    assert code == 0 and again['changed'] is False


def test_sched_reports_unsupported_and_strict_fails(make_host):
    host = make_host('6.12')
    code, result = run_module(sched, {'root': host.root, 'wakeup_granularity_ns': 4000000})
    assert code == 0
    assert result['changed'] is False
    assert '6.6' in result['unsupported']['sched.wakeup_granularity_ns']
    before = host.snapshot(ignore=('/var/lib/aitune',))
    code, result = run_module(sched, {'root': host.root, 'wakeup_granularity_ns': 4000000, 'autogroup': False,
                                      'strict': True})
    assert code == 1 and result['failed'] is True
    assert 'strict' in result['msg'] and 'sched.wakeup_granularity_ns' in result['msg']
    assert host.snapshot(ignore=('/var/lib/aitune',)) == before


def test_sched_warns_about_lockdown(make_host):
    host = make_host('6.18')
    code, result = run_module(sched, {'root': host.root, 'base_slice_ns': 2000000})
    assert code == 0
    assert result['changed'] is False
    assert 'lockdown' in result['not_permitted']['sched.base_slice_ns']
    # ansible-core 2.19 returns warnings as structured events; older cores as strings.
    assert 'sched.base_slice_ns not permitted' in json.dumps(result.get('warnings'))


def test_sched_on_fake_root_does_not_mount(make_host):
    host = make_host('6.1', debugfs_mounted=False)
    mounts = host.read('/proc/mounts')
    code, result = run_module(sched, {'root': host.root, 'nr_migrate': 16})
    assert code == 0
    assert 'cannot be mounted' in result['not_permitted']['sched.nr_migrate']
    assert host.read('/proc/mounts') == mounts


def test_sched_fails_on_a_planted_symlink(make_host, tmp_path):
    host = make_host('6.12')
    victim = tmp_path / 'victim'
    victim.write_text('1\n')
    os.remove(host.path(AUTOGROUP))
    os.symlink(str(victim), host.path(AUTOGROUP))
    code, result = run_module(sched, {'root': host.root, 'autogroup': False})
    assert code == 1 and 'symlink' in result['msg']
    assert victim.read_text() == '1\n'
    assert not host.exists(SYSCTL)


def test_sched_rejects_out_of_range_before_writing(make_host):
    host = make_host('6.12')
    before = host.snapshot(ignore=('/var/lib/aitune',))
    code, result = run_module(sched, {'root': host.root, 'autogroup': False, 'base_slice_ns': 50})
    assert code == 1 and 'out of range' in result['msg']
    assert host.snapshot(ignore=('/var/lib/aitune',)) == before
    code, result = run_module(sched, {'root': host.root, 'nr_migrate': 'many'})
    assert code == 1 and 'nr_migrate' in result['msg']
