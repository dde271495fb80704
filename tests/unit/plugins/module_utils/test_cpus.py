# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._cpus import (
    CPU_SET_WORDS, CpuPartition, HousekeepingError, PartitionUnsupported, device_irq_actions, device_irqs,
    format_cpulist, format_cpumask, guard_boot_params, guard_reserved, host_cpulist, housekeeping_cpus,
    irq_serving_cpus, mask_width, numa_first_cpus, option_cpus, parse_cpulist, parse_cpumask, parse_interrupts)
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import ValidationError
from ansible_collections.aitune.kernel.tests.unit.irqtree import irq_host, kernel_mask, read_list
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases


LISTS = load_cases('cpus_lists.yml')
HOUSEKEEPING = load_cases('cpus_housekeeping.yml')
SHAPES = load_cases('cpu_shapes.yml')
INTERRUPTS = load_cases('irq_interrupts.yml')


def cpus(value):
    """A case's CPU set: a YAML list, or a CPU list string read by the fake kernel's own parser."""
    if isinstance(value, list):
        return set(value)
    return read_list(value) if value else set()


@pytest.mark.parametrize('case', LISTS['cpulists'], ids=[repr(c['text']) for c in LISTS['cpulists']])
def test_cpulist_parse_and_format(case):
    if 'error' in case:
        with pytest.raises(ValidationError) as caught:
            parse_cpulist(case['text'], what='the list')
        for word in case['error'] + ['the list']:
            assert word in str(caught.value)
        return
    parsed = parse_cpulist(case['text'])
    assert parsed == cpus(case['cpus'])
    assert format_cpulist(parsed) == case['canonical']
    # The canonical form reads back as the same set.
    assert parse_cpulist(case['canonical']) == parsed


@pytest.mark.parametrize('case', LISTS['masks'], ids=[repr(c['text']) for c in LISTS['masks']])
def test_cpumask_parse_and_format(case):
    if 'error' in case:
        with pytest.raises(ValidationError) as caught:
            parse_cpumask(case['text'])
        for word in case['error']:
            assert word in str(caught.value)
        return
    parsed = parse_cpumask(case['text'])
    assert parsed == cpus(case['cpus'])
    formatted = format_cpumask(parsed, case['width'])
    assert formatted == case['canonical']
    # The layout is the kernel's, as the fake kernel (written apart from _cpus) prints it.
    assert formatted == kernel_mask(parsed, case['width'])
    assert parse_cpumask(formatted) == parsed


@pytest.mark.parametrize('case', LISTS['widths'], ids=[c['text'].strip() for c in LISTS['widths']])
def test_mask_width_reproduces_the_layout(case):
    assert mask_width(case['text']) == case['width']
    text = case['text'].strip()
    assert format_cpumask(parse_cpumask(text), mask_width(text)) == text


@pytest.mark.parametrize('case', INTERRUPTS, ids=[c['id'] for c in INTERRUPTS])
def test_parse_interrupts(case):
    assert parse_interrupts(case['text']) == case['irqs']


def test_interrupts_of_the_fixture_parse_to_its_action_names(make_host):
    host = irq_host(make_host)
    fs = HostFS(host.root)
    expected = {row['irq']: row['names'] for row in host.irq_spec['irqs'] if row['names']}
    assert device_irq_actions(fs) == expected
    assert device_irqs(fs)[11] == 'uhci_hcd:usb1, virtio3'
    # Each action also has its directory, the names the boot unit matches against.
    for irq, names in expected.items():
        assert sorted(name for name in os.listdir(host.path('/proc/irq/%d' % irq))
                      if os.path.isdir(host.path('/proc/irq/%d/%s' % (irq, name)))) == sorted(names)


def _host_for(make_host, case):
    host = irq_host(make_host, overrides=case.get('files'))
    for path in case.get('remove') or []:
        os.remove(host.path(path))
    return host, HostFS(host.root)


@pytest.mark.parametrize('case', HOUSEKEEPING['housekeeping'], ids=[c['id'] for c in HOUSEKEEPING['housekeeping']])
def test_housekeeping_cpus(make_host, case):
    host, fs = _host_for(make_host, case)
    before = host.snapshot()
    if 'error' in case:
        with pytest.raises(ValidationError) as caught:
            housekeeping_cpus(fs, case['explicit'])
        for word in case['error']:
            assert word in str(caught.value)
    else:
        assert format_cpulist(housekeeping_cpus(fs, case.get('explicit'))) == case['expected']
        assert format_cpulist(numa_first_cpus(fs)) == case['numa_first']
    assert host.snapshot() == before


def test_irq_serving_cpus_skips_irqs_without_handler(make_host):
    # IRQ 32 has counts but no handler; it alone is delivered to CPU 4.
    host, fs = _host_for(make_host, {})
    assert 4 not in irq_serving_cpus(fs)
    host.write('/proc/irq/31/effective_affinity_list', '4\n')
    assert 4 in irq_serving_cpus(fs)


@pytest.mark.parametrize('case', HOUSEKEEPING['guard'], ids=[c['id'] for c in HOUSEKEEPING['guard']])
def test_guard_reserved(make_host, case):
    host, fs = _host_for(make_host, case)
    housekeeping = cpus(case['housekeeping']) if 'housekeeping' in case else None

    def call():
        return guard_reserved(fs, cpus(case['reserved']), 'pinning', housekeeping=housekeeping,
                              allow=case.get('allow', False))
    if case.get('ok'):
        assert call() is None
        return
    with pytest.raises(HousekeepingError) as caught:
        call()
    for word in case['refused'] + ['pinning']:
        assert word in str(caught.value)


@pytest.mark.parametrize('case', HOUSEKEEPING['boot_params'], ids=[c['id'] for c in HOUSEKEEPING['boot_params']])
def test_guard_boot_params(make_host, case):
    host, fs = _host_for(make_host, case)
    housekeeping = cpus(case['housekeeping']) if 'housekeeping' in case else None

    def call():
        return guard_boot_params(fs, case['params'], housekeeping=housekeeping, allow=case.get('allow', False))
    if 'reserved' in case:
        assert call() == cpus(case['reserved'])
        return
    expected_error = HousekeepingError if 'refused' in case else ValidationError
    with pytest.raises(expected_error) as caught:
        call()
    for word in case.get('refused') or case['error']:
        assert word in str(caught.value)


@pytest.mark.parametrize('text, words', [
    ('0-9999', ['CPU 9999 is beyond', "this host's CPUs 0-7 (8 CPUs)", 'CPU 8191, the highest CPU number']),
    ('0-8', ['CPU 8 not online', 'online: 0-7, 8 CPUs']),
    ('x' * (1 << 20), ['not a CPU list', '(1048576 characters)']),
])
def test_host_cpulist_names_this_hosts_cpus(make_host, text, words):
    host, fs = _host_for(make_host, {})
    with pytest.raises(ValidationError) as caught:
        host_cpulist(fs, text, 'pinning')
    for word in words + ['pinning']:
        assert word in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize('case', SHAPES, ids=[case['id'] for case in SHAPES])
def test_the_partition_of_every_shape(make_host, case):
    """Computed for every shape; where housekeeping takes every CPU, the reason names the shape, and each CPU word
    is refused with it rather than read as an empty list or as every CPU."""
    fs = HostFS(irq_host(make_host, name='irq_small', shape=case['nodes']).root)
    partition = CpuPartition(fs)
    expected = case['partition']
    assert partition.result() == dict(expected, state='unsupported' if expected['reason'] else 'supported')
    for word in CPU_SET_WORDS:
        if expected['reason']:
            with pytest.raises(PartitionUnsupported) as caught:
                option_cpus(fs, word, 'cpus')
            assert str(caught.value) == expected['reason']
        else:
            assert format_cpulist(option_cpus(fs, word, 'cpus')) == expected[word[1:-len('_cpus')]]
    # A CPU list is still a CPU list, checked against this host's CPUs.
    assert option_cpus(fs, '0', 'cpus') == {0}
