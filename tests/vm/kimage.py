#!/usr/bin/env python3
"""Unpack the parts of a Debian kernel package that the VM test tier needs.

Used by tests/vm/fetch-kernel.sh; python3 standard library only.

  kimage.py extract DEST PREFIX...
      Read a tar stream on stdin (from `dpkg-deb --fsys-tarfile PKG.deb`) and
      write every member whose path equals or lies under one of the PREFIXes
      (e.g. ./lib/modules/6.1.0-56-amd64/kernel/drivers/vfio) into DEST.
      Kernel modules are stored uncompressed (.ko.xz, .ko.zst and .ko.gz
      become .ko), so that busybox insmod and depmod see plain files.
      Prefixes that matched nothing are listed on stderr (6.12 has no
      fs/fscache, for instance); that is not an error.

  kimage.py vmlinux BZIMAGE OUT
      Write the uncompressed ELF kernel contained in BZIMAGE to OUT, found
      through the boot protocol header (payload_offset/payload_length), so
      QEMU can boot it directly through its PVH entry point, which skips
      the slow in-guest decompression under TCG.  Exit status 3 means the
      ELF has no PVH note (QEMU cannot boot it with -kernel); boot the
      bzImage instead.
"""

import gzip
import io
import lzma
import os
import struct
import subprocess
import sys
import tarfile


def decompress_module(name, data):
    """Return (plain name, plain bytes) of a possibly compressed module."""
    if name.endswith(".ko.xz"):
        return name[:-3], lzma.decompress(data)
    if name.endswith(".ko.gz"):
        return name[:-3], gzip.decompress(data)
    if name.endswith(".ko.zst"):
        out = subprocess.run(["zstd", "-dcq"], input=data,
                             stdout=subprocess.PIPE, check=True)
        return name[:-4], out.stdout
    return name, data


def safe_relpath(name):
    """Member name as a relative path, or None when it would escape DEST."""
    rel = os.path.normpath(name.lstrip("/"))
    if rel == "." or rel.startswith("..") or os.path.isabs(rel):
        return None
    return rel


def cmd_extract(dest, prefixes):
    prefixes = [p.rstrip("/") for p in prefixes]
    matched = set()
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        for member in tar:
            hit = next((p for p in prefixes
                        if member.name == p or member.name.startswith(p + "/")),
                       None)
            if hit is None:
                continue
            rel = safe_relpath(member.name)
            if rel is None:
                continue
            matched.add(hit)
            path = os.path.join(dest, rel)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
            elif member.isfile():
                data = tar.extractfile(member).read()
                path, data = decompress_module(path, data)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
                os.chmod(path, 0o644)
            # symlinks and devices are never needed here
    for p in prefixes:
        if p not in matched:
            print(f"kimage: not in package: {p}", file=sys.stderr)
    return 0


def decompress_payload(payload):
    """Uncompressed kernel from the bzImage payload (size trailer included)."""
    if payload.startswith(b"\xfd7zXZ\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        return d.decompress(payload)
    if payload.startswith(b"\x28\xb5\x2f\xfd"):
        # The last 4 bytes are the uncompressed size appended by kbuild.
        out = subprocess.run(["zstd", "-dcq"], input=payload[:-4],
                             stdout=subprocess.PIPE, check=True)
        return out.stdout
    if payload.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
    raise SystemExit("kimage: unknown compression of the kernel payload "
                     f"(magic {payload[:6].hex()})")


def has_pvh_note(elf):
    """True when the ELF has the Xen PHYS32_ENTRY note QEMU's PVH loader needs."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:  # ELF64 only
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", elf, off)
        if p_type != 4:  # PT_NOTE
            continue
        n_off, = struct.unpack_from("<Q", elf, off + 8)
        n_size, = struct.unpack_from("<Q", elf, off + 32)
        pos, end = n_off, n_off + n_size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def cmd_vmlinux(bzimage, out):
    with open(bzimage, "rb") as f:
        img = f.read()
    if img[0x202:0x206] != b"HdrS":
        raise SystemExit(f"kimage: {bzimage}: not a bzImage")
    setup_sects = img[0x1f1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", img, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    elf = decompress_payload(img[start:start + payload_length])
    if elf[:4] != b"\x7fELF":
        raise SystemExit(f"kimage: {bzimage}: payload is not an ELF kernel")
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)
    if not has_pvh_note(elf):
        print(f"kimage: {out}: no PVH entry note", file=sys.stderr)
        return 3
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "extract":
        return cmd_extract(argv[2], argv[3:])
    if len(argv) == 4 and argv[1] == "vmlinux":
        return cmd_vmlinux(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
