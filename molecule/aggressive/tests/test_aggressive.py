# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""The aggressive mode on 6.12; molecule/resources/tests/test_mode_applied.py reads what the mode promises from the kernel."""


def test_kernel_is_6_12(host):
    assert host.sysctl("kernel.osrelease").startswith("6.12.")
