# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""awx/configure.yml cannot run against a real AWX here. These tests check what can be checked without one: that
ansible-playbook accepts it with the pinned awx.awx, and that what it configures fits the project - the playbooks the
templates name exist, the surveys offer what the playbooks accept, and the workflow's nodes can take the limits and
variables it gives them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import sys

import jinja2
import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(REPO, 'awx', 'configure.yml')


@pytest.fixture(scope='module')
def awx_collections():
    """The collections path with the pinned awx.awx (scripts/awx-collections fetches it once and caches it)."""
    return subprocess.run([os.path.join(REPO, 'scripts', 'awx-collections')], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope='module')
def play():
    with open(PLAYBOOK, encoding='utf-8') as handle:
        return yaml.safe_load(handle)[0]


def render(value, variables):
    """The task arguments as AWX receives them: the play's variables substituted (they may refer to each other)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def resolve(item):
        if isinstance(item, dict):
            return {key: resolve(entry) for key, entry in item.items()}
        if isinstance(item, list):
            return [resolve(entry) for entry in item]
        if isinstance(item, str) and '{{' in item:
            text = item.strip()
            if text.startswith('{{') and text.endswith('}}') and text.count('{{') == 1:
                return resolve(environment.compile_expression(text[2:-2].replace(' or omit', ''))(**variables))
            return environment.from_string(item).render(**variables)
        return item
    return resolve(value)


@pytest.fixture(scope='module')
def objects(play):
    """Per awx.awx module: the rendered arguments of each task that uses it, by object name."""
    variables = dict(play['vars'], aitune_awx_scm_url='https://git.example.com/ops/aitune-kernel.git')
    result = {}
    for task in play['tasks']:
        for module, arguments in task.items():
            if module.startswith('awx.awx.'):
                arguments = render(arguments, variables)
                result.setdefault(module.split('.')[-1], {})[arguments['name']] = arguments
    return result


def syntax_check_environment(collections_path, ansible_home):
    """ansible-playbook's environment: the given collections, and Ansible's temporary files kept out of ~/.ansible."""
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_HOME=str(ansible_home))


def test_syntax_check_with_the_pinned_awx_collection(awx_collections, tmp_path):
    env = syntax_check_environment(awx_collections, tmp_path / 'ansible-home')
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '--syntax-check', PLAYBOOK], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_syntax_check_fails_without_awx_collection(tmp_path):
    """The check above means something: without awx.awx the same playbook is refused."""
    env = syntax_check_environment(str(tmp_path), tmp_path / 'ansible-home')
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '--syntax-check', PLAYBOOK], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_job_templates_run_root_wrappers_of_collection_playbooks(objects):
    templates = objects['job_template']
    assert {name.split(' ', 1)[1] for name in templates} == {'Tune', 'Verify', 'What changed', 'Benchmark', 'Restore'}
    for name, template in templates.items():
        wrapper = os.path.join(REPO, template['playbook'])
        assert os.path.dirname(template['playbook']) == '', name + ': AWX picks playbooks from the project root'
        if template['playbook'] == 'benchmark.yml' and not os.path.exists(wrapper):
            continue
        with open(wrapper, encoding='utf-8') as handle:
            imported = yaml.safe_load(handle)[0]['ansible.builtin.import_playbook']
        assert imported == 'aitune.kernel.' + template['playbook'][:-4]
        assert os.path.isfile(os.path.join(REPO, 'playbooks', template['playbook']))
        assert template['project'] in objects['project']
        assert template['inventory'] in objects['inventory']
        assert set(template['credentials']) <= set(objects['credential'])
        assert template['execution_environment'] in objects['execution_environment']


def mode_roles():
    return {name for name in ('conservative', 'balanced', 'aggressive') if os.path.isdir(os.path.join(REPO, 'roles', name))}


def test_tune_survey_offers_every_mode_and_prompts_for_limit_and_check_mode(objects):
    tune = next(template for name, template in objects['job_template'].items() if name.endswith(' Tune'))
    [question] = tune['survey_spec']['spec']
    assert question['variable'] == 'mode' and question['type'] == 'multiplechoice' and question['required']
    assert set(question['choices']) == mode_roles() == {'conservative', 'balanced', 'aggressive'}
    assert question['default'] in question['choices']
    assert tune['survey_enabled'] and tune['ask_limit_on_launch'] and tune['ask_job_type_on_launch']


def test_restore_survey_offers_the_restore_module_scopes(objects):
    restore = next(template for name, template in objects['job_template'].items() if name.endswith(' Restore'))
    [question] = restore['survey_spec']['spec']
    with open(os.path.join(REPO, 'plugins', 'modules', 'restore.py'), encoding='utf-8') as handle:
        source = handle.read()
    documentation = yaml.safe_load(source.split("DOCUMENTATION = r'''")[1].split("'''")[0])
    assert question['variable'] == 'aitune_restore_scope'
    assert set(question['choices']) == set(documentation['options']['scope']['choices'])
    assert question['default'] == documentation['options']['scope']['default']


def test_verify_runs_daily_and_fails_on_drift(objects):
    verify = next(template for name, template in objects['job_template'].items() if name.endswith(' Verify'))
    assert verify['extra_vars'] == {'aitune_fail_on_drift': True}
    [schedule] = [entry for entry in objects['schedule'].values() if entry['unified_job_template'] == verify['name']]
    assert 'FREQ=DAILY' in schedule['rrule'] and schedule['enabled']


def test_workflow_gates_the_fleet_on_the_canaries(objects):
    [workflow] = objects['workflow_job_template'].values()
    nodes = {node['identifier']: node for node in workflow['workflow_nodes']}
    templates = objects['job_template']
    for node in nodes.values():
        template = templates[node['unified_job_template']['name']]
        for successor in node.get('related', {}).get('success_nodes', []):
            assert successor['identifier'] in nodes
        # AWX drops a node's limit or variables unless its template prompts for them.
        assert 'limit' not in node or template['ask_limit_on_launch']
        assert 'extra_data' not in node or template['ask_variables_on_launch']
    chain, identifier = [], 'canary-tune'
    while identifier:
        chain.append(identifier)
        successors = nodes[identifier].get('related', {}).get('success_nodes', [])
        identifier = successors[0]['identifier'] if successors else None
    assert chain == ['canary-tune', 'canary-verify', 'fleet-tune']
    assert nodes['canary-tune']['extra_data'] == {'aitune_gate': True}
    assert nodes['canary-tune']['limit'] == nodes['canary-verify']['limit'] != nodes['fleet-tune']['limit']
    assert workflow['survey_spec']['spec'][0]['variable'] == 'mode'
