# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A run killed with SIGKILL at any step of an apply leaves the host restorable.

The engine has named fail points (AITUNE_FAILPOINT) where it SIGKILLs its own process, exactly as an outside kill
would land there. After each kill, restore must bring back every original value and remove every managed file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from conftest import read_proc

KNOBS = {
    '/proc/sys/kernel/sched_autogroup_enabled': 'autogroup',
    '/proc/sys/kernel/timer_migration': 'timer_migration',
}
FAILPOINTS = ['after_baseline', 'baseline_rename', 'after_live_write', 'after_state', 'file_rename', 'after_files']


@pytest.mark.parametrize('failpoint', FAILPOINTS)
def test_killed_apply_is_restorable(run, failpoint):
    originals = {path: read_proc(path) for path in KNOBS}
    args = {option: read_proc(path) == '0' for path, option in KNOBS.items()}
    killed = run('aitune.kernel.sched', args, env={'AITUNE_FAILPOINT': failpoint}, expect_failure=True)
    assert killed.get('failed') and 'Killed' in killed.get('module_stderr', ''), \
        'the fail point %s was never reached: %s' % (failpoint, killed)

    run('aitune.kernel.restore')
    for path, value in originals.items():
        assert read_proc(path) == value, '%s not restored after a kill at %s' % (path, failpoint)
    assert not run('aitune.kernel.restore')['changed']
