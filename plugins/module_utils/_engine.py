# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors

"""The engine every module drives: probe knobs on this kernel, decide, then apply or restore behind one gate.

Order of an apply, each step durable before the next starts, so a run killed at any point leaves the host restorable:

1. probe and validate every requested knob; refuse bad input before anything is written;
2. take the host lock;
3. record originals (live values and the managed files about to change) in the baseline, atomically;
4. write live values and read each one back;
5. record the applied values in the state file, then re-render the managed persistence files from it.

What each knob ended as, and the diff, is a Report (_report.py).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal

from ansible_collections.aitune.kernel.plugins.module_utils._baseline import (
    BASELINE_PATH, CALIBRATION_PATH, STATE_DIR, Baseline)
from ansible_collections.aitune.kernel.plugins.module_utils._fsio import (
    ABSENT, INVALID, NOT_PERMITTED, REFUSED, FsError, HostFS)
from ansible_collections.aitune.kernel.plugins.module_utils._kernel import Debugfs, KernelInfo
from ansible_collections.aitune.kernel.plugins.module_utils._knobs import (
    PERSIST_SYSTEMD, REGISTRY, Location, ValidationError, subsystem_of)
from ansible_collections.aitune.kernel.plugins.module_utils._lock import HostLock
from ansible_collections.aitune.kernel.plugins.module_utils._neighbours import drift_writers, neighbours
from ansible_collections.aitune.kernel.plugins.module_utils._registry import lookup
from ansible_collections.aitune.kernel.plugins.module_utils._persist import (
    FACT_FILE, FILE_DROPIN, FILE_FACT, FILE_IRQBALANCE, FILE_UDEV, FILE_UNIT, RECORD_OWNER, STATE_PATH, UNIT_DIR, State,
    file_targets, may_leave_temp_file, missing_boot_params, owned_file_kind, temp_file_dirs, unit_of, write_target)
from ansible_collections.aitune.kernel.plugins.module_utils._report import (
    APPLIED, NOT_PERMITTED_STATE, UNSUPPORTED, Report)

# Where the cgroup file systems are mounted; a directory below it is a cgroup, a file its kernel interface.
CGROUP_ROOT = '/sys/fs/cgroup'

# The validator kinds whose file reads back exactly as written: numbers, switches, CPU lists and masks. In check mode
# of a multi-subsystem call, a later subsystem reads these as the earlier ones would leave them (PreviewState.planned).
PLANNED_KINDS = ('int', 'bool', 'cpulist', 'cpumask')

# Fault injection for the crash-safety tests: the named step kills its own process, as SIGKILL from outside would.
FAILPOINT_ENV = 'AITUNE_FAILPOINT'


class EngineError(Exception):
    """Bad input or an unsafe situation: the module fails with this message, and nothing has been written."""


def failpoint(name):
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Probe(object):
    """Where a knob lives on this host and what it holds, or why it cannot be used."""

    def __init__(self, knob, state, path=None, raw=None, reason=None):
        self.knob = knob
        self.state = state
        self.path = path
        self.raw = raw
        self.reason = reason

    @property
    def usable(self):
        return self.state == APPLIED

    @property
    def value(self):
        return self.knob.current(self.raw) if self.raw is not None else None


class Engine(object):
    """One module run's view of the host. Call ``close()`` (or use as a context manager) to unmount what it mounted."""

    def __init__(self, root='/', check_mode=False, mounter=None, lock_timeout=60.0, systemctl=None, udevadm=None,
                 fs=None, preview_state=None, owner=None, run_id=None, held_lock=None, warn=None):
        self.systemctl = systemctl
        self.udevadm = udevadm
        # ``owner``: whose state files the engine trusts (HostFS); root on the real root.
        self.fs = fs or HostFS(root, owner=owner)
        self.kernel = KernelInfo(self.fs)
        self.debugfs = Debugfs(self.kernel, mounter)
        self.check_mode = check_mode
        self.lock_timeout = lock_timeout
        # In check mode, the state several runs of one module call share (the profile module's subsystems, a
        # _persist.PreviewState): each plans on top of what the ones before it would have applied, so a file two of
        # them render is previewed as it will be, not from the state on disk each time, and each reads the live values
        # the ones before it would have written.
        self.preview_state = preview_state
        if check_mode and preview_state is not None:
            self.fs.planned = preview_state.planned
        # The run lease this call belongs to (_lease; None: a module called alone), and the host lock when the module
        # call already holds it around several engines (the profile module), which then take it no more.
        self.run_id = run_id
        self.held_lock = held_lock
        self.warn = warn or (lambda message: None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def close(self):
        self.debugfs.release()

    def load_state(self):
        """The state a run plans against: the one on disk, or in check mode the preview several runs share."""
        if self.check_mode and self.preview_state is not None:
            return self.preview_state
        return State(self.fs)

    def check_state_files(self):
        """Load the baseline and the state once before the host lock is taken: a file that is not root's alone, or
        not in the shape the collection writes, is refused (FsError) before the lock file or anything else is
        written. Both are loaded again, and checked again, under the lock."""
        Baseline(self.fs)
        State(self.fs)

    # -- probing -------------------------------------------------------------------------------------------------------
    def probe(self, knob):
        debugfs_reason = None
        locations = knob.ordered_locations(self.kernel.version)
        if knob.dynamic:
            path, reason = knob.locate(self.fs)
            if reason:
                return Probe(knob, UNSUPPORTED, reason=reason)
            locations = [Location(path)]
        for location in locations:
            if location.on_debugfs:
                why = self.debugfs.ensure()
                if why:
                    if location.matches(self.kernel.version):
                        debugfs_reason = why
                    continue
            if not self.fs.lexists(location.path):
                continue
            if self.fs.is_symlink(location.path):
                raise EngineError('%s: refused, %s is a symlink; a kernel never puts one there, so the tree has been '
                                  'tampered with' % (knob.name, location.path))
            try:
                raw = self.fs.read(location.path)
            except FsError as exc:
                if exc.kind == NOT_PERMITTED:
                    reason = self.debugfs.denied_reason(str(exc)) if location.on_debugfs else str(exc)
                    return Probe(knob, NOT_PERMITTED_STATE, location.path, reason=reason)
                if exc.kind == ABSENT:
                    continue
                raise EngineError('%s: %s' % (knob.name, exc))
            read_only = self._read_only_reason(location.path)
            if read_only:
                return Probe(knob, NOT_PERMITTED_STATE, location.path, raw=raw, reason=read_only)
            return Probe(knob, APPLIED, location.path, raw=raw)
        if debugfs_reason:
            return Probe(knob, NOT_PERMITTED_STATE, reason='%s: %s' % (knob.name, debugfs_reason))
        return Probe(knob, UNSUPPORTED, reason=self._absent_reason(knob))

    def _absent_reason(self, knob):
        places = ', '.join('%s (%s)' % (loc.path, loc.span()) if loc.span() else loc.path for loc in knob.locations)
        note = knob.absent_note or ''
        if knob.absent_on_rt and self.kernel.preempt_rt():
            note = '%s%sthis is a PREEMPT_RT kernel, which is built without it: the option depends on !PREEMPT_RT' \
                % (note, '; ' if note else '')
        note = ' (%s)' % note if note else ''
        return '%s is not on this kernel %s%s; looked for %s' % (knob.name, self.kernel.release or 'unknown', note, places)

    def _read_only_reason(self, path):
        host_path = self.fs.host_path(path)
        try:
            mode = os.lstat(host_path).st_mode
            flags = os.statvfs(host_path).f_flag
        except OSError:
            return None
        if flags & os.ST_RDONLY:
            return '%s is on a read-only mount (a container, or /proc/sys mounted read-only)' % path
        if not mode & 0o222:
            return '%s is read-only on this kernel' % path
        return None

    # -- planning ------------------------------------------------------------------------------------------------------
    def plan(self, desired, strict=False, pending_dirs=(), knobs=None):
        """Probe and validate ``{knob name: value}``. Returns ``[(probe, canonical desired value or None)]``.

        A knob whose directory is in ``pending_dirs`` (a cgroup this run creates) is planned as a new file. ``knobs``
        holds the ones the caller built itself; the others are looked up by name.
        Raises EngineError on bad input, and in strict mode on any knob that is unsupported or not permitted.
        """
        problems = []
        plans = []
        for name in sorted(desired):
            try:
                knob = (knobs or {}).get(name) or lookup(name)
                probe = self.probe(knob)
                if probe.state == UNSUPPORTED and pending_dirs:
                    # Any candidate will do, not only the first: one knob name serves every mount layout (a v1 cpu
                    # hierarchy at cpu,cpuacct or at cpu), and the caller's directories say which one this host has.
                    for location in knob.locations:
                        parent = location.path.rsplit('/', 1)[0]
                        if parent in pending_dirs and not self.fs.lexists(parent):
                            probe = Probe(knob, APPLIED, location.path)
                            break
                wanted = knob.canonical(desired[name], probe.raw) if probe.raw is not None else None
                if wanted is None and knob.validator.kind != 'choice':
                    # Check the type even where the kernel lacks the knob: bad input is bad on every kernel.
                    wanted = knob.canonical(desired[name])
            except ValidationError as exc:
                problems.append(str(exc))
                continue
            plans.append((probe, wanted))
        for name in sorted(desired):
            pair = REGISTRY[name].pair if name in REGISTRY else None
            if pair in desired and name < pair:
                problems.append('%s and %s exclude each other: the kernel keeps only one of them' % (name, pair))
        if problems:
            raise EngineError('invalid settings, nothing was changed: ' + '; '.join(problems))
        if strict:
            blocked = ['%s is %s: %s' % (p.knob.name, p.state, p.reason) for p, dummy in plans if not p.usable]
            if blocked:
                raise EngineError('strict mode, nothing was changed: ' + '; '.join(blocked))
        return plans

    # -- applying ------------------------------------------------------------------------------------------------------
    def lock(self):
        """The host lock for one apply or restore (none in check mode), or the one the module call already holds."""
        if self.check_mode:
            return _NoLock()
        if self.held_lock is not None:
            return _HeldLock(self.held_lock)
        return _SweepingLock(self.fs, self.lock_timeout, self.run_id, self.warn)

    def apply(self, desired, persist=True, strict=False, cmdline=None, units=None, files=None, expect=None,
              dirs=None, knobs=None):
        """Apply ``{knob: value}`` and what a subsystem owns besides:

        * ``cmdline``: ``(owner, subsystem, [params])``, boot parameters;
        * ``units``: ``(subsystem, {unit name: content})``, the systemd units that subsystem owns, started once written;
        * ``files``: ``(subsystem, {path: content})``, every file that subsystem owns (units, drop-ins, udev rules);
        * ``expect``: ``{knob: value}`` that systemd sets from those files (a slice's cpu.weight): read back after the
          files are written, never written by the engine;
        * ``dirs``: ``(subsystem, [paths])``, directories to create first (cgroups, where systemd does not own them);
        * ``knobs``: ``{name: Knob}`` the caller built for this run (a block device's knobs at its resolved sysfs
          directory); any other name is looked up in the registry.

        Returns a Report. The whole run holds the host lock, so what was probed is what gets changed. Each step is
        durable before the next starts, so a run killed at any point leaves the host restorable.
        """
        expect = dict(expect or {})
        dir_subsystem, new_dirs = dirs if dirs else (None, [])
        self._check_owned(units, files)
        # Bad input is refused before the lock file is even created; the plan is made again under the lock.
        self.plan(desired, strict=strict, pending_dirs=new_dirs, knobs=knobs)
        self.plan(expect, pending_dirs=new_dirs)
        self.check_state_files()
        with self.lock():
            stage = self._stage(desired, expect, persist, strict, new_dirs, knobs, cmdline=cmdline, units=units,
                                files=files)
            if self.check_mode:
                for probe, wanted in stage.expected:
                    stage.report.add_expected(probe, wanted)
                if self.preview_state is not None:
                    # What this run would write, for the runs that plan after it on the same preview: the values whose
                    # file reads back as written (a bracketed choice or a cgroup interface file reads otherwise).
                    self.preview_state.planned.update(
                        (probe.path, '%s\n' % wanted) for probe, wanted in stage.changes
                        if probe.knob.validator.kind in PLANNED_KINDS)
                return stage.report.finish(stage.state)
            self._record_originals(stage, dir_subsystem)
            self._write_live_values(stage)
            self._persist(stage)
            self._read_back_expected(stage)
            return stage.report.finish(stage.state)

    def _stage(self, desired, expect, persist, strict, new_dirs, knobs, cmdline, units, files):
        """Plan under the lock, and put into the state (in memory) everything the run will apply."""
        stage = _Stage(Report(self), Baseline(self.fs, before_rename=lambda tmp: failpoint('baseline_rename')),
                       self.load_state())
        plans = self.plan(desired, strict=strict, pending_dirs=new_dirs, knobs=knobs)
        stage.expected = self.plan(expect, pending_dirs=new_dirs)
        stage.changes = [(probe, wanted) for probe, wanted in plans if probe.usable and probe.value != wanted]
        if new_dirs:
            # Parents first: a cgroup's cgroup.subtree_control must enable a controller before its children's
            # files for that controller exist. The sort is stable, so name order holds within one depth.
            stage.changes.sort(key=lambda change: change[0].path.count('/'))
        stage.missing_dirs = [path for path in new_dirs if not self.fs.lexists(path)]
        state = stage.state
        for probe, wanted in plans:
            stage.report.add(probe, wanted)
            if probe.usable:
                state.set_knob(probe.knob, probe.path, wanted, probe.knob.persist if persist else None)
        params_before = state.cmdline_params()
        if cmdline is not None:
            owner, subsystem, params = cmdline
            state.set_cmdline(owner, subsystem, params if persist else [])
        if units is not None:
            state.set_units(*units)
        if files is not None:
            state.set_files(*files)
        # The values systemd sets come with the files: a subsystem that names its files names its expected values too,
        # so those its files no longer ask for leave the state (drift would report them forever).
        stage.owners = {owned[0] for owned in (units, files) if owned is not None}
        for owner in stage.owners:
            for name in [n for n, entry in state.knobs().items()
                         if entry.get('persist') == PERSIST_SYSTEMD and entry.get('subsystem') == owner
                         and n not in expect]:
                del state.knobs()[name]
        stage.targets = file_targets(self.fs, state, stage.baseline)
        stage.report.add_files(stage.targets)
        stage.report.dirs = dict.fromkeys(stage.missing_dirs, 'created')
        stage.report.boot_params = (params_before, state.cmdline_params())
        return stage

    def _record_originals(self, stage, dir_subsystem):
        """Originals first: live values, files and directories, in the baseline before anything is written. The pair
        of a ratio/bytes knob is recorded too: writing one half zeroes the other."""
        baseline = stage.baseline
        for probe, _wanted in stage.changes:
            baseline.record_knob(probe.knob.name, probe.path, probe.value)
            if probe.knob.pair:
                pair = self.probe(lookup(probe.knob.pair))
                if pair.usable:
                    baseline.record_knob(pair.knob.name, pair.path, pair.value)
        for path in stage.targets:
            record_original(baseline, path)
        for path in stage.missing_dirs:
            baseline.record_dir(path, dir_subsystem)
        if stage.changes or stage.targets or stage.missing_dirs:
            baseline.save()
        failpoint('after_baseline')

    def _write_live_values(self, stage):
        """Directories, then live values, each read back (a value the kernel rejects puts back those written)."""
        for path in stage.missing_dirs:
            try:
                self.fs.make_dir(path)
            except FsError as exc:
                raise EngineError('cannot create %s: %s' % (path, exc))
        written = []
        for probe, wanted in stage.changes:
            self._write_live(probe, wanted, stage.report, written)
            failpoint('after_live_write')

    def _persist(self, stage):
        """The state, then the files rendered from it; only knobs the kernel took are persisted."""
        report, baseline, state = stage.report, stage.baseline, stage.state
        for name, entry in report.knobs.items():
            if entry['state'] != APPLIED:
                state.knobs().pop(name, None)
        targets = file_targets(self.fs, state, baseline)
        for path in targets:
            record_original(baseline, path)
        baseline.save()
        state.save()
        failpoint('after_state')
        report.units_started = self._idle_units(stage, targets)
        report.actions = self._write_files(targets, baseline, idle_units=report.units_started)
        report.add_files(targets)
        failpoint('after_files')
        if report.actions:
            self._settle_live_values(stage)

    def _settle_live_values(self, stage):
        """Read every value this run wrote again once its files have acted, and write once more what moved.

        Starting units, a udev replay and restarting irqbalance run other code: an irqbalance that still ran with its
        old settings may have moved an IRQ between this run's write and its restart. What reads back now is what the
        run reports; a value that does not hold after the second write is not_permitted, naming who moved it."""
        report = stage.report
        for probe, wanted in stage.changes:
            name = probe.knob.name
            if report.knobs[name]['state'] != APPLIED:
                continue
            try:
                if probe.knob.current(self.fs.read(probe.path)) == wanted:
                    continue
                self.fs.write_value(probe.path, wanted)
                self._read_back(probe.knob, probe.path, wanted, probe.value, report)
            except FsError as exc:
                report.outcome(name, NOT_PERMITTED_STATE, reason='%s once the files acted: %s' % (probe.path, exc))
                continue
            if report.knobs[name]['state'] != APPLIED:
                report.outcome(name, NOT_PERMITTED_STATE,
                               reason='read back as written, then changed to %r once the files acted (%s)'
                               % (report.knobs[name]['value'], '; '.join(report.actions)))

    def _idle_units(self, stage, targets):
        """This run's units whose files need no write but that systemd does not run or enable: a run killed between
        writing a unit and starting it leaves them so, and what to write is chosen by content alone."""
        if self.systemctl is None:
            return []
        units = [unit_of(path) for path, entry in sorted(stage.state.files().items())
                 if entry['subsystem'] in stage.owners and unit_of(path) and path not in targets]
        return [unit for unit in units if not (self.systemctl.is_active(unit) and self.systemctl.is_enabled(unit))]

    def _read_back_expected(self, stage):
        """What systemd set from the files, read back; kept in the state so drift sees it."""
        for probe, wanted in stage.expected:
            self._read_back_systemd_value(probe, wanted, stage.report)
            if stage.report.knobs[probe.knob.name]['state'] == APPLIED:
                stage.state.set_knob(probe.knob, stage.report.knobs[probe.knob.name]['path'], wanted, PERSIST_SYSTEMD)
        if stage.expected:
            stage.state.save()

    def _check_owned(self, units, files):
        """Refuse owned files no subsystem may own, and units or drop-ins on a host whose systemd this run cannot
        reach, before anything is written (the state would otherwise name files that were never installed)."""
        paths = ['%s/%s' % (UNIT_DIR, name) for name in (units[1] if units else {})] + list(files[1] if files else {})
        bad = [path for path in paths if owned_file_kind(path) is None]
        if bad:
            raise EngineError('invalid owned files, nothing was changed: %s is not a file a subsystem may own (a '
                              'systemd unit or drop-in, a udev rule, the irqbalance settings)' % ', '.join(bad))
        systemd_paths = [path for path in paths if owned_file_kind(path) in (FILE_UNIT, FILE_DROPIN)]
        if systemd_paths and self.systemctl is None:
            raise EngineError('systemd units must change (%s) but systemd is not managing this host; nothing was '
                              'changed' % ', '.join(sorted(systemd_paths)))

    def _read_back_systemd_value(self, planned, wanted, report):
        name = planned.knob.name
        probe = self.probe(planned.knob)
        report.record(name, probe.state, path=probe.path, previous=planned.value, desired=wanted, value=probe.value,
                      changed=probe.value != planned.value, reason=probe.reason)
        if probe.usable and probe.value != wanted:
            report.outcome(name, NOT_PERMITTED_STATE,
                           reason='systemd left %r where its unit asks for %r' % (probe.value, wanted))

    def _write_live(self, probe, wanted, report, written):
        name = probe.knob.name
        try:
            self.fs.write_value(probe.path, wanted)
        except FsError as exc:
            if exc.kind == NOT_PERMITTED:
                report.outcome(name, NOT_PERMITTED_STATE, reason=str(exc))
                return
            if exc.kind == ABSENT and probe.raw is None:
                # A file planned in a directory this run created (a cgroup) that the kernel did not put there: its
                # controller is not enabled, or the kernel lacks the option (cpu.uclamp.* needs UCLAMP_TASK_GROUP).
                report.outcome(name, UNSUPPORTED, reason='%s did not appear in the new directory: its controller '
                                                         'or kernel option is missing' % probe.path)
                return
            self._roll_back(written)
            if exc.kind == INVALID:
                raise EngineError('%s: the kernel rejected %r (%s); the values this run had already written were put '
                                  'back' % (name, wanted, exc))
            raise EngineError('%s: %s' % (name, exc))
        written.append(probe)
        self._read_back(probe.knob, probe.path, wanted, probe.value, report)

    def _read_back(self, knob, path, wanted, previous, report):
        """The kernel is the truth: a written value counts as applied only when it reads back."""
        now = knob.current(self.fs.read(path))
        report.outcome(knob.name, APPLIED if now == wanted else NOT_PERMITTED_STATE, value=now,
                       changed=now != previous,
                       reason=None if now == wanted else 'the kernel kept %r after %r was written' % (now, wanted))

    def _roll_back(self, written):
        for probe in reversed(written):
            try:
                self.fs.write_value(probe.path, probe.value)
            except FsError:
                pass

    def _write_files(self, targets, baseline, idle_units=()):
        """Write the managed files, and make each change act now. Returns what was done, one line per action.
        ``idle_units``: units whose files are as wanted already, started (and enabled) like new ones.

        Units going away are stopped first; then every file is written; then systemd reloads, new or changed units
        start, udev re-reads its rules and replays the block devices, and a running irqbalance restarts.
        """
        kinds = {path: owned_file_kind(path) for path in targets}
        systemd_paths = [path for path in sorted(targets) if kinds[path] in (FILE_UNIT, FILE_DROPIN)]
        if systemd_paths and self.systemctl is None:
            raise EngineError('systemd units must change (%s) but systemd is not managing this host'
                              % ', '.join(systemd_paths))
        actions = []
        # Stopping a slice stops the services running in it. A running service that one of these drop-ins placed is
        # started again once the files are written, where its drop-in (or its absence) now puts it: otherwise a
        # restore would leave the host's inference server stopped along with its slice.
        slice_stops = any(kinds[path] == FILE_UNIT and targets[path][1] is None and path.endswith('.slice')
                          for path in systemd_paths)
        placed_running = [unit for unit in (path.rsplit('/', 2)[1][:-2] for path in systemd_paths
                                            if slice_stops and kinds[path] == FILE_DROPIN)
                          if self.systemctl.is_active(unit)]
        for path in systemd_paths:
            if kinds[path] == FILE_UNIT and targets[path][1] is None:
                self.systemctl.stop(unit_of(path))
                actions.append('stopped %s' % unit_of(path))
        for path in sorted(targets):
            dummy, after = targets[path]
            write_target(self.fs, path, after, baseline, before_rename=lambda tmp: failpoint('file_rename'))
        if systemd_paths or idle_units:
            # A killed run may have written the idle units' files without the reload that makes systemd read them.
            self.systemctl.daemon_reload()
            actions.append('systemctl daemon-reload')
        for path in systemd_paths:
            before, after = targets[path]
            if kinds[path] == FILE_UNIT and after is not None:
                self.systemctl.start(unit_of(path), restart=before is not None and not path.endswith('.slice'))
                actions.append('started %s' % unit_of(path))
        for unit in idle_units:
            self.systemctl.start(unit)
            actions.append('started %s (its file was in place, the unit was not running or not enabled)' % unit)
        for unit in placed_running:
            if not self.systemctl.is_active(unit):
                self.systemctl.restart(unit)
                actions.append('started %s again (stopping its slice had stopped it)' % unit)
        if any(kind == FILE_UDEV for kind in kinds.values()):
            if self.udevadm is None:
                actions.append('udev is not running here: the rules act from the next boot')
            else:
                self.udevadm.reload_and_trigger('block')
                actions.append('udevadm trigger --subsystem-match=block')
        if any(kind == FILE_IRQBALANCE for kind in kinds.values()) and self.systemctl is not None:
            self.systemctl.try_restart('irqbalance.service')
            actions.append('systemctl try-restart irqbalance.service')
        return actions

    # -- restoring -----------------------------------------------------------------------------------------------------
    def restore(self, scope='all', keep_calibration=False):
        """Put back every recorded original in ``scope`` (``all`` or a subsystem), live values and files alike.

        Any restore also takes away the record of the mode (the local fact): the host no longer holds the whole mode.
        Once nothing is left to put back, the collection's own state goes too (baseline, state and lock files, and
        /var/lib/aitune itself), and a restore of everything removes the benchmark's calibration unless
        ``keep_calibration``: a restored host keeps nothing of the collection's. The baseline stays while any
        original could not be put back."""
        report = Report(self)
        self.check_state_files()
        # Taking the lock creates the state directory on a host that has none; that is no change to report.
        had_state_dir = self.fs.lexists(STATE_DIR)
        with self.lock() as lock:
            baseline = Baseline(self.fs)
            state = State(self.fs)
            # Knobs whose originals predate others of the same file go last (Knob.restore_last), so theirs stands.
            names = sorted((n for n in baseline.knobs() if scope == 'all' or subsystem_of(n) == scope),
                           key=lambda n: (lookup(n).restore_last, n))
            originals = baseline.knobs()
            created = sorted((p for p, e in baseline.dirs().items() if scope in ('all', e['subsystem'])), reverse=True)
            report.dirs = {path: 'removed' for path in created if self.fs.lexists(path)}
            if not self.check_mode:
                # Created directories go before the knobs: a parent's cgroup.subtree_control can give a controller
                # back only once no child cgroup uses it any more.
                for path in created:
                    self._remove_created_dir(path, baseline, report)
            # The originals that leave the baseline: those put back, and those nothing can ever put back (the kernel
            # manages that IRQ now, or it is gone): keeping them would leave the baseline behind for good.
            settled = [name for name in names if self._restore_knob(name, originals, report)]
            params_before = state.cmdline_params()
            state.drop_subsystem(scope)
            state.drop_subsystem(RECORD_OWNER)
            targets = file_targets(self.fs, state, baseline)
            self._add_untracked_record(targets, state, baseline)
            report.add_files(targets)
            report.boot_params = (params_before, state.cmdline_params())
            if self.check_mode:
                if scope == 'all':
                    self._clean_own_state(lock, not keep_calibration, report, had_state_dir)
                return report.finish(state)
            # The directories the first write of a file created go with the file (write_target removes them once
            # empty); the report names each one that went.
            created_with = [directory for path, (dummy, after) in sorted(targets.items()) if after is None
                            for directory in (baseline.files().get(path) or {}).get('missing_dirs') or ()]
            report.actions = self._write_files(targets, baseline)
            report.dirs.update((directory, 'removed') for directory in created_with if not self.fs.lexists(directory))
            for name in settled:
                baseline.forget_knob(name)
            rendered = set(targets) | set(baseline.files())
            for path in rendered:
                if path in baseline.files() and self._file_is_original(path, baseline):
                    baseline.forget_file(path)
            state.save()
            baseline.save()
            report.add_files(targets)
            self._clean_own_state(lock, scope == 'all' and not keep_calibration, report, had_state_dir)
            return report.finish(state)

    def _add_untracked_record(self, targets, state, baseline):
        """An earlier version wrote the local fact without a state entry; restore removes it all the same (it is
        ours: nothing else writes aitune.fact), so no stale record can make the next tune run think it is done."""
        path = FACT_FILE
        if path in targets or path in state.files() or path in baseline.files():
            return
        existed, content, dummy = self.fs.file_state(path)
        if existed:
            targets[path] = (content, None)

    def _clean_own_state(self, lock, remove_calibration, report, had_state_dir):
        """After a restore: the calibration file when asked, then (once the baseline and state are gone, so nothing
        is left to put back) the lock file and the state directory. Reported in ``files`` and ``dirs``."""
        if remove_calibration:
            existed, content, dummy = self.fs.file_state(CALIBRATION_PATH)
            if existed:
                report.files[CALIBRATION_PATH] = {'before': content, 'after': None}
                if not self.check_mode:
                    self.fs.remove_file(CALIBRATION_PATH)
        if not self.fs.lexists(STATE_DIR):
            return
        if self.check_mode:
            report.dirs[STATE_DIR] = 'removed'
            return
        if self.fs.lexists(BASELINE_PATH) or self.fs.lexists(STATE_PATH):
            return
        lock.remove()
        if self.fs.remove_empty_dir(STATE_DIR) and had_state_dir:
            report.dirs[STATE_DIR] = 'removed'

    def _restore_knob(self, name, originals, report):
        """Put one original back. Returns True when its baseline entry is done with: put back, or never to be."""
        record = originals[name]
        knob = lookup(name)
        original = record['value']
        if original is None:
            # The file came with a directory this collection created (a cgroup); it goes when the directory goes.
            report.record(name, APPLIED, path=record['path'], desired=None, reason='removed with its directory')
            return True
        # The file is found again where the knob says (an IRQ by its identity); one that cannot be found is never
        # written, least of all at the recorded path, which may belong to something else now.
        path, lost = knob.locate(self.fs, record['path'], record['recorded'])
        if lost:
            report.record(name, UNSUPPORTED, path=record['path'], desired=original, reason='cannot restore: %s' % lost)
            return True
        final = self._put_back(knob, path, original, originals, report)
        return final or report.knobs[name]['state'] == APPLIED

    def _put_back(self, knob, path, original, originals, report):
        """Read, write and read back one original. Returns True where the kernel's refusal is final (Knob.refused)."""
        name = knob.name
        try:
            current = knob.current(self.fs.read(path))
        except FsError as exc:
            state = UNSUPPORTED if exc.kind == ABSENT else NOT_PERMITTED_STATE
            if exc.kind == REFUSED:
                raise EngineError('%s: %s' % (name, exc))
            if exc.kind == ABSENT and path.startswith(CGROUP_ROOT + '/'):
                # The cgroup is gone (its slice was stopped, the host rebooted) and took the value with it: a new
                # cgroup starts from the kernel default, so nothing is left to put back.
                report.record(name, APPLIED, path=path, desired=original, reason='its cgroup is gone, and the value '
                                                                                 'with it')
                return False
            reason, final = knob.refused(self.fs, path, exc)
            report.record(name, state, path=path, previous=None, desired=original, reason=reason)
            return final
        pair_original = originals.get(knob.pair, {}).get('value') if knob.pair else None
        if knob.pair and original == '0' and pair_original not in (None, '0'):
            # The kernel zeroes this half when the other half is written; writing 0 here would be refused.
            report.record(name, APPLIED, path=path, previous=current, desired=original, value=current,
                          reason='restored through %s' % knob.pair)
            return False
        report.add(Probe(knob, APPLIED, path, raw=current), original)
        # A file the kernel made read-only refuses as probe() says it would, in check mode too; as root, the write
        # itself might not.
        read_only = self._read_only_reason(path) if current != original else None
        if current == original or (self.check_mode and not read_only):
            return False
        try:
            if read_only:
                raise FsError(NOT_PERMITTED, path, read_only)
            self.fs.write_value(path, original)
        except FsError as exc:
            reason, final = knob.refused(self.fs, path, exc)
            report.record(name, NOT_PERMITTED_STATE, path=path, previous=current, desired=original, value=current,
                          reason=reason)
            return final
        self._read_back(knob, path, original, current, report)
        failpoint('after_restore_write')
        return False

    def _remove_created_dir(self, path, baseline, report):
        """Remove a directory the collection created. A cgroup still holding tasks hands them to the nearest ancestor
        the collection did not create first: they were placed there by us, and that ancestor is where they would have
        run without us. (A created parent would not do: under cgroup v2 a cgroup that enables controllers for its
        children may hold no tasks itself, and it goes next anyway.)"""
        procs = path + '/cgroup.procs'
        if path.startswith(CGROUP_ROOT + '/') and self.fs.lexists(procs):
            parent = path.rsplit('/', 1)[0]
            while parent in baseline.dirs() and parent.startswith(CGROUP_ROOT + '/'):
                parent = parent.rsplit('/', 1)[0]
            parent_procs = parent + '/cgroup.procs'
            for pid in (self.fs.read_optional(procs) or '').split():
                try:
                    self.fs.write_value(parent_procs, pid)
                except FsError:
                    pass  # the task exited meanwhile, or the kernel refused: rmdir below tells which
        try:
            removed = self.fs.remove_dir(path)
        except FsError as exc:
            report.dirs[path] = 'kept: %s' % exc
            return
        # Gone already: a reboot takes every cgroup with it.
        report.dirs[path] = 'removed' if removed else 'already gone'
        baseline.forget_dir(path)

    def _file_is_original(self, path, baseline):
        original = baseline.files()[path]
        existed, content, dummy = self.fs.file_state(path)
        return existed == original['existed'] and (not existed or content == original['content'])

    # -- reading -------------------------------------------------------------------------------------------------------
    def drift(self):
        """Knobs whose live value differs from what the collection last applied, and the persistence files (keyed by
        path) that no longer hold what it wrote: a deleted sysctl.d file loses nothing until the next boot, which is
        exactly when nobody is watching."""
        state = State(self.fs)
        drifted = {}
        for path, (before, after) in file_targets(self.fs, state, Baseline(self.fs)).items():
            drifted[path] = {'desired': 'absent' if after is None else 'as written by aitune.kernel',
                             'live': 'absent' if before is None else 'changed'}
        for name, entry in state.knobs().items():
            knob = lookup(name)
            path, lost = knob.locate(self.fs, entry['path'], entry['applied_at'])
            if lost:
                if knob.dynamic:
                    # What it names is gone or ambiguous now: the setting is in force nowhere, and the reason says why.
                    drifted[name] = {'desired': entry['value'], 'live': None, 'reason': lost}
                # A recorded path that no longer means the same file (an IRQ number from an earlier boot): there is
                # nothing to compare it with.
                continue
            try:
                live = knob.current(self.fs.read(path))
            except FsError as exc:
                live = None
                if exc.kind == NOT_PERMITTED:
                    continue
            if live != entry['value']:
                drifted[name] = {'desired': entry['value'], 'live': live}
        self._name_other_writers(drifted, state)
        return drifted

    def _name_other_writers(self, drifted, state):
        """Add ``probable_writer`` to each drifted knob that another tuner on the host writes (tuned's plugins,
        power-profiles-daemon, irqbalance, a governor service): the usual answer to "who changed it"."""
        names = [name for name in drifted if name in state.knobs()]
        if not names:
            return
        found = neighbours(self.fs)
        for name in names:
            writer = drift_writers(found, name, state.knobs()[name].get('path'))
            if writer:
                drifted[name]['probable_writer'] = writer

    def reboot_required(self, state=None, removed_params=()):
        """True when the running command line lacks a wanted boot parameter or still has a removed one."""
        state = state or State(self.fs)
        cmdline = self.kernel.cmdline()
        still_running = [p for p in removed_params if not missing_boot_params([p], cmdline)]
        return bool(missing_boot_params(state.cmdline_params(), cmdline) or still_running)


def record_original(baseline, path):
    """Record a file's original in the baseline before its first write; the local fact's original is absence."""
    return baseline.record_file(path, ours=owned_file_kind(path) == FILE_FACT)


class _Stage(object):
    """One apply's work, as its steps hand it on: the report, the baseline and state documents, the planned changes,
    the values systemd will set, the directories to create and the files to write."""

    def __init__(self, report, baseline, state):
        self.report = report
        self.baseline = baseline
        self.state = state
        self.expected = []
        self.changes = []
        self.owners = set()
        self.missing_dirs = []
        self.targets = {}


class _SweepingLock(HostLock):
    """The host lock, plus removal of temp files a killed run left behind (holding the lock, nobody else is writing),
    and a warning when it found the lease of a run that is gone."""

    def __init__(self, fs, timeout, run_id, warn):
        super(_SweepingLock, self).__init__(fs, timeout=timeout, run_id=run_id)
        self.warn = warn

    def __enter__(self):
        super(_SweepingLock, self).__enter__()
        if self.lease.gone is not None:
            lease, why = self.lease.gone
            self.warn('the run lease of %s no longer holds the host: %s' % (lease.describe(self.lease.now), why))
        for directory in temp_file_dirs():
            self.fs.sweep_temp_files(directory, may_leave_temp_file)
        return self


class _HeldLock(object):
    """The host lock an enclosing call already holds: entering and leaving it change nothing."""

    def __init__(self, held):
        self.held = held

    def __enter__(self):
        return self

    def remove(self):
        self.held.remove()

    def __exit__(self, *exc_info):
        return False


class _NoLock(object):
    def __enter__(self):
        return self

    def remove(self):
        pass

    def __exit__(self, *exc_info):
        return False
