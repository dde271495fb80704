# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""What a fleet run costs the controller: a benchmark over the fleet lab, not a test.

For each fleet size N and each forks setting, on a fresh lab of N hosts (every run starts from stock trees), the wall
time and the controller's CPU time (ansible-playbook and everything it waited for: its forks and their ssh clients;
not the hosts' sshd sessions, which stand for the hosts) of

- a one-task ping playbook over the same hosts,
- tune.yml -e mode=balanced, first run,
- tune.yml -e mode=balanced, second run (nothing to change),

each repeated --runs times, the medians kept, in a JSON file and a Markdown table with the time per host. A variant
(--variant NAME=ENV,...) runs the same with ansible settings given as environment variables, such as pipelining or
ControlPersist, beside the default:

    tools/fleet/fleet-cost --hosts 1,10,50,100 --forks 10,50 --runs 3 \\
        --variant pipelining=ANSIBLE_PIPELINING=true --out reports/fleet-cost
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import fleet_lab

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
PING_PLAY = [{'name': 'Reach every host once', 'hosts': 'all', 'gather_facts': False,
              'tasks': [{'name': 'Ping', 'ansible.builtin.ping': {}}]}]
STEPS = (('ping', ['{ping}']), ('tune first run', ['tune.yml', '-e', 'mode=balanced']),
         ('tune second run', ['tune.yml', '-e', 'mode=balanced']))


def machine_cpu_seconds():
    """CPU time this machine spent busy (every CPU, user and system, /proc/stat), in seconds."""
    with open('/proc/stat') as handle:
        fields = [int(word) for word in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / float(os.sysconf('SC_CLK_TCK'))


def is_ssh_of(words, control_dir):
    return os.path.basename(words[0]) == b'ssh' and any(control_dir.encode() in word for word in words)


def stop_ssh_masters(control_dir):
    """Stop the ssh master processes whose control sockets are in ``control_dir``, and remove it."""
    masters = [int(name) for name in os.listdir('/proc') if name.isdigit()
               and is_ssh_of(fleet_lab.command_line(int(name)) or [b''], control_dir)]
    fleet_lab.stop_pids(masters, grace=2.0)
    shutil.rmtree(control_dir, ignore_errors=True)


def timed_playbook(inventory, args, forks, environ):
    """(wall s, controller CPU s, hosts' CPU s, rc) of one ansible-playbook run. The controller's CPU is the run's and
    everything it reaped; the hosts' is the rest of what the machine did meanwhile: the sshd sessions and the modules
    they ran, which on a real fleet run on the hosts (and, on a quiet machine, little else)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, '-f', str(forks)] + args
    # Every run starts cold, as a fleet run does: no ssh master of an earlier run (ControlPersist keeps them 60 s) may
    # carry it, so each gets its own control directory, and the masters it leaves are stopped once it is timed.
    control_dir = tempfile.mkdtemp(prefix='cp-', dir=os.path.dirname(inventory))
    environ = dict(environ, ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir)
    started, busy = time.monotonic(), machine_cpu_seconds()
    with open(os.devnull, 'w') as null:
        proc = subprocess.Popen(argv, cwd=REPO, env=environ, stdout=null, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall, busy = time.monotonic() - started, machine_cpu_seconds() - busy
    stop_ssh_masters(control_dir)
    controller = usage.ru_utime + usage.ru_stime
    return wall, controller, max(busy - controller, 0.0), os.waitstatus_to_exitcode(status)


def measure(count, forks_list, runs, variants, scratch):
    ping = os.path.join(scratch, 'ping.yml')
    with open(ping, 'w') as handle:
        json.dump(PING_PLAY, handle)
    rows = []
    for variant, settings in variants:
        environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1', **settings)
        for forks in forks_list:
            figures = {name: {'wall': [], 'cpu': [], 'hosts_cpu': []} for name, _args in STEPS}
            for _run in range(runs):
                state_dir = os.path.join(scratch, 'lab')
                fleet_lab.up(state_dir, count)
                try:
                    inventory = os.path.join(state_dir, fleet_lab.INVENTORY)
                    for name, args in STEPS:
                        args = [ping if arg == '{ping}' else arg for arg in args]
                        wall, cpu, hosts_cpu, rc = timed_playbook(inventory, args, forks, environ)
                        if rc != 0:
                            raise SystemExit('fleet-cost: %s over %d hosts (forks %d, %s) failed with rc %d; run it '
                                             'by hand over %s to see why' % (name, count, forks, variant, rc, inventory))
                        figures[name]['wall'].append(wall)
                        figures[name]['cpu'].append(cpu)
                        figures[name]['hosts_cpu'].append(hosts_cpu)
                finally:
                    fleet_lab.down(state_dir, quiet=True)
            row = {'hosts': count, 'forks': forks, 'variant': variant, 'runs': runs}
            for name, values in figures.items():
                row[name] = {'wall_s': round(statistics.median(values['wall']), 2),
                             'wall_min_s': round(min(values['wall']), 2), 'wall_max_s': round(max(values['wall']), 2),
                             'cpu_s': round(statistics.median(values['cpu']), 2),
                             'hosts_cpu_s': round(statistics.median(values['hosts_cpu']), 2)}
            rows.append(row)
            print('%s' % json.dumps(row), flush=True)
    return rows


def markdown(rows):
    lines = ['| hosts | forks | variant | ping s | tune first s (× ping) | tune second s (× ping) | first s/host | '
             'controller CPU s (ping / first / second) | hosts\' CPU s (ping / first / second) |',
             '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        ping, first, second = row['ping'], row['tune first run'], row['tune second run']
        lines.append('| %d | %d | %s | %.1f | %.1f (×%.2f) | %.1f (×%.2f) | %.2f | %.1f / %.1f / %.1f | '
                     '%.1f / %.1f / %.1f |' % (
                         row['hosts'], row['forks'], row['variant'], ping['wall_s'], first['wall_s'],
                         first['wall_s'] / ping['wall_s'], second['wall_s'], second['wall_s'] / ping['wall_s'],
                         first['wall_s'] / row['hosts'], ping['cpu_s'], first['cpu_s'], second['cpu_s'],
                         ping['hosts_cpu_s'], first['hosts_cpu_s'], second['hosts_cpu_s']))
    return '\n'.join(lines) + '\n'


def numbers(text):
    return [int(word) for word in text.split(',') if word.strip()]


def variant(text):
    """``NAME=VAR=VALUE,VAR=VALUE``: a name and the environment it runs with."""
    name, _sep, rest = text.partition('=')
    settings = dict(item.split('=', 1) for item in rest.split(',') if '=' in item)
    if not name or not settings:
        raise argparse.ArgumentTypeError('a variant is NAME=VAR=VALUE[,VAR=VALUE...], got %r' % text)
    return name, settings


def main(argv=None):
    parser = argparse.ArgumentParser(prog='fleet-cost', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=numbers, default=[1, 10, 50, 100], help='fleet sizes, comma-separated')
    parser.add_argument('--forks', type=numbers, default=[10, 50], help='forks settings, comma-separated')
    parser.add_argument('--runs', type=int, default=3, help='runs of each, for the medians')
    parser.add_argument('--variant', type=variant, action='append', default=[],
                        help='NAME=VAR=VALUE,...: also measure with these ansible settings')
    parser.add_argument('--out', default=os.path.join(REPO, 'reports', 'fleet-cost'), help='where the table goes')
    args = parser.parse_args(argv)
    variants = [('default', {})] + args.variant
    scratch = tempfile.mkdtemp(prefix='aitune-fleet-cost-')
    try:
        rows = []
        for count in args.hosts:
            rows += measure(count, args.forks, args.runs, variants, scratch)
    finally:
        fleet_lab.down(os.path.join(scratch, 'lab'), quiet=True)
        shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    with open(os.path.join(args.out, 'fleet-cost-%s.json' % stamp), 'w') as handle:
        json.dump(rows, handle, indent=1)
    table = markdown(rows)
    with open(os.path.join(args.out, 'fleet-cost-%s.md' % stamp), 'w') as handle:
        handle.write(table)
    print(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
