# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Offline checks of tools/lab/lab.py (no qemu, no network): python3 -m pytest tools/lab/test_lab.py"""

import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # noqa: E402


def parse_newc(data):
    out, off = {}, 0
    while True:
        assert data[off:off + 6] == b"070701"
        fields = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        body = data[off:off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, fields[9], fields[10])


def test_newc_round_trip():
    entries = [("dev", 0o040755, b"", 0, 0), ("dev/console", 0o020600, b"", 5, 1), ("init", 0o100755, b"#!/bin/sh\n", 0, 0)]
    parsed = parse_newc(lab._newc(entries))
    assert parsed["init"] == (0o100755, b"#!/bin/sh\n", 0, 0)
    assert parsed["dev/console"][2:] == (5, 1)


def test_extract_vmlinux_gzip(tmp_path):
    elf = b"\x7fELF" + b"\0" * 60
    payload = gzip.compress(elf)
    setup_sects = 1
    img = bytearray((setup_sects + 1) * 512)
    img[0x1F1] = setup_sects
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", img, 0x248, 0, len(payload))
    (tmp_path / "bz").write_bytes(bytes(img) + payload)
    assert lab.extract_vmlinux(tmp_path / "bz", tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == elf


def test_extract_vmlinux_rejects_non_bzimage(tmp_path):
    (tmp_path / "bz").write_bytes(b"\0" * 4096)
    assert not lab.extract_vmlinux(tmp_path / "bz", tmp_path / "vmlinux")


def test_normalize_spec():
    spec = lab.normalize_spec({"name": "a", "kernel": 6.1, "memory": "2G", "numa": 2})
    assert spec == {"name": "a", "kernel": "6.1", "memory": 2048, "cpus": 2, "numa": 2, "nvme_size": "1G",
                    "cpuidle": "none"}
    with pytest.raises(lab.LabError):
        lab.normalize_spec({"name": "a", "kernel": "5.10"})
    with pytest.raises(lab.LabError, match="cpuidle"):
        lab.normalize_spec({"name": "a", "cpuidle": "haltpoll"})


def test_qemu_cmd_numa(tmp_path):
    manifest = {"kernels": {"6.12": {"kernel": "vmlinux-6.12", "initrd": "initrd-6.12.img"}}}
    spec = lab.normalize_spec({"name": "a", "kernel": "6.12", "memory": 2048, "numa": 2})
    cmd = lab.qemu_cmd(tmp_path, tmp_path, manifest, spec, 2222, "tok", "tcg")
    joined = " ".join(cmd)
    assert "-accel tcg,thread=multi" in joined and "-cpu max" in joined and "-machine q35" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined
    assert "node,nodeid=0,cpus=0,memdev=mem0" in joined and "node,nodeid=1,cpus=1,memdev=mem1" in joined
    assert "memory-backend-ram,id=mem1,size=1024M" in joined
    assert "-device nvme,serial=" in joined


def test_qemu_cmd_announces_idle_states_only_when_asked(tmp_path):
    manifest = {"kernels": {"6.12": {"kernel": "vmlinux-6.12", "initrd": "initrd-6.12.img"}}}
    plain = lab.qemu_cmd(tmp_path, tmp_path, manifest, lab.normalize_spec({"name": "a"}), 2222, "tok", "tcg")
    assert "-acpitable" not in plain
    spec = lab.normalize_spec({"name": "a", "cpuidle": "acpi"})
    cmd = lab.qemu_cmd(tmp_path, tmp_path, manifest, spec, 2222, "tok", "tcg")
    assert cmd[cmd.index("-acpitable") + 1] == f"file={tmp_path / 'cstates.aml'}"


# _CST of one vCPU as iasl 20200925 compiles it from
#   Name (_CST, Package () { 1, Package () { ResourceTemplate () { Register (FFixedHW, 0, 0, 0) }, 1, 1, 1000 } })
IASL_CST = bytes.fromhex("085f435354 1220 02 01 121c 04 1114 0a11 820c00 7f 000000 0000000000000000 7900 01 01 0be803"
                         .replace(" ", ""))


def test_cstate_ssdt_is_a_valid_table_with_one_cst_per_cpu():
    table = lab.cstate_ssdt(2)
    signature, length, revision = struct.unpack_from("<4sIB", table)
    assert (signature, length, revision) == (b"SSDT", len(table), 2)
    assert sum(table) % 256 == 0
    assert table.count(IASL_CST) == 2
    assert b"\\\x2f\x03_SB_CPUSC000" + IASL_CST in table
    assert b"\\\x2f\x03_SB_CPUSC001" + IASL_CST in table
    assert b"C002" not in table


def test_cstate_ssdt_names_cpus_as_qemu_does_and_grows_its_lengths():
    table = lab.cstate_ssdt(300)
    assert struct.unpack_from("<I", table, 4)[0] == len(table) and sum(table) % 256 == 0
    # QEMU names vCPUs with three upper-case hex digits.
    assert b"_SB_CPUSC00A" in table and b"_SB_CPUSC12B" in table


def test_aml_pkglength_encodings():
    assert lab._aml_pkglength(0x3E) == b"\x3f"
    # 0x40 and more: the low nibble in the lead byte, the rest in the following bytes.
    assert lab._aml_pkglength(100) == bytes([0x40 | (102 & 0x0F), 102 >> 4])
    assert lab._aml_pkglength(4000) == bytes([0x40 | (4002 & 0x0F), 4002 >> 4])
    assert lab._aml_pkglength(5000) == bytes([0x80 | (5003 & 0x0F)]) + (5003 >> 4).to_bytes(2, "little")


def test_image_key_is_stable_and_content_based(tmp_path, monkeypatch):
    monkeypatch.setenv("AITUNE_LAB_CACHE", str(tmp_path))
    k1 = lab.image_key()[0]
    k2 = lab.image_key()[0]
    assert k1 == k2
    monkeypatch.setattr(lab, "PACKAGES", [*lab.PACKAGES, "htop"])
    assert lab.image_key()[0] != k1


def test_stop_instance_only_kills_matching_token(tmp_path):
    inst = tmp_path / "vm"
    inst.mkdir()
    # A process that is not ours: the PID file names it, but its command line lacks the token.
    other = subprocess.Popen(["sleep", "30"])
    try:
        (inst / "qemu.pid").write_text(str(other.pid))
        (inst / "instance.json").write_text(json.dumps({"token": "not-in-its-cmdline"}))
        lab.stop_instance(inst)
        time.sleep(0.2)
        assert other.poll() is None
        assert not inst.exists()
    finally:
        other.kill()
        other.wait()


def test_stop_instance_kills_by_pid_file(tmp_path):
    inst = tmp_path / "vm"
    inst.mkdir()
    token = "0123456789abcdef"
    proc = subprocess.Popen(["sh", "-c", "while :; do sleep 0.2; done", f"aitune-{token}"])
    try:
        # Popen can return before the kernel shows the new command line: until then the child has none with the token,
        # and stop_instance rightly leaves it alone. Wait for it (generously, for a busy host) as a real qemu has it.
        deadline = time.monotonic() + 60
        while not lab.pid_alive(proc.pid, token) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lab.pid_alive(proc.pid, token)
        (inst / "qemu.pid").write_text(str(proc.pid))
        (inst / "instance.json").write_text(json.dumps({"token": token}))
        lab.stop_instance(inst)
        # stop_instance returns once the process is gone, so the wait only reaps it; its timeout is a generous
        # safety net for a busy host, not the check. The loop never ends by itself: it must have died of a signal.
        assert proc.wait(timeout=60) in (-signal.SIGTERM, -signal.SIGKILL)
        assert not inst.exists()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 9)


# -- kernel flavours and their modules ---------------------------------------------------------------------------------
# One release string per flavour, as Debian bookworm names them.
RELEASES = {"6.1": "6.1.0-57-cloud-amd64", "6.12": "6.12.48+deb12-cloud-amd64", "6.1-rt": "6.1.0-57-rt-amd64",
            "6.1-generic": "6.1.0-57-amd64"}


def test_every_flavour_matches_its_own_release_only():
    assert set(lab.KERNELS) == set(RELEASES)
    for flavour, spec in lab.KERNELS.items():
        matches = {other for other, release in RELEASES.items() if re.match(spec["release_re"], release)}
        assert matches == {flavour}, flavour


def test_every_flavour_is_installed_and_boots_from_virtio():
    for flavour, spec in lab.KERNELS.items():
        assert spec["package"] in lab.PACKAGES, flavour
        assert {"virtio_pci", "virtio_blk", "virtio_net"} <= set(spec["initrd_modules"]), flavour


def test_modular_flavours_load_ext4_and_its_checksum_and_are_pruned():
    for flavour in ("6.1-rt", "6.1-generic"):
        wanted = lab.KERNELS[flavour]["initrd_modules"]
        assert wanted.index("crc32c_generic") < wanted.index("ext4")
        assert lab.KERNELS[flavour]["prune_modules"]
    for flavour in ("6.1", "6.12"):
        assert "ext4" not in lab.KERNELS[flavour]["initrd_modules"]
        assert not lab.KERNELS[flavour]["prune_modules"]


def test_tuned_is_in_the_image_but_masked():
    assert "tuned" in lab.PACKAGES
    assert "tuned.service" in lab.NEIGHBOUR_UNITS
    assert "tuned.service" not in lab.ENABLE_UNITS


# A cut of a modular kernel's modules.dep (6.1 generic, uncompressed modules) and modules.builtin.
MODULES_DEP = """\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko \
kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/ptp/ptp.ko kernel/drivers/pps/pps_core.ko
kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko
kernel/drivers/pps/pps_core.ko:
kernel/drivers/gpu/drm/drm.ko:
kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko
kernel/drivers/nvme/host/nvme-core.ko:
"""
MODULES_BUILTIN = "kernel/drivers/char/mem.ko\nkernel/fs/ext4/ext4.ko\n"


def test_resolve_modules_puts_what_each_module_needs_first():
    deps = lab.parse_modules_dep(MODULES_DEP)
    order = lab.resolve_modules(deps, [], lab.MODULAR_INITRD, "6.1.0-57-amd64")
    assert len(order) == len(set(order))
    for mod in order:
        assert all(order.index(dep) < order.index(mod) for dep in deps[mod]), mod
    names = [lab.module_name(m) for m in order]
    # The checksum is in before anything that mounts ext4 asks the crypto API for it.
    assert names[-1] == "ext4" and names.index("crc32c_generic") < names.index("jbd2")
    assert "kernel/net/core/failover.ko" in order and "kernel/drivers/nvme/host/nvme.ko" not in order


def test_resolve_modules_skips_built_ins_and_refuses_unknown_modules():
    deps = lab.parse_modules_dep(MODULES_DEP)
    del deps["kernel/fs/ext4/ext4.ko"]
    order = lab.resolve_modules(deps, MODULES_BUILTIN.split(), ["ext4", "virtio_blk"], "r")
    assert not any("ext4" in mod or "jbd2" in mod for mod in order)
    with pytest.raises(lab.LabError, match="module 9p not found for kernel r"):
        lab.resolve_modules(deps, MODULES_BUILTIN.split(), ["9p"], "r")


def test_module_names_read_dashes_as_underscores_and_drop_compression():
    assert lab.module_name("kernel/drivers/nvme/host/nvme-core.ko.xz") == "nvme_core"
    assert lab.module_name("kernel/crypto/crc32c_generic.ko") == "crc32c_generic"
    deps = lab.parse_modules_dep("kernel/drivers/nvme/host/nvme-core.ko.xz:\n")
    assert lab.resolve_modules(deps, [], ["nvme-core"], "r") == ["kernel/drivers/nvme/host/nvme-core.ko.xz"]


def test_modules_to_keep_is_the_kept_trees_the_initrd_and_what_they_need():
    deps = lab.parse_modules_dep(MODULES_DEP)
    kept = lab.modules_to_keep(deps, ["kernel/drivers/nvme/", "kernel/drivers/net/virtio_net"], ["ext4"], "r")
    assert kept == {"kernel/drivers/nvme/host/nvme.ko", "kernel/drivers/nvme/host/nvme-core.ko",
                    "kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/net_failover.ko",
                    "kernel/net/core/failover.ko", "kernel/drivers/virtio/virtio_ring.ko",
                    "kernel/drivers/virtio/virtio.ko", "kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko",
                    "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko"}


def test_the_guest_keeps_its_devices_and_drops_hardware_it_does_not_have():
    deps = lab.parse_modules_dep(MODULES_DEP)
    kept = lab.modules_to_keep(deps, lab.GUEST_MODULES, lab.MODULAR_INITRD, "r")
    assert set(lab.resolve_modules(deps, [], lab.MODULAR_INITRD + ["nvme"], "r")) <= kept
    assert not kept & {"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko", "kernel/drivers/gpu/drm/drm.ko",
                       "kernel/drivers/ptp/ptp.ko"}


def fake_kernel_tree(root, release):
    moddir = root / "lib" / "modules" / release
    for mod in lab.parse_modules_dep(MODULES_DEP):
        (moddir / mod).parent.mkdir(parents=True, exist_ok=True)
        (moddir / mod).write_bytes(b"\x7fELF " + mod.encode())
    (moddir / "modules.dep").write_text(MODULES_DEP)
    (moddir / "modules.builtin").write_text(MODULES_BUILTIN.replace("kernel/fs/ext4/ext4.ko\n", ""))
    return moddir


def test_prune_modules_removes_the_rest_and_runs_the_guests_depmod(tmp_path, monkeypatch):
    release = "6.1.0-57-amd64"
    moddir = fake_kernel_tree(tmp_path, release)
    calls = []
    # depmod runs in the guest's root (chroot), which a test cannot enter; the call itself is what is checked.
    monkeypatch.setattr(lab, "run", lambda cmd, **kw: calls.append(cmd))
    kept, removed, freed = lab.prune_modules(tmp_path, release, lab.GUEST_MODULES, lab.MODULAR_INITRD)
    assert calls == [["chroot", str(tmp_path), "depmod", "-a", release]]
    left = {str(p.relative_to(moddir)) for p in moddir.rglob("*.ko")}
    assert left == lab.modules_to_keep(lab.parse_modules_dep(MODULES_DEP), lab.GUEST_MODULES, lab.MODULAR_INITRD,
                                       release)
    assert (kept, removed) == (len(left), 4) and freed > 0
    # Directories that held only removed modules are gone.
    assert not (moddir / "kernel" / "drivers" / "gpu").exists() and not (moddir / "kernel" / "drivers" / "ptp").exists()


def test_prune_modules_refuses_a_flavour_whose_initrd_module_is_missing(tmp_path, monkeypatch):
    fake_kernel_tree(tmp_path, "r")
    monkeypatch.setattr(lab, "run", lambda cmd, **kw: pytest.fail(f"ran {cmd}"))
    with pytest.raises(lab.LabError, match="module xfs not found"):
        lab.prune_modules(tmp_path, "r", lab.GUEST_MODULES, ["xfs"])
    assert (tmp_path / "lib/modules/r/kernel/drivers/gpu/drm/drm.ko").exists()


def test_build_initrd_carries_the_modules_in_load_order(tmp_path):
    moddir = fake_kernel_tree(tmp_path, "r")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "busybox").write_bytes(b"busybox")
    names = lab.build_initrd(tmp_path, "r", tmp_path / "initrd", lab.MODULAR_INITRD)
    parsed = parse_newc((tmp_path / "initrd").read_bytes())
    assert parsed["etc/lab-modules"][1].decode().split() == names
    order = lab.resolve_modules(lab.parse_modules_dep(MODULES_DEP), [], lab.MODULAR_INITRD, "r")
    assert names == [os.path.basename(mod) for mod in order]
    for mod in order:
        assert parsed[f"lib/modules/{os.path.basename(mod)}"][1] == (moddir / mod).read_bytes()
