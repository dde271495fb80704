# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""systemd as the owner of the units and drop-ins the collection installs, udev for its rules, and tuned-adm to have a
running tuned apply its profile again after a restore."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.aitune.kernel.plugins.module_utils._fsio import IO_ERROR, FsError


def systemd_is_init(fs):
    """True when systemd runs as PID 1; containers and minimal VMs often have another init."""
    return (fs.read_optional('/proc/1/comm', follow=True) or '').strip() == 'systemd'


class Systemctl(object):
    """systemctl through AnsibleModule.run_command, with argument lists only."""

    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path('systemctl', required=True)

    def _run(self, *args):
        argv = [self.binary] + list(args)
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise FsError(IO_ERROR, args[-1], '%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return out

    def daemon_reload(self):
        self._run('daemon-reload')

    def start(self, unit, restart=False):
        """Enable and start ``unit``. The engine reloads systemd once after writing the files, so enabling skips the
        reload systemctl would do for each unit (seconds each on a slow guest)."""
        self._run('enable', '--no-reload', unit)
        self._run('restart' if restart else 'start', unit)

    def stop(self, unit):
        self._run('disable', '--now', unit)

    def restart(self, unit):
        self._run('restart', unit)

    def try_restart(self, unit):
        """Restart ``unit`` only if it runs; a stopped or absent service is left alone."""
        self._run('try-restart', unit)

    def is_active(self, unit):
        rc, out, dummy = self.module.run_command([self.binary, 'is-active', unit])
        return rc == 0 and out.strip() == 'active'

    def is_enabled(self, unit):
        """True when ``unit`` starts at boot (enabled, static, generated...): is-enabled exits 0 for each of them."""
        rc, dummy, dummy_err = self.module.run_command([self.binary, 'is-enabled', unit])
        return rc == 0


class Udevadm(object):
    """udevadm, to make a changed rules file act now as well as on the next boot."""

    def __init__(self, module, binary):
        self.module = module
        self.binary = binary

    def reload_and_trigger(self, subsystem):
        for args in (['control', '--reload'], ['trigger', '--action=change', '--subsystem-match=%s' % subsystem],
                     ['settle', '--timeout=30']):
            argv = [self.binary] + args
            rc, out, err = self.module.run_command(argv)
            if rc != 0:
                raise FsError(IO_ERROR, subsystem, '%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))


class TunedAdm(object):
    """tuned-adm through AnsibleModule.run_command, with argument lists only."""

    def __init__(self, module, binary):
        self.module = module
        self.binary = binary

    def run(self, args):
        """Run ``tuned-adm ARGS``; the command line run, or FsError with tuned-adm's own words."""
        argv = [self.binary] + list(args)
        rc, out, err = self.module.run_command(argv)
        command = ' '.join(['tuned-adm'] + list(args))
        if rc != 0:
            raise FsError(IO_ERROR, 'tuned-adm', '%s failed (rc=%d): %s' % (command, rc, (err or out).strip()))
        return command


def udev_is_running(fs):
    """udevd listens on this socket while it runs; in containers it usually does not."""
    return fs.lexists('/run/udev/control')
