# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What AWX does with this project, step by step, on this machine.

AWX clones the project, runs `ansible-galaxy collection install -r collections/requirements.yml` in the project's
root with ANSIBLE_COLLECTIONS_PATH pointing at a cache outside the project, and then runs the job template's playbook
from the project with only that cache as the collections path. These tests do the same with a copy of the checkout
(the files git knows, as a clone would have them) and run the root-level wrapper playbooks against localhost in check
mode, so nothing on this machine changes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


def project_files():
    """The files a clone of the project has: tracked ones, plus new ones git does not ignore (work not yet committed)."""
    listing = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                             check=True, capture_output=True).stdout.decode()
    return [path for path in listing.split('\0') if path and os.path.isfile(os.path.join(REPO, path))]


@pytest.fixture(scope='module')
def synced_project(tmp_path_factory):
    """A project checkout and the collections its sync installed, laid out as AWX lays out a job's directory."""
    job_dir = tmp_path_factory.mktemp('awx-job')
    project = job_dir / 'project'
    for path in project_files():
        destination = project / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), str(destination))
    collections = job_dir / 'requirements_collections'
    env = sync_environment(collections)
    install = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '-r', 'collections/requirements.yml',
                              '--collections-path', str(collections)],
                             cwd=str(project), env=env, capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    return project, collections, env


def sync_environment(collections):
    """The environment of a job: the synced collections and nothing else (no checkout link, no user collections).

    Ansible's home (its temporary files and ansible-galaxy's cache) lies in the job directory too, so the test leaves
    nothing in the user's ~/.ansible, as an AWX job leaves nothing in the controller's.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith('ANSIBLE_')}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_FORCE_COLOR='false', ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=str(collections.parent / 'ansible-home'), ANSIBLE_LOCAL_TEMP=str(collections.parent / 'tmp'),
               PATH=BIN + os.pathsep + env.get('PATH', ''))
    return env


def run_playbook(project, env, playbook, *extra):
    return subprocess.run([os.path.join(BIN, 'ansible-playbook'), playbook, '--check', '--diff'] + list(extra),
                          cwd=str(project), env=env, capture_output=True, text=True, check=False)


def recap(output):
    """Per host of the PLAY RECAP: its counters (ok, changed, unreachable, failed, ...)."""
    hosts = {}
    for host, counters in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output, re.MULTILINE):
        hosts[host] = {name: int(value) for name, value in re.findall(r'(\w+)=(\d+)', counters)}
    return hosts


def test_sync_installs_the_collection_from_the_project(synced_project):
    project, collections, env = synced_project
    installed = collections / 'ansible_collections' / 'aitune' / 'kernel'
    assert (installed / 'MANIFEST.json').is_file()
    assert (installed / 'plugins' / 'modules' / 'sched.py').is_file()
    assert (installed / 'playbooks' / 'tune.yml').is_file()
    # The tarball's build_ignore holds: no virtual environment, staging or wrappers in the installed copy.
    for absent in ('.venv', '.build', 'tune.yml', 'awx'):
        assert not (installed / absent).exists(), absent
    listing = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'list', 'aitune.kernel'], cwd=str(project),
                             env=env, capture_output=True, text=True, check=True).stdout
    assert str(collections / 'ansible_collections') in listing
    assert re.search(r'^aitune\.kernel\s+\S+', listing, re.MULTILINE), listing


@pytest.mark.parametrize('playbook, extra', [
    ('tune.yml', ['-e', 'mode=balanced']),
    ('verify.yml', []),
    ('restore.yml', []),
    ('changes.yml', []),
    ('benchmark.yml', ['-e', 'mode=balanced', '-e', 'aitune_bench_conditions=idle', '-e', 'aitune_bench_duration_s=0.5',
                       '-e', 'aitune_bench_warmup_s=0.1', '-e', 'aitune_bench_repetitions=1']),
])
def test_wrapper_playbook_runs_from_the_synced_project(synced_project, playbook, extra):
    project, _collections, env = synced_project
    if not (project / playbook).is_file():
        pytest.skip('LOUD SKIP: {0} is not in the project yet'.format(playbook))
    result = run_playbook(project, env, playbook, *extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    hosts = recap(result.stdout)
    assert 'localhost' in hosts, output[-3000:]
    assert hosts['localhost']['failed'] == 0 and hosts['localhost']['unreachable'] == 0, output[-6000:]
    # Every task ran from the synced copy: a module found anywhere else would show up as a different path.
    assert 'could not be resolved' not in output and "couldn't resolve module" not in output.lower()


def test_tune_refuses_an_unknown_mode_from_the_synced_project(synced_project):
    project, _collections, env = synced_project
    result = run_playbook(project, env, 'tune.yml', '-e', 'mode=turbo')
    assert result.returncode != 0
    assert 'mode must be one of conservative, balanced or aggressive' in result.stdout + result.stderr


def test_wrappers_fail_without_the_synced_collection(synced_project, tmp_path):
    """The wrappers need the collection the sync installs: without it the job fails instead of using a stray copy."""
    project, _collections, env = synced_project
    empty = dict(env, ANSIBLE_COLLECTIONS_PATH=str(tmp_path))
    result = run_playbook(project, empty, 'verify.yml')
    assert result.returncode != 0
    assert 'aitune.kernel.verify' in result.stdout + result.stderr
