# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""A fleet of simulated hosts on this machine, for tests and benchmarks only (docs/fleet.md).

``up N`` gives each host its own fake /proc, /sys and /etc tree, built from tests/unit/fixtures/trees in a round-robin
mix of kernel generations, CPU counts and NUMA layouts, and its own sshd on 127.0.0.1 (one port per host, key-only
root login). The inventory it writes points each host's modules at its tree through aitune_test_root, so the hosts
share no state, and none of them is this machine's real kernel. ``down`` stops every sshd it started (checked by
its command line before it is signalled) with the sessions below it, and removes the state directory, keys included.

Everything lives in the state directory (default .build/fleet): keys, sshd_config, known_hosts, the inventory, and
per host its tree, sshd pid file and log. Needs root (sshd's root login is how Ansible reaches the hosts) and
OpenSSH's sshd and ssh-keygen.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
DEFAULT_DIR = os.path.join(REPO, '.build', 'fleet')
SSHD = '/usr/sbin/sshd'
STATE_FILE = 'lab.json'
INVENTORY = 'inventory.yml'
CONFIG = 'sshd_config'
# sshd refuses to start without its privilege separation directory, which the ssh service makes at boot; a machine
# that never ran the service has none.
PRIVSEP_DIR = '/run/sshd'

# The mix the hosts are drawn from, in turn: kernel (a tree of tests/unit/fixtures/trees), and either CPU trees (a
# cpufreq and a cpuidle driver) or an IRQ layout, which brings its CPU count and NUMA nodes; cgroup, a layout of
# cgroup_layouts.yml; block, the disks of block_devices.yml.
SHAPES = (
    {'kernel': '6.12', 'cpu': ('cpu_intel_pstate', 'cpu_intel_idle')},
    {'kernel': '6.1', 'irq': 'irq_numa2'},
    {'kernel': '5.10', 'cpu': ('cpu_no_cpufreq', 'cpu_no_cpuidle')},
    {'kernel': '6.18', 'irq': 'irq_wide'},
    {'kernel': '6.1-rt', 'cpu': ('cpu_acpi_cpufreq', 'cpu_haltpoll')},
    {'kernel': '6.12', 'irq': 'irq_small', 'block': True},
)


class LabError(Exception):
    """A refusal or failure with a message for the user; nothing is left running."""


def shape_name(shape):
    parts = ['k' + shape['kernel']]
    parts.extend(shape.get('cpu') or ())
    if shape.get('irq'):
        parts.append(shape['irq'])
    if shape.get('block'):
        parts.append('block')
    return '+'.join(parts)


def host_names(count):
    width = max(2, len(str(count)))
    return ['host%0*d' % (width, number) for number in range(1, count + 1)]


# -- fake trees ----------------------------------------------------------------------------------------------------------
def _test_trees(state_dir):
    """The unit tests' tree builders, imported as the collection's own (they import its module_utils)."""
    links = os.path.join(state_dir, 'collections')
    link = os.path.join(links, 'ansible_collections', 'aitune', 'kernel')
    if not os.path.lexists(link):
        os.makedirs(os.path.dirname(link))
        os.symlink(REPO, link)
    if links not in sys.path:
        sys.path.insert(0, links)
    from ansible_collections.aitune.kernel.tests.unit import blocktree, cputree, fakehost, irqtree
    return blocktree, cputree, fakehost, irqtree


def build_tree(state_dir, host_dir, shape):
    """The fake tree of one host, under ``host_dir``/root; returns its root."""
    blocktree, cputree, fakehost, irqtree = _test_trees(state_dir)
    if shape.get('irq'):
        spec = irqtree.load_spec(shape['irq'])
        host = fakehost.FakeHost(host_dir, kernel=shape['kernel'], nodes=len(spec['nodes']),
                                 files=irqtree.tree_files(spec))
        irqtree.install_irqs(host, spec, managed='readonly')
    else:
        host = fakehost.FakeHost(host_dir, kernel=shape['kernel'])
        cputree.add_cpu_tree(host, *shape['cpu'])
    if shape.get('block'):
        blocktree.build_block_devices(host)
    # Every host has /run (a tmpfs); the run lease goes in it.
    os.makedirs(host.path('/run'), exist_ok=True)
    return host.root


# -- processes -----------------------------------------------------------------------------------------------------------
def command_line(pid):
    """The words of the command line of ``pid`` (bytes), or None when it is gone."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().split(b'\0')
    except OSError:
        return None


def _parent(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def is_lab_sshd(pid, config):
    """Whether ``pid`` is an sshd of this lab: the sshd binary, started with this state directory's configuration.
    A listening sshd rewrites its command line into one string ("sshd: /usr/sbin/sshd -f CONFIG ... [listener] ...")."""
    try:
        if os.readlink('/proc/%d/exe' % pid) != SSHD:
            return False
    except OSError:
        return False
    args = command_line(pid) or []
    words = b' '.join(args).split()
    return b'-f' in words and config.encode() in words


def descendants(pid):
    """Every process below ``pid`` (the sessions an sshd forked), found before ``pid`` goes and they are re-parented."""
    parents = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            parent = _parent(int(name))
            if parent is not None:
                parents.setdefault(parent, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def stop_pids(pids, grace=5.0):
    """SIGTERM, then SIGKILL whatever is left after ``grace`` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + grace
    while time.time() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def free_ports(count):
    """``count`` TCP ports free on 127.0.0.1 now (held open together, so they differ)."""
    sockets = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(('127.0.0.1', 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(('127.0.0.1', port)) == 0


# -- up --------------------------------------------------------------------------------------------------------------
SSHD_CONFIG = '''\
# The fleet lab's sshd (tools/fleet/fleet_lab.py): loopback only, root by key only. Port and PidFile come per host on
# the command line.
ListenAddress 127.0.0.1
HostKey {dir}/ssh_host_ed25519_key
AuthorizedKeysFile {dir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# The key file lives in the checkout, whose parent directories the lab does not own; the state directory is 0700.
StrictModes no
PermitUserEnvironment no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
UseDNS no
# Ansible opens up to one connection per fork at once.
MaxStartups 100:30:200
Subsystem sftp internal-sftp
'''


def _run(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise LabError('%s failed (rc %d): %s' % (' '.join(argv), proc.returncode, proc.stdout.strip()))
    return proc.stdout


def _write(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)


def _yaml_string(text):
    return json.dumps(text)


def render_inventory(state_dir, hosts):
    key = os.path.join(state_dir, 'id_ed25519')
    ssh_args = ('-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes '
                '-o PasswordAuthentication=no -o BatchMode=yes' % os.path.join(state_dir, 'known_hosts'))
    lines = [
        '---',
        '# The fleet lab (tools/fleet/fleet-lab): simulated hosts on this machine, each an sshd on 127.0.0.1 with its',
        '# own fake tree. For tests and benchmarks only; removed by "fleet-lab down".',
        'all:',
        '  vars:',
        '    ansible_host: 127.0.0.1',
        '    ansible_user: root',
        '    ansible_ssh_private_key_file: %s' % _yaml_string(key),
        '    ansible_ssh_common_args: %s' % _yaml_string(ssh_args),
        '    ansible_python_interpreter: /usr/bin/python3',
        '    # Already root over ssh; there may be no sudo here.',
        '    aitune_become: false',
        '  hosts:',
    ]
    for host in hosts:
        lines.extend([
            '    %s:' % host['name'],
            '      ansible_port: %d' % host['port'],
            '      aitune_test_root: %s' % _yaml_string(host['root']),
            '      fleet_lab_shape: %s' % _yaml_string(host['shape']),
        ])
    return '\n'.join(lines) + '\n'


def start_sshd(state_dir, host):
    config = os.path.join(state_dir, CONFIG)
    argv = [SSHD, '-f', config, '-o', 'Port=%d' % host['port'], '-o', 'PidFile=%s' % host['pid_file'],
            '-E', host['log']]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise LabError('sshd for %s did not start (rc %d): %s %s' % (
            host['name'], proc.returncode, proc.stdout.strip(), _tail(host['log'])))


def _tail(path, lines=5):
    try:
        with open(path) as handle:
            return ' | '.join(handle.read().splitlines()[-lines:])
    except OSError:
        return ''


def wait_for_sshd(hosts, timeout=20.0):
    deadline = time.time() + timeout
    waiting = list(hosts)
    while waiting and time.time() < deadline:
        waiting = [host for host in waiting
                   if not (read_pid(host['pid_file']) and port_open(host['port']))]
        if waiting:
            time.sleep(0.05)
    if waiting:
        raise LabError('sshd did not come up for %s: %s' % (
            ', '.join(host['name'] for host in waiting), _tail(waiting[0]['log'])))


def up(state_dir, count):
    if count < 1:
        raise LabError('the fleet needs at least 1 host, got %d' % count)
    if os.geteuid() != 0:
        raise LabError('the fleet lab needs root: its hosts are reached as root over ssh, each by its own sshd')
    for tool in (SSHD, shutil.which('ssh-keygen')):
        if not tool or not os.access(tool, os.X_OK):
            raise LabError('OpenSSH is missing (%s): install openssh-server and openssh-client '
                           '(tools/lab/install-host-deps)' % (tool or 'ssh-keygen'))
    if os.path.lexists(state_dir):
        raise LabError('%s exists: a fleet lab is up there (or a crashed one left it); run "fleet-lab down --dir %s" '
                       'first' % (state_dir, state_dir))
    os.makedirs(state_dir, mode=0o700)
    try:
        return _up(state_dir, count)
    except BaseException:
        down(state_dir, quiet=True)
        raise


def _up(state_dir, count):
    started = time.time()
    made_privsep = False
    if not os.path.isdir(PRIVSEP_DIR):
        os.makedirs(PRIVSEP_DIR, mode=0o755)
        made_privsep = True
    state = {'hosts': [], 'made_privsep_dir': made_privsep}
    _write(os.path.join(state_dir, STATE_FILE), json.dumps(state))
    _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'aitune-fleet-lab-client',
          '-f', os.path.join(state_dir, 'id_ed25519')])
    _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'aitune-fleet-lab-host',
          '-f', os.path.join(state_dir, 'ssh_host_ed25519_key')])
    shutil.copyfile(os.path.join(state_dir, 'id_ed25519.pub'), os.path.join(state_dir, 'authorized_keys'))
    os.chmod(os.path.join(state_dir, 'authorized_keys'), 0o600)
    _write(os.path.join(state_dir, CONFIG), SSHD_CONFIG.format(dir=state_dir))
    _run([SSHD, '-t', '-f', os.path.join(state_dir, CONFIG)])
    with open(os.path.join(state_dir, 'ssh_host_ed25519_key.pub')) as handle:
        host_key = ' '.join(handle.read().split()[:2])

    hosts = []
    for index, (name, port) in enumerate(zip(host_names(count), free_ports(count))):
        shape = SHAPES[index % len(SHAPES)]
        host_dir = os.path.join(state_dir, 'hosts', name)
        hosts.append({'name': name, 'port': port, 'shape': shape_name(shape),
                      'root': build_tree(state_dir, host_dir, shape),
                      'pid_file': os.path.join(host_dir, 'sshd.pid'), 'log': os.path.join(host_dir, 'sshd.log')})
    trees_built = time.time()
    _write(os.path.join(state_dir, 'known_hosts'),
           ''.join('[127.0.0.1]:%d %s\n' % (host['port'], host_key) for host in hosts))
    state['hosts'] = hosts
    _write(os.path.join(state_dir, STATE_FILE), json.dumps(state, indent=1))
    for host in hosts:
        start_sshd(state_dir, host)
    wait_for_sshd(hosts)
    _write(os.path.join(state_dir, INVENTORY), render_inventory(state_dir, hosts), mode=0o644)
    print('fleet lab up: %d hosts in %s (trees %.1f s, sshd %.1f s)' % (
        count, state_dir, trees_built - started, time.time() - trees_built))
    print('inventory: %s' % os.path.join(state_dir, INVENTORY))
    for host in hosts:
        print('  %s  127.0.0.1:%d  %s' % (host['name'], host['port'], host['shape']))
    return hosts


# -- down ------------------------------------------------------------------------------------------------------------
def _pid_files(state_dir):
    hosts_dir = os.path.join(state_dir, 'hosts')
    try:
        names = sorted(os.listdir(hosts_dir))
    except OSError:
        return []
    return [(name, os.path.join(hosts_dir, name, 'sshd.pid')) for name in names]


def down(state_dir, quiet=False):
    """Stop the lab's sshds and remove ``state_dir``; a lab that is not there, or half there, is fine."""
    say = (lambda *args: None) if quiet else print
    config = os.path.join(state_dir, CONFIG)
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        state = {}
    stopped = []
    for name, pid_file in _pid_files(state_dir):
        pid = read_pid(pid_file)
        if pid is None:
            continue
        if not is_lab_sshd(pid, config):
            say('%s: pid %d in %s is not this lab\'s sshd (gone, or the number was reused): left alone'
                % (name, pid, pid_file))
            continue
        below = descendants(pid)
        stop_pids([pid] + below)
        stopped.append('%s (sshd %d%s)' % (name, pid, ', %d sessions' % len(below) if below else ''))
    if stopped:
        say('stopped %d sshd: %s' % (len(stopped), ', '.join(stopped)))
    if state.get('made_privsep_dir') and os.path.isdir(PRIVSEP_DIR) and not os.listdir(PRIVSEP_DIR):
        os.rmdir(PRIVSEP_DIR)
        say('removed %s (made by up)' % PRIVSEP_DIR)
    if os.path.lexists(state_dir):
        trees = len(_pid_files(state_dir))
        shutil.rmtree(state_dir)
        say('removed %s (%d host trees, the client and host keys, the inventory)' % (state_dir, trees))
    elif not stopped:
        say('no fleet lab in %s: nothing to do' % state_dir)


def status(state_dir):
    config = os.path.join(state_dir, CONFIG)
    pid_files = _pid_files(state_dir)
    if not pid_files:
        print('no fleet lab in %s' % state_dir)
        return 1
    down_hosts = []
    for name, pid_file in pid_files:
        pid = read_pid(pid_file)
        if not (pid and is_lab_sshd(pid, config)):
            down_hosts.append(name)
    print('%s: %d hosts, %d with sshd running%s' % (
        state_dir, len(pid_files), len(pid_files) - len(down_hosts),
        '; not running: %s' % ', '.join(down_hosts) if down_hosts else ''))
    return 1 if down_hosts else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='fleet-lab', description=__doc__.split('\n\n', maxsplit=1)[0])
    commands = parser.add_subparsers(dest='command', required=True)
    up_parser = commands.add_parser('up', help='start N simulated hosts')
    up_parser.add_argument('count', type=int, metavar='N')
    for name in ('up', 'down', 'status'):
        sub = up_parser if name == 'up' else commands.add_parser(
            name, help={'down': 'stop the hosts and remove the state directory',
                        'status': 'say which hosts have their sshd running'}[name])
        sub.add_argument('--dir', default=os.environ.get('AITUNE_FLEET_DIR', DEFAULT_DIR),
                         help='state directory (default: $AITUNE_FLEET_DIR or .build/fleet)')
    args = parser.parse_args(argv)
    state_dir = os.path.abspath(args.dir)
    try:
        if args.command == 'up':
            up(state_dir, args.count)
        elif args.command == 'down':
            down(state_dir)
        else:
            return status(state_dir)
    except LabError as exc:
        print('fleet-lab: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
