# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The root playbooks over a fleet lab (tools/fleet): AITUNE_FLEET_HOSTS (20) simulated hosts, each reached over
real ssh on 127.0.0.1 and tuned in its own fake tree. The tests run in order, on one lab: tune, a second run that
changes nothing, drift that verify names host by host, the fleet report, a run with a host whose tree is gone and
a host whose sshd dies mid-run, and a restore that brings every tree back byte for byte. Needs root and sshd;
without them the tests skip, saying so loudly."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, 'tools', 'fleet'))
import fleet_lab  # noqa: E402 pylint: disable=wrong-import-position

HOSTS = int(os.environ.get('AITUNE_FLEET_HOSTS', '20'))
SWAPPINESS = '/proc/sys/vm/swappiness'
GOVERNOR = '/sys/devices/system/cpu/cpufreq/policy0/scaling_governor'
STATE_DIR = '/var/lib/aitune'

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='LOUD SKIP: the fleet lab needs root (root login over ssh)'),
    pytest.mark.skipif(not os.access(fleet_lab.SSHD, os.X_OK),
                       reason='LOUD SKIP: no %s (openssh-server; tools/lab/install-host-deps)' % fleet_lab.SSHD),
]


class Lab(object):
    def __init__(self, state_dir, hosts):
        self.dir = state_dir
        self.hosts = {host['name']: host for host in hosts}
        self.names = sorted(self.hosts)
        self.inventory = os.path.join(state_dir, fleet_lab.INVENTORY)
        self.timings = {}

    def path(self, name, host_path):
        return os.path.join(self.hosts[name]['root'], host_path.lstrip('/'))

    def read(self, name, host_path):
        with open(self.path(name, host_path)) as handle:
            return handle.read().strip()

    def write(self, name, host_path, value):
        with open(self.path(name, host_path), 'w') as handle:
            handle.write('%s\n' % value)

    def playbook(self, label, *args):
        """``(rc, output, {host: recap counts})`` of ansible-playbook over the lab; the run's time is kept by label."""
        environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
        started = time.time()
        proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', self.inventory] + list(args), cwd=REPO,
                              env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=600, check=False)
        self.timings[label] = time.time() - started
        recap = {}
        for match in re.finditer(r'^(host\d+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                                 proc.stdout, re.M):
            recap[match.group(1)] = dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups()[1:])))
        return proc.returncode, proc.stdout, recap


def snapshot(root):
    """Every entry of a tree: type, mode, and content digest or link target."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                entries[os.path.relpath(full, root)] = ('link', os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                entries[os.path.relpath(full, root)] = ('dir', stat.S_IMODE(info.st_mode))
            else:
                with open(full, 'rb') as handle:
                    entries[os.path.relpath(full, root)] = (
                        'file', stat.S_IMODE(info.st_mode), hashlib.sha256(handle.read()).hexdigest())
    return entries


def lab_sshd_pids(state_dir):
    config = os.path.join(state_dir, fleet_lab.CONFIG)
    return [int(pid) for pid in os.listdir('/proc') if pid.isdigit() and fleet_lab.is_lab_sshd(int(pid), config)]


def fatal_message(out, name):
    """The message of the last failure ansible-playbook printed for host ``name``."""
    blocks = re.findall(r'^fatal: \[%s\]: (?:FAILED|UNREACHABLE)! => \n?((?:.*\n)(?:    .*\n)*)' % name, out, re.M)
    return blocks[-1] if blocks else ''


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp('fleet') / 'lab')
    started = time.time()
    hosts = fleet_lab.up(state_dir, HOSTS)
    lab = Lab(state_dir, hosts)
    lab.timings['up'] = time.time() - started
    lab.pristine = {name: snapshot(lab.hosts[name]['root']) for name in lab.names}
    try:
        yield lab
    finally:
        started = time.time()
        fleet_lab.down(state_dir)
        lab.timings['down'] = time.time() - started
        print('\nfleet lab, %d hosts: %s' % (HOSTS, ', '.join('%s %.1f s' % item for item in lab.timings.items())))
        assert lab_sshd_pids(state_dir) == [], 'fleet-lab down left sshd running'
        assert not os.path.lexists(state_dir), 'fleet-lab down left %s' % state_dir


def test_the_lab_is_a_mix_of_hosts(lab):
    shapes = {lab.hosts[name]['shape'] for name in lab.names}
    assert len(shapes) == min(HOSTS, len(fleet_lab.SHAPES)), shapes
    assert len(lab_sshd_pids(lab.dir)) == HOSTS


def test_tune_changes_every_host_and_a_second_run_none(lab):
    code, out, recap = lab.playbook('tune first run', 'tune.yml', '-e', 'mode=balanced')
    assert code == 0, out[-5000:]
    assert sorted(recap) == lab.names and all(counts['changed'] >= 1 and counts['failed'] == 0
                                              for counts in recap.values()), recap
    assert all(lab.read(name, SWAPPINESS) == '10' for name in lab.names)
    # Each host's state is in its own tree, none on this machine.
    for name in lab.names:
        assert os.path.isfile(lab.path(name, '/var/lib/aitune/baseline.json'))
        assert os.path.isfile(lab.path(name, '/etc/ansible/facts.d/aitune.fact'))

    code, out, recap = lab.playbook('tune second run', 'tune.yml', '-e', 'mode=balanced')
    assert code == 0, out[-5000:]
    assert sorted(recap) == lab.names and all(counts['changed'] == 0 and counts['failed'] == 0
                                              for counts in recap.values()), recap


def test_verify_names_exactly_the_hosts_and_knobs_that_drifted(lab):
    # Knobs the tune run changed (so their original is in the baseline): a governor, and vm.swappiness elsewhere.
    drifted = {lab.names[0]: ('cpufreq.policy0.governor', GOVERNOR, 'powersave'),
               lab.names[-1]: ('vm.swappiness', SWAPPINESS, '33')}
    for name, (_knob, path, value) in drifted.items():
        lab.write(name, path, value)

    code, out, recap = lab.playbook('verify', 'verify.yml', '-e', 'aitune_fail_on_drift=true')
    assert code != 0
    assert sorted(name for name, counts in recap.items() if counts['failed']) == sorted(drifted), recap
    assert sorted(recap) == lab.names
    for name, (knob, _path, _value) in drifted.items():
        message = fatal_message(out, name)
        assert '1 setting(s) drifted' in message and knob in message, message

    # Put them right again for what follows: a tune run changes exactly the drifted hosts.
    code, out, recap = lab.playbook('tune after drift', 'tune.yml', '-e', 'mode=balanced')
    assert code == 0, out[-5000:]
    assert sorted(name for name, counts in recap.items() if counts['changed']) == sorted(drifted), recap


def test_facts_report_lists_every_host(lab, tmp_path):
    code, out, recap = lab.playbook('facts', 'facts.yml', '-e', 'aitune_reports_dir=%s' % tmp_path)
    assert code == 0, out[-5000:]
    reports = [os.path.join(str(tmp_path), name) for name in os.listdir(str(tmp_path))]
    assert len(reports) == 1
    with open(os.path.join(reports[0], 'facts.json')) as handle:
        fleet = json.load(handle)
    assert sorted(fleet) == lab.names
    assert all(fleet[name]['recorded']['mode'] == 'balanced' for name in lab.names)
    with open(os.path.join(reports[0], 'facts.md')) as handle:
        report = handle.read()
    assert all(name in report for name in lab.names)


def test_a_missing_tree_and_a_dead_sshd_fail_their_hosts_alone(lab):
    gone, dying = lab.names[1], lab.names[2]
    tree = lab.hosts[gone]['root']
    shutil.move(tree, tree + '.aside')
    lab.write(dying, SWAPPINESS, '44')
    lab.write(lab.names[3], SWAPPINESS, '45')
    killed = []
    # The test holds the dying host's lock, so that host's profile call waits for it: its sshd and every session
    # below it die while the call is running, whatever the machine's speed.
    lock_path = lab.path(dying, STATE_DIR + '/lock')
    # The earlier tests tuned the host, so its state directory and lock file are there already.
    assert os.path.isfile(lock_path)
    held = os.open(lock_path, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)

    def kill_while_the_call_waits():
        deadline = time.time() + 120
        pid = fleet_lab.read_pid(lab.hosts[dying]['pid_file'])
        while time.time() < deadline and not any(b'python' in b' '.join(fleet_lab.command_line(child) or [])
                                                 for child in fleet_lab.descendants(pid)):
            time.sleep(0.05)
        fleet_lab.stop_pids([pid] + fleet_lab.descendants(pid), grace=1.0)
        killed.append(pid)

    killer = threading.Thread(target=kill_while_the_call_waits)
    killer.start()
    try:
        code, out, recap = lab.playbook('tune with failures', 'tune.yml', '-e', 'mode=balanced',
                                        '-e', 'aitune_max_fail_percentage=100')
    finally:
        killer.join()
        shutil.move(tree + '.aside', tree)
        os.close(held)
    assert killed
    assert code != 0
    assert recap[gone]['failed'] == 1 and recap[gone]['unreachable'] == 0, recap[gone]
    assert 'the fake tree it names is missing' in fatal_message(out, gone), fatal_message(out, gone)
    assert recap[dying]['unreachable'] == 1, recap[dying]
    others = [name for name in lab.names if name not in (gone, dying)]
    assert all(recap[name]['failed'] == 0 and recap[name]['unreachable'] == 0 for name in others), recap
    assert lab.read(lab.names[3], SWAPPINESS) == '10'
    # The call died waiting for the lock: it wrote nothing.
    assert lab.read(dying, SWAPPINESS) == '44'
    assert 'Traceback' not in out

    fleet_lab.start_sshd(lab.dir, lab.hosts[dying])
    fleet_lab.wait_for_sshd([lab.hosts[dying]])


def test_restore_brings_every_tree_back_byte_for_byte(lab):
    code, out, recap = lab.playbook('restore', 'restore.yml')
    assert code == 0, out[-5000:]
    assert sorted(recap) == lab.names and all(counts['failed'] == 0 for counts in recap.values()), recap
    differences = {}
    for name in lab.names:
        now = snapshot(lab.hosts[name]['root'])
        if now != lab.pristine[name]:
            differences[name] = sorted(path for path in set(now) | set(lab.pristine[name])
                                       if now.get(path) != lab.pristine[name].get(path))
    assert differences == {}


def test_a_failed_canary_stops_a_serial_rollout_before_any_later_host(lab):
    # Batches of 2 with the default aitune_max_fail_percentage (0): the first batch are the canaries. A failure planted
    # on one of them (its tree taken away) ends the rollout there; no host of a later batch is reached.
    canary, other_canary = lab.names[0], lab.names[1]
    tree = lab.hosts[canary]['root']
    shutil.move(tree, tree + '.aside')
    try:
        code, out, recap = lab.playbook('serial rollout, failed canary', 'tune.yml', '-e', 'mode=balanced',
                                        '-e', 'aitune_serial=2')
    finally:
        shutil.move(tree + '.aside', tree)
    assert code != 0
    assert sorted(recap) == [canary, other_canary], recap
    assert recap[canary]['failed'] == 1 and recap[other_canary]['failed'] == 0, recap
    assert 'the fake tree it names is missing' in fatal_message(out, canary)
    untouched = {name: snapshot(lab.hosts[name]['root']) == lab.pristine[name] for name in lab.names[2:]}
    assert all(untouched.values()), untouched
