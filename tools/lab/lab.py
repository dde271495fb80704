# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""VM lab for aitune.kernel: build a Debian bookworm guest image and run it under qemu.

Subcommands:
  build        build (or reuse) the content-addressed guest image; prints its directory
  image-dir    print the directory of the image for the current inputs (no build)
  up           boot one or more VMs into a run directory and wait for SSH
  down         stop the VMs of a run directory (by PID file) and remove their overlays
  gc           stop/remove leftovers of run directories under the lab cache
  probe-accel  print "kvm" if a short, hard-time-limited KVM probe works, else "tcg"
  key          print the path of the lab's SSH private key (creating it once)

Only the Python 3 standard library is used.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import inspect
import json
import lzma
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUEST = HERE / "guest"

SUITE = "bookworm"
COMPONENTS = "main"
MIRROR = os.environ.get("AITUNE_LAB_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("AITUNE_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security")

# Modules each flavour's initrd loads, with their dependencies from modules.dep (built-in ones are skipped). The root
# file system is ext4 on virtio-blk and eth0 is virtio-net, configured by the initrd for slirp.
# The cloud kernels build ext4 and crc32c in; the generic and RT kernels build them, NVMe and virtio as modules.
# crc32c_generic comes before ext4: ext4 and jbd2 ask the crypto API for "crc32c" by name at mount time, which no
# modules.dep line records, and the initrd has no modprobe to load it on demand.
CLOUD_INITRD = ["virtio_pci", "virtio_blk", "virtio_net"]
MODULAR_INITRD = ["virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4"]

# What the guest keeps of a kernel that ships every driver (/lib/modules/<release>/kernel/...): the generic and RT
# kernels bring about 400 MB of modules each, for hardware a q35 guest does not have. Prefixes of module paths in
# modules.dep; what they need (modules.dep) is kept with them, and depmod runs again afterwards.
GUEST_MODULES = [
    "kernel/drivers/block/",          # virtio_blk, loop
    "kernel/drivers/nvme/",           # the lab's NVMe disk
    "kernel/drivers/virtio/",         # virtio_pci and the virtio core
    "kernel/drivers/char/hw_random/",  # virtio_rng (virtio-rng-pci)
    "kernel/drivers/net/virtio_net",  # eth0 (net_failover and failover come as its dependencies)
    "kernel/drivers/cpuidle/",        # cpuidle-haltpoll, which tuning_facts reports on
    "kernel/fs/ext4/", "kernel/fs/jbd2/", "kernel/fs/mbcache",
    "kernel/crypto/", "kernel/arch/x86/crypto/", "kernel/lib/",
    "kernel/net/core/", "kernel/net/ipv4/", "kernel/net/ipv6/", "kernel/net/packet/", "kernel/net/unix/",
    "kernel/net/sched/",
]

# Kernel flavours: the key scenarios name (platform "kernel:") -> the apt package, the release string it installs,
# the initrd's modules and whether the modules are pruned to GUEST_MODULES. docs/lab.md describes how to add one.
KERNELS = {
    "6.1": {"package": "linux-image-cloud-amd64", "release_re": r"^6\.1\.0-\d+-cloud-amd64$",
            "initrd_modules": CLOUD_INITRD, "prune_modules": False},
    "6.12": {"package": "linux-image-6.12-cloud-amd64", "release_re": r"^6\.12\.\d+\+deb12-cloud-amd64$",
             "initrd_modules": CLOUD_INITRD, "prune_modules": False},
    "6.1-rt": {"package": "linux-image-rt-amd64", "release_re": r"^6\.1\.0-\d+-rt-amd64$",
               "initrd_modules": MODULAR_INITRD, "prune_modules": True},
    "6.1-generic": {"package": "linux-image-amd64", "release_re": r"^6\.1\.0-\d+-amd64$",
                    "initrd_modules": MODULAR_INITRD, "prune_modules": True},
}

PACKAGES = [
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "kmod",
    "procps",
    "util-linux",
    "irqbalance",
    "busybox-static",  # source of the initrd's /bin/busybox
    "tuned",  # masked (NEIGHBOUR_UNITS); the kernels scenario starts it to check the collection beside it
] + [k["package"] for k in KERNELS.values()]

# Units that only cost boot time in a throwaway test VM.  dbus and
# systemd-logind stay: ansible.builtin.reboot needs them.
MASK_UNITS = [
    "systemd-networkd-wait-online.service",
    "systemd-udev-settle.service",
    "getty@tty1.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
    "systemd-tmpfiles-clean.timer",
    "systemd-binfmt.service",
    "systemd-pstore.service",
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@dm_mod.service",
]
# Other tuners the image carries but does not run: the scenarios that want one unmask and start it, and every other
# scenario sees a host where it is installed and stopped.
NEIGHBOUR_UNITS = ["tuned.service"]
# eth0 is configured by the initrd (static slirp address), so no network manager. lab-agent and lab-batch are the
# stand-in services the mode scenarios place (guest/rootfs/etc/systemd/system).
ENABLE_UNITS = ["ssh.service", "lab-agent.service", "lab-batch.service"]

# Generators systemd runs on every boot before it loads any unit; none of them
# finds anything to do in the lab guest (no LUKS, GPT auto-mounts, hibernation,
# SysV scripts without a native unit, ...), but each costs emulated CPU time.
MASK_GENERATORS = [
    "systemd-cryptsetup-generator",
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-integritysetup-generator",
    "systemd-veritysetup-generator",
    "systemd-rc-local-generator",
    "systemd-run-generator",
    "systemd-system-update-generator",
    "systemd-sysv-generator",
]

# Kernel messages stay quiet (loglevel=4); systemd's unit status lines go to the
# serial console so that a boot that hangs shows where.
KERNEL_CMDLINE = ("root=/dev/vda rw console=ttyS0,115200 loglevel=4 net.ifnames=0 panic=-1"
                  " systemd.show_status=true")

DEFAULT_BOOT_TIMEOUT = int(os.environ.get("AITUNE_LAB_BOOT_TIMEOUT", "240"))
DEFAULT_LIFETIME = int(os.environ.get("AITUNE_LAB_MAX_LIFETIME", str(3 * 3600)))


def cache_dir() -> Path:
    return Path(os.environ.get("AITUNE_LAB_CACHE", Path.home() / ".cache" / "aitune-lab"))


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


class LabError(Exception):
    pass


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, **kw)


# --------------------------------------------------------------------------- ssh key


def ssh_key() -> Path:
    d = cache_dir() / "ssh"
    key = d / "id_ed25519"
    if key.exists() and key.with_suffix(".pub").exists():
        return key
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(d / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if not key.exists():
            log(f"creating lab SSH key {key}")
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aitune-lab", "-f", str(key)])
    key.chmod(0o600)
    return key


SSH_OPTS = [
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
]


# --------------------------------------------------------------------------- image


def image_key() -> tuple[str, dict]:
    """Content key of the image: package list, suites, builder files and SSH public key."""
    h = hashlib.sha256()
    inputs = {
        "suite": SUITE,
        "components": COMPONENTS,
        "packages": sorted(PACKAGES),
        "kernels": KERNELS,
        "guest_modules": GUEST_MODULES,
        "mask": MASK_UNITS,
        "neighbours": NEIGHBOUR_UNITS,
        "enable": ENABLE_UNITS,
        "mask_generators": MASK_GENERATORS,
    }
    h.update(json.dumps(inputs, sort_keys=True).encode())
    # The builder code itself (not the VM-running code, which may change freely)...
    for fn in (_build_into, customize, build_initrd, extract_vmlinux, _newc, _read_module, parse_modules_dep,
               module_name, resolve_modules, modules_to_keep, module_tables, prune_modules):
        h.update(inspect.getsource(fn).encode() + b"\0")
    # ...and every file copied into the guest or the initrd.
    for p in sorted(p for p in GUEST.rglob("*") if p.is_file()):
        h.update(str(p.relative_to(GUEST)).encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    h.update(ssh_key().with_suffix(".pub").read_bytes())
    return h.hexdigest()[:20], inputs


def image_dir() -> Path:
    return cache_dir() / "images" / image_key()[0]


def image_ready(d: Path) -> bool:
    return (d / "manifest.json").is_file()


def _newc(entries: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """Write a cpio newc archive. entries: (name, mode, data, rdevmajor, rdevminor)."""
    out = bytearray()

    def pad4(n: int) -> bytes:
        return b"\0" * ((4 - n % 4) % 4)

    ino = 1
    for name, mode, data, rmaj, rmin in entries + [("TRAILER!!!", 0, b"", 0, 0)]:
        nb = name.encode() + b"\0"
        nlink = 2 if (mode & 0o170000) == 0o040000 else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(nb), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        out += hdr + nb + pad4(len(hdr) + len(nb))
        out += data + pad4(len(data))
        ino += 1
    return bytes(out)


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return run(["zstd", "-dcq", str(path)], capture_output=True).stdout
    return data


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """modules.dep as {module path: [paths of the modules it needs]} (paths relative to /lib/modules/<release>)."""
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        mod, _sep, rest = line.partition(":")
        if mod.strip():
            deps[mod.strip()] = rest.split()
    return deps


def module_name(path: str) -> str:
    """The name the kernel knows a module file by: its base name without .ko[.xz|.gz|.zst], with - read as _."""
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def resolve_modules(deps: dict[str, list[str]], builtin: list[str], wanted: list[str], release: str) -> list[str]:
    """The module files that load the wanted modules, each after what it needs (modules.dep); a wanted module built
    into the kernel (modules.builtin) needs no file. A wanted module that is neither is an error: the guest would
    not boot."""
    by_name = {module_name(mod): mod for mod in deps}
    built_in = {module_name(mod) for mod in builtin}
    order: list[str] = []
    seen: set[str] = set()

    def visit(mod: str) -> None:
        if mod in seen:
            return
        seen.add(mod)
        for dep in deps.get(mod, []):
            visit(dep)
        order.append(mod)

    for name in wanted:
        key = name.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif key not in built_in:
            raise LabError(f"module {name} not found for kernel {release}")
    return order


def modules_to_keep(deps: dict[str, list[str]], keep: list[str], wanted: list[str], release: str) -> set[str]:
    """The module files the guest keeps: those under the kept prefixes and the initrd's, with everything they need."""
    roots = [module_name(mod) for mod in deps if mod.startswith(tuple(keep))]
    # Wanted modules that are built in have no file and need nothing kept (resolve_modules refuses the others).
    loadable = [name for name in wanted if name.replace("-", "_") in {module_name(mod) for mod in deps}]
    return set(resolve_modules(deps, [], roots + loadable, release))


def module_tables(moddir: Path) -> tuple[dict[str, list[str]], list[str]]:
    """modules.dep and modules.builtin of one kernel."""
    builtin = moddir / "modules.builtin"
    return (parse_modules_dep((moddir / "modules.dep").read_text()),
            builtin.read_text().split() if builtin.exists() else [])


def prune_modules(rootfs: Path, release: str, keep: list[str], wanted: list[str]) -> tuple[int, int, int]:
    """Delete the module files of one kernel that modules_to_keep leaves out, then run the guest's depmod so that
    modules.dep, the aliases and the symbols name only what is left. Returns (kept, removed, bytes removed)."""
    moddir = rootfs / "lib" / "modules" / release
    deps, builtin = module_tables(moddir)
    resolve_modules(deps, builtin, wanted, release)  # refuse a flavour whose initrd modules do not exist at all
    kept = modules_to_keep(deps, keep, wanted, release)
    removed = freed = 0
    for mod in deps:
        if mod not in kept:
            path = moddir / mod
            freed += path.stat().st_size
            path.unlink()
            removed += 1
    for d in sorted((p for p in (moddir / "kernel").rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                    reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    run(["chroot", str(rootfs), "depmod", "-a", release])
    return len(kept), removed, freed


def build_initrd(rootfs: Path, release: str, dest: Path, wanted: list[str]) -> list[str]:
    moddir = rootfs / "lib" / "modules" / release
    deps, builtin = module_tables(moddir)
    order = resolve_modules(deps, builtin, wanted, release)

    entries: list[tuple[str, int, bytes, int, int]] = []
    for d in ("bin", "dev", "proc", "sys", "newroot", "etc", "lib", "lib/modules"):
        entries.append((d, 0o040755, b"", 0, 0))
    entries.append(("dev/console", 0o020600, b"", 5, 1))
    entries.append(("init", 0o100755, (GUEST / "init").read_bytes(), 0, 0))
    entries.append(("bin/sh", 0o120777, b"busybox", 0, 0))
    busybox = rootfs / "bin" / "busybox"
    if not busybox.exists():
        busybox = rootfs / "usr" / "bin" / "busybox"
    entries.append(("bin/busybox", 0o100755, busybox.read_bytes(), 0, 0))
    names = []
    for mod in order:
        plain = os.path.basename(mod).split(".ko")[0] + ".ko"
        entries.append((f"lib/modules/{plain}", 0o100644, _read_module(moddir / mod), 0, 0))
        names.append(plain)
    entries.append(("etc/lab-modules", 0o100644, ("\n".join(names) + "\n").encode(), 0, 0))
    dest.write_bytes(_newc(entries))
    return names


def extract_vmlinux(bzimage: Path, dest: Path) -> bool:
    """Unpack the ELF vmlinux from a bzImage (for PVH direct boot). Returns False if not possible."""
    data = bzimage.read_bytes()
    if data[0x202:0x206] != b"HdrS":
        return False
    setup_sects = data[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = data[start:start + payload_length]
    out = b""
    try:
        if payload[:6] == b"\xfd7zXZ\x00":
            out = lzma.LZMADecompressor().decompress(payload)
        elif payload[:2] == b"\x1f\x8b":
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        elif payload[:4] == b"\x28\xb5\x2f\xfd":
            p = subprocess.run(["zstd", "-dcq"], input=payload, capture_output=True, check=False)
            out = p.stdout
        elif payload[:4] == b"\x02\x21\x4c\x18" and shutil.which("lz4"):
            p = subprocess.run(["lz4", "-dcq"], input=payload, capture_output=True, check=False)
            out = p.stdout
        elif payload[:3] == b"\x5d\x00\x00":
            out = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
    except (lzma.LZMAError, zlib.error, OSError) as exc:
        log(f"cannot unpack {bzimage.name}: {exc}")
        return False
    if out[:4] != b"\x7fELF":
        return False
    dest.write_bytes(out)
    return True


def customize(rootfs: Path, pubkey: bytes) -> None:
    # Lab configuration files.
    src = GUEST / "rootfs"
    for p in src.rglob("*"):
        if p.is_file():
            t = rootfs / p.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            if t.is_symlink() or t.exists():
                t.unlink()
            shutil.copyfile(p, t)
            t.chmod(0o644)
    # Root login by the lab key only.
    ssh = rootfs / "root" / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_bytes(pubkey)
    (ssh / "authorized_keys").chmod(0o600)
    # No pam_systemd: a login then does not wait for a user manager.
    for pam in (rootfs / "etc" / "pam.d").glob("common-session*"):
        lines = [ln for ln in pam.read_text().splitlines() if "pam_systemd.so" not in ln]
        pam.write_text("\n".join(lines) + "\n")
    # Only the ed25519 host key: loading RSA/ECDSA keys costs emulated CPU time at start.
    for kind in ("rsa", "ecdsa", "dsa"):
        for p in (rootfs / "etc" / "ssh").glob(f"ssh_host_{kind}_key*"):
            p.unlink()
    # No motd/mail scripts on every SSH login (each costs emulated CPU time).
    sshd_pam = rootfs / "etc" / "pam.d" / "sshd"
    lines = [ln for ln in sshd_pam.read_text().splitlines() if "pam_motd.so" not in ln and "pam_mail.so" not in ln]
    sshd_pam.write_text("\n".join(lines) + "\n")
    # Units.
    run(["systemctl", "--root", str(rootfs), "mask", *MASK_UNITS, *NEIGHBOUR_UNITS], capture_output=True)
    run(["systemctl", "--root", str(rootfs), "enable", *ENABLE_UNITS], capture_output=True)
    run(["systemctl", "--root", str(rootfs), "set-default", "multi-user.target"], capture_output=True)
    generators = rootfs / "etc" / "systemd" / "system-generators"
    generators.mkdir(parents=True, exist_ok=True)
    for name in MASK_GENERATORS:
        (generators / name).symlink_to("/dev/null")
    # Initramfs images built by the kernel packages are not used (the lab has its own).
    for p in (rootfs / "boot").glob("initrd.img-*"):
        p.unlink()
    for p in (rootfs / "var" / "cache" / "apt").glob("*.bin"):
        p.unlink()
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (rootfs / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "machine-id").write_text("")


def build(force: bool = False) -> Path:
    key, inputs = image_key()
    images = cache_dir() / "images"
    final = images / key
    if image_ready(final) and not force:
        log(f"image cache hit: reusing {final} (key {key})")
        return final
    images.mkdir(parents=True, exist_ok=True)
    with open(images / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if image_ready(final) and not force:
            log(f"image cache hit: reusing {final} (key {key})")
            return final
        t0 = time.monotonic()
        log(f"image cache miss: building {final} (key {key})")
        work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=images))
        try:
            _build_into(work, inputs)
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        _prune(images, keep=final)
        log(f"image built in {time.monotonic() - t0:.1f}s: {final}")
    return final


def _prune(images: Path, keep: Path, n_keep: int = 2) -> None:
    dirs = sorted((d for d in images.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.stat().st_mtime, reverse=True)
    kept = 0
    for d in dirs:
        if d == keep or kept < n_keep - 1:
            kept += d != keep
            continue
        log(f"pruning old image {d}")
        shutil.rmtree(d, ignore_errors=True)


def _build_into(work: Path, inputs: dict) -> None:
    rootfs = work / "rootfs"
    t0 = time.monotonic()
    sources = [
        f"deb {MIRROR} {SUITE} {COMPONENTS}",
        f"deb {MIRROR} {SUITE}-updates {COMPONENTS}",
        f"deb {SECURITY_MIRROR} {SUITE}-security {COMPONENTS}",
    ]
    cmd = [
        "mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
        "--include=" + ",".join(PACKAGES),
        "--aptopt=Acquire::Languages \"none\"",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        # The lab boots its own tiny initrd: make update-initramfs a no-op.
        "--essential-hook=chroot \"$1\" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs"
        " && printf '#!/bin/sh\\nexit 0\\n' > \"$1/usr/sbin/update-initramfs\""
        " && chmod 755 \"$1/usr/sbin/update-initramfs\"",
        SUITE, str(rootfs), *sources,
    ]
    run(cmd, stdout=sys.stderr)
    log(f"mmdebstrap done in {time.monotonic() - t0:.1f}s")

    customize(rootfs, ssh_key().with_suffix(".pub").read_bytes())

    kernels = {}
    releases = sorted(p.name[len("vmlinuz-"):] for p in (rootfs / "boot").glob("vmlinuz-*"))
    for flavour, spec in KERNELS.items():
        match = [r for r in releases if re.match(spec["release_re"], r)]
        if not match:
            raise LabError(f"no kernel for {flavour} in image (found {releases})")
        release = match[-1]
        bz = rootfs / "boot" / f"vmlinuz-{release}"
        config_file = rootfs / "boot" / f"config-{release}"
        config = config_file.read_text() if config_file.exists() else ""
        kfile = f"vmlinux-{flavour}"
        if not ("CONFIG_PVH=y" in config and extract_vmlinux(bz, work / kfile)):
            kfile = f"bzImage-{flavour}"
            shutil.copyfile(bz, work / kfile)
        if spec["prune_modules"]:
            kept, removed, freed = prune_modules(rootfs, release, GUEST_MODULES, spec["initrd_modules"])
            log(f"kernel {flavour}: kept {kept} modules, removed {removed} ({freed >> 20} MiB)")
        mods = build_initrd(rootfs, release, work / f"initrd-{flavour}.img", spec["initrd_modules"])
        kernels[flavour] = {"release": release, "kernel": kfile, "initrd": f"initrd-{flavour}.img",
                            "initrd_modules": mods}
        log(f"kernel {flavour}: {release} ({kfile}, initrd modules: {' '.join(mods)})")

    # ext4 image straight from the directory (no loop mount), then qcow2.
    used = int(run(["du", "-sb", str(rootfs)], capture_output=True, text=True).stdout.split()[0])
    size_mb = used // (1 << 20) + 1024
    raw = work / "rootfs.raw"
    run(["mke2fs", "-q", "-t", "ext4", "-L", "aitune-root", "-E", "root_owner=0:0", "-d", str(rootfs), str(raw),
         f"{size_mb}M"], stdout=sys.stderr)
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(work / "rootfs.qcow2")])
    raw.unlink()
    shutil.rmtree(rootfs)
    manifest = {
        "key": work.name.split("-")[1] if work.name.startswith(".build-") else work.name,
        "inputs": inputs,
        "kernels": kernels,
        "image": "rootfs.qcow2",
        "image_size_mb": size_mb,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


# --------------------------------------------------------------------------- accel probe

def probe_kvm(img: Path, manifest: dict, timeout: float = 10.0) -> bool:
    """Boot the lab kernel under KVM into the initrd's busybox, which powers off at once.

    Nested KVM on some hosts accepts a VM and then hangs (or aborts on an MSR), so
    only a real kernel reaching user space within a hard time limit counts.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    k = manifest["kernels"][sorted(manifest["kernels"])[-1]]
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-machine", "q35", "-cpu", "host", "-smp", "1", "-m", "256",
           "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
           "-kernel", str(img / k["kernel"]), "-initrd", str(img / k["initrd"]),
           "-append", "console=ttyS0 panic=-1 rdinit=/bin/busybox -- poweroff -f"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return False
    return p.returncode == 0 and b"Run /bin/busybox as init process" in out


def accel(img: Path, manifest: dict) -> str:
    forced = os.environ.get("AITUNE_LAB_ACCEL", "auto")
    if forced in ("tcg", "kvm"):
        return forced
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = "unknown"
    cache = cache_dir() / "accel-probe.json"
    try:
        data = json.loads(cache.read_text())
        if data.get("boot_id") == boot_id:
            return data["accel"]
    except (OSError, ValueError, KeyError):
        pass
    result = "kvm" if probe_kvm(img, manifest) else "tcg"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"boot_id": boot_id, "accel": result}))
    log(f"accelerator probe: {result}")
    return result


# --------------------------------------------------------------------------- VMs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int, token: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return token.encode() in cmdline


# -- idle states the guest firmware announces (platform key "cpuidle") -------------------------------------------------
# QEMU's ACPI tables give the vCPUs neither _CST nor P_BLK, so a TCG guest has no cpuidle driver at all: acpi_idle finds
# no state, haltpoll needs KVM's paravirtual CPUID leaf (TCG answers "TCGTCGTCGTCG"), intel_idle an Intel CPU model.
# "acpi" adds an SSDT (qemu -acpitable, so the guest kernel is not tainted by a table override) with a _CST per vCPU
# that announces one state, C1 entered by HLT. The guest's acpi_idle then registers POLL and C1, and PM QoS requests
# and the per-state disable files act as on real hardware. There is no deeper state on purpose: TCG's MWAIT only
# pauses on SMP guests and an I/O-port C2 returns at once, so the vCPU would spin on the shared host CPUs. A request
# below C1's exit latency (PM QoS 0) makes the guest poll, which keeps both vCPUs busy just as on real hardware.
CPUIDLE_MODES = ("none", "acpi")
C1_EXIT_LATENCY_US = 1
C1_POWER_MW = 1000


def _aml_pkglength(body_len: int) -> bytes:
    """AML PkgLength: the length of itself plus the body, in one to four bytes."""
    for extra in range(4):
        total = body_len + 1 + extra
        if extra == 0 and total < 0x40:
            return bytes([total])
        if extra and total < 1 << (4 + 8 * extra):
            return bytes([(extra << 6) | (total & 0x0F)]) + (total >> 4).to_bytes(extra, "little")
    raise LabError(f"AML object too large ({body_len} bytes)")


def _aml_integer(value: int) -> bytes:
    if value in (0, 1):
        return bytes([value])  # ZeroOp, OneOp
    for prefix, size in ((0x0A, 1), (0x0B, 2), (0x0C, 4)):
        if value < 1 << (8 * size):
            return bytes([prefix]) + value.to_bytes(size, "little")
    raise LabError(f"AML integer out of range: {value}")


def _aml_package(*elements: bytes) -> bytes:
    body = bytes([len(elements)]) + b"".join(elements)
    return b"\x12" + _aml_pkglength(len(body)) + body


def _aml_buffer(data: bytes) -> bytes:
    body = _aml_integer(len(data)) + data
    return b"\x11" + _aml_pkglength(len(body)) + body


def cstate_ssdt(cpus: int) -> bytes:
    """An SSDT giving each vCPU (QEMU names them \\_SB.CPUS.C000, C001, ...) a _CST with one C1 state entered by HLT."""
    # Generic Register descriptor, Functional Fixed Hardware with bit offset 0: Linux enters such a C1 by HLT.
    register = bytes([0x82, 0x0C, 0x00, 0x7F, 0, 0, 0]) + bytes(8) + b"\x79\x00"
    cst = b"\x08_CST" + _aml_package(
        _aml_integer(1),
        _aml_package(_aml_buffer(register), _aml_integer(1), _aml_integer(C1_EXIT_LATENCY_US),
                     _aml_integer(C1_POWER_MW)))
    body = b""
    for cpu in range(cpus):
        path = b"\\\x2f\x03_SB_CPUS" + f"C{cpu:03X}".encode()
        body += b"\x10" + _aml_pkglength(len(path) + len(cst)) + path + cst
    header = struct.pack("<4sIBB6s8sI4sI", b"SSDT", 36 + len(body), 2, 0, b"AITUNE", b"LABCST  ", 1, b"AITN", 1)
    table = bytearray(header + body)
    table[9] = -sum(table) & 0xFF
    return bytes(table)


def read_pid(inst: Path) -> int | None:
    try:
        return int((inst / "qemu.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def qemu_cmd(inst: Path, img: Path, manifest: dict, spec: dict, port: int, token: str, acc: str) -> list[str]:
    k = manifest["kernels"][spec["kernel"]]
    mem = int(spec["memory"])
    cpus = int(spec["cpus"])
    numa = int(spec.get("numa") or 0)
    cmd = [
        "qemu-system-x86_64",
        "-name", f"aitune-{spec['name']},process=aitune-{token}",
        "-machine", "q35",
        "-cpu", "max" if acc == "tcg" else "host",
        "-smp", str(cpus), "-m", str(mem),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
        "-kernel", str(img / k["kernel"]), "-initrd", str(img / k["initrd"]),
        "-append", KERNEL_CMDLINE + f" aitune.lab={token}",
        "-drive", f"file={inst / 'root.qcow2'},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-drive", f"file={inst / 'nvme.qcow2'},if=none,id=nv0,format=qcow2,cache=unsafe",
        "-device", f"nvme,serial=aitune{token[:8]},drive=nv0",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-rng-pci",
        "-serial", f"file:{inst / 'console.log'}",
        "-monitor", "none",
        "-pidfile", str(inst / "qemu.pid"),
    ]
    cmd[1:1] = ["-accel", "tcg,thread=multi"] if acc == "tcg" else ["-accel", "kvm"]
    if spec.get("cpuidle") == "acpi":
        cmd += ["-acpitable", f"file={inst / 'cstates.aml'}"]
    if numa > 1:
        if cpus % numa or mem % numa:
            raise LabError(f"{spec['name']}: cpus ({cpus}) and memory ({mem}) must divide by numa ({numa})")
        per_cpu = cpus // numa
        for n in range(numa):
            cpu_range = f"{n * per_cpu}-{(n + 1) * per_cpu - 1}" if per_cpu > 1 else str(n)
            cmd += ["-object", f"memory-backend-ram,id=mem{n},size={mem // numa}M",
                    "-numa", f"node,nodeid={n},cpus={cpu_range},memdev=mem{n}"]
    return cmd


def normalize_spec(p: dict) -> dict:
    kernel = str(p.get("kernel", "6.12"))
    if kernel not in KERNELS:
        raise LabError(f"platform {p.get('name')}: kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
    mem = p.get("memory", 1024)
    if isinstance(mem, str):
        m = re.fullmatch(r"(\d+)\s*([GgMm])?i?[Bb]?", mem.strip())
        if not m:
            raise LabError(f"platform {p.get('name')}: bad memory {mem!r}")
        mem = int(m.group(1)) * (1024 if (m.group(2) or "M").upper() == "G" else 1)
    cpuidle = str(p.get("cpuidle", "none"))
    if cpuidle not in CPUIDLE_MODES:
        raise LabError(f"platform {p.get('name')}: cpuidle must be one of {list(CPUIDLE_MODES)}, got {cpuidle!r}")
    return {
        "name": str(p["name"]),
        "kernel": kernel,
        "memory": int(mem),
        "cpus": int(p.get("cpus", 2)),
        "numa": int(p.get("numa") or 0),
        "nvme_size": str(p.get("nvme_size", "1G")),
        "cpuidle": cpuidle,
    }


def start_vm(run_dir: Path, img: Path, manifest: dict, spec: dict, lifetime: int) -> dict:
    inst = run_dir / spec["name"]
    if inst.exists():
        stop_instance(inst)
    inst.mkdir(parents=True)
    token = secrets.token_hex(8)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(img / manifest["image"]),
         str(inst / "root.qcow2")])
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(inst / "nvme.qcow2"), spec["nvme_size"]])
    if spec.get("cpuidle") == "acpi":
        (inst / "cstates.aml").write_bytes(cstate_ssdt(int(spec["cpus"])))
    acc = accel(img, manifest)
    for attempt in range(5):
        port = free_port()
        cmd = qemu_cmd(inst, img, manifest, spec, port, token, acc)
        if lifetime > 0:
            # Backstop: even if every cleanup path fails, the VM dies after its lifetime.
            cmd = ["timeout", "--kill-after=10", str(lifetime)] + cmd
        (inst / "console.log").write_text("")
        info = {"name": spec["name"], "token": token, "port": port, "accel": acc, "spec": spec,
                "kernel_release": manifest["kernels"][spec["kernel"]]["release"],
                "started": time.time(), "cmd": cmd}
        (inst / "instance.json").write_text(json.dumps(info, indent=2))
        with open(inst / "qemu.log", "wb") as qlog:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                    start_new_session=True)
        # Wait until the forwarded port listens (hostfwd is set up at start) or qemu exits.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                return info
            except OSError:
                time.sleep(0.1)
        qlog_text = (inst / "qemu.log").read_text(errors="replace")
        if proc.poll() is None:
            return info
        if "forward" in qlog_text.lower() and attempt < 4:
            log(f"{spec['name']}: port {port} taken, retrying")
            continue
        raise LabError(f"{spec['name']}: qemu exited with {proc.returncode}:\n{qlog_text}")
    raise LabError(f"{spec['name']}: could not start qemu")


def banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(3)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def ssh_cmd(port: int, key: Path, *remote: str) -> list[str]:
    return ["ssh", *SSH_OPTS, "-i", str(key), "-p", str(port), "root@127.0.0.1", *remote]


def tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no console log)"
    return "\n".join(lines[-n:])


def wait_ssh(run_dir: Path, infos: list[dict], timeout: int) -> None:
    key = ssh_key()
    pending = {i["name"]: i for i in infos}
    t0 = time.monotonic()
    stage = dict.fromkeys(pending, "banner")
    while pending:
        for name, info in list(pending.items()):
            inst = run_dir / name
            pid = read_pid(inst)
            if pid is not None and not pid_alive(pid, info["token"]) or (pid is None and time.monotonic() - t0 > 15):
                raise LabError(f"{name}: qemu is not running any more.\n--- qemu.log ---\n"
                               f"{tail(inst / 'qemu.log', 20)}\n"
                               f"--- serial console (tail) ---\n{tail(inst / 'console.log')}")
            if stage[name] == "banner":
                if banner(info["port"]):
                    stage[name] = "ssh"
            if stage[name] == "ssh":
                try:
                    p = subprocess.run(ssh_cmd(info["port"], key, "true"), capture_output=True, timeout=60,
                                       check=False)
                    ok = p.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                if ok:
                    info["boot_seconds"] = round(time.monotonic() - t0, 1)
                    log(f"{name}: SSH up on 127.0.0.1:{info['port']} after {info['boot_seconds']}s "
                        f"(kernel {info['kernel_release']}, {info['accel']})")
                    (inst / "instance.json").write_text(json.dumps(info, indent=2))
                    del pending[name]
        if not pending:
            break
        if time.monotonic() - t0 > timeout:
            msgs = []
            for name in pending:
                msgs.append(f"{name}: no SSH after {timeout}s (stage: waiting for {stage[name]}).\n"
                            f"--- serial console of {name} (tail, {run_dir / name / 'console.log'}) ---\n"
                            f"{tail(run_dir / name / 'console.log')}")
            raise LabError("\n".join(msgs))
        time.sleep(0.5)


def pids_with_token(token: str) -> list[int]:
    """Processes started for one instance (qemu and its timeout wrapper), by the token in their command line."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and pid_alive(int(d.name), f"aitune-{token}"):
            found.append(int(d.name))
    return found


def _terminate(pid: int, token: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _attempt in range(50):
            if not pid_alive(pid, token):
                return
            time.sleep(0.1)


def stop_instance(inst: Path) -> None:
    info = {}
    try:
        info = json.loads((inst / "instance.json").read_text())
    except (OSError, ValueError):
        pass
    pid = read_pid(inst)
    token = info.get("token")
    if token:
        # The PID file names our qemu; the token check guards against a reused PID.
        if pid and pid_alive(pid, token):
            _terminate(pid, token)
            log(f"stopped {inst.name} (pid {pid})")
        # qemu killed before it wrote its PID file, or a leftover timeout wrapper.
        for other in pids_with_token(token):
            _terminate(other, token)
            log(f"stopped {inst.name} (pid {other}, found by token)")
    shutil.rmtree(inst, ignore_errors=True)


def instance_config(info: dict, key: Path) -> dict:
    return {
        "instance": info["name"],
        "address": "127.0.0.1",
        "user": "root",
        "port": info["port"],
        "identity_file": str(key),
        "kernel": info["spec"]["kernel"],
        "kernel_release": info["kernel_release"],
    }


def cmd_up(args) -> int:
    run_dir = Path(args.run_dir).resolve()
    platforms = json.loads(Path(args.platforms[1:]).read_text() if args.platforms.startswith("@") else args.platforms)
    specs = [normalize_spec(p) for p in platforms]
    if os.environ.get("AITUNE_LAB_IMAGE"):
        img = Path(os.environ["AITUNE_LAB_IMAGE"])
    else:
        img = build() if not args.no_build else image_dir()
    if not image_ready(img):
        raise LabError(f"no image at {img}; run tools/lab/build-image first")
    manifest = json.loads((img / "manifest.json").read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    key = ssh_key()
    started: list[dict] = []
    try:
        for spec in specs:
            started.append(start_vm(run_dir, img, manifest, spec, args.lifetime))
        wait_ssh(run_dir, started, args.timeout)
    except BaseException:
        for info in started:
            stop_instance(run_dir / info["name"])
        raise
    configs = [instance_config(i, key) for i in started]
    out = json.dumps(configs, indent=2)
    if args.output:
        Path(args.output).write_text(out + "\n")
    print(out)
    return 0


def cmd_down(args) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        return 0
    names = args.name or [p.name for p in run_dir.iterdir() if p.is_dir()]
    for name in names:
        stop_instance(run_dir / name)
    if not args.name:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def cmd_gc(args) -> int:
    base = cache_dir() / "run"
    roots = [Path(a) for a in args.dirs] or ([base] if base.exists() else [])
    for root in roots:
        for inst_json in root.rglob("instance.json"):
            inst = inst_json.parent
            try:
                info = json.loads(inst_json.read_text())
            except (OSError, ValueError):
                info = {}
            pid = read_pid(inst)
            alive = bool(pid and info.get("token") and pid_alive(pid, info["token"]))
            if alive and not args.kill:
                continue
            stop_instance(inst)
        # remove now-empty directories
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lab.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--force", action="store_true")
    sub.add_parser("image-dir")
    u = sub.add_parser("up")
    u.add_argument("--run-dir", required=True)
    u.add_argument("--platforms", required=True, help="JSON list of platforms, or @file")
    u.add_argument("--timeout", type=int, default=DEFAULT_BOOT_TIMEOUT)
    u.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME, help="hard kill after N seconds (0: none)")
    u.add_argument("--output")
    u.add_argument("--no-build", action="store_true")
    d = sub.add_parser("down")
    d.add_argument("--run-dir", required=True)
    d.add_argument("--name", action="append")
    g = sub.add_parser("gc")
    g.add_argument("--kill", action="store_true", help="also stop running VMs")
    g.add_argument("dirs", nargs="*")
    sub.add_parser("probe-accel")
    sub.add_parser("key")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            print(build(force=args.force))
        elif args.cmd == "image-dir":
            print(image_dir())
        elif args.cmd == "up":
            return cmd_up(args)
        elif args.cmd == "down":
            return cmd_down(args)
        elif args.cmd == "gc":
            return cmd_gc(args)
        elif args.cmd == "probe-accel":
            img = Path(os.environ["AITUNE_LAB_IMAGE"]) if os.environ.get("AITUNE_LAB_IMAGE") else build()
            print(accel(img, json.loads((img / "manifest.json").read_text())))
        elif args.cmd == "key":
            print(ssh_key())
    except (LabError, subprocess.CalledProcessError) as exc:
        print(f"[lab] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
