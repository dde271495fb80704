# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) 2026 aitune.kernel contributors
"""Offline checks of tools/lab/lab.py (no qemu, no network): python3 -m pytest tools/lab/test_lab.py"""

import gzip
import json
import os
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
