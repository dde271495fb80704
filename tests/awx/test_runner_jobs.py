# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Every job template and the workflow of awx/configure.yml, run as AWX runs a job: `ansible-runner run` in a private
data directory holding the synced project (test_project_sync's copy and collection cache), the inventory, the extra
variables of the template, its survey answers and the launch prompts, and env/envvars pointing the collections path
at the cache. The hosts are a 3-host fleet lab (tools/fleet): real ssh on 127.0.0.1, one fake tree per host. Each job
is judged from its artifacts, as AWX's job page shows it: status, rc, the playbook_on_stats counters per host and the
events of the key tasks.

The templates, their playbooks, limits, extra variables and surveys are read from configure.yml itself, so the test
follows the file. Needs root and sshd; without them it skips loudly (in CI, CI=true, it fails instead).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'fleet'))
sys.path.insert(0, os.path.join(REPO, 'tools', 'fleet'))
import fleet_lab  # noqa: E402 pylint: disable=wrong-import-position
import test_configure as configure  # noqa: E402 pylint: disable=wrong-import-position
import test_fleet as fleet  # noqa: E402 pylint: disable=wrong-import-position
import test_project_sync as project_sync  # noqa: E402 pylint: disable=wrong-import-position

HOSTS = 3
CANARY = 'host01'
SWAPPINESS = '/proc/sys/vm/swappiness'
# latency_bench measures this machine, not the fake tree: the shortest run that still goes through every step.
SHORT_BENCHMARK = {'aitune_bench_conditions': ['idle'], 'aitune_bench_duration_s': 0.5, 'aitune_bench_warmup_s': 0.1,
                   'aitune_bench_repetitions': 1, 'aitune_bench_interleave': 1}
# The canary gate over the lab: one short pair, and a threshold noise cannot reach (the fake tree changes nothing this
# machine measures), so the gate is evaluated and passes. Its metric is the agents' steps per second: a
# tail latency of one 0.5 s window under load is unbounded (a CI run saw wake p99 x110 between two identical arms),
# while the steps a window completes cannot fall a hundredfold without the agents being starved outright.
SHORT_GATE = dict(SHORT_BENCHMARK, aitune_bench_conditions=['load'], aitune_gate_interleave=1, aitune_gate_threshold=100,
                  aitune_gate_metric='steps_per_s')

# The module-scoped fixtures of the other AWX tests, shared rather than copied: the synced project and the rendered
# objects of configure.yml.
synced_project = project_sync.synced_project
play = configure.play
objects = configure.objects


def missing_prerequisite():
    if os.geteuid() != 0:
        return 'the fleet lab needs root (root login over ssh)'
    if not os.access(fleet_lab.SSHD, os.X_OK):
        return 'no %s (openssh-server; tools/lab/install-host-deps)' % fleet_lab.SSHD
    return None


class SurveyRefusal(Exception):
    """AWX's answer to a launch whose survey answers do not fit the spec: no job is created."""


class Job(object):
    """A finished ansible-runner job, read from its artifacts as AWX reads them."""

    def __init__(self, artifacts, rc, output):
        self.artifacts = artifacts
        self.rc = rc
        self.output = output
        with open(os.path.join(artifacts, 'status')) as handle:
            self.status = handle.read().strip()
        self.events = []
        for path in glob.glob(os.path.join(artifacts, 'job_events', '*.json')):
            with open(path) as handle:
                self.events.append(json.load(handle))
        self.events.sort(key=lambda event: event['counter'])
        with open(os.path.join(artifacts, 'stdout')) as handle:
            self.stdout = handle.read()

    @property
    def stats(self):
        [stats] = [event['event_data'] for event in self.events if event['event'] == 'playbook_on_stats']
        return stats

    def hosts(self):
        return sorted(self.stats['processed'])

    def results(self, event, task):
        """``{host: res}`` of the ``event`` events of the task named ``task``."""
        return {item['event_data']['host']: item['event_data']['res'] for item in self.events
                if item['event'] == event and item['event_data'].get('task') == task}

    def describe(self):
        return 'status %s, rc %s\n%s' % (self.status, self.rc, self.stdout[-6000:])


class AWX(object):
    """Launches templates as AWX does: survey answers checked against the spec, limits and extra variables only where
    the template prompts for them, and one private data directory per job, run by ansible-runner."""

    def __init__(self, job_root, project, environ, lab, templates):
        self.job_root = job_root
        self.project = project
        self.environ = environ
        self.lab = lab
        self.templates = templates
        self.jobs = 0
        self.timings = []

    def template(self, short_name):
        [template] = [entry for name, entry in self.templates.items() if name.split(' ', 1)[1] == short_name]
        return template

    @staticmethod
    def survey_answers(spec, answers):
        """The survey's variables: each answer checked as AWX checks it on launch, unanswered ones at their default."""
        variables = {}
        for question in spec:
            name = question['variable']
            if name not in answers and 'default' not in question:
                if question.get('required'):
                    raise SurveyRefusal("'%s' value missing" % name)
                continue
            value = answers.get(name, question.get('default'))
            if question['type'] == 'multiplechoice' and value not in question['choices']:
                raise SurveyRefusal("Value %s for '%s' expected to be one of %s." % (value, name, question['choices']))
            variables[name] = value
        return variables

    def launch(self, short_name, survey=None, limit=None, extra_vars=None, check_survey=True):
        template = self.template(short_name)
        survey = dict(survey or {})
        # AWX ignores a limit or extra variables a template does not prompt for; a test relying on them would be wrong.
        assert limit is None or template.get('ask_limit_on_launch'), '%s does not prompt for a limit' % short_name
        assert not extra_vars or template.get('ask_variables_on_launch'), '%s does not prompt for variables' % short_name
        variables = dict(template.get('extra_vars') or {})
        if template.get('survey_enabled'):
            spec = template['survey_spec']['spec']
            variables.update(self.survey_answers(spec, survey) if check_survey else survey)
        variables.update(extra_vars or {})
        return self.run(template, variables, limit)

    def run(self, template, variables, limit):
        self.jobs += 1
        ident = 'job%02d' % self.jobs
        private = os.path.join(self.job_root, ident)
        # The layout AWX builds for a job (awx/main/tasks/jobs.py): the synced project, the inventory, env/ with the
        # extra variables and the environment, and the collections the sync installed beside the project.
        os.makedirs(os.path.join(private, 'env'))
        os.makedirs(os.path.join(private, 'inventory'))
        os.symlink(self.project, os.path.join(private, 'project'))
        variables = dict(variables, awx_job_id=self.jobs, tower_job_id=self.jobs, awx_job_template_name=template['name'],
                         # The benchmark's report lands on the controller; keep it in the job's directory.
                         aitune_reports_dir=os.path.join(private, 'reports'))
        with open(os.path.join(private, 'env', 'extravars'), 'w') as handle:
            json.dump(variables, handle)
        collections = str(self.project.parent / 'requirements_collections')
        with open(os.path.join(private, 'env', 'envvars'), 'w') as handle:
            json.dump({'ANSIBLE_COLLECTIONS_PATH': collections, 'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(private, 'cp'),
                       'ANSIBLE_FORCE_COLOR': 'false', 'ANSIBLE_NOCOLOR': '1', 'JOB_ID': str(self.jobs)}, handle)
        with open(os.path.join(private, 'inventory', 'hosts.json'), 'w') as handle:
            json.dump(self.lab['inventory'], handle)
        argv = [os.path.join(BIN, 'ansible-runner'), 'run', private, '--playbook', template['playbook'], '--ident', ident]
        if limit:
            argv += ['--limit', limit]
        if template.get('diff_mode'):
            argv.append('--cmdline=--diff')
        environ = {key: value for key, value in self.environ.items() if key != 'ANSIBLE_COLLECTIONS_PATH'}
        started = time.time()
        proc = subprocess.run(argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600, check=False)
        self.timings.append(('%s %s' % (template['playbook'], limit or 'all'), time.time() - started))
        return Job(os.path.join(private, 'artifacts', ident), proc.returncode, proc.stdout)


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    missing = missing_prerequisite()
    if missing:
        if os.environ.get('CI') == 'true':
            pytest.fail('the AWX job tests must run in CI: ' + missing)
        pytest.skip('LOUD SKIP: ' + missing)
    state_dir = str(tmp_path_factory.mktemp('fleet') / 'lab')
    hosts = fleet_lab.up(state_dir, HOSTS)
    try:
        with open(os.path.join(state_dir, fleet_lab.INVENTORY)) as handle:
            inventory = yaml.safe_load(handle)
        names = sorted(inventory['all']['hosts'])
        # AWX's fleet inventory comes from the project's inventory file, which has a canary group; the lab's has none.
        inventory['all']['children'] = {'canary': {'hosts': {CANARY: {}}}}
        roots = {host['name']: host['root'] for host in hosts}
        yield {'dir': state_dir, 'inventory': inventory, 'names': names, 'roots': roots,
               'pristine': {name: fleet.snapshot(roots[name]) for name in names}}
    finally:
        fleet_lab.down(state_dir)
        assert fleet.lab_sshd_pids(state_dir) == [], 'fleet-lab down left sshd running'
        assert not os.path.lexists(state_dir)


@pytest.fixture(scope='module')
def awx(lab, synced_project, objects, tmp_path_factory):
    project, _collections, environ = synced_project
    controller = AWX(str(tmp_path_factory.mktemp('awx-jobs')), project, environ, lab, objects['job_template'])
    yield controller
    print('\nAWX jobs through ansible-runner: %s' % ', '.join('%s %.1f s' % item for item in controller.timings))


def changed_trees(lab):
    return sorted(name for name in lab['names'] if fleet.snapshot(lab['roots'][name]) != lab['pristine'][name])


def read(lab, name, host_path):
    with open(os.path.join(lab['roots'][name], host_path.lstrip('/'))) as handle:
        return handle.read().strip()


def assert_clean_success(job, hosts, changed=None):
    assert job.status == 'successful' and job.rc == 0, job.describe()
    stats = job.stats
    assert job.hosts() == sorted(hosts + ['localhost']) or job.hosts() == sorted(hosts), job.hosts()
    assert stats['failures'] == {} and stats['dark'] == {}, stats
    if changed is not None:
        assert {host: stats['changed'].get(host, 0) for host in hosts} == dict.fromkeys(hosts, changed), stats
    assert 'Traceback' not in job.stdout


def restore_to_stock(awx, lab):
    job = awx.launch('Restore')
    assert_clean_success(job, lab['names'])
    assert changed_trees(lab) == []


def test_tune_with_each_survey_mode_from_stock(awx, lab):
    [question] = awx.template('Tune')['survey_spec']['spec']
    for mode in question['choices']:
        assert changed_trees(lab) == [], 'mode %s must start from stock' % mode
        job = awx.launch('Tune', survey={'mode': mode})
        assert_clean_success(job, lab['names'])
        assert all(job.stats['changed'][name] >= 1 for name in lab['names']), job.stats
        applied = job.results('runner_on_ok', 'Apply the profile in one module call (it leaves a host that already '
                                              'holds it alone after one read)')
        assert sorted(applied) == lab['names'] and all(res['changed'] for res in applied.values())
        summaries = job.results('runner_on_ok', 'Summarise the run')
        assert sorted(summaries) == lab['names']
        assert changed_trees(lab) == lab['names']

        # Converged: a second job with the survey's default answer changes nothing (once, to keep the job short).
        if mode == question['default']:
            again = awx.launch('Tune', survey={'mode': mode})
            assert_clean_success(again, lab['names'], changed=0)

        restore_to_stock(awx, lab)


def workflow_chain(workflow):
    """The nodes in the order AWX runs them: from the node no other node follows, along success_nodes."""
    nodes = {node['identifier']: node for node in workflow['workflow_nodes']}
    following = {successor['identifier'] for node in nodes.values()
                 for successor in node.get('related', {}).get('success_nodes', [])}
    [identifier] = [name for name in nodes if name not in following]
    chain = []
    while identifier:
        chain.append(nodes[identifier])
        successors = nodes[identifier].get('related', {}).get('success_nodes', [])
        assert len(successors) <= 1, 'a chain, one success node each'
        identifier = successors[0]['identifier'] if successors else None
    return chain


def test_canary_rollout_workflow_runs_its_nodes_in_order(awx, lab, objects):
    [workflow] = objects['workflow_job_template'].values()
    # The workflow's survey answer reaches every node as an extra variable; AWX checks it against the spec first.
    mode_vars = AWX.survey_answers(workflow['survey_spec']['spec'], {'mode': 'balanced'})
    canaries = [CANARY]
    fleet_hosts = [name for name in lab['names'] if name not in canaries]
    expected_hosts = {'canary': canaries, 'all:!canary': fleet_hosts}
    ran = []
    for node in workflow_chain(workflow):
        extra = dict(node.get('extra_data') or {})
        if extra.get('aitune_gate'):
            extra.update(SHORT_GATE)
        short_name = node['unified_job_template']['name'].split(' ', 1)[1]
        job = awx.launch(short_name, survey=mode_vars, limit=node.get('limit'), extra_vars=extra or None)
        ran.append((node['identifier'], node.get('limit')))
        # A node's failure ends the chain: only success_nodes follow.
        assert_clean_success(job, expected_hosts[node['limit']])
        if extra.get('aitune_gate'):
            verdicts = job.results('runner_on_ok', 'Let the rollout go on')
            assert sorted(verdicts) == canaries, job.describe()
            assert changed_trees(lab) == canaries
        if short_name == 'Verify':
            assert sorted(job.results('runner_on_ok', 'Report drift')) == canaries
    assert ran == [('canary-tune', 'canary'), ('canary-verify', 'canary'), ('fleet-tune', 'all:!canary')]
    assert changed_trees(lab) == lab['names']
    assert all(read(lab, name, SWAPPINESS) == '10' for name in lab['names'])


def test_verify_passes_then_fails_the_drifted_host_as_awx_shows_it(awx, lab):
    job = awx.launch('Verify')
    assert_clean_success(job, lab['names'], changed=0)

    drifted = lab['names'][2]
    with open(os.path.join(lab['roots'][drifted], SWAPPINESS.lstrip('/')), 'w') as handle:
        handle.write('33\n')
    job = awx.launch('Verify')
    # The job fails, its stats name the drifted host alone, and that host's failed event says what drifted.
    assert job.status == 'failed' and job.rc != 0, job.describe()
    assert job.stats['failures'] == {drifted: 1}, job.stats
    [failed] = [event for event in job.events if event['event'] == 'runner_on_failed']
    assert failed['event_data']['host'] == drifted
    message = failed['event_data']['res']['msg']
    assert '1 setting(s) drifted' in message and 'vm.swappiness' in message, message
    assert 'Traceback' not in job.stdout


def test_benchmark_with_the_shortest_settings_on_one_host(awx, lab):
    host = lab['names'][1]
    state_before = os.path.exists('/var/lib/aitune')
    job = awx.launch('Benchmark', survey={'mode': 'balanced'}, limit=host, extra_vars=SHORT_BENCHMARK)
    assert_clean_success(job, [host])
    # The agent's calibration is the lab host's, in its tree; this machine's state directory is left as it was.
    assert os.path.exists('/var/lib/aitune') == state_before
    assert os.path.isfile(os.path.join(lab['roots'][host], 'var/lib/aitune/bench-calibration.json'))
    measured = [event for event in job.events if event['event'] == 'runner_on_ok'
                and event['event_data'].get('task') in ('Measure the stock arm', "Measure the mode's arm")]
    # One round: a stock arm and a mode arm, in the plan's shuffled order.
    assert sorted(event['event_data']['task'] for event in measured) == ["Measure the mode's arm", 'Measure the stock arm']
    assert sorted(job.results('runner_on_ok', 'Write the report on the controller')) == [host]
    reports = glob.glob(os.path.join(job.artifacts, '..', '..', 'reports', '*', 'report.json'))
    assert len(reports) == 1, reports


def test_restore_puts_every_tree_back_byte_for_byte(awx, lab):
    assert changed_trees(lab) != []
    restore_to_stock(awx, lab)


def test_an_unknown_mode_is_refused_before_any_host_is_touched(awx, lab):
    # At launch AWX checks the answer against the survey's choices and creates no job.
    with pytest.raises(SurveyRefusal, match="Value turbo for 'mode' expected to be one of"):
        awx.launch('Tune', survey={'mode': 'turbo'})

    # Where the value gets past the survey (an API launch of a template whose survey was changed or disabled), the
    # playbook refuses it on localhost: the job fails with the reason, and no fleet host is reached.
    job = awx.launch('Tune', survey={'mode': 'turbo'}, check_survey=False)
    assert job.status == 'failed' and job.rc != 0, job.describe()
    assert job.hosts() == ['localhost'] and job.stats['failures'] == {'localhost': 1}, job.stats
    [refusal] = [event['event_data'] for event in job.events if event['event'] == 'runner_on_failed']
    assert 'mode must be one of conservative, balanced or aggressive; got turbo' in refusal['res']['msg']
    assert not any(event['event_data'].get('host') in lab['names'] for event in job.events)
    assert 'Traceback' not in job.stdout
    assert changed_trees(lab) == []
