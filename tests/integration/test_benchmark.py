# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""benchmark.yml and tune.yml's canary gate on this machine's real kernel, as a user runs them, with the shortest
measurement windows latency_bench takes: the report files and the arms' placement, bad input refused before the host
is touched, the stock-only run without root, and the gate stopping (and passing) a rollout over two inventory hosts
that are both this machine."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import struct

import pytest

from conftest import BIN, REPO
from test_playbooks import host_state

# One short window per arm: enough to exercise every step, far too short for figures.
SHORT = ['-e', 'aitune_bench_duration_s=0.5', '-e', 'aitune_bench_warmup_s=0', '-e', 'aitune_bench_repetitions=1']
STATE_DIR = '/var/lib/aitune'
QUOTA_1_PERCENT = json.dumps({'aitune_overrides': {'cgroup': {'slices': {'aitune-latency.slice': {'cpu_quota_percent': 1}}}}})


def playbook(*args, **kwargs):
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    environ.update(kwargs.get('env') or {})
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook')] + list(args), cwd=REPO, env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600,
                          check=False, preexec_fn=kwargs.get('preexec_fn'))
    return proc.returncode, proc.stdout


def recap(out, host):
    match = re.search(r'^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % re.escape(host), out, re.M)
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups()))) if match else None


def only_report(reports):
    dirs = glob.glob(os.path.join(str(reports), '*'))
    assert len(dirs) == 1, dirs
    return dirs[0]


def assert_no_process_left(arms):
    for arm in arms:
        assert arm['pids']['remaining'] == []
        for started in arm['pids']['started']:
            # A PID may be reused by then, but not by a process of the benchmark's (its workers run python -c).
            try:
                with open('/proc/%d/cmdline' % started['pid'], 'rb') as handle:
                    assert b'aitune' not in handle.read(), started
            except (IOError, OSError):
                pass


@pytest.fixture
def untouched(run):
    return host_state(run)


@pytest.fixture
def two_hosts(tmp_path):
    """An inventory of a canary and a fleet host, both this machine through the local connection."""
    path = tmp_path / 'hosts.yml'
    host = {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}
    path.write_text(json.dumps({'all': {'hosts': {'canary': host, 'fleet': host}, 'vars': {'aitune_become': False}}}))
    return str(path)


def test_benchmark_writes_the_report_from_interleaved_placed_arms_and_restores(run, untouched, tmp_path):
    assert not os.path.exists(STATE_DIR)
    reports = tmp_path / 'reports'
    code, out = playbook('benchmark.yml', '-e', 'mode=balanced', '-e', 'aitune_bench_interleave=3',
                         '-e', 'aitune_bench_seed=4', '-e', 'aitune_bench_restore=true',
                         '-e', 'aitune_reports_dir=%s' % reports, *SHORT)
    assert code == 0, out
    report_dir = only_report(reports)
    assert sorted(os.listdir(report_dir)) == ['report.html', 'report.json', 'report.md']
    with open(os.path.join(report_dir, 'report.json')) as handle:
        report = json.load(handle)
    arms = report['arms']['localhost']
    # The native worker where this machine has a C compiler, the Python one otherwise; the scenario says which.
    worker = arms[0]['worker']
    assert worker == ('native' if shutil.which('cc') or shutil.which('gcc') else 'python')
    loaded = 'ring-%s/load' % worker
    with open(os.path.join(report_dir, 'report.md')) as handle:
        markdown = handle.read()
    assert '| Metric | Before | After | Ratio [95 % CI] | Pairs better | Verdict |' in markdown
    assert '### %s: balanced vs stock (3 pairs)' % loaded in markdown
    assert '3 rounds, every arm once per round in an order shuffled with seed 4' in markdown
    with open(os.path.join(report_dir, 'report.html')) as handle:
        assert handle.read().count('<svg') >= 3  # two distributions and at least one ratio chart

    # Each round runs stock and balanced once, in the plan's shuffled order (seed 4), idle then load in each arm.
    order = report['plan']['order']
    assert report['plan']['seed'] == 4 and sorted(map(sorted, order)) == [['balanced', 'stock']] * 3
    assert [(a['pair'], a['label'], a['condition']) for a in arms] == [
        (pair, label, condition) for pair, labels in enumerate(order, start=1) for label in labels
        for condition in ('idle', 'load')]
    # The stock arm runs where Ansible runs; the tuned arm where balanced places latency services, with its slack,
    # and its CPU hogs in the batch slice.
    for arm in arms:
        workers, load = arm['placement']['workers'], arm['placement']['load']
        if arm['label'] == 'stock':
            assert workers['method'] is None and load['method'] is None
            continue
        assert workers['timer_slack_ns'] == 1
        assert (workers['slice'] or workers['cgroup']).endswith('aitune-latency.slice')
        if arm['condition'] == 'load':
            assert (load['slice'] or load['cgroup']).endswith('aitune-batch.slice')
        assert workers['skipped'] == [] and load['skipped'] == []
    assert_no_process_left(arms)
    assert set(report['hosts']['localhost'][loaded]['comparisons']['balanced']['pairs']) == {1, 2, 3}

    assert '%s balanced vs stock, 3 pair(s): wake_p50_us' % loaded in out
    assert 'host back at stock' in out
    assert host_state(run) == untouched
    # Seed 4 ends on a stock arm, which keeps the calibration: the closing restore still removes it with the rest.
    assert order[-1][-1] == 'stock'
    assert not os.path.exists(STATE_DIR), os.listdir(STATE_DIR)


@pytest.mark.parametrize('extra, message', [
    (['-e', 'mode=turbo'], 'value of benchmark_modes must be one or more of: conservative, balanced, aggressive'),
    (['-e', 'aitune_bench_interleave=0'], 'aitune_bench_interleave must be between 1 and 20, got 0'),
    (['-e', 'aitune_bench_duration_s=0.1'], 'aitune_bench_duration_s must be between 0.5 and 600, got 0.1'),
    (['-e', 'aitune_bench_repetitions=51'], 'aitune_bench_repetitions must be between 1 and 50, got 51'),
    (['-e', 'aitune_bench_conditions=idle,busy'], 'Got no match for: busy'),
    (['-e', 'aitune_bench_tools=agent,endpoint'], 'the endpoint tool needs aitune_bench_endpoint with url and model'),
])
def test_bad_settings_fail_before_any_host_is_touched(run, untouched, extra, message):
    code, out = playbook('benchmark.yml', '-e', 'mode=balanced', *extra)
    assert code != 0
    assert message in out, out
    assert 'Benchmark stock against the requested modes' not in out
    assert host_state(run) == untouched


def test_unreachable_endpoint_fails_in_the_stock_arm_before_a_mode_is_applied(run, untouched, tmp_path):
    endpoint = json.dumps({'aitune_bench_tools': ['endpoint'], 'aitune_bench_conditions': ['idle'],
                           'aitune_bench_endpoint': {'url': 'http://127.0.0.1:9', 'model': 'm', 'connect_timeout_s': 1}})
    # Seed 0 puts round 1's stock arm first; under another order the mode's arm would apply the mode first and fail
    # there, leaving the host in the mode as a single-mode run does (the failure message says so).
    code, out = playbook('benchmark.yml', '-e', 'mode=balanced', '-e', endpoint, '-e', 'aitune_bench_seed=0', '-e',
                         'aitune_reports_dir=%s' % (tmp_path / 'reports'), *SHORT)
    assert code != 0
    assert 'The benchmark failed at round 1, stock arm' in out, out
    assert '127.0.0.1:9' in out and 'The host is at stock.' in out
    assert 'Apply the mode as tune.yml does' not in out
    assert host_state(run) == untouched


LLAMA_PYTHON = os.path.join(REPO, '.venv-llama', 'bin', 'python')
TINY_MODEL = os.path.join(REPO, '.build', 'bench', 'aitune-tiny-llama.gguf')


def llama_processes():
    """PIDs of llama.cpp servers and batch jobs still running on this machine."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as handle:
                    command = handle.read()
            except (IOError, OSError):
                continue
            if b'llama_cpp' in command or b'from llama_cpp import' in command:
                found.append(int(name))
    return found


@pytest.fixture
def llama_server():
    """The llama.cpp server and model scripts/setup-llama-server builds (the README's test command runs it first)."""
    if not (os.path.exists(LLAMA_PYTHON) and os.path.exists(TINY_MODEL)):
        pytest.fail('no llama.cpp server in this checkout: run scripts/setup-llama-server')
    assert llama_processes() == []


def test_a_real_llama_cpp_server_and_agent_sessions_run_placed_in_every_arm(run, untouched, tmp_path, llama_server):
    reports = tmp_path / 'reports'
    tools = json.dumps({'aitune_bench_tools': ['server', 'agent_session'], 'aitune_bench_load_job': 'generate',
                        'aitune_bench_agent_session': {'sessions': 2}})
    code, out = playbook('benchmark.yml', '-e', 'aitune_bench_modes=balanced', '-e', tools, '-e', 'aitune_bench_seed=3',
                         '-e', 'aitune_bench_restore=true', '-e', 'aitune_reports_dir=%s' % reports, *SHORT)
    assert code == 0, out
    # Checked once at stock before the first arm: one request, the sessions' tool calls, the batch job's model.
    assert re.search(r'TASK \[aitune.kernel.benchmark : Check that the inference server starts and answers, at stock\]'
                     r'(.|\n)*?ok: \[localhost\] => \(item=server/preflight\)', out), out
    report_dir = only_report(reports)
    with open(os.path.join(report_dir, 'report.json')) as handle:
        report = json.load(handle)
    arms = report['arms']['localhost']
    assert sorted({(a['label'], a['tool'], a['condition']) for a in arms}) == sorted(
        (label, tool, condition) for label in ('balanced', 'stock') for tool in ('agent_session', 'server')
        for condition in ('idle', 'load'))
    for arm in arms:
        server, metrics = arm['server'], arm['summary']['metrics']
        # llama.cpp's server answered, named its model, and was stopped by its PID at the end of the call.
        assert server['argv'][:3] == [LLAMA_PYTHON, '-m', 'llama_cpp.server'], server
        assert server['stopped_by'] == 'SIGTERM' and server['model'], server
        if arm['tool'] == 'server':
            assert metrics['ttft_p99_ms']['median'] > 0 and metrics['requests_failed']['median'] == 0
        else:
            assert metrics['session_steps']['median'] > 0 and metrics['session_errors']['median'] == 0
            assert 0 < metrics['session_server_wait_pct']['median'] < 100
        if arm['condition'] == 'load':
            # The batch job is llama.cpp generating offline; what it got done is in every loaded arm. Under a mode it
            # may get next to nothing in a half-second window beside sessions that never pause, so only the stock
            # arm, where it competes as an equal, must have generated.
            assert metrics['batch_tokens_per_s']['median'] >= 0 and metrics['batch_cpu_pct']['median'] >= 0
            if arm['label'] == 'stock':
                assert metrics['batch_tokens_per_s']['median'] > 0
            assert arm['placement']['load']['batch_job'].startswith('llama.cpp generation')
        workers, load = arm['placement']['workers'], arm['placement']['load']
        if arm['label'] == 'balanced':
            # The server and the sessions run where balanced puts latency services; the batch job in the batch slice.
            assert (workers['slice'] or workers['cgroup']).endswith('aitune-latency.slice')
            assert workers['timer_slack_ns'] == 1
            if arm['condition'] == 'load':
                assert (load['slice'] or load['cgroup']).endswith('aitune-batch.slice')
        else:
            assert workers['method'] is None
    assert_no_process_left(arms)
    assert llama_processes() == []
    with open(os.path.join(report_dir, 'report.md')) as handle:
        markdown = handle.read()
    assert '### server/load: balanced vs stock (1 pair)' in markdown
    assert '### agent_session/load: balanced vs stock (1 pair)' in markdown
    assert host_state(run) == untouched
    assert not os.path.exists(STATE_DIR)


@pytest.mark.parametrize('server, message', [
    ({'model': '/nonexistent/tiny.gguf'}, 'server.model /nonexistent/tiny.gguf: no such file'),
    ({'command': ['/bin/false']}, 'the server command exited (rc=1) before it answered'),
], ids=['missing-model', 'exits-at-once'])
def test_a_server_that_cannot_serve_fails_at_stock_before_any_mode(run, untouched, tmp_path, llama_server, server,
                                                                   message):
    settings = json.dumps({'aitune_bench_tools': ['server'], 'aitune_bench_server': dict(
        {'python': LLAMA_PYTHON, 'model': TINY_MODEL}, **server)})
    code, out = playbook('benchmark.yml', '-e', 'mode=balanced', '-e', settings, '-e',
                         'aitune_reports_dir=%s' % (tmp_path / 'reports'), *SHORT)
    assert code != 0
    assert 'The benchmark failed at the check at stock before the first arm' in out, out
    assert message in out and 'The host is at stock.' in out
    assert 'Apply the mode as tune.yml does' not in out
    assert llama_processes() == []
    assert host_state(run) == untouched


def test_without_root_the_stock_arm_runs_and_the_settings_needing_root_are_listed(run, untouched, tmp_path):
    # The controller stays root (its Python lives under /root); the target side runs as nobody through su, with the
    # system Python, as on a host where the user has no root. The report module still runs on the controller.
    user = pwd.getpwnam('nobody')
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {'localhost': {
        'ansible_connection': 'local', 'ansible_python_interpreter': '/usr/bin/python3', 'ansible_pipelining': True,
        'aitune_become': True, 'ansible_become_method': 'su', 'ansible_become_user': user.pw_name,
        'ansible_become_flags': '-s /bin/sh'}}}}))
    reports = tmp_path / 'reports'
    code, out = playbook('-i', str(inventory), 'benchmark.yml', '-e', 'mode=balanced', '-e', 'aitune_reports_dir=%s' % reports,
                         '-e', 'aitune_bench_conditions=load', *SHORT)
    assert code == 0, out
    assert re.search(r'balanced not measured: applying it needs root; it would change \S*(vm\.swappiness|cgroup\.)', out), out
    assert 'host left as it was: nothing was written' in out
    with open(os.path.join(only_report(reports), 'report.json')) as handle:
        arms = json.load(handle)['arms']['localhost']
    assert [(a['label'], a['condition']) for a in arms] == [('stock', 'load')]
    assert arms[0]['host']['euid'] == user.pw_uid
    assert_no_process_left(arms)
    assert host_state(run) == untouched


def test_gate_stops_the_rollout_at_the_canary_and_restores_it(run, untouched, two_hosts, tmp_path):
    reports = tmp_path / 'reports'
    code, out = playbook('-i', two_hosts, 'tune.yml', '-e', 'mode=balanced', '-e', 'aitune_gate=true',
                         '-e', 'aitune_gate_interleave=2', '-e', 'aitune_reports_dir=%s' % reports,
                         '-e', QUOTA_1_PERCENT, *SHORT)
    assert code != 0
    assert 'Canary gate failed: with the balanced mode, wake_p99_us under load was worse than stock by more than x1.10 ' \
           'with 95 % confidence or in most interleaved pairs: canary: wake_p99_us x' in out, out
    assert 'Canaries restored to stock: canary. The rollout stops here; not touched: fleet.' in out
    assert recap(out, 'canary')['failed'] == 1
    assert recap(out, 'fleet') is None, 'a task ran on the fleet host'
    with open(os.path.join(only_report(reports), 'report.json')) as handle:
        gate = json.load(handle)['gate']
    assert gate['regressed'] and gate['checks'][0]['worse'] == [True, True]
    assert host_state(run) == untouched


def test_gate_passes_and_the_rollout_goes_on(run, untouched, two_hosts, tmp_path):
    # The gate's flow when the mode does not regress: a threshold of x100 no 2-CPU noise reaches.
    reports = tmp_path / 'reports'
    code, out = playbook('-i', two_hosts, 'tune.yml', '-e', 'mode=balanced', '-e', 'aitune_gate=true',
                         '-e', 'aitune_gate_interleave=1', '-e', 'aitune_gate_threshold=100',
                         '-e', 'aitune_reports_dir=%s' % reports, *SHORT)
    try:
        assert code == 0, out
        # The callback folds long messages: match across line breaks.
        assert re.search(r'Canary gate passed: .*?The\s+canaries\s+keep\s+the\s+balanced\s+mode', out, re.S), out
        # The canary was tuned by the gate's last arm and not again; the fleet batch applied the mode.
        assert recap(out, 'canary')['failed'] == 0 and recap(out, 'fleet')['failed'] == 0
        assert re.search(r'TASK \[Apply the mode.s role\] \*+\nskipping: \[canary\]', out), out
        with open('/etc/ansible/facts.d/aitune.fact') as handle:
            assert json.load(handle)['mode'] == 'balanced'
    finally:
        playbook('restore.yml')
    assert host_state(run) == untouched


def test_report_screenshot_script_renders_a_png(tmp_path):
    if not any(shutil.which(name) for name in ('chromium', 'chromium-browser', 'google-chrome')):
        pytest.skip('LOUD SKIP: no chromium to screenshot with')
    html = tmp_path / 'report.html'
    html.write_text('<!DOCTYPE html><html><body><svg width="200" height="100"><rect width="200" height="100" '
                    'fill="#1f77b4"/></svg></body></html>')
    proc = subprocess.run([os.path.join(REPO, 'scripts', 'report-screenshot'), str(html), str(tmp_path / 'shot.png'),
                           '400', '300'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout
    with open(str(tmp_path / 'shot.png'), 'rb') as handle:
        header = handle.read(24)
    assert header[:8] == b'\x89PNG\r\n\x1a\n'
    assert struct.unpack('>II', header[16:24]) == (400, 300)  # the IHDR chunk: the window size asked for


def test_a_failed_server_build_says_where_its_log_is_and_leaves_nothing_half_made(tmp_path):
    # A copy of the checkout's files, a cache of its own holding the locked sdist (so the build must run, and no
    # download is needed), and compilers that fail: the build stops in CMake's first check.
    checkout = tmp_path / 'checkout'
    shutil.copytree(REPO, str(checkout), ignore=shutil.ignore_patterns(
        '.git', '.venv', '.venv-llama', '.build', '.ansible', 'reports', '__pycache__'))
    cache = tmp_path / 'cache'
    sdists = glob.glob(os.path.expanduser('~/.cache/aitune/sdists/*/llama_cpp_python-*.tar.gz'))
    if sdists:
        target = cache / 'aitune' / 'sdists' / os.path.basename(os.path.dirname(sdists[0]))
        target.mkdir(parents=True)
        shutil.copy(sdists[0], str(target))
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    environ = dict(os.environ, XDG_CACHE_HOME=str(cache), TMPDIR=str(temporary), CC='/bin/false', CXX='/bin/false')
    proc = subprocess.run([str(checkout / 'scripts' / 'setup-llama-server')], env=environ, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=900, check=False)
    assert proc.returncode == 1, proc.stdout
    log = checkout / '.build' / 'llama-cpp-python-build.log'
    assert re.search(r'^setup-llama-server: building llama-cpp-python \S+ failed after \d+ s; see %s$'
                     % re.escape(str(log)), proc.stdout, re.M), proc.stdout
    assert log.exists()
    # No environment, no stamp, no cache entry, no temporary directory.
    assert not (checkout / '.venv-llama').exists()
    assert not os.path.exists(str(cache / 'aitune' / 'wheels')) or os.listdir(str(cache / 'aitune' / 'wheels')) == []
    assert os.listdir(str(temporary)) == []
