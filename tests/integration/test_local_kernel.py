# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Apply, read back, re-apply, restore on this machine's real kernel; the host must end exactly as it started."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import subprocess
import tempfile

from conftest import read_proc

AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
SWAPPINESS = '/proc/sys/vm/swappiness'
STAT_INTERVAL = '/proc/sys/vm/stat_interval'
HUGE_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'


def flipped(path):
    return '0' if read_proc(path) == '1' else '1'


def other_than(path, *candidates):
    current = read_proc(path)
    return next(value for value in candidates if str(value) != current)


def expected_base_slice_state():
    """Decide independently of the module whether this kernel lets root read the debugfs base slice."""
    mountpoint = tempfile.mkdtemp()
    try:
        if subprocess.call(['mount', '-t', 'debugfs', 'debugfs', mountpoint]) != 0:
            return 'not_permitted'
        try:
            leaf = os.path.join(mountpoint, 'sched', 'base_slice_ns')
            if not os.path.exists(leaf):
                leaf = os.path.join(mountpoint, 'sched', 'min_granularity_ns')
            if not os.path.exists(leaf):
                return 'unsupported'
            with open(leaf) as handle:
                handle.read()
            return 'applied'
        except (IOError, OSError) as exc:
            assert exc.errno in (errno.EPERM, errno.EACCES), exc
            return 'not_permitted'
        finally:
            subprocess.check_call(['umount', mountpoint])
    finally:
        os.rmdir(mountpoint)


def knob_values(facts):
    return {name: (entry['state'], entry['value']) for name, entry in facts['knobs'].items()}


def test_apply_verify_reapply_restore(run):
    before_facts = run('aitune.kernel.tuning_facts')['ansible_facts']['aitune_tuning']
    originals = {path: read_proc(path) for path in (AUTOGROUP, SWAPPINESS, STAT_INTERVAL, HUGE_2M)}
    debugfs_before = before_facts['debugfs_mounted']
    wanted_autogroup = flipped(AUTOGROUP)
    wanted_swappiness = other_than(SWAPPINESS, 10, 11)
    wanted_stat = other_than(STAT_INTERVAL, 10, 11)
    base_slice_state = expected_base_slice_state()

    sched = run('aitune.kernel.sched', {'autogroup': wanted_autogroup == '1', 'base_slice_ns': 2000000})
    assert sched['changed']
    assert sched['knobs']['sched.autogroup']['state'] == 'applied'
    assert sched['knobs']['sched.base_slice_ns']['state'] == base_slice_state
    assert sched['knobs']['sched.base_slice_ns']['reason'] or base_slice_state == 'applied'
    assert read_proc(AUTOGROUP) == wanted_autogroup

    memory = run('aitune.kernel.memory', {'swappiness': int(wanted_swappiness), 'stat_interval': int(wanted_stat)})
    assert memory['applied'] == ['vm.stat_interval', 'vm.swappiness']
    assert read_proc(SWAPPINESS) == str(wanted_swappiness)
    assert read_proc(STAT_INTERVAL) == str(wanted_stat)

    huge = run('aitune.kernel.hugepages', {'pools': [{'size': '2M', 'count': int(originals[HUGE_2M]) + 4}]})
    assert huge['knobs']['hugepages.2M']['state'] in ('applied', 'not_permitted')
    assert read_proc(HUGE_2M) == huge['knobs']['hugepages.2M']['value']

    with open('/etc/sysctl.d/90-aitune.conf') as handle:
        persisted = handle.read()
    assert 'kernel.sched_autogroup_enabled = %s' % wanted_autogroup in persisted
    assert 'vm.swappiness = %s' % wanted_swappiness in persisted
    assert os.stat('/var/lib/aitune/baseline.json').st_mode & 0o777 == 0o600

    # The second run changes nothing.
    assert not run('aitune.kernel.sched', {'autogroup': wanted_autogroup == '1', 'base_slice_ns': 2000000})['changed']
    assert not run('aitune.kernel.memory', {'swappiness': int(wanted_swappiness), 'stat_interval': int(wanted_stat)})['changed']

    # Drift shows when someone changes a value behind the collection's back.
    with open(SWAPPINESS, 'w') as handle:
        handle.write(originals[SWAPPINESS])
    drift = run('aitune.kernel.tuning_facts')['ansible_facts']['aitune_tuning']['drift']
    assert drift == {'vm.swappiness': {'desired': str(wanted_swappiness), 'live': originals[SWAPPINESS]}}

    preview = run('aitune.kernel.restore', check=True)
    assert preview['changed'] and read_proc(AUTOGROUP) == wanted_autogroup

    restored = run('aitune.kernel.restore')
    assert restored['changed']
    for path, value in originals.items():
        assert read_proc(path) == value, path
    assert not run('aitune.kernel.restore')['changed']

    after_facts = run('aitune.kernel.tuning_facts')['ansible_facts']['aitune_tuning']
    assert knob_values(after_facts) == knob_values(before_facts)
    assert after_facts['debugfs_mounted'] == debugfs_before
    assert after_facts['baseline']['present'] is False


def test_check_mode_changes_nothing(run):
    wanted = flipped(AUTOGROUP)
    result = run('aitune.kernel.sched', {'autogroup': wanted == '1'}, check=True)
    assert result['changed']
    assert result['knobs']['sched.autogroup']['value'] == wanted
    assert read_proc(AUTOGROUP) != wanted
    assert result['diff'][0]['after'] == 'sched.autogroup: %s\n' % wanted


def test_bad_input_writes_nothing(run):
    before = read_proc(SWAPPINESS)
    result = run('aitune.kernel.memory', {'swappiness': 500, 'stat_interval': 3}, expect_failure=True)
    assert result['failed'] and 'out of range' in result['msg']
    assert read_proc(SWAPPINESS) == before
    result = run('aitune.kernel.sched', {'autogroup': True, 'wakeup_granularity_ns': 1000000, 'strict': True},
                 expect_failure=True)
    assert result['failed'] and 'strict' in result['msg']
    result = run('aitune.kernel.hugepages', {'pools': [{'size': '2M', 'count': 1 << 30}]}, expect_failure=True)
    assert result['failed'] and 'cap' in result['msg']
