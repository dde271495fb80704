# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Generate and check the Python lock files from their human-edited inputs.

    requirements.txt        -> requirements.lock         what the collection's users and the execution environment need
    requirements-test.txt   -> requirements-test.lock    that plus the test command's tools (scripts/bootstrap)
    requirements-server.txt -> requirements-server.lock  the benchmark's inference server, its build tools and the
                                                         model writer (scripts/setup-llama-server, into .venv-llama)

Every package, transitive ones included, is pinned to one version per Python/platform marker and carries the hashes
of its files, so an install resolves nothing and takes no file it did not expect. The test and server locks are
resolved with the runtime lock as their constraint: a package two of them need has the same version in both.

    scripts/lock                      re-resolve after an input changed, keeping every pin that still fits
    scripts/lock --upgrade            resolve everything afresh (newest versions the ranges allow)
    scripts/lock --upgrade-package X  the same for package X alone (repeatable)
    scripts/lock --check              offline: the locks are up to date with their inputs and agree with each other
    scripts/lock --same-pins LOCK F   F (the execution environment's copy, say) pins exactly what LOCK pins

Resolving uses uv (pinned in requirements-test.txt, so it is in the lock it writes) for Python 3.11, the oldest
controller Python the collection supports, and for every newer Python and platform (--universal): a Python 3.12
controller gets the newer ansible-core its Python allows, from the same file.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (lock, its input, the inputs its digest covers, the lock it is constrained by)
LOCKS = (
    ('requirements.lock', 'requirements.txt', ('requirements.txt',), None),
    ('requirements-test.lock', 'requirements-test.txt', ('requirements.txt', 'requirements-test.txt'),
     'requirements.lock'),
    ('requirements-server.lock', 'requirements-server.txt', ('requirements.txt', 'requirements-server.txt'),
     'requirements.lock'),
)
PYTHON_VERSION = '3.11'
DIGEST_LINE = re.compile(r'^# inputs sha256: ([0-9a-f]{64})$', re.MULTILINE)
# A pinned entry: "name==version ; marker \" on its own line, its hashes on the lines after it.
ENTRY = re.compile(r'^([A-Za-z0-9][^\s\\]*==[^\s\\;]+(?:\s*;[^\\]+)?)\s*\\?$')
HASH = re.compile(r'^\s*--hash=sha256:[0-9a-f]{64}')


def inputs_digest(inputs):
    digest = hashlib.sha256()
    for name in inputs:
        with open(os.path.join(REPO, name), 'rb') as handle:
            digest.update(name.encode() + b'\0' + handle.read() + b'\0')
    return digest.hexdigest()


def read(name):
    with open(os.path.join(REPO, name)) as handle:  # an absolute name stays as it is
        return handle.read()


def input_requirements(name):
    """The requirements an input file names, following ``-r`` includes."""
    requirements = []
    for line in read(name).splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith(('-r ', '--requirement ')):
            requirements.extend(input_requirements(line.split(None, 1)[1]))
            continue
        requirements.append(Requirement(line))
    return requirements


def lock_entries(name):
    """``{canonical name: [(Requirement, hash count)]}`` of a lock file (a path relative to the repository)."""
    entries = {}
    current = None
    for line in read(name).splitlines():
        match = ENTRY.match(line)
        if match:
            try:
                current = [Requirement(match.group(1)), 0]
            except InvalidRequirement as exc:
                raise SystemExit('%s: cannot parse %r: %s' % (name, line, exc))
            entries.setdefault(canonicalize_name(current[0].name), []).append(current)
        elif current is not None and HASH.match(line):
            current[1] += 1
    return {key: [tuple(entry) for entry in value] for key, value in entries.items()}


def same_pins(lock, other):
    """0 when ``other`` (a requirements file made from ``lock``, such as the execution environment's) pins exactly
    the lock's packages and versions, each with as many hashes."""
    def pins(name):
        return sorted((key, pinned_version(pin), hashes) for key, entries in lock_entries(name).items()
                      for pin, hashes in entries)
    unpinned = [line.strip() for line in read(other).splitlines()
                if line.strip() and not line.strip().startswith('#') and not HASH.match(line)
                and not ENTRY.match(line.strip())]
    if unpinned:
        print('lock: %s has lines that pin nothing (pip refuses them among hashed pins): %s'
              % (other, unpinned[:5]), file=sys.stderr)
        return 1
    ours, theirs = pins(lock), pins(other)
    if ours != theirs:
        print('lock: %s differs from %s in %s' % (other, lock, sorted(set(ours) ^ set(theirs))[:5]), file=sys.stderr)
        return 1
    return 0


def pinned_version(requirement):
    (specifier,) = requirement.specifier
    return specifier.version


def check():
    problems = []
    locked = {}
    for lock, source, inputs, constraint in LOCKS:
        if not os.path.exists(os.path.join(REPO, lock)):
            problems.append('%s is missing: run scripts/lock' % lock)
            continue
        match = DIGEST_LINE.search(read(lock))
        if not match or match.group(1) != inputs_digest(inputs):
            problems.append('%s was not made from the current %s: run scripts/lock' % (lock, ' and '.join(inputs)))
        entries = locked[lock] = lock_entries(lock)
        for pins in entries.values():
            for requirement, hashes in pins:
                if hashes == 0:
                    problems.append('%s: %s has no hash' % (lock, requirement))
        for requirement in input_requirements(source):
            pins = entries.get(canonicalize_name(requirement.name))
            if not pins:
                problems.append('%s: %s (asked for in %s) is not locked' % (lock, requirement.name, source))
                continue
            for pin, _dummy in pins:
                if not requirement.specifier.contains(pinned_version(pin), prereleases=True):
                    problems.append('%s: %s does not satisfy %s from %s' % (lock, pin, requirement, source))
        if constraint in locked:
            # Markers may differ (a package can be needed on fewer platforms by one set), versions may not.
            for name, pins in sorted(locked[constraint].items()):
                ours = sorted(pinned_version(pin) for pin, dummy in entries.get(name, []))
                theirs = sorted(pinned_version(pin) for pin, dummy in pins)
                if ours and ours != theirs:
                    problems.append('%s pins %s %s, but %s pins %s' % (lock, name, ours, constraint, theirs))
    for problem in problems:
        print('lock: ' + problem, file=sys.stderr)
    if not problems:
        print('lock: %s up to date with their inputs, every pin with hashes'
              % ', '.join('%s (%d packages)' % (lock, len(entries)) for lock, entries in locked.items()))
    return 1 if problems else 0


def compile_locks(upgrade, upgrade_packages):
    uv = shutil.which('uv', path=os.path.dirname(sys.executable)) or shutil.which('uv')
    if uv is None:
        raise SystemExit('lock: uv is not installed; run scripts/bootstrap first')
    for lock, source, inputs, constraint in LOCKS:
        command = [uv, 'pip', 'compile', '--quiet', '--generate-hashes', '--universal',
                   '--python-version', PYTHON_VERSION, '--custom-compile-command', 'scripts/lock',
                   '--output-file', lock, source]
        if constraint:
            command += ['--constraint', constraint]
        if upgrade:
            command.append('--upgrade')
        for package in upgrade_packages:
            command += ['--upgrade-package', package]
        subprocess.run(command, cwd=REPO, check=True)
        # uv writes its own two header lines; the digest of the inputs goes right below them.
        lines = [line for line in read(lock).splitlines(True) if not DIGEST_LINE.match(line)]
        lines.insert(2, '# inputs sha256: %s\n' % inputs_digest(inputs))
        with open(os.path.join(REPO, lock), 'w') as handle:
            handle.write(''.join(lines))
        print('lock: wrote %s from %s' % (lock, source))
    return check()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true', help='check the locks against their inputs, offline')
    parser.add_argument('--same-pins', nargs=2, metavar=('LOCK', 'FILE'),
                        help='check that FILE pins exactly what LOCK pins, with the same hashes')
    parser.add_argument('--upgrade', action='store_true', help='resolve every package afresh')
    parser.add_argument('--upgrade-package', action='append', default=[], metavar='PACKAGE',
                        help='resolve this package afresh (repeatable)')
    args = parser.parse_args()
    if args.check:
        return check()
    if args.same_pins:
        return same_pins(*args.same_pins)
    return compile_locks(args.upgrade, args.upgrade_package)


if __name__ == '__main__':
    sys.exit(main())
