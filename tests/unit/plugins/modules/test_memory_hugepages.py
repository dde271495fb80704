# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils import _hugepages
from ansible_collections.aitune.kernel.plugins.modules import hugepages, memory, profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.fakesystemd import RecordingSystemctl, use_systemd
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

NR_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'
NR_1G = '/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages'
NODE1_2M = '/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages'
THP = '/sys/kernel/mm/transparent_hugepage/enabled'
NOT_STATE = ('/var/lib/aitune',)


def test_memory_thp_and_dirty_bytes_round_trip(make_host):
    host = make_host('6.1')
    original = host.snapshot(ignore=NOT_STATE)
    args = {'root': host.root, 'thp_enabled': 'never', 'dirty_bytes': 268435456, 'swappiness': 10}
    code, result = run_module(memory, args)
    assert code == 0, result
    assert result['applied'] == ['thp.enabled', 'vm.dirty_bytes', 'vm.swappiness']
    assert host.read(THP) == 'always madvise [never]\n'
    assert host.value('/proc/sys/vm/dirty_ratio') == '0'
    assert run_module(memory, args)[1]['changed'] is False
    code, result = run_module(restore, {'root': host.root, 'scope': 'memory'})
    assert code == 0 and result['changed'] is True
    assert host.snapshot(ignore=NOT_STATE) == original


@pytest.mark.parametrize('args, words', [
    ({'thp_enabled': 'sometimes'}, ['thp.enabled', 'not offered']),
    ({'dirty_ratio': 10, 'dirty_bytes': 268435456}, ['mutually exclusive']),
    ({'swappiness': 500}, ['out of range']),
])
def test_memory_bad_input_writes_nothing(make_host, args, words):
    host = make_host('6.12')
    before = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(memory, dict(args, root=host.root))
    assert code == 1
    for word in words:
        assert word in result['msg']
    assert host.snapshot(ignore=NOT_STATE) == before


def test_hugepages_runtime_pool_and_restore(make_host):
    host = make_host('6.12')
    original = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 512}]})
    assert code == 0, result
    assert result['applied'] == ['hugepages.2M'] and result['shortfall'] == {}
    assert host.value(NR_2M) == '512'
    assert 'w %s - - - - 512' % NR_2M in host.read('/etc/tmpfiles.d/aitune.conf')
    assert run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 512}]})[1]['changed'] is False
    run_module(restore, {'root': host.root, 'scope': 'hugepages'})
    assert host.snapshot(ignore=NOT_STATE) == original


def test_hugepages_per_node_pool(make_host):
    host = make_host('6.12', nodes=2)
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 64, 'node': 1}]})
    assert code == 0, result
    assert result['applied'] == ['hugepages.2M.node1']
    assert host.value(NODE1_2M) == '64'
    assert host.value(NR_2M) == '64'


def test_hugepages_missing_node_is_unsupported(make_host):
    host = make_host('6.12', nodes=2)
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 64, 'node': 3}]})
    assert code == 0
    assert 'node 3' in result['unsupported']['hugepages.2M.node3']


def test_hugepages_shortfall_is_not_permitted(make_host):
    host = make_host('6.12')
    host.kernel.hugepage_capacity['hugepages-1048576kB'] = 3
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '1G', 'count': 4}]})
    assert code == 0, result
    assert result['shortfall'] == {'hugepages.1G': 1}
    assert 'hugepages.1G' in result['not_permitted']
    assert host.value(NR_1G) == '3'


@pytest.mark.parametrize('args, words', [
    # MemTotal is 16386340 kB: 50% is 8001 MiB, 4001 2M pages are 8002 MiB.
    ({'pools': [{'size': '2M', 'count': 4001}]}, ['cap', '50%']),
    ({'pools': [{'size': '1G', 'count': 8}]}, ['cap']),
    ({'pools': [{'size': '2M', 'count': 1000}], 'max_percent': 10}, ['cap', '10%']),
    ({'pools': [{'size': '2M', 'count': 10}], 'max_percent': 95}, ['max_percent']),
    ({'pools': [{'size': '2M', 'count': -1}]}, ['negative']),
    ({'pools': [{'size': '2M', 'count': 1}, {'size': '2M', 'count': 2, 'node': 0}]}, ['more than once']),
    ({'pools': [{'size': '2M', 'count': 1, 'node': 0}], 'at_boot': True}, ['at boot']),
    ({'pools': [{'size': '4M', 'count': 1}]}, ['size']),
])
def test_hugepages_refusals_write_nothing(make_host, args, words):
    host = make_host('6.12', nodes=2)
    before = host.snapshot()
    code, result = run_module(hugepages, dict(args, root=host.root))
    assert code == 1, result
    for word in words:
        assert word in result['msg']
    assert host.snapshot() == before


def test_hugepages_just_under_the_cap_is_allowed(make_host):
    host = make_host('6.12')
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 4000}]},
                              check_mode=True)
    assert code == 0, result
    assert result['changed'] is True


def test_hugepages_at_boot_writes_the_grub_drop_in(make_host, monkeypatch):
    host = make_host('6.12')
    ran = []
    # The host's bootloader tools, not the code under test: update-grub exists and succeeds.
    monkeypatch.setattr(AnsibleModule, 'get_bin_path',
                        lambda self, name, *args, **kwargs: '/usr/sbin/update-grub' if name == 'update-grub' else None)
    monkeypatch.setattr(AnsibleModule, 'run_command', lambda self, argv, **kwargs: ran.append(argv) or (0, '', ''))
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '1G', 'count': 4}], 'at_boot': True})
    assert code == 0, result
    assert result['boot_params'] == ['hugepagesz=1G', 'hugepages=4']
    assert result['reboot_required'] is True
    assert 'hugepagesz=1G hugepages=4' in host.read('/etc/default/grub.d/90-aitune.cfg')
    assert ran == [['/usr/sbin/update-grub']]
    code, result = run_module(restore, {'root': host.root})
    assert code == 0 and result['changed'] is True
    assert not host.exists('/etc/default/grub.d/90-aitune.cfg')
    assert result['reboot_required'] is False


def test_tuning_facts_reads_only(make_host):
    host = make_host('6.12', nodes=2)
    run_module(memory, {'root': host.root, 'swappiness': 10})
    host.write('/proc/sys/vm/swappiness', '30\n')
    before = host.snapshot()
    code, result = run_module(tuning_facts, {'root': host.root})
    assert code == 0, result
    assert host.snapshot() == before
    facts = result['ansible_facts']['aitune_tuning']
    assert facts['kernel']['sched_generation'] == 'eevdf'
    assert facts['knobs']['sched.base_slice_ns']['path'] == '/sys/kernel/debug/sched/base_slice_ns'
    assert facts['knobs']['sched.wakeup_granularity_ns']['state'] == 'unsupported'
    assert facts['numa_nodes'] == [0, 1]
    assert facts['drift'] == {'vm.swappiness': {'desired': '10', 'live': '30'}}
    assert facts['baseline']['present'] is True


def test_hugetlbfs_mount_unit_is_written_started_and_removed(make_host):
    host = make_host('6.12')
    original = host.snapshot(ignore=NOT_STATE)
    unit, content = _hugepages.mount_unit({'path': '/dev/hugepages1G', 'pagesize': '1G', 'mode': '1770'})
    assert unit == 'dev-hugepages1G.mount'
    assert 'Where=/dev/hugepages1G' in content and 'Options=pagesize=1G,mode=1770' in content
    systemctl = RecordingSystemctl(host)
    with Engine(root=host.root, systemctl=systemctl) as engine:
        report = engine.apply({}, units=('hugepages', {unit: content}))
    assert report.changed and host.read('/etc/systemd/system/' + unit) == content
    # The unit file exists before systemd is told to start it.
    assert systemctl.calls == [('daemon-reload',), ('start', unit, True)]
    with Engine(root=host.root, systemctl=systemctl) as engine:
        assert engine.apply({}, units=('hugepages', {unit: content})).changed is False
        engine.restore('hugepages')
    # Stopped while its file still exists, then the file goes and systemd forgets it.
    assert systemctl.calls[2:] == [('stop', unit, True), ('daemon-reload',)]
    assert host.snapshot(ignore=NOT_STATE) == original


def test_hugetlbfs_mount_without_systemd_is_unsupported(make_host):
    host = make_host('6.12')
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 8}],
                                          'mount': {'path': '/dev/hugepages2M'}})
    assert code == 0, result
    assert result['mount']['state'] == 'unsupported' and 'systemd' in result['mount']['reason']
    assert not host.exists('/etc/systemd/system/dev-hugepages2M.mount')


@pytest.mark.parametrize('path', ['/dev/huge-pages', '/dev/../etc/hp', 'dev/hugepages', '/dev/huge pages'])
def test_hugetlbfs_mount_path_must_be_plain(make_host, path):
    host = make_host('6.12')
    before = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 8}],
                                          'mount': {'path': path}})
    assert code == 1 and 'mount path' in result['msg']
    assert host.snapshot(ignore=NOT_STATE) == before


# -- where and how a hugetlbfs may be mounted --------------------------------------------------------------------------
@pytest.mark.parametrize('mount, words', [
    ({'path': '/etc', 'mode': '7777'}, ['/etc', 'hide']),
    ({'path': '/etc'}, ['/etc', 'hide /etc']),
    ({'path': '/proc'}, ['/proc', 'hide']),
    ({'path': '/var/lib/aitune'}, ['/var/lib/aitune', 'collection']),
    ({'path': '/var/lib'}, ['/var/lib', 'hide /var/lib/aitune']),
    ({'path': '/var'}, ['/var', 'hide']),
    ({'path': '/usr/share/huge'}, ['/usr/share/huge', 'only at']),
    ({'path': '/'}, ['mount path']),
    ({'path': '/sys'}, ['/sys', 'hide']),
    ({'path': '/dev'}, ['/dev', 'hide']),
    ({'path': '/dev/shm'}, ['/dev/shm', 'only at', '/dev/hugepages']),
    ({'path': '/run'}, ['/run', 'hide']),
    ({'path': '/run/systemd'}, ['/run/systemd', 'hide']),
    ({'path': '/run/systemd/huge'}, ['/run/systemd', 'system']),
    ({'path': '/mnt'}, ['/mnt', 'hide']),
    ({'path': '/srv'}, ['/srv', 'hide']),
    ({'path': '/boot/huge'}, ['/boot/huge', 'only at']),
    ({'path': '/home'}, ['/home', 'hide']),
    ({'path': '/root'}, ['/root', 'hide']),
    ({'path': '/tmp'}, ['/tmp', 'hide']),
    ({'path': '/mnt/huge', 'mode': '0777'}, ['0777', 'world-writable', 'sticky']),
    ({'path': '/mnt/huge', 'mode': '777'}, ['777', 'world-writable']),
    ({'path': '/mnt/huge', 'mode': '4770'}, ['4770', 'setuid']),
    ({'path': '/mnt/huge', 'mode': '2770'}, ['2770', 'setgid']),
    ({'path': '/mnt/huge', 'mode': '7777'}, ['7777', 'setuid and setgid']),
    ({'path': '/mnt/huge', 'mode': 'rwx'}, ['rwx', 'not an octal mode']),
])
def test_hugetlbfs_mount_refusals_write_nothing(make_host, monkeypatch, mount, words):
    # systemd as PID 1, so the mount unit would be written if the refusal came late.
    host = make_host('6.12')
    use_systemd(monkeypatch, RecordingSystemctl(host))
    before = host.snapshot()
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 8}], 'mount': mount})
    assert code == 1, result
    for word in words:
        assert word in result['msg']
    assert host.snapshot() == before
    assert not host.exists('/etc/systemd/system') or not [
        name for name in os.listdir(host.path('/etc/systemd/system')) if name.endswith('.mount')]


@pytest.mark.parametrize('path, mode, unit', [
    ('/dev/hugepages', '1770', 'dev-hugepages.mount'),
    ('/dev/hugepages1G', '1770', 'dev-hugepages1G.mount'),
    ('/dev/hugepages/app', '0770', 'dev-hugepages-app.mount'),
    ('/mnt/huge', '1777', 'mnt-huge.mount'),
    ('/run/hugepages', '0750', 'run-hugepages.mount'),
    ('/srv/huge/vllm', '1770', 'srv-huge-vllm.mount'),
])
def test_hugetlbfs_mount_allowed_places_and_modes(path, mode, unit):
    name, content = _hugepages.mount_unit({'path': path, 'pagesize': '2M', 'mode': mode})
    assert name == unit and 'Where=%s\n' % path in content and 'mode=%s\n' % mode in content


def test_hugetlbfs_mount_refusal_in_a_profile_comes_before_any_subsystem_writes(make_host, monkeypatch):
    host = make_host('6.12')
    use_systemd(monkeypatch, RecordingSystemctl(host))
    before = host.snapshot()
    code, result = run_module(profile, {'root': host.root, 'subsystems': {
        'sched': {'autogroup': False},
        'hugepages': {'pools': [{'size': '2M', 'count': 8}], 'mount': {'path': '/etc', 'mode': '7777'}}}})
    assert code == 1, result
    assert 'hugepages: hugepages: mount path /etc is refused' in result['msg']
    assert host.snapshot() == before


def test_a_huge_refused_value_is_shown_cut(make_host):
    host = make_host('6.12')
    huge = 'x' * (1 << 20)
    code, result = run_module(hugepages, {'root': host.root, 'pools': [{'size': '2M', 'count': 8}],
                                          'mount': {'path': 'mnt/' + huge}})
    assert code == 1
    assert len(result['msg']) < 1000 and '(1048580 characters)' in result['msg'], result['msg'][:2000]
