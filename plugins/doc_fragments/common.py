# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options every aitune.kernel module takes.
    DOCUMENTATION = r'''
options:
  root:
    description:
      - The directory that stands for C(/) when reading and writing kernel files.
      - Leave it at C(/) on real hosts. Other values point the module at a copy of a C(/proc) and C(/sys) tree, for
        tests; debugfs is never mounted there.
      - Any other value must be a directory that holds the marker file C(.aitune-fake-root) (the unit tests' fake hosts
        and the fleet lab write it), and may not lead to C(/) through a symlink; otherwise the module fails before it
        reads or writes anything.
    type: path
    default: /
notes:
  - Every knob ends in one of three states, each with a reason. V(applied) means the value was written and read back.
    V(unsupported) means this kernel does not have the knob. V(not_permitted) means the kernel refused access, for
    example debugfs under lockdown, a read-only mount or a value the kernel did not take.
  - Writes never follow symlinks and never leave the allowed roots C(/proc/sys), C(/sys), C(/etc/sysctl.d),
    C(/etc/tmpfiles.d), C(/etc/modprobe.d), C(/etc/udev/rules.d), C(/etc/systemd), C(/etc/default/grub.d),
    C(/etc/ansible/facts.d), C(/var/lib/aitune) and C(/run/aitune).
'''

    # Options of the modules that change settings.
    APPLY = r'''
options:
  strict:
    description:
      - Fail, before anything is written, when a requested knob is V(unsupported) or V(not_permitted) on this host.
      - Without it those knobs are reported with their reason and the run goes on.
    type: bool
    default: false
  persist:
    description:
      - Make the applied values survive a reboot through the collection's managed files
        C(/etc/sysctl.d/90-aitune.conf), C(/etc/tmpfiles.d/aitune.conf), C(/etc/modprobe.d/90-aitune.conf) for the
        parameters of loadable modules and, for boot parameters, C(/etc/default/grub.d/90-aitune.cfg).
      - With V(false) only the live values change, and the settings of this module are taken out of the managed files.
    type: bool
    default: true
notes:
  - Before the first change of a knob, its original live value and the original content of every managed file it
    touches are written to C(/var/lib/aitune/baseline.json). M(aitune.kernel.restore) puts them back.
  - Calls on one host serialise on a lock in C(/var/lib/aitune); a whole run (tune.yml, restore.yml, benchmark.yml)
    holds the host with the run lease in C(/run/aitune) (M(aitune.kernel.lease)).
seealso:
  - module: aitune.kernel.restore
  - module: aitune.kernel.tuning_facts
'''

    ATTRIBUTES = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Returns details on what has changed, or would change in check mode, for live values and files.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
'''

    # The run lease option of every module that writes.
    RUN_LEASE = r'''
options:
  run_id:
    description:
      - The run lease this call belongs to, as M(aitune.kernel.lease) took it (its RV(aitune.kernel.lease#module:run_id)).
      - While another run's lease holds the host, a call waits up to 60 seconds for it to go and then fails before
        writing, naming the holder. A call with the holder's O(run_id) goes on, and renews the lease.
      - Leave it out for a module called alone. The call then holds the host lock for its own duration only, and waits
        for a run that holds a lease like any other run's call.
    type: str
'''
