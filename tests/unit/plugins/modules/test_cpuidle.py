# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shlex
import subprocess
import time

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _run
from ansible_collections.aitune.kernel.plugins.module_utils._cpuidle import PMQOS_UNIT, pmqos_unit
from ansible_collections.aitune.kernel.plugins.module_utils._engine import Engine
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.modules import cpuidle, profile, restore, tuning_facts
from ansible_collections.aitune.kernel.tests.unit.cputree import make_case_host
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module
from ansible_collections.aitune.kernel.tests.unit.cases import load_cases

APPLY = load_cases('cpuidle_apply.yml')
BAD_INPUT = load_cases('cpuidle_bad_input.yml')

NOT_STATE = ('/var/lib/aitune',)
TMPFILES = '/etc/tmpfiles.d/aitune.conf'
MODPROBE = '/etc/modprobe.d/90-aitune.conf'
UNIT_PATH = '/etc/systemd/system/' + PMQOS_UNIT
STATE3 = '/sys/devices/system/cpu/cpu0/cpuidle/state3/disable'


class FakeSystemd(object):
    """Stands in for systemd, which the fake tree does not run: records the engine's calls and keeps units active
    between start and stop. ``failing`` units start but do not stay active, as a service whose command exits."""

    def __init__(self, host):
        self.host = host
        self.calls = []
        self.active = set()
        self.failing = set()

    def daemon_reload(self):
        self.calls.append(('daemon-reload',))

    def start(self, unit, restart=False):
        self.calls.append(('restart' if restart else 'start', unit, self.host.exists('/etc/systemd/system/' + unit)))
        if unit not in self.failing:
            self.active.add(unit)

    def stop(self, unit):
        self.calls.append(('stop', unit, self.host.exists('/etc/systemd/system/' + unit)))
        self.active.discard(unit)

    def is_active(self, unit):
        return unit in self.active

    def is_enabled(self, unit):
        return any(call[:2] == ('start', unit) for call in self.calls)


@pytest.fixture
def systemd(monkeypatch):
    """Make the modules find systemd as PID 1: open_engine's engine gets a FakeSystemd for the host's root."""
    holder = {}
    real_open_engine = _run.open_engine

    def open_engine(module, params=None, **options):
        engine = real_open_engine(module, params, **options)
        engine.systemctl = holder['systemd']
        return engine

    monkeypatch.setattr(_run, 'open_engine', open_engine)

    def attach(host):
        holder['systemd'] = FakeSystemd(host)
        return holder['systemd']
    return attach


@pytest.mark.parametrize('case', APPLY, ids=[c['id'] for c in APPLY])
def test_apply_check_idempotence_and_restore(cpu_host, case):
    host = make_case_host(cpu_host, case)
    args = dict(case['args'], root=host.root)
    original = host.snapshot(ignore=NOT_STATE)
    # Applied knobs change the live value or, at least, the tmpfiles lines that hold them at boot.
    will_change = bool(case['applied'])

    code, result = run_module(cpuidle, args, check_mode=True)
    assert code == 0, result
    assert result['changed'] is will_change
    assert sorted(n for n, e in result['knobs'].items() if e['changed']) == sorted(case['changed'])
    assert host.kernel.writes == []
    assert host.snapshot(ignore=NOT_STATE) == original

    code, result = run_module(cpuidle, args)
    assert code == 0, result
    assert result['applied'] == sorted(case['applied'])
    assert sorted(result['unsupported']) == sorted(case['unsupported'])
    assert sorted(n for n, e in result['knobs'].items() if e['changed']) == sorted(case['changed'])
    assert sorted(result['not_permitted']) == sorted(case.get('not_permitted') or [])
    assert result['changed'] is will_change
    assert not host.exists(UNIT_PATH)
    for name, words in (case.get('words') or {}).items():
        reason = result['unsupported'].get(name) or result['not_permitted'][name]
        for word in words:
            assert word in reason
    for path, value in (case.get('values') or {}).items():
        assert host.value(path) == value, path
    for path, lines in ((TMPFILES, case.get('tmpfiles')), (MODPROBE, case.get('modprobe'))):
        content = host.read(path) if host.exists(path) else ''
        for line in lines or []:
            assert line + '\n' in content, path
    assert 'state0' not in (host.read(TMPFILES) if host.exists(TMPFILES) else '')
    for path in case.get('absent') or []:
        assert not host.exists(path), path

    code, again = run_module(cpuidle, args)
    assert code == 0 and again['changed'] is False, again

    code, restored = run_module(restore, {'root': host.root, 'scope': 'cpuidle'})
    assert code == 0, restored
    assert host.snapshot(ignore=NOT_STATE) == original


@pytest.mark.parametrize('case', BAD_INPUT, ids=[c['id'] for c in BAD_INPUT])
def test_bad_input_is_refused_with_no_write(cpu_host, case):
    host = make_case_host(cpu_host, case)
    before = host.snapshot()
    code, result = run_module(cpuidle, dict(case['args'], root=host.root))
    assert code == 1, result
    assert 'nothing was changed' in result['msg']
    for word in case['error']:
        assert word in result['msg']
    assert host.kernel.writes == []
    assert host.snapshot() == before


def test_state_knob_names_rebuild_for_restore_and_drift(cpu_host):
    host = cpu_host('cpu_intel_pstate', 'cpu_intel_idle')
    assert [loc.path for loc in lookup('cpuidle.cpu12.state3.disable').locations] == [
        '/sys/devices/system/cpu/cpu12/cpuidle/state3/disable']
    run_module(cpuidle, {'root': host.root, 'cpus': '0', 'max_exit_latency_us': 10})
    host.write(STATE3, '0\n')
    with Engine(root=host.root) as engine:
        assert engine.drift() == {'cpuidle.cpu0.state3.disable': {'desired': '1', 'live': '0'}}


@pytest.mark.parametrize('trees, governor, warned', [
    (('cpu_no_cpufreq', 'cpu_haltpoll'), 'haltpoll', True),
    (('cpu_intel_pstate', 'cpu_intel_idle'), 'menu', False),
])
def test_state_switches_warn_where_the_governor_ignores_them(cpu_host, trees, governor, warned):
    host = cpu_host(*trees)
    code, result = run_module(cpuidle, {'root': host.root, 'max_exit_latency_us': 0})
    assert code == 0, result
    assert result['governor'] == governor
    # The switches land and read back either way: applied, as the kernel shows them.
    assert result['changed'] is True and not result['not_permitted']
    assert ('picks idle states without reading the per-state disable files' in str(result.get('warnings'))) is warned


def test_pm_qos_holder_is_installed_started_changed_and_removed(cpu_host, systemd):
    host = cpu_host('cpu_no_cpufreq', 'cpu_haltpoll')
    fake = systemd(host)
    original = host.snapshot(ignore=NOT_STATE)

    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0}, check_mode=True)
    assert code == 0 and result['changed'] is True, result
    assert result['pm_qos']['state'] == 'applied' and 'check mode' in result['pm_qos']['reason']
    assert fake.calls == [] and host.snapshot(ignore=NOT_STATE) == original

    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0})
    assert code == 0, result
    assert result['pm_qos'] == {'requested': 0, 'unit': PMQOS_UNIT, 'active': True, 'state': 'applied',
                                'reason': None, 'in_force_us': None}
    assert host.read(UNIT_PATH) == pmqos_unit(0)
    assert "printf 0x00000000 >&3" in host.read(UNIT_PATH)
    # The unit file exists before systemd is told to start it.
    assert fake.calls == [('daemon-reload',), ('start', PMQOS_UNIT, True)]
    assert result['actions'] == ['systemctl daemon-reload', 'started %s' % PMQOS_UNIT]

    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0})
    assert code == 0 and result['changed'] is False and len(fake.calls) == 2

    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 100})
    assert code == 0 and result['changed'] is True
    assert fake.calls[2:] == [('daemon-reload',), ('restart', PMQOS_UNIT, True)]
    assert 'printf 0x00000064 >&3' in host.read(UNIT_PATH)

    # A run without a request takes the holder away: stopped while its file exists, then removed.
    code, result = run_module(cpuidle, {'root': host.root})
    assert code == 0 and result['changed'] is True
    assert fake.calls[4:] == [('stop', PMQOS_UNIT, True), ('daemon-reload',)]
    assert result['pm_qos'] == {'requested': None, 'unit': PMQOS_UNIT, 'active': False, 'state': None,
                                'reason': None, 'in_force_us': None}
    assert host.snapshot(ignore=NOT_STATE) == original


def test_restore_stops_and_removes_the_holder_and_the_states(cpu_host, systemd):
    host = cpu_host('cpu_intel_pstate', 'cpu_intel_idle')
    fake = systemd(host)
    original = host.snapshot(ignore=NOT_STATE)
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 2, 'max_exit_latency_us': 10})
    assert code == 0, result
    assert host.value(STATE3) == '1' and host.exists(UNIT_PATH)
    code, result = run_module(restore, {'root': host.root, 'scope': 'cpuidle'})
    assert code == 0 and result['changed'] is True, result
    assert fake.calls[-2:] == [('stop', PMQOS_UNIT, True), ('daemon-reload',)]
    assert fake.active == set()
    assert host.snapshot(ignore=NOT_STATE) == original


def test_holder_that_does_not_stay_up_is_not_permitted(cpu_host, systemd):
    host = cpu_host('cpu_intel_pstate', 'cpu_intel_idle')
    systemd(host).failing.add(PMQOS_UNIT)
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0})
    assert code == 0, result
    assert result['pm_qos']['state'] == 'not_permitted' and result['pm_qos']['active'] is False
    assert 'journalctl -u %s' % PMQOS_UNIT in result['pm_qos']['reason']


@pytest.mark.parametrize('trees, remove_device, words', [
    (('cpu_intel_pstate', 'cpu_no_cpuidle'), False, ['no cpuidle driver']),
    (('cpu_intel_pstate', 'cpu_intel_idle'), True, ['/dev/cpu_dma_latency is absent', 'CONFIG_CPU_IDLE']),
])
def test_holder_is_unsupported_without_idle_states_or_pm_qos(cpu_host, systemd, trees, remove_device, words):
    host = cpu_host(*trees)
    if remove_device:
        os.remove(host.path('/dev/cpu_dma_latency'))
    fake = systemd(host)
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0})
    assert code == 0, result
    assert result['pm_qos']['state'] == 'unsupported' and result['changed'] is False
    for word in words:
        assert word in result['pm_qos']['reason'] and word in result['unsupported']['cpuidle.pm_qos']
    assert fake.calls == [] and not host.exists(UNIT_PATH)


def test_holder_command_holds_the_value_open_in_sleep(tmp_path):
    """Run the unit's ExecStart against a plain file standing in for /dev/cpu_dma_latency: the value is written in
    the 10-character hex form, and the descriptor stays open in the process that replaced the shell."""
    device = str(tmp_path / 'cpu_dma_latency')
    open(device, 'w').close()
    exec_start = [line for line in pmqos_unit(100, device=device).splitlines() if line.startswith('ExecStart=')][0]
    argv = shlex.split(exec_start[len('ExecStart='):])
    assert argv[:2] == ['/bin/sh', '-c']
    process = subprocess.Popen(argv)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and _comm(process.pid) != 'sleep' and process.poll() is None:
            time.sleep(0.02)
        assert _comm(process.pid) == 'sleep'
        with open(device) as handle:
            assert handle.read() == '0x00000064'
        assert os.readlink('/proc/%d/fd/3' % process.pid) == device
    finally:
        process.kill()
        process.wait()


def _comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as handle:
            return handle.read().strip()
    except OSError:
        return None


# -- the VM idle path --------------------------------------------------------------------------------------------------
GUEST = ('cpu_no_cpufreq', 'cpu_haltpoll')
# The development machines as read there: haltpoll guest, KVM built in with read-only parameters.
DEV_MACHINE = GUEST + ('kvm_builtin', 'kvm_read_only')
KVM_HOST = ('cpu_intel_pstate', 'cpu_intel_idle', 'kvm_host')
HALTPOLL_NS = '/sys/module/haltpoll/parameters/guest_halt_poll_ns'
KVM_NS = '/sys/module/kvm/parameters/halt_poll_ns'


def test_polling_knob_names_rebuild_for_restore_and_drift(cpu_host):
    assert [loc.path for loc in lookup('cpuidle.kvm.halt_poll_ns_grow').locations] == [
        '/sys/module/kvm/parameters/halt_poll_ns_grow']
    host = cpu_host(*GUEST)
    code, result = run_module(cpuidle, {'root': host.root, 'haltpoll': {'guest_halt_poll_ns': 200000}})
    assert code == 0 and result['changed'], result
    host.write(HALTPOLL_NS, '0\n')
    with Engine(root=host.root) as engine:
        assert engine.drift() == {'cpuidle.haltpoll.guest_halt_poll_ns': {'desired': '200000', 'live': '0'}}


def test_restore_after_two_runs_gives_back_the_first_original(cpu_host):
    host = cpu_host(*KVM_HOST)
    original = host.snapshot(ignore=NOT_STATE)
    for window in (50000, 60000):
        code, result = run_module(cpuidle, {'root': host.root, 'kvm': {'halt_poll_ns': window}})
        assert code == 0 and result['changed'], result
    assert host.value(KVM_NS) == '60000'
    assert host.read(MODPROBE).count('options kvm halt_poll_ns=') == 1
    assert 'options kvm halt_poll_ns=60000\n' in host.read(MODPROBE)
    code, result = run_module(restore, {'root': host.root, 'scope': 'cpuidle'})
    assert code == 0 and result['changed'], result
    assert host.value(KVM_NS) == '200000'
    assert host.snapshot(ignore=NOT_STATE) == original


def test_without_persist_the_windows_change_live_only(cpu_host):
    host = cpu_host(*KVM_HOST)
    code, result = run_module(cpuidle, {'root': host.root, 'kvm': {'halt_poll_ns': 0}, 'persist': False})
    assert code == 0 and result['changed'], result
    assert host.value(KVM_NS) == '0'
    assert result['files'] == [] and not host.exists(MODPROBE) and not host.exists(TMPFILES)


def test_check_mode_diff_shows_the_modprobe_line(cpu_host):
    host = cpu_host(*KVM_HOST)
    code, result = run_module(cpuidle, {'root': host.root, 'kvm': {'halt_poll_ns': 50000}}, check_mode=True, diff=True)
    assert code == 0 and result['changed'], result
    diffs = {entry['before_header']: entry for entry in result['diff']}
    assert diffs['live kernel values']['after'] == 'cpuidle.kvm.halt_poll_ns: 50000\n'
    assert 'options kvm halt_poll_ns=50000\n' in diffs[MODPROBE + ' (absent)']['after']
    assert not host.exists(MODPROBE) and host.value(KVM_NS) == '200000'


@pytest.mark.parametrize('with_systemd, window, warned', [
    (True, 50000, True),
    # Without systemd no holder runs, so the window does act.
    (False, 50000, False),
    # A window at the kernel's default (balanced's, inherited by aggressive) caps nothing and loses nothing.
    (True, 200000, False),
])
def test_pm_qos_zero_makes_a_capping_poll_window_moot_and_says_so(cpu_host, request, with_systemd, window, warned):
    host = cpu_host(*GUEST)
    if with_systemd:
        request.getfixturevalue('systemd')(host)
    code, result = run_module(cpuidle, {'root': host.root, 'pm_qos_latency_us': 0,
                                        'haltpoll': {'guest_halt_poll_ns': window}})
    assert code == 0, result
    assert result['knobs']['cpuidle.haltpoll.guest_halt_poll_ns']['state'] == 'applied'
    assert ('polls for as long as a CPU is idle' in str(result.get('warnings'))) is warned


@pytest.mark.parametrize('trees, governor, haltpoll, kvm', [
    (DEV_MACHINE, 'haltpoll',
     {'guest_halt_poll_ns': 0, 'guest_halt_poll_grow': 2, 'guest_halt_poll_grow_start': 50000,
      'guest_halt_poll_shrink': 2, 'guest_halt_poll_allow_shrink': True},
     {'halt_poll_ns': 200000, 'halt_poll_ns_grow': 2, 'halt_poll_ns_grow_start': 10000, 'halt_poll_ns_shrink': 2}),
    (KVM_HOST, 'menu',
     {'guest_halt_poll_ns': 200000, 'guest_halt_poll_grow': 2, 'guest_halt_poll_grow_start': 50000,
      'guest_halt_poll_shrink': 2, 'guest_halt_poll_allow_shrink': True},
     {'halt_poll_ns': 200000, 'halt_poll_ns_grow': 2, 'halt_poll_ns_grow_start': 10000, 'halt_poll_ns_shrink': 2}),
    (('cpu_intel_pstate', 'cpu_intel_idle'), 'menu', None, None),
    (('cpu_intel_pstate', 'cpu_no_cpuidle'), None, None, None),
])
def test_facts_report_the_driver_the_governor_and_the_poll_windows(cpu_host, trees, governor, haltpoll, kvm):
    host = cpu_host(*trees)
    code, result = run_module(tuning_facts, {'root': host.root, 'gather_subset': ['cpuidle', 'knobs']})
    assert code == 0, result
    facts = result['ansible_facts']['aitune_tuning']
    assert facts['cpuidle']['governor'] == governor
    assert facts['cpuidle']['haltpoll'] == haltpoll
    assert facts['cpuidle']['kvm'] == kvm
    knob = facts['knobs']['cpuidle.kvm.halt_poll_ns']
    if trees == DEV_MACHINE:
        assert knob['state'] == 'not_permitted' and 'read-only' in knob['reason']
    elif kvm is None:
        assert knob['state'] == 'unsupported' and 'needs the kvm module' in knob['reason']
    else:
        assert knob['state'] == 'applied' and knob['value'] == '200000'


def test_profile_runs_the_poll_windows_as_the_module_does(cpu_host):
    by_profile, by_module = cpu_host(*DEV_MACHINE), cpu_host(*DEV_MACHINE)
    request = {'haltpoll': {'guest_halt_poll_ns': 200000, 'allow_shrink': False}, 'kvm': {'halt_poll_ns': 0}}
    code, result = run_module(profile, {'root': by_profile.root, 'subsystems': {'cpuidle': request}})
    assert code == 0 and result['changed'], result
    code, alone = run_module(cpuidle, dict(request, root=by_module.root))
    assert code == 0, alone
    assert result['subsystems']['cpuidle']['knobs'] == alone['knobs']
    assert result['knobs'] == {'cpuidle.haltpoll.guest_halt_poll_allow_shrink': 'applied',
                               'cpuidle.haltpoll.guest_halt_poll_ns': 'applied',
                               'cpuidle.kvm.halt_poll_ns': 'not_permitted'}
    assert by_profile.snapshot(NOT_STATE) == by_module.snapshot(NOT_STATE)
