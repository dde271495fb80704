# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""Stand-in for the get-pip bootstrap script that ansible-test downloads into the virtual environments it creates.

Our CI machines reach only the package registries, not the host ansible-test fetches get-pip from. ansible-test runs
this file as a script with pip's install arguments (for example ``--disable-pip-version-check pip==24.2 setuptools``);
it installs the pip that ships with CPython (ensurepip) and lets that pip install what was asked from the registry.
scripts/test copies it into ansible-test's cache as get_pip_<version>.py.
"""

import ensurepip
import os
import subprocess
import sys


# Options of get-pip itself, which pip install does not know; they only say not to add setuptools or wheel.
GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def main():
    # ensurepip points PIP_CONFIG_FILE at /dev/null in this process; the real install needs the host's pip settings.
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return subprocess.call([sys.executable, '-m', 'pip', 'install'] + arguments, env=environment)


if __name__ == '__main__':
    sys.exit(main())
