# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The preemption build in the kernel facts, the reasons a PREEMPT_RT kernel explains, and reasons that name every
place they looked without a stray version span."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import KernelInfo
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import Location
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.modules import profile, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases
from ansible_collections.aitune.kernel.tests.unit.fakehost import KERNELS, VARIANTS
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

CASES = load_cases('preemption.yml')
# The knobs whose kernel option depends on !PREEMPT_RT in 6.1, and the option each reason names.
RT_EXCLUDED = {'sched.numa_balancing': 'CONFIG_NUMA_BALANCING', 'thp.enabled': 'CONFIG_TRANSPARENT_HUGEPAGE',
               'thp.defrag': 'CONFIG_TRANSPARENT_HUGEPAGE', 'thp.khugepaged_defrag': 'CONFIG_TRANSPARENT_HUGEPAGE'}
RT_WORDS = 'this is a PREEMPT_RT kernel, which is built without it'


def facts(host, subset):
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': subset})
    assert code == 0, result
    return result['ansible_facts']['aitune_tuning']


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_preemption_as_the_kernel_shows_it(make_host, case):
    host = make_host('6.12')
    if case['version'] is None:
        os.remove(host.path('/proc/version'))
    else:
        host.write('/proc/version', case['version'] + '\n')
    if case.get('config'):
        host.write('/boot/config-%s' % host.value('/proc/sys/kernel/osrelease'), case['config'])
    if case.get('cmdline'):
        host.write('/proc/cmdline', case['cmdline'] + '\n')
    for path, content in dict(case.get('files') or {}, **(case.get('debugfs') or {})).items():
        host.write(path, content)
    assert KernelInfo(HostFS(host.root)).preemption() == case['expected']
    kernel = facts(host, ['kernel'])['kernel']
    assert (kernel['preempt_rt'], kernel['preemption'], kernel['preemption_source']) == \
        (case['expected']['preempt_rt'], case['expected']['model'], case['expected']['source'])


def test_debian_rt_kernel_facts_and_reasons(make_host):
    host = make_host('6.1-rt')
    found = facts(host, ['kernel', 'knobs'])
    assert found['kernel']['release'] == '6.1.0-31-rt-amd64'
    assert found['kernel']['preempt_rt'] is True and found['kernel']['preemption'] == 'full'
    for name, option in RT_EXCLUDED.items():
        knob = found['knobs'][name]
        assert knob['state'] == 'unsupported', name
        assert 'needs %s; %s' % (option, RT_WORDS) in knob['reason'], knob['reason']
    # The rest is there as on the cloud kernel: CFS's knobs in debugfs, and RT throttling.
    for name in ('sched.wakeup_granularity_ns', 'sched.rt_runtime_us', 'vm.swappiness'):
        assert found['knobs'][name]['state'] == 'applied', name


def test_a_kernel_without_rt_that_lacks_the_option_does_not_blame_rt(make_host):
    """The same files missing on the generic 6.1 kernel: the option is simply not built, and RT is no part of it."""
    host = make_host('6.1')
    os.remove(host.path('/proc/sys/kernel/numa_balancing'))
    with Engine(root=host.root) as engine:
        probe = engine.probe(lookup('sched.numa_balancing'))
    assert probe.state == 'unsupported'
    assert probe.reason == ('sched.numa_balancing is not on this kernel 6.1.0-31-cloud-amd64 (needs '
                            'CONFIG_NUMA_BALANCING); looked for /proc/sys/kernel/numa_balancing')


@pytest.mark.parametrize('kernel', KERNELS + VARIANTS)
def test_no_reason_carries_a_bare_version_span(make_host, kernel):
    """A location every kernel has gave the span "on" alone, which ended reasons in "(on)"."""
    host = make_host(kernel)
    reasons = {name: entry['reason'] for name, entry in facts(host, ['knobs'])['knobs'].items() if entry['reason']}
    assert reasons or kernel == '6.12'
    for name, reason in reasons.items():
        assert '(on)' not in reason and not reason.endswith(' on)'), (name, reason)


def test_profile_results_on_the_rt_kernel_explain_and_end_cleanly(make_host):
    host = make_host('6.1-rt')
    code, result = run_module(profile, {'root': host.root, 'subsystems': {
        'memory': {'thp_enabled': 'never', 'swappiness': 10}, 'sched': {'numa_balancing': 0}}})
    assert code == 0 and result['changed'] is True, result
    assert sorted(result['unsupported']) == ['sched.numa_balancing', 'thp.enabled']
    assert result['unsupported']['thp.enabled'].endswith(
        '(needs CONFIG_TRANSPARENT_HUGEPAGE; %s: the option depends on !PREEMPT_RT); looked for '
        '/sys/kernel/mm/transparent_hugepage/enabled' % RT_WORDS)
    assert host.value('/proc/sys/vm/swappiness') == '10'


@pytest.mark.parametrize('since, until, span', [
    (None, None, None), ((6, 6), None, 'from 6.6'), (None, (5, 13), 'before 5.13'),
    ((5, 13), (6, 6), 'from 5.13, before 6.6'),
])
def test_location_spans(since, until, span):
    assert Location('/proc/sys/kernel/x', since=since, until=until).span() == span


def test_spans_name_the_kernels_a_moved_knob_belongs_to(make_host):
    host = make_host('6.12')
    with Engine(root=host.root) as engine:
        reason = engine.probe(lookup('sched.wakeup_granularity_ns')).reason
    assert reason.endswith('looked for /sys/kernel/debug/sched/wakeup_granularity_ns (from 5.13, before 6.6), '
                           '/proc/sys/kernel/sched_wakeup_granularity_ns (before 5.13)'), reason
