# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The run lease: one run holds a host from its first task to its last (aitune.kernel.lease and every call that
writes), on fake trees."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import subprocess

import pytest

from ansible_collections.aitune.kernel.plugins.module_utils import _lock, _profile
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import FsError, HostFS
from ansible_collections.aitune.kernel.plugins.module_utils._lease import (
    BOOT_ID_PATH, LEASE_DIR, LEASE_PATH, controller_name)
from ansible_collections.aitune.kernel.plugins.module_utils._lock import HostLock
from ansible_collections.aitune.kernel.plugins.modules import lease, profile, restore, sched
from ansible_collections.aitune.kernel.tests.unit.modrun import run_module

AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'
RUN_A = 'run-aaaa-1111'
RUN_B = 'run-bbbb-2222'
BOOT = 'c0ffee00-0000-4000-8000-000000000001'


class FakeClock(object):
    """time.monotonic and time.sleep for the lock's waits: a wait of 60 s takes no time, and is counted."""

    def __init__(self):
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.slept += seconds

    def __getattr__(self, name):
        import time
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_lock, 'time', fake)
    return fake


@pytest.fixture
def host(make_host):
    host = make_host('6.12')
    host.write(BOOT_ID_PATH, BOOT + '\n')
    return host


def take(host, run_id=RUN_A, purpose='tune balanced', **extra):
    args = dict(root=host.root, run_id=run_id, purpose=purpose, controller='ctl-1', controller_pid=4242)
    args.update(extra)
    return run_module(lease, args)


def give_back(host, run_id=RUN_A):
    return run_module(lease, dict(root=host.root, state='released', run_id=run_id))


def lease_document(host):
    return json.loads(host.read(LEASE_PATH))


def plant_lease(host, **fields):
    document = dict(format=1, run_id=RUN_A, purpose='tune aggressive', controller='ctl-9', controller_pid=4242,
                    started=1700000000, ttl=3600, expires=4102444800, boot_id=BOOT)
    document.update(fields)
    host.write(LEASE_PATH, json.dumps(document))
    os.chmod(host.path(LEASE_DIR), 0o755)
    os.chmod(host.path(LEASE_PATH), 0o644)


def test_taking_the_lease_writes_who_holds_the_host_and_reports_no_change(host, clock):
    code, result = take(host, job='77')
    assert code == 0, result
    assert result['held'] is True and result['changed'] is False and result['expired'] is None
    document = lease_document(host)
    assert document['run_id'] == RUN_A and document['purpose'] == 'tune balanced'
    assert document['controller'] == 'ctl-1' and document['controller_pid'] == 4242 and document['job'] == '77'
    assert document['boot_id'] == BOOT and document['expires'] - document['started'] == 3600
    assert result['holder'] == {key: value for key, value in document.items() if key != 'format'}
    # The lock file was the lease's only trace in /var/lib/aitune; nothing of it stays there.
    assert not host.exists('/var/lib/aitune')


def test_a_second_run_waits_then_fails_before_writing_and_names_the_holder(host, clock):
    assert take(host, job='77')[0] == 0
    before = host.snapshot()
    code, result = take(host, run_id=RUN_B, purpose='tune aggressive', wait=30)
    assert code == 1
    message = result['msg']
    assert 'another aitune run holds this host: run %s (tune balanced)' % RUN_A in message
    assert 'from controller ctl-1 PID 4242, AWX job 77' in message and 'Waited 30 s; nothing was written' in message
    assert clock.slept >= 30
    assert host.snapshot() == before


def test_the_run_that_holds_the_lease_takes_it_again_and_renews_it(host, clock, monkeypatch):
    assert take(host)[0] == 0
    first = lease_document(host)
    monkeypatch.setattr('time.time', lambda: first['started'] + 600)
    code, result = take(host, wait=0)
    assert code == 0 and result['held'] is True
    again = lease_document(host)
    assert again['started'] == first['started'] and again['expires'] == first['expires'] + 600


def test_release_removes_only_the_runs_own_lease(host, clock):
    assert take(host)[0] == 0
    code, result = give_back(host, run_id=RUN_B)
    assert code == 0 and result['released'] is False and result['holder']['run_id'] == RUN_A
    assert host.exists(LEASE_PATH)
    code, result = give_back(host)
    assert code == 0 and result['released'] is True and result['changed'] is False
    assert not host.exists(LEASE_DIR) and not host.exists('/var/lib/aitune')


def test_a_call_of_another_run_or_a_module_alone_waits_for_the_lease_and_writes_nothing(host, clock):
    assert take(host)[0] == 0
    before = host.snapshot()
    for run_id in (RUN_B, None):
        args = dict(root=host.root, autogroup=False)
        if run_id:
            args['run_id'] = run_id
        code, result = run_module(sched, args)
        assert code == 1, result
        assert 'another aitune run holds this host: run %s (tune balanced)' % RUN_A in result['msg']
        assert host.snapshot() == before
    assert host.value(AUTOGROUP) == '1'


def test_a_call_of_the_holding_run_applies_and_renews_the_lease(host, clock, monkeypatch):
    assert take(host)[0] == 0
    started = lease_document(host)['started']
    monkeypatch.setattr('time.time', lambda: started + 900)
    code, result = run_module(sched, dict(root=host.root, autogroup=False, run_id=RUN_A))
    assert code == 0 and result['changed'] is True, result
    assert host.value(AUTOGROUP) == '0'
    assert lease_document(host)['expires'] == started + 900 + 3600
    code, result = run_module(restore, dict(root=host.root, run_id=RUN_A))
    assert code == 0 and host.value(AUTOGROUP) == '1', result
    # The restore removed the collection's state, and the run still holds the host until it gives it back.
    assert host.exists(LEASE_PATH)


def test_a_module_alone_without_a_lease_keeps_its_per_call_lock(host, clock):
    code, result = run_module(sched, dict(root=host.root, autogroup=False))
    assert code == 0 and result['changed'] is True
    assert not host.exists(LEASE_DIR)


@pytest.mark.parametrize('fields, why', [
    (dict(expires=1700000100), 'expired'),
    (dict(boot_id='c0ffee00-0000-4000-8000-0000000000ff'), 'taken before this boot'),
])
def test_a_lease_whose_run_is_gone_is_taken_over_and_reported(host, clock, fields, why):
    plant_lease(host, **fields)
    code, result = take(host, run_id=RUN_B, wait=0)
    assert code == 0, result
    assert result['held'] is True and result['expired']['run_id'] == RUN_A and why in result['expired']['why']
    assert 'took over the lease of run %s (tune aggressive, controller ctl-9 PID 4242)' % RUN_A \
        in str(result['warnings'])
    assert lease_document(host)['run_id'] == RUN_B


def test_a_lease_whose_controller_process_on_this_host_is_gone_has_ended(host, clock):
    child = subprocess.Popen(['true'])
    child.wait()
    plant_lease(host, controller=socket.gethostname(), controller_pid=child.pid)
    code, result = take(host, run_id=RUN_B, wait=0)
    assert code == 0, result
    assert 'its controller process (PID %d on this host) is gone' % child.pid in result['expired']['why']


def test_a_module_alone_after_an_expired_lease_goes_on_with_a_warning(host, clock):
    plant_lease(host, expires=1700000100)
    code, result = run_module(sched, dict(root=host.root, autogroup=False))
    assert code == 0, result
    assert 'the run lease of run %s (tune aggressive)' % RUN_A in str(result['warnings'])
    assert 'no longer holds the host: it expired' in str(result['warnings'])


@pytest.mark.parametrize('fields, field', [
    (dict(format=True), 'format'),
    (dict(holder='me'), 'holder'),
    (dict(run_id='x'), 'run_id'),
    (dict(controller_pid='4242'), 'controller_pid'),
    (dict(purpose='tune\nbalanced'), 'purpose'),
])
def test_a_lease_not_in_the_shape_the_module_writes_is_refused_and_nothing_is_written(host, clock, fields, field):
    plant_lease(host, **fields)
    before = host.snapshot()
    for call in (lambda: take(host, run_id=RUN_B), lambda: run_module(sched, dict(root=host.root, autogroup=False))):
        code, result = call()
        assert code == 1, result
        assert '%s: %s ' % (LEASE_PATH, field) in result['msg'] and 'move the file aside' in result['msg']
        assert host.snapshot() == before


def test_a_lease_that_others_may_write_is_not_trusted(host, clock):
    plant_lease(host)
    os.chmod(host.path(LEASE_PATH), 0o666)
    code, result = take(host, run_id=RUN_B)
    assert code == 1 and LEASE_PATH in result['msg'] and 'writable' in result['msg'], result


def test_check_mode_writes_nothing_and_names_the_holder(host, clock):
    assert take(host)[0] == 0
    before = host.snapshot()
    code, result = run_module(lease, dict(root=host.root, run_id=RUN_B, purpose='tune aggressive'), check_mode=True)
    assert code == 0 and result['held'] is False and result['holder']['run_id'] == RUN_A
    assert 'another aitune run holds this host now: run %s' % RUN_A in str(result['warnings'])
    assert host.snapshot() == before


@pytest.mark.parametrize('args, expected', [
    (dict(run_id='short', purpose='tune balanced'), 'run_id must be a run id of 8 to 64'),
    (dict(run_id='run-aaaa-1111', purpose='Tune; rm -rf /'), 'purpose must be'),
    (dict(run_id='run-aaaa-1111', purpose='tune', wait=7200), 'wait must be between 0 and 3600'),
    (dict(run_id='run-aaaa-1111', purpose='tune', ttl=5), 'ttl must be between 60 and 604800'),
    (dict(purpose='tune balanced'), 'run_id is required'),
])
def test_bad_options_are_refused_before_anything_is_read_or_written(host, args, expected):
    before = host.snapshot()
    code, result = run_module(lease, dict(args, root=host.root))
    assert code == 1 and expected in result['msg'], result
    assert host.snapshot() == before


def test_a_bad_run_id_given_to_a_module_is_refused(host):
    code, result = run_module(sched, dict(root=host.root, autogroup=False, run_id='../../etc'))
    assert code == 1 and result['msg'].startswith('run_id must be a run id'), result


def test_the_profile_call_holds_the_host_lock_from_its_first_subsystem_to_the_record(host, clock, monkeypatch):
    """Another call cannot slip in between two subsystems of one profile call, nor between its planning pass and its
    first write, nor before its record."""
    attempts = []
    fs = HostFS(host.root)

    def try_lock(label):
        try:
            with HostLock(fs, timeout=0):
                attempts.append((label, 'got the lock'))
        except FsError:
            attempts.append((label, 'refused'))

    real_run, real_record = _profile.ProfileRun.run, _profile.record_run

    def run(self, subsystem, options):
        real_run(self, subsystem, options)
        try_lock(subsystem.name)

    def record_run(*args):
        try_lock('record')
        return real_record(*args)

    monkeypatch.setattr(_profile.ProfileRun, 'run', run)
    monkeypatch.setattr(_profile, 'record_run', record_run)
    code, result = run_module(profile, dict(
        root=host.root, subsystems=dict(sched=dict(autogroup=False), memory=dict(swappiness=10)),
        record=dict(path='/etc/ansible/facts.d/aitune.fact', mode='balanced', collection_version='0.1.0')))
    assert code == 0, result
    # Each subsystem planned, then applied, then the record.
    assert attempts == [('sched', 'refused'), ('memory', 'refused')] * 2 + [('record', 'refused')]
    try_lock('after')
    assert attempts[-1] == ('after', 'got the lock')


@pytest.mark.parametrize('name, expected', [
    ('ctl-1.example.com', 'ctl-1.example.com'),
    ('build_host_7', 'build-host-7'),
    ('-', 'unknown'),
])
def test_the_action_plugin_names_the_controller_as_the_lease_accepts_it(monkeypatch, name, expected):
    monkeypatch.setattr(socket, 'gethostname', lambda: name)
    assert controller_name() == expected


def test_a_profile_call_waits_its_own_wait_for_another_runs_lease_then_fails_naming_it(host, clock):
    # tune.yml without the gate is one profile call and takes no lease: the call's wait is the run's.
    assert take(host, job='77')[0] == 0
    before = host.snapshot()
    code, result = run_module(profile, dict(root=host.root, subsystems=dict(sched=dict(autogroup=False)), wait=5))
    assert code == 1, result
    assert 'another aitune run holds this host: run %s (tune balanced)' % RUN_A in result['msg']
    assert 'Waited 5 s; nothing was written' in result['msg']
    assert 5 <= clock.slept < 60
    assert host.snapshot() == before


@pytest.mark.parametrize('wait', [-1, 3601])
def test_a_profile_wait_out_of_range_is_refused_before_anything_is_read(host, wait):
    code, result = run_module(profile, dict(root=host.root, subsystems=dict(sched=dict(autogroup=False)), wait=wait))
    assert code == 1
    assert result['msg'] == ('invalid settings, nothing was changed: wait must be between 0 and 3600 seconds, got %d'
                             % wait)
    assert not host.exists('/var/lib/aitune')
