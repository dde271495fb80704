# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type


import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._block import NO_UDEV, RULES_PATH
from ansible_collections.aitune.kernel.plugins.modules import block, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.blocktree import build_block_devices
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

NVME = '/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0'
SDA = '/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda'
VDA = '/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda'
NOT_STATE = ('/var/lib/aitune',)
RULES = [
    {'match': {'transport': 'nvme'}, 'scheduler': 'mq-deadline', 'read_ahead_kb': 4096, 'io_poll': True},
    {'match': {'rotational': True}, 'scheduler': 'none', 'nomerges': 2},
]

BAD_INPUT = load_cases('block_bad_input.yml')


@pytest.fixture
def host(make_host):
    fake = make_host('6.18')
    build_block_devices(fake)
    return fake


def test_check_mode_with_diff_changes_nothing(host):
    before = host.snapshot()
    code, result = run_module(block, {'root': host.root, 'devices': RULES}, check_mode=True, diff=True)
    assert code == 0, result
    assert result['changed'] is True
    assert host.snapshot() == before
    assert result['files'] == [RULES_PATH]
    assert result['knobs']['block.sda.elevator']['reason'] == "check mode: would change 'mq-deadline' to 'none'"
    headers = [d['before_header'] for d in result['diff']]
    assert headers == ['live kernel values', RULES_PATH + ' (absent)']
    assert 'block.nvme0n1.elevator: none\n' in result['diff'][0]['before']
    assert 'ATTR{queue/scheduler}="mq-deadline"' in result['diff'][1]['after']


def test_apply_read_back_idempotence_and_restore(host):
    original = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(block, {'root': host.root, 'devices': RULES})
    assert code == 0, result
    assert result['changed'] is True
    assert result['applied'] == ['block.nvme0n1.elevator', 'block.nvme0n1.read_ahead_kb', 'block.nvme0n2.elevator',
                                 'block.nvme0n2.read_ahead_kb', 'block.sda.elevator', 'block.sda.nomerges',
                                 'block.vda.elevator', 'block.vda.nomerges']
    assert sorted(result['not_permitted']) == ['block.nvme0n1.io_poll', 'block.nvme0n2.io_poll']
    assert result['devices']['nvme0n1'] == {'entries': [0], 'transport': 'nvme', 'model': 'Samsung SSD 980 PRO 1TB',
                                            'rotational': False, 'sysfs': NVME + '/nvme0n1'}
    assert result['devices']['vda']['entries'] == [1] and result['devices']['sda']['transport'] == 'scsi'
    assert result['skipped_devices'] == {}
    assert result['actions'] == ['udev is not running here: the rules act from the next boot']
    assert host.read(NVME + '/nvme0n2/queue/scheduler') == 'none [mq-deadline] kyber bfq\n'
    assert host.read(SDA + '/queue/scheduler') == 'mq-deadline [none]\n'
    assert host.value(VDA + '/queue/nomerges') == '2'
    rules = host.read(RULES_PATH)
    assert 'SUBSYSTEMS=="nvme|nvme-subsystem", ATTR{queue/scheduler}="mq-deadline", ATTR{queue/read_ahead_kb}="4096"' \
        in rules
    assert 'ATTR{queue/rotational}=="1", ATTR{queue/scheduler}="none", ATTR{queue/nomerges}="2"' in rules

    code, again = run_module(block, {'root': host.root, 'devices': RULES}, diff=True)
    assert code == 0 and again['changed'] is False and again['diff'] == [] and again['files'] == []

    facts = run_module(tuning_facts, {'root': host.root})[1]['ansible_facts']['aitune_tuning']
    assert facts['drift'] == {}

    code, done = run_module(restore, {'root': host.root, 'scope': 'block'})
    assert code == 0 and done['changed'] is True
    assert done['files'] == [RULES_PATH]
    assert sorted(done['applied']) == sorted(result['applied'])
    assert host.snapshot(ignore=NOT_STATE) == original
    code, again = run_module(restore, {'root': host.root})
    assert code == 0 and again['changed'] is False


def test_restore_all_takes_the_rules_file_too(host):
    original = host.snapshot(ignore=NOT_STATE)
    run_module(block, {'root': host.root, 'devices': [{'match': {'name': 'vda'}, 'rq_affinity': 2}]})
    assert host.exists(RULES_PATH)
    code, result = run_module(restore, {'root': host.root})
    assert code == 0 and result['applied'] == ['block.vda.rq_affinity']
    assert host.snapshot(ignore=NOT_STATE) == original


def test_persist_false_writes_live_values_only_and_removes_an_earlier_rules_file(host):
    args = {'root': host.root, 'devices': [{'match': {'name': 'sda'}, 'read_ahead_kb': 1024}]}
    code, result = run_module(block, dict(args, persist=False))
    assert code == 0 and result['files'] == [] and not host.exists(RULES_PATH)
    assert host.value(SDA + '/queue/read_ahead_kb') == '1024'
    run_module(block, args)
    assert host.exists(RULES_PATH)
    code, result = run_module(block, dict(args, persist=False))
    assert code == 0 and result['changed'] is True and result['files'] == [RULES_PATH]
    assert not host.exists(RULES_PATH)


def test_an_empty_list_drops_every_rule(host):
    run_module(block, {'root': host.root, 'devices': RULES})
    code, result = run_module(block, {'root': host.root, 'devices': []})
    assert code == 0 and result['files'] == [RULES_PATH] and not host.exists(RULES_PATH)
    assert result['knobs'] == {}
    # The live values stay as set; restore is what puts them back.
    assert host.value(VDA + '/queue/nomerges') == '2'


def test_exact_names_reach_virtual_devices(host):
    code, result = run_module(block, {'root': host.root, 'devices': [
        {'match': {'name': 'loop0'}, 'read_ahead_kb': 512}, {'match': {'name': 'dm-0'}, 'read_ahead_kb': 512}]})
    assert code == 0, result
    assert result['applied'] == ['block.dm-0.read_ahead_kb', 'block.loop0.read_ahead_kb']
    assert result['skipped_devices'] == {}
    assert host.value('/sys/devices/virtual/block/loop0/queue/read_ahead_kb') == '512'
    assert 'KERNEL=="loop0", ATTR{queue/read_ahead_kb}="512"' in host.read(RULES_PATH)


def test_strict_refuses_a_setting_the_kernel_would_ignore(host):
    before = host.snapshot()
    code, result = run_module(block, {'root': host.root, 'strict': True, 'devices': [
        {'match': {'transport': 'nvme'}, 'read_ahead_kb': 256, 'io_poll': True}]})
    assert code == 1
    assert 'strict mode, nothing was changed' in result['msg'] and 'block.nvme0n1.io_poll' in result['msg']
    assert host.snapshot() == before


def test_without_udev_the_settings_are_live_only(make_host):
    fake = make_host('6.18')
    build_block_devices(fake, udev=False)
    code, result = run_module(block, {'root': fake.root, 'devices': [{'match': {'name': 'vda'}, 'nomerges': 1}]})
    assert code == 0, result
    assert result['applied'] == ['block.vda.nomerges'] and result['files'] == []
    assert result['actions'] == [NO_UDEV]
    assert not fake.exists('/etc/udev')


def test_a_host_without_block_devices(make_host):
    fake = make_host('6.18')
    code, result = run_module(block, {'root': fake.root, 'devices': [{'match': {'name': 'sd*'}, 'nomerges': 1}]},
                              check_mode=True)
    assert code == 0, result
    assert result['devices'] == {} and result['knobs'] == {}


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_fails_clearly_and_writes_nothing(host, case):
    before = host.snapshot()
    code, result = run_module(block, {'root': host.root, 'devices': case['devices']})
    assert code == 1, result
    assert 'nothing was changed' in result['msg']
    for word in case['words']:
        assert word in result['msg']
    for word in case.get('absent') or []:
        assert word not in result['msg']
    assert host.snapshot() == before
    assert not host.kernel.writes


def test_unknown_transport_is_refused_by_the_argument_spec(host):
    code, result = run_module(block, {'root': host.root, 'devices': [
        {'match': {'transport': 'usb'}, 'nomerges': 1}]})
    assert code == 1 and 'transport' in result['msg']
