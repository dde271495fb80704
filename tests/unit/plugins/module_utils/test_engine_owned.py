# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The engine's owned files (``files=``), the values systemd sets from them (``expect=``) and the directories it
creates (``dirs=``), with restore of each."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import STATE_DIR
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.aitune.kernel.tests.unit.cgtree import FakeSystemd, install_layout

NOT_STATE = ('/var/lib/aitune',)
BASELINE = '/var/lib/aitune/baseline.json'
STATE = '/var/lib/aitune/state.json'
UNITS = '/etc/systemd/system'
DROPIN = UNITS + '/vllm.service.d/90-aitune.conf'
UNIT = UNITS + '/aitunetest.slice'
V2 = '/sys/fs/cgroup'
PARENT = V2 + '/aitune.slice'
LATENCY = PARENT + '/aitune-latency.slice'
SLICE_UNIT = '[Slice]\nCPUWeight=%d\n\n[Install]\nWantedBy=slices.target\n'


def engine(host, systemctl=None, check_mode=False):
    return Engine(root=host.root, systemctl=systemctl, check_mode=check_mode)


def stored(host, path):
    return json.loads(host.read(path)) if host.exists(path) else None


# -- files= ------------------------------------------------------------------------------------------------------------
def test_owned_files_are_written_replaced_as_a_set_and_restored(make_host):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    original = host.snapshot(ignore=NOT_STATE)
    files = {DROPIN: '[Service]\nNice=-5\n', UNIT: SLICE_UNIT % 200}

    with engine(host, systemd, check_mode=True) as checking:
        report = checking.apply({}, files=('placement', files))
    assert sorted(report.files) == [UNIT, DROPIN] and report.changed is True
    assert host.snapshot(ignore=NOT_STATE) == original and systemd.calls == []

    with engine(host, systemd) as running:
        report = running.apply({}, files=('placement', files))
    assert host.read(DROPIN) == files[DROPIN] and host.read(UNIT) == files[UNIT]
    # A drop-in only needs systemd to reload; a unit of our own is started as well.
    assert systemd.calls == [('daemon-reload',), ('start', 'aitunetest.slice')]
    recorded = stored(host, BASELINE)['files']
    # This tree has no /etc/systemd yet: every directory the first write made is on record, to go again on restore.
    assert recorded[DROPIN]['existed'] is False
    assert recorded[DROPIN]['missing_dirs'] == ['/etc/systemd', UNITS, UNITS + '/vllm.service.d']

    with engine(host, systemd) as running:
        assert running.apply({}, files=('placement', files)).changed is False
    assert len(systemd.calls) == 2

    # The set is the whole set: the unit left out is stopped while its file still exists, then removed.
    with engine(host, systemd) as running:
        report = running.apply({}, files=('placement', {DROPIN: files[DROPIN]}))
    assert report.files == {UNIT: {'before': files[UNIT], 'after': None}}
    assert systemd.calls[2:] == [('stop', 'aitunetest.slice'), ('daemon-reload',)]
    assert not host.exists(UNIT)

    with engine(host, systemd) as running:
        report = running.restore('placement')
    assert report.files == {DROPIN: {'before': files[DROPIN], 'after': None}}
    assert host.snapshot(ignore=NOT_STATE) == original
    assert stored(host, BASELINE) is None and stored(host, STATE) is None


@pytest.mark.parametrize('owned', [
    {'files': ('placement', {'/etc/passwd': 'root::0:0::/:/bin/sh\n'})},
    {'files': ('placement', {UNITS + '/vllm.service.d/evil.conf': '[Service]\n'})},
    {'files': ('placement', {UNITS + '/../x.service': '[Service]\n'})},
    {'units': ('cgroup', {'../../etc/x.service': '[Service]\n'})},
    {'units': ('cgroup', {'a b.slice': '[Slice]\n'})},
])
def test_files_no_subsystem_may_own_are_refused_before_any_write(make_host, owned):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    before = host.snapshot()
    with engine(host, systemd) as running:
        with pytest.raises(EngineError) as info:
            running.apply({'vm.swappiness': 10}, **owned)
    assert 'nothing was changed' in str(info.value) and 'may own' in str(info.value)
    assert host.snapshot() == before and systemd.calls == [] and host.kernel.writes == []


@pytest.mark.parametrize('check_mode', [False, True])
def test_units_without_systemd_are_refused_before_any_write(make_host, check_mode):
    # Refused up front: the state would otherwise name units that were never installed.
    host = make_host('6.12')
    before = host.snapshot()
    with engine(host, check_mode=check_mode) as running:
        with pytest.raises(EngineError) as info:
            running.apply({'vm.swappiness': 10}, files=('placement', {DROPIN: '[Service]\nNice=1\n'}))
    assert 'systemd is not managing this host' in str(info.value)
    assert host.snapshot() == before and host.kernel.writes == []


# -- expect= -----------------------------------------------------------------------------------------------------------
def test_expected_values_are_read_back_after_the_units_start(make_host):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    units = ('cgroup', {'aitune.slice': '[Slice]\n', 'aitune-latency.slice': SLICE_UNIT % 300})
    expect = {'cgroup.aitune-latency.cpu.weight': 300}

    with engine(host, systemd, check_mode=True) as checking:
        report = checking.apply({}, units=units, expect=expect)
    entry = report.knobs['cgroup.aitune-latency.cpu.weight']
    assert entry['state'] == 'applied' and entry['changed'] is True and 'systemd would create it' in entry['reason']
    assert not host.exists(LATENCY)

    with engine(host, systemd) as running:
        report = running.apply({}, units=units, expect=expect)
    entry = report.knobs['cgroup.aitune-latency.cpu.weight']
    assert (entry['state'], entry['value'], entry['changed']) == ('applied', '300', True)
    assert entry['path'] == LATENCY + '/cpu.weight'
    # Read back, never written by the engine (the fake systemd sets cgroupfs values without going through os.write).
    assert host.kernel.writes == []
    assert stored(host, STATE)['knobs']['cgroup.aitune-latency.cpu.weight']['persist'] == 'systemd'
    assert 'cgroup.aitune-latency.cpu.weight' not in stored(host, BASELINE)['knobs']

    with engine(host, systemd) as running:
        again = running.apply({}, units=units, expect=expect)
    assert again.changed is False and again.knobs['cgroup.aitune-latency.cpu.weight']['changed'] is False

    # A value systemd does not set as its unit asks is not applied, whatever the unit file says.
    host.write(LATENCY + '/cpu.weight', '100\n')
    with engine(host, systemd) as running:
        drifted = running.apply({}, units=units, expect=expect)
    assert drifted.knobs['cgroup.aitune-latency.cpu.weight']['state'] == 'not_permitted'
    assert "systemd left '100'" in drifted.knobs['cgroup.aitune-latency.cpu.weight']['reason']

    # Values the subsystem's files no longer ask for leave the state with them.
    with engine(host, systemd) as running:
        running.apply({}, units=('cgroup', {}))
    assert stored(host, STATE) is None


def test_expected_value_of_a_slice_without_its_cgroup_is_unsupported_with_its_reason(make_host):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    units = ('cgroup', {'aitune.slice': '[Slice]\n', 'aitune-latency.slice': SLICE_UNIT % 300})
    # systemd takes the slice but makes no cgroup for it (the controller is not delegated).
    systemd.hollow.add('aitune-latency.slice')
    with engine(host, systemd) as running:
        report = running.apply({}, units=units, expect={'cgroup.aitune-latency.cpu.weight': 300})
    assert report.knobs['cgroup.aitune-latency.cpu.weight']['state'] == 'unsupported'
    assert 'slice is not started' in report.knobs['cgroup.aitune-latency.cpu.weight']['reason']


def test_a_stopped_slice_is_started_again_by_the_next_apply(make_host):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    units = ('cgroup', {'aitune.slice': '[Slice]\n', 'aitune-latency.slice': SLICE_UNIT % 300})
    with engine(host, systemd) as running:
        running.apply({}, units=units, expect={'cgroup.aitune-latency.cpu.weight': 300})
    systemd.stop('aitune-latency.slice')
    with engine(host, systemd) as running:
        report = running.apply({}, units=units, expect={'cgroup.aitune-latency.cpu.weight': 300})
    assert report.changed is True and report.files == {}
    assert report.knobs['cgroup.aitune-latency.cpu.weight']['state'] == 'applied'
    assert systemd.calls[-2:] == [('daemon-reload',), ('start', 'aitune-latency.slice')]


def test_units_a_killed_run_wrote_but_never_started_are_started(make_host):
    # A run killed during "systemctl enable": the unit files hold what the profile wants, systemd runs none of them.
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    contents = {'aitune.slice': '[Slice]\n', 'aitune-latency.slice': '[Slice]\nCPUWeight=300\nAllowedCPUs=1\n'}
    for name, content in contents.items():
        host.write('%s/%s' % (UNITS, name), content)
    expect = {'cgroup.aitune-latency.cpu.weight': 300, 'cgroup.aitune-latency.cpuset.cpus': '1'}
    with engine(host, systemd) as running:
        report = running.apply({}, units=('cgroup', contents), expect=expect)
    assert report.files == {}
    assert systemd.calls == [('daemon-reload',), ('start', 'aitune-latency.slice'), ('start', 'aitune.slice')]
    assert systemd.is_enabled('aitune-latency.slice') and systemd.is_active('aitune-latency.slice')
    assert {name: report.knobs[name]['state'] for name in expect} == dict.fromkeys(expect, 'applied')
    assert set(expect) <= set(stored(host, STATE)['knobs'])
    # Once running and enabled, the next apply leaves them be.
    with engine(host, systemd) as running:
        assert running.apply({}, units=('cgroup', contents), expect=expect).changed is False
    assert len(systemd.calls) == 3


# -- dirs= -------------------------------------------------------------------------------------------------------------
NESTED = {'cgroup.-.subtree_control.cpu': '+cpu', 'cgroup.aitune.subtree_control.cpu': '+cpu',
          'cgroup.aitune-latency.cpu.weight': 300, 'cgroup.aitune-latency.cpu.max': '50000 100000'}


def test_created_dirs_are_written_parents_first_and_removed_on_restore(make_host):
    host = make_host('6.12')
    cgroupfs = install_layout(host, 'v2_plain')
    original = host.snapshot(ignore=NOT_STATE)
    dirs = ('cgroup', [PARENT, LATENCY])

    with engine(host, check_mode=True) as checking:
        report = checking.apply(NESTED, dirs=dirs)
    assert report.dirs == {PARENT: 'created', LATENCY: 'created'}
    assert report.knobs['cgroup.aitune-latency.cpu.weight']['value'] == '300'
    assert host.snapshot(ignore=NOT_STATE) == original and host.kernel.writes == []

    with engine(host) as running:
        report = running.apply(NESTED, dirs=dirs)
    assert report.by_state()['applied'] == sorted(NESTED)
    # Name order would write the child's files before its parent enables their controller: depth order holds.
    assert host.kernel.writes == [(V2 + '/cgroup.subtree_control', '+cpu'), (PARENT + '/cgroup.subtree_control', '+cpu'),
                                  (LATENCY + '/cpu.max', '50000 100000'), (LATENCY + '/cpu.weight', '300')]
    recorded = stored(host, BASELINE)
    assert recorded['dirs'][PARENT]['subsystem'] == 'cgroup' and LATENCY in recorded['dirs']
    assert recorded['knobs']['cgroup.-.subtree_control.cpu']['value'] == '-cpu'
    assert recorded['knobs']['cgroup.aitune-latency.cpu.weight']['value'] is None

    with engine(host) as running:
        assert running.apply(NESTED, dirs=dirs).changed is False

    # A task put in the slice goes to the root, where it ran before: the created parent may hold none under v2.
    cgroupfs.write(LATENCY + '/cgroup.procs', '311')
    with engine(host, check_mode=True) as checking:
        assert checking.restore('cgroup').dirs == {LATENCY: 'removed', PARENT: 'removed'}
    assert host.exists(LATENCY)
    with engine(host) as running:
        report = running.restore('cgroup')
    assert report.dirs == {LATENCY: 'removed', PARENT: 'removed', STATE_DIR: 'removed'}
    assert report.knobs['cgroup.-.subtree_control.cpu']['state'] == 'applied'
    assert host.snapshot(ignore=NOT_STATE) == original
    assert stored(host, BASELINE) is None


def test_a_file_the_new_cgroup_lacks_is_unsupported_not_a_crash(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    desired = dict(NESTED, **{'cgroup.aitune-latency.cpu.uclamp.min': 20})
    with engine(host) as running:
        report = running.apply(desired, dirs=('cgroup', [PARENT, LATENCY]))
    entry = report.knobs['cgroup.aitune-latency.cpu.uclamp.min']
    assert entry['state'] == 'unsupported' and 'did not appear' in entry['reason']
    assert host.value(LATENCY + '/cpu.weight') == '300'
    assert 'cgroup.aitune-latency.cpu.uclamp.min' not in stored(host, STATE)['knobs']


def test_a_dir_that_cannot_go_is_kept_and_restore_can_be_run_again(make_host):
    host = make_host('6.12')
    install_layout(host, 'v2_plain')
    original = host.snapshot(ignore=NOT_STATE)
    with engine(host) as running:
        running.apply(NESTED, dirs=('cgroup', [PARENT, LATENCY]))
    # Someone else made a cgroup inside ours.
    os.mkdir(host.path(LATENCY + '/theirs'))
    with engine(host) as running:
        report = running.restore('cgroup')
    assert report.dirs[LATENCY].startswith('kept:') and report.dirs[PARENT].startswith('kept:')
    assert report.knobs['cgroup.-.subtree_control.cpu']['state'] == 'not_permitted'
    recorded = stored(host, BASELINE)
    assert set(recorded['dirs']) == {PARENT, LATENCY} and 'cgroup.-.subtree_control.cpu' in recorded['knobs']

    os.rmdir(host.path(LATENCY + '/theirs'))
    with engine(host) as running:
        running.restore('cgroup')
    assert host.snapshot(ignore=NOT_STATE) == original


def test_a_created_dir_may_be_at_any_candidate_location(make_host):
    # The v1 cpu controller is at /sys/fs/cgroup/cpu here, the knob's third candidate (after cpu,cpuacct).
    host = make_host('6.18')
    install_layout(host, 'hybrid_dev')
    original = host.snapshot(ignore=NOT_STATE)
    parent = '/sys/fs/cgroup/cpu/aitune.slice'
    with engine(host) as running:
        report = running.apply({'cgroup.aitune.cpu.shares': 2048}, dirs=('cgroup', [parent]))
    assert report.knobs['cgroup.aitune.cpu.shares']['path'] == parent + '/cpu.shares'
    assert host.value(parent + '/cpu.shares') == '2048'
    with engine(host) as running:
        running.restore('cgroup')
    assert host.snapshot(ignore=NOT_STATE) == original


def test_restore_forgets_a_value_whose_cgroup_is_gone(make_host):
    host = make_host('6.12')
    systemd = FakeSystemd(host, install_layout(host, 'v2_systemd'))
    units = ('cgroup', {'aitune.slice': '[Slice]\n', 'aitune-latency.slice': SLICE_UNIT % 300})
    with engine(host, systemd) as running:
        running.apply({}, units=units)
        running.apply({'cgroup.aitune-latency.cpu.uclamp.min': 20})
    assert host.value(LATENCY + '/cpu.uclamp.min') == '20.00'
    # The slice stopped (or the host rebooted): its cgroup, and the value in it, are gone.
    systemd.stop('aitune-latency.slice')
    with engine(host, systemd) as running:
        report = running.restore('cgroup')
    entry = report.knobs['cgroup.aitune-latency.cpu.uclamp.min']
    assert entry['state'] == 'applied' and 'cgroup is gone' in entry['reason']
    assert stored(host, BASELINE) is None


def test_restore_after_a_reboot_clears_the_record_of_vanished_dirs(make_host):
    host = make_host('6.12')
    cgroupfs = install_layout(host, 'v2_plain')
    original = host.snapshot(ignore=NOT_STATE)
    with engine(host) as running:
        running.apply(NESTED, dirs=('cgroup', [PARENT, LATENCY]))
    # A reboot: the cgroups are gone and the root has its controllers back as the kernel starts it.
    cgroupfs.remove_tree(PARENT)
    cgroupfs.write(V2 + '/cgroup.subtree_control', '-cpu')
    with engine(host) as running:
        report = running.restore('cgroup')
    assert report.dirs == {LATENCY: 'already gone', PARENT: 'already gone', STATE_DIR: 'removed'}
    assert stored(host, BASELINE) is None
    assert host.snapshot(ignore=NOT_STATE) == original
