# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""IRQs known by identity: IRQ numbers move across a reboot (a driver built as a module loads in another order), and
verify, restore and drift follow the IRQ's actions to its new number, never write to whatever IRQ has the old one,
and say so where the identity is gone or names several IRQs. Each reboot here rebuilds the fake tree's IRQs from a
changed table (irqtree.reboot); the collection's state under /var/lib/aitune stays, as it does on a real host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import copy
import errno
import json
import os
import time

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    INVALID, IO_ERROR, NOT_PERMITTED, FsError, HostFS)
from ansible_collections.aitune.kernel.plugins.module_utils._knobs_irq import refusal_reason
from ansible_collections.aitune.kernel.plugins.modules import irq as irq_module, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host, knob_names, load_spec, reboot
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

STATE_DIR = '/var/lib/aitune'
BASELINE = STATE_DIR + '/baseline.json'
STATE = STATE_DIR + '/state.json'
NVME = 'irq.nvme0q0.affinity'
MLX5 = 'irq.mlx5_comp0@pci:0000:3b:00.2.affinity'
REFUSALS = load_cases('irq_refusals.yml')


def affinity(host, irq):
    return host.value('/proc/irq/%d/smp_affinity_list' % irq)


def steer(host, devices):
    return run_module(irq_module, {'root': host.root, 'devices': devices})


def undo(host, check_mode=False):
    return run_module(restore, {'root': host.root, 'scope': 'irq'}, check_mode=check_mode)


def drift(host):
    code, facts = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['drift']})
    assert code == 0, facts
    return facts['ansible_facts']['aitune_tuning']['drift']


def booted(spec, numbers=None, drop=(), add=(), **changes):
    """``spec`` as the next boot gives it: ``numbers`` moves IRQs ({old: new}), ``drop`` removes the IRQs of those
    action names (a device gone), ``add`` brings rows in, ``changes`` ({irq: {field: value}}, by the new number) alter
    rows. Every IRQ starts at the affinity its row gives, as the kernel's default."""
    spec = copy.deepcopy(spec)
    rows = []
    for row in spec['irqs']:
        if set(row['names']) & set(drop):
            continue
        row['irq'] = (numbers or {}).get(row['irq'], row['irq'])
        rows.append(row)
    rows.extend(add)
    for row in rows:
        row.update(changes.get('irq%d' % row['irq'], {}))
    spec['irqs'] = sorted(rows, key=lambda row: row['irq'])
    return spec


def writes_to(host, *irqs):
    return [(path, value) for path, value in host.kernel.writes
            if any(path.startswith('/proc/irq/%d/' % irq) for irq in irqs)]


# -- naming ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('tree', ['irq_numa2', 'irq_small', 'irq_workstation'])
def test_every_irq_is_named_after_its_actions_and_qualified_only_where_needed(make_host, tree):
    host = irq_host(make_host, name=tree)
    spec = load_spec(tree)
    code, result = steer(host, ['*'])
    assert code == 0, result
    expected = knob_names(spec)
    for irq, entry in result['irqs'].items():
        assert entry['knob'] == expected.get(int(irq), 'irq.%s.affinity' % irq), irq
        if int(irq) not in expected:
            assert entry['state'] == 'unsupported' and 'cannot name a setting' in result['unsupported'][entry['knob']]
    named = {entry['knob'] for entry in result['irqs'].values() if entry['state'] != 'unsupported'}
    # Each knob names one IRQ, and no knob carries an IRQ number.
    assert len(named) == len([e for e in result['irqs'].values() if e['state'] != 'unsupported'])
    assert not any(name.split('.')[1].isdigit() for name in named)


def test_twins_are_told_apart_by_device_then_by_hardware_irq(make_host):
    host = irq_host(make_host, name='irq_workstation')
    code, result = steer(host, ['xhci_hcd', 'i8042', 'ahci*', 'PCIe*', 'nvme*'])
    assert code == 0, result
    assert {irq: result['irqs'][irq]['knob'] for irq in ('1', '12', '121', '130', '131', '132', '133')} == {
        '1': 'irq.i8042~IO-APIC#1.affinity', '12': 'irq.i8042~IO-APIC#12.affinity',
        '121': 'irq.ahci[0000:00:17.0].affinity',
        '130': 'irq.xhci_hcd~0000:00:14.0.affinity', '131': 'irq.xhci_hcd~0000:00:0d.0.affinity',
        '132': 'irq.xhci_hcd~0000:05:00.0#0.affinity', '133': 'irq.xhci_hcd~0000:05:00.0#1.affinity'}
    # An action name with a blank names no knob: that IRQ is unsupported, with the name, and left alone.
    reason = result['unsupported']['irq.120.affinity']
    assert "'PCIe PME'" in reason and 'cannot name a setting' in reason
    assert affinity(host, 120) == '0-3' and affinity(host, 130) == '0'
    assert result['applied'] == sorted(entry['knob'] for irq, entry in result['irqs'].items() if irq != '120')
    assert steer(host, ['xhci_hcd', 'i8042', 'ahci*', 'PCIe*', 'nvme*'])[1]['changed'] is False

    # The twins on one device swap numbers at the next boot: each knob follows its vector.
    reboot(host, booted(host.irq_spec, numbers={132: 133, 133: 132}))
    host.write('/proc/irq/133/smp_affinity_list', '0\n')
    host.write('/proc/irq/132/smp_affinity_list', '1-3\n')
    code, undone = undo(host)
    assert code == 0 and undone['unsupported'] == {}, undone
    assert affinity(host, 133) == '0-3' and affinity(host, 132) == '0-3'
    assert not host.exists(BASELINE)


# -- renumbered between apply and verify, apply and restore ----------------------------------------------------------
def test_renumbered_irqs_are_verified_where_they_are_now(make_host):
    host = irq_host(make_host)
    code, result = steer(host, ['nvme0q0'])
    assert code == 0 and result['applied'] == [NVME], result
    assert drift(host) == {}
    # nvme0q0 was IRQ 24 and virtio0-config 27; the next boot swaps them. What re-applies by name at boot (the unit,
    # irqbalance's ban) puts nvme0q0 on the housekeeping CPUs at its new number; IRQ 24 is another device's now.
    reboot(host, booted(host.irq_spec, numbers={24: 27, 27: 24}))
    host.write('/proc/irq/27/smp_affinity_list', '0,4\n')
    assert affinity(host, 24) == '0-7'
    assert drift(host) == {}
    # Real drift at the new number is still seen, under the knob's name.
    host.write('/proc/irq/27/smp_affinity_list', '0-7\n')
    assert drift(host) == {NVME: {'desired': '0,4', 'live': '0-7'}}


def test_restore_puts_the_original_back_on_the_irq_that_moved_and_leaves_the_old_number_alone(make_host):
    host = irq_host(make_host)
    original_24 = affinity(host, 24)
    code, result = steer(host, ['nvme0q0', 'mlx5_comp0*'])
    assert code == 0 and result['applied'] == [MLX5, NVME], result
    reboot(host, booted(host.irq_spec, numbers={24: 27, 27: 24, 31: 29, 29: 31}))
    for irq in (27, 29):
        host.write('/proc/irq/%d/smp_affinity_list' % irq, '0,4\n')
    # Other devices' IRQs now hold the old numbers, with affinities of their own.
    host.write('/proc/irq/24/smp_affinity_list', '1-2\n')
    host.write('/proc/irq/31/smp_affinity_list', '5\n')
    host.kernel.writes[:] = []

    code, preview = undo(host, check_mode=True)
    assert code == 0 and preview['knobs'][NVME]['path'] == '/proc/irq/27/smp_affinity_list', preview
    assert host.kernel.writes == []
    code, undone = undo(host)
    assert code == 0, undone
    assert sorted(undone['applied']) == [MLX5, NVME] and undone['unsupported'] == {} and undone['not_permitted'] == {}
    assert affinity(host, 27) == original_24 and affinity(host, 29) == '0-7'
    assert affinity(host, 24) == '1-2' and affinity(host, 31) == '5'
    assert writes_to(host, 24, 31) == []
    assert not host.exists(STATE_DIR)


def test_the_facts_show_what_changed_where_the_irq_is_now(make_host):
    host = irq_host(make_host)
    code, result = steer(host, ['nvme0q0', 'mlx5_comp0*'])
    assert code == 0, result
    reboot(host, booted(host.irq_spec, numbers={24: 27, 27: 24}, drop=['mlx5_comp0@pci:0000:3b:00.2']))
    host.write('/proc/irq/27/smp_affinity_list', '0,4\n')
    code, facts = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['changes']})
    assert code == 0, facts
    knobs = facts['ansible_facts']['aitune_tuning']['changes']['knobs']
    assert knobs[NVME] == {'subsystem': 'irq', 'original': '0-7', 'live': '0,4'}
    assert knobs[MLX5]['live'].startswith('unknown: IRQ mlx5_comp0@pci:0000:3b:00.2 is gone')


def test_an_upgrade_within_the_boot_restores_the_oldest_original(make_host):
    """The previous version steered IRQ 24 (nvme0q0) onto 0,4; this one, in the same boot, steers nvme0q0 onto 0 and
    records 0,4 as its original under the new name. The numbered record is older: it is what IRQ 24 ends with."""
    host = irq_host(make_host)
    host.write('/proc/irq/24/smp_affinity_list', '0,4\n')
    plant_numbered_state(host, calendar.timegm(time.strptime(RECORDED, '%Y-%m-%dT%H:%M:%SZ')) - 3600)
    code, result = run_module(irq_module, {'root': host.root, 'devices': ['nvme0q0'], 'housekeeping_cpus': '0'})
    assert code == 0 and result['applied'] == [NVME] and affinity(host, 24) == '0', result
    code, undone = undo(host)
    assert code == 0 and sorted(undone['applied']) == ['irq.24.affinity', NVME], undone
    assert affinity(host, 24) == '0-7' and not host.exists(STATE_DIR)
    assert [value for path, value in writes_to(host, 24)][-2:] == ['0,4', '0-7']


def test_a_numbered_irq_freed_in_this_boot_is_gone_for_good(make_host):
    host = irq_host(make_host)
    host.write('/proc/irq/24/smp_affinity_list', '0,4\n')
    plant_numbered_state(host, calendar.timegm(time.strptime(RECORDED, '%Y-%m-%dT%H:%M:%SZ')) - 3600)
    # The NVMe controller is unplugged: its IRQs are freed, and the number may go to the next device that asks.
    reboot(host, booted(host.irq_spec, drop=['nvme0q0']))
    code, undone = undo(host)
    assert code == 0, undone
    assert undone['unsupported']['irq.24.affinity'].startswith('cannot restore: IRQ 24 is gone')
    assert not host.exists(STATE_DIR)


def test_an_identity_that_is_gone_is_reported_and_nothing_is_written_for_it(make_host):
    host = irq_host(make_host)
    code, result = steer(host, ['nvme0q0', 'mlx5_comp0*'])
    assert code == 0, result
    # The ConnectX card is gone at the next boot, and virtio0-output.0 now has its old number.
    reboot(host, booted(host.irq_spec, numbers={29: 31}, drop=['mlx5_async0@pci:0000:3b:00.2',
                                                               'mlx5_comp0@pci:0000:3b:00.2']))
    host.write('/proc/irq/24/smp_affinity_list', '0,4\n')
    gone = drift(host)[MLX5]
    assert gone['live'] is None and 'mlx5_comp0@pci:0000:3b:00.2' in gone['reason'] and 'is gone' in gone['reason']
    host.kernel.writes[:] = []

    code, undone = undo(host)
    assert code == 0, undone
    assert undone['applied'] == [NVME] and affinity(host, 24) == '0-7'
    reason = undone['unsupported'][MLX5]
    assert 'IRQ mlx5_comp0@pci:0000:3b:00.2 is gone' in reason and 'nothing was written' in reason
    assert writes_to(host, 31) == [] and affinity(host, 31) == '0-7'
    # Nothing is left that a later restore could put back: the baseline went with the rest.
    assert not host.exists(STATE_DIR)


def test_an_identity_that_names_several_irqs_now_is_refused(make_host):
    host = irq_host(make_host)
    code, result = steer(host, ['i8042'])
    assert code == 0 and result['applied'] == ['irq.i8042.affinity'], result
    # The next boot brings the aux port of the same controller, under the same action name.
    aux = {'irq': 12, 'chip': 'IO-APIC', 'hwirq': '12-edge', 'names': ['i8042'], 'affinity': '0-7', 'effective': '3'}
    reboot(host, booted(host.irq_spec, add=[aux]))
    host.write('/proc/irq/1/smp_affinity_list', '0,4\n')
    ambiguous = drift(host)['irq.i8042.affinity']
    assert 'ambiguous' in ambiguous['reason'] and 'IRQs 1, 12' in ambiguous['reason']
    host.kernel.writes[:] = []

    code, undone = undo(host)
    assert code == 0, undone
    assert 'IRQ i8042 is ambiguous: IRQs 1, 12' in undone['unsupported']['irq.i8042.affinity']
    assert writes_to(host, 1, 12) == [] and affinity(host, 1) == '0,4'
    assert not host.exists(STATE_DIR)
    # A new run names the twins by their pins, and those names restore.
    code, again = steer(host, ['i8042'])
    assert code == 0 and again['applied'] == ['irq.i8042~IO-APIC#1.affinity', 'irq.i8042~IO-APIC#12.affinity']
    code, undone = undo(host)
    assert code == 0 and affinity(host, 1) == '0,4' and affinity(host, 12) == '0-7', undone


@pytest.mark.parametrize('managed', ['readonly', 'eio'])
@pytest.mark.parametrize('debugfs', [False, True], ids=['no-debugfs', 'debugfs'])
def test_an_irq_the_kernel_manages_now_is_reported_and_the_rest_restores(make_host, managed, debugfs):
    host = irq_host(make_host, managed=managed)
    code, result = steer(host, ['nvme0q0', 'mlx5_comp0*'])
    assert code == 0 and result['applied'] == [MLX5, NVME], result
    # A newer driver asks for managed vectors for its admin queue too: the kernel spreads it and refuses moves.
    reboot(host, booted(host.irq_spec, irq24={'managed': True, 'affinity': '0-3'}), managed=managed)
    if debugfs:
        host.write('/sys/kernel/debug/irq/irqs/24', 'handler:  handle_edge_irq\ndevice:   0000:00:04.0\n'
                   'dstate:   0x31600200\n            IRQD_ACTIVATED\n            IRQD_AFFINITY_MANAGED\nnode:     0\n')
    host.write('/proc/irq/31/smp_affinity_list', '0,4\n')

    if managed == 'readonly':
        # The preview says so too: a file the kernel made read-only is not shown as changing.
        code, preview = undo(host, check_mode=True)
        assert code == 0 and preview['knobs'][NVME]['state'] == 'not_permitted', preview
        assert preview['knobs'][NVME]['changed'] is False and preview['knobs'][MLX5]['changed'] is True
    code, undone = undo(host)
    assert code == 0, undone
    reason = undone['not_permitted'][NVME]
    assert reason.startswith('cannot restore IRQ 24: kernel-managed IRQ') and 'isolcpus=managed_irq' in reason
    assert ('most likely' in reason) is not debugfs
    assert undone['applied'] == [MLX5] and affinity(host, 31) == '0-7' and affinity(host, 24) == '0-3'
    # The kernel's refusal is final: no baseline is left behind for it.
    assert not host.exists(STATE_DIR)


# -- state an earlier version wrote: IRQs by number ------------------------------------------------------------------
RECORDED = '2026-12-01T10:00:00Z'


def plant_numbered_state(host, booted_at):
    """The baseline and state the previous version left after steering IRQ 24 (nvme0q0) onto CPUs 0,4, and the boot
    time of the running kernel in /proc/stat."""
    path = '/proc/irq/24/smp_affinity_list'
    baseline = {'format': 1, 'created': RECORDED, 'files': {}, 'dirs': {},
                'knobs': {'irq.24.affinity': {'path': path, 'value': '0-7', 'recorded': RECORDED}}}
    state = {'format': 1, 'knobs': {'irq.24.affinity': {'subsystem': 'irq', 'path': path, 'value': '0,4',
                                                        'persist': None, 'applied_at': RECORDED}}}
    for target, document in ((BASELINE, baseline), (STATE, state)):
        host.write(target, json.dumps(document))
        os.chmod(host.path(target), 0o600)
    os.chmod(host.path(STATE_DIR), 0o700)
    host.write('/proc/stat', 'cpu  1 2 3 4 5 6 7 0 0 0\nctxt 123\nbtime %d\nprocesses 42\n' % booted_at)


def test_numbered_state_of_this_boot_still_restores(make_host):
    host = irq_host(make_host)
    host.write('/proc/irq/24/smp_affinity_list', '0,4\n')
    plant_numbered_state(host, calendar.timegm(time.strptime(RECORDED, '%Y-%m-%dT%H:%M:%SZ')) - 3600)
    assert drift(host) == {}
    code, undone = undo(host)
    assert code == 0 and undone['applied'] == ['irq.24.affinity'], undone
    assert affinity(host, 24) == '0-7' and not host.exists(STATE_DIR)


def test_numbered_state_of_an_earlier_boot_is_reported_not_written(make_host):
    host = irq_host(make_host)
    # Booted after the record: IRQ 24 is virtio0-config's now, at an affinity of its own.
    reboot(host, booted(host.irq_spec, numbers={24: 27, 27: 24}))
    host.write('/proc/irq/24/smp_affinity_list', '1-2\n')
    plant_numbered_state(host, calendar.timegm(time.strptime(RECORDED, '%Y-%m-%dT%H:%M:%SZ')) + 60)
    # The number says nothing about this boot's IRQ 24: no drift is claimed for it.
    assert drift(host) == {}
    host.kernel.writes[:] = []
    code, undone = undo(host)
    assert code == 0, undone
    reason = undone['unsupported']['irq.24.affinity']
    assert 'IRQ numbers change at boot' in reason and 'before this boot began' in reason
    assert writes_to(host, 24) == [] and affinity(host, 24) == '1-2'
    assert not host.exists(STATE_DIR)


# -- why a move is refused -------------------------------------------------------------------------------------------
ERRORS = {'EIO': (IO_ERROR, errno.EIO), 'EINVAL': (INVALID, errno.EINVAL), 'ENOSPC': (IO_ERROR, errno.ENOSPC),
          'read-only': None}


@pytest.mark.parametrize('case', REFUSALS, ids=[case['id'] for case in REFUSALS])
def test_each_kind_of_unmovable_irq_gets_its_own_reason(make_host, case):
    host = irq_host(make_host)
    if 'debugfs' in case:
        flags = ''.join('            %s\n' % flag for flag in case['debugfs'])
        host.write('/sys/kernel/debug/irq/irqs/%d' % case['irq'],
                   'handler:  handle_edge_irq\nstatus:   0x00000000\ndstate:   0x00000000\n%snode:     0\n' % flags)
    path = '/proc/irq/%d/smp_affinity_list' % case['irq']
    error = None
    if ERRORS[case['error']] is not None:
        kind, code = ERRORS[case['error']]
        error = FsError(kind, path, 'writing %r to %s: %s' % ('0', path, os.strerror(code)))
    reason = refusal_reason(HostFS(host.root), case['irq'], error)
    for word in case['says']:
        assert word in reason
    for word in case.get('never', []):
        assert word not in reason


def test_the_timer_on_irq_0_is_not_sent_to_isolcpus(make_host):
    host = irq_host(make_host, managed='eio')
    code, result = steer(host, ['timer', 'nvme0q1'])
    assert code == 0, result
    timer = result['not_permitted']['irq.timer.affinity']
    assert timer.startswith('the timer IRQ') and 'isolcpus' not in timer
    assert 'isolcpus=managed_irq' in result['not_permitted']['irq.nvme0q1.affinity']
    assert result['irqs']['0']['knob'] == 'irq.timer.affinity' and affinity(host, 0) == '0-7'


def test_a_not_permitted_write_that_is_not_a_refused_move_keeps_its_original(make_host):
    """Only the kernel's answer about the IRQ is final; EACCES on a file that is not an IRQ's affinity is not."""
    from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
    knob = lookup(NVME)
    reason, final = knob.refused(HostFS('/'), '/proc/irq/default_smp_affinity',
                                 FsError(NOT_PERMITTED, '/proc/irq/default_smp_affinity', 'denied'))
    assert final is False and 'denied' in reason
