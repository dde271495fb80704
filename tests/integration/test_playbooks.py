# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The root playbooks on this machine's real kernel, as a user runs them: a bad mode, a preview, a balanced run and
its second run, drift put right, and restore back to the host as it was found."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import subprocess
import time

import pytest
import yaml

from conftest import BIN, REPO, read_proc

SWAPPINESS = '/proc/sys/vm/swappiness'
FACT = '/etc/ansible/facts.d/aitune.fact'
STATES = ('applied', 'unsupported', 'not_permitted')


def playbook(*args):
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook')] + list(args), cwd=REPO, env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
                          check=False)
    recap = re.search(r'^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', proc.stdout, re.M)
    return proc.returncode, proc.stdout, (dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, recap.groups())))
                                          if recap else None)


def host_state(run):
    """What a tune run may change and restore must bring back: every knob's value as the kernel reports it, and the
    collection's files in /etc."""
    facts = run('aitune.kernel.tuning_facts')['ansible_facts']['aitune_tuning']
    knobs = {name: entry['value'] for name, entry in facts['knobs'].items()}
    etc = {path: os.path.exists(path) for path in ('/etc/sysctl.d/90-aitune.conf', '/etc/tmpfiles.d/aitune.conf', FACT)}
    return knobs, etc


@pytest.fixture
def untouched(run):
    return host_state(run)


def test_mode_is_checked_before_any_host_is_touched(run, untouched):
    code, out, dummy = playbook('tune.yml', '-e', 'mode=turbo')
    assert code != 0
    assert 'mode must be one of conservative, balanced or aggressive; got turbo' in out
    assert 'Tune the hosts' not in out
    assert host_state(run) == untouched


def test_balanced_preview_run_rerun_drift_and_restore(run, untouched):
    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced', '--check', '--diff')
    assert code == 0, out
    assert host_state(run) == untouched, 'a --check run changed the host'

    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced')
    assert code == 0 and recap['failed'] == 0, out
    assert read_proc(SWAPPINESS) == '10'
    with open(FACT) as handle:
        fact = json.load(handle)
    assert fact['mode'] == 'balanced'
    assert set(fact['knobs'].values()) <= set(STATES)
    # Every knob this host cannot take is reported with its reason, and did not fail the run.
    assert sorted(fact['unsupported']) == sorted(k for k, state in fact['knobs'].items() if state == 'unsupported')
    assert all(fact['unsupported'].values())

    headline, details = summary(out)[:2]
    assert headline == 'balanced: applied: %d settings changed, each read back from the kernel' % len(details['changed'])
    assert details['changed']['vm.swappiness'].endswith(' -> 10'), details
    assert details['files']['/etc/sysctl.d/90-aitune.conf'] in ('created', 'updated') and details['files'][FACT]

    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced')
    assert code == 0 and recap['changed'] == 0, out
    headline, details = summary(out)[:2]
    assert headline.startswith('balanced: already applied on ') and headline.endswith('nothing to do'), headline
    assert details['changed'] == {} and {'sched', 'memory', 'cgroup'} <= set(details['subsystems'])
    with open(FACT) as handle:
        assert json.load(handle) == fact

    # Drift: someone changes a value behind the collection's back; the next run finds it and puts it right.
    with open(SWAPPINESS, 'w') as handle:
        handle.write('33')
    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced')
    assert code == 0 and recap['changed'] >= 1, out
    assert read_proc(SWAPPINESS) == '10'

    code, out, recap = playbook('restore.yml')
    assert code == 0, out
    outcome, details = summary(out)
    assert outcome == 'restored: every recorded original is back'
    assert details['restored']['vm.swappiness'] == '10 -> %s' % untouched[0]['vm.swappiness']
    assert FACT in details['removed'] and '/etc/sysctl.d/90-aitune.conf' in details['removed']
    assert host_state(run) == untouched


def summary(out):
    """The last summary a play printed (the debug task's msg list), parsed."""
    block = re.findall(r'^ok: \[localhost\] => \n((?:    .*\n)+)', out, re.M)[-1]
    return yaml.safe_load(block)['msg']


def summary_list(out, key):
    """What the tune summary lists under ``key``: a list's items, or a mapping's keys."""
    return list(summary(out)[1].get(key) or [])


def test_subsystem_tags_select_what_the_one_call_applies(run, untouched):
    swappiness = read_proc(SWAPPINESS)
    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced', '--tags', 'memory')
    assert code == 0 and recap['failed'] == 0, out
    assert summary_list(out, 'subsystems') == ['memory']
    assert summary_list(out, 'changed') == ['vm.swappiness'] and read_proc(SWAPPINESS) == '10'
    # A run of part of the profile is not a record of the mode.
    assert os.path.exists(FACT) == untouched[1][FACT]

    code, out, recap = playbook('restore.yml')
    assert code == 0 and read_proc(SWAPPINESS) == swappiness, out

    code, out, recap = playbook('tune.yml', '-e', 'mode=balanced', '--skip-tags', 'memory')
    assert code == 0 and recap['failed'] == 0, out
    selected = summary_list(out, 'subsystems')
    assert 'memory' not in selected and {'sched', 'cgroup'} <= set(selected), out
    assert 'vm.swappiness' not in summary_list(out, 'changed') and read_proc(SWAPPINESS) == swappiness
    assert os.path.exists(FACT) == untouched[1][FACT]

    code, out, recap = playbook('restore.yml')
    assert code == 0, out
    assert host_state(run) == untouched


def test_a_second_run_fails_before_writing_while_a_first_run_holds_the_host(run, untouched, tmp_path):
    """Two runs on one host at once: the second fails before writing, naming the first, and the host holds what the
    first applied. The first run here takes the lease as tune.yml does, applies, and then waits for a file, so the
    second run meets it between two of its calls whatever the speed of this machine."""
    go_on = tmp_path / 'go-on'
    holder = tmp_path / 'holder.yml'
    holder.write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'Hold the host', 'aitune.kernel.lease': {'purpose': 'tune balanced'}, 'register': 'aitune_run_lease'},
        {'name': 'Apply', 'aitune.kernel.memory': {'swappiness': 7, 'run_id': '{{ aitune_run_lease.run_id }}'}},
        {'name': 'Wait between two calls', 'ansible.builtin.wait_for': {'path': str(go_on), 'timeout': 280}},
        {'name': 'Give the host back',
         'aitune.kernel.lease': {'state': 'released', 'run_id': '{{ aitune_run_lease.run_id }}'}}]}]))
    lease = '/run/aitune/lease.json'
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    first = subprocess.Popen([os.path.join(BIN, 'ansible-playbook'), str(holder)], cwd=REPO, env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    try:
        # The holder's apply is done once swappiness reads 7; until then the lease may not even be taken.
        for _attempt in range(2400):
            if first.poll() is not None or read_proc(SWAPPINESS) == '7':
                break
            time.sleep(0.1)
        assert read_proc(SWAPPINESS) == '7', first.communicate()[0]
        holder_lease = json.loads(open(lease).read())
        assert holder_lease['purpose'] == 'tune balanced' and holder_lease['controller_pid'] == first.pid

        code, out, recap = playbook('tune.yml', '-e', 'mode=aggressive', '-e', 'aitune_lease_wait=1')
        assert code != 0 and recap['failed'] == 1 and recap['changed'] == 0, out
        assert 'another aitune run holds this host: run %s (tune balanced)' % holder_lease['run_id'] in out, out
        assert 'PID %d' % first.pid in out and 'nothing was written' in out, out
        alone = run('aitune.kernel.sched', {'autogroup': False}, expect_failure=True)
        assert alone['failed'] and 'another aitune run holds this host' in alone['msg']
        assert read_proc(SWAPPINESS) == '7' and not os.path.exists(FACT)
        assert json.loads(open(lease).read()) == holder_lease
    finally:
        go_on.write_text('')
        out = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out
    assert not os.path.exists(lease)
    code, out, recap = playbook('restore.yml')
    assert code == 0, out
    assert host_state(run) == untouched
