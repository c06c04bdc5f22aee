#!/usr/bin/env python3
"""vmrun.py: boot a guest kernel under QEMU and run one script inside it.

usage: vmrun.py --kernel DIR [options] SCRIPT [ARGS...]

DIR is a kernel directory made by tests/vm/fetch-kernel.sh: a Debian kernel,
or the tier's own 6.12-iommufd (tests/vm/build-kernel.sh), which has every
module below built in.  The guest is a q35 machine with an emulated
intel-iommu (interrupt remapping on), TCG unless the host has real
VT-x/AMD-V and a writable /dev/kvm, and this PCI topology (the QEMU ids are
what hot-plug requests name):

    pcie.0 -- rp1 (pcie-root-port) -- nic1 e1000e        own IOMMU group
           -- rp2 (pcie-root-port) -- nic2 e1000e        own IOMMU group
           -- rp3 (pcie-root-port)    empty, for hot-plug
           -- rp4 (pcie-root-port) -- br1 pcie-pci-bridge  one group with
                                      slot 1 bnic1 e1000   the bridge and
                                      slot 2 bnic2 e1000   both e1000s
                                      slots 3.. empty, for hot-plug
           -- virtio-9p-pci: the host's / (read-only)

Group numbers are the kernel's business: read them from sysfs, never assume.

The initramfs (built here, in memory: busybox-static, the kernel modules the
VM needs in dependency order, tests/vm/guest-init.sh as /init) mounts the
host's root over virtio-9p under an overlay with a tmpfs upper, so SCRIPT
and the project's build run in the guest from the same absolute paths as on
the host.  SCRIPT runs there with bash, as root, with that overlay as its
root (moved onto / as switch_root does, not a chroot below it), with ARGS, in
the same working directory as this driver.

The guest talks to this driver over its second serial port (/dev/ttyS1,
raw mode), one line per message; everything else on that port is the
script's output:

    VB-BOOTED ...                   /init is about to start SCRIPT
    VB-PLAN NAME...                 the tests the script will run
    VB-BEGIN NAME [SECONDS]         a test starts (SECONDS: the script's own limit for it)
    VB-RESULT PASS|FAIL|SKIP NAME: WHAT IT PINS [-- REASON]
    VB-HOTPLUG add id=ID driver=DRV bus=BUS [PROP=VALUE]...   QMP device_add
    VB-HOTPLUG del id=ID            QMP device_del, then wait for DEVICE_DELETED
    VB-QMP {"execute": ...}         any QMP command
    VB-EXIT STATUS [MESSAGE]        SCRIPT finished; the guest powers off

Requests (HOTPLUG, QMP) are answered on the same port with one line,
"VB-ACK ok [JSON]" or "VB-ACK error MESSAGE".

With a plan, the run ends with the line "N passed, M failed" (", K skipped"
when there are skips); a planned test that never reported counts as failed.
Without a plan, the exit status is the script's.  The kernel console goes to
LOGDIR/console.log, the port's traffic to LOGDIR/output.log and QEMU's own
messages to LOGDIR/qemu.log; on any failure their tails are printed.

QEMU always ends with the run: it runs in its own process group, dies with
this process (PR_SET_PDEATHSIG), and is powered off or killed in a
`finally` on success, failure, timeout, Ctrl-C or SIGTERM.  A guest panic
stops QEMU at once (panic=-1 with -no-reboot).

python3 standard library only.
"""

import argparse
import ctypes
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Modules the guest loads, in this order after their dependencies (found in
# modules.dep); built-in ones (modules.builtin: all of them on 6.12-iommufd)
# are skipped.  The root file system first, then the NIC drivers the devices
# start on, then VFIO.
MODULES = [
    "virtio_pci", "9pnet_virtio", "9p", "overlay",
    "e1000e", "e1000",
    "vfio_pci", "vfio_iommu_type1",
]

# no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss
# its ticks, and with interrupt remapping that is a panic ("timer doesn't work
# through Interrupt-remapped IO-APIC", seen at load average 15 on 2 cores).
CMDLINE = ("console=ttyS0 panic=-1 oops=panic intel_iommu=on no_timer_check quiet "
           "loglevel=4")

MARKER = re.compile(r"VB-(BOOTED|PLAN|BEGIN|RESULT|HOTPLUG|QMP|EXIT)\b ?(.*)$")
RESULT = re.compile(r"(PASS|FAIL|SKIP) ([^\s:]+):? ?(.*)$")


class VmError(Exception):
    """The VM could not be prepared or run (not a test failure)."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""


def log(msg):
    print(f"vmrun: {msg}", flush=True)


# ---- initramfs ------------------------------------------------------------

class Cpio:
    """An in-memory newc cpio archive: the format of the initramfs."""

    def __init__(self):
        self.parts = []
        self.ino = 1000

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name_b), 0]
        self.ino += 1
        head = b"070701" + "".join(f"{v:08x}" for v in fields).encode()
        self.parts.append(head + name_b + b"\0" * (-(len(head) + len(name_b)) % 4))
        self.parts.append(data + b"\0" * (-len(data) % 4))

    def dir(self, name):
        self._add(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._add(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._add(name, 0o120777, target.encode())

    def chardev(self, name, major, minor):
        self._add(name, 0o020600, rdev=(major, minor))

    def bytes(self):
        self._add("TRAILER!!!", 0)
        return b"".join(self.parts)


def modname(path):
    """Module name of a .ko path: vfio-pci.ko.xz -> vfio_pci."""
    base = os.path.basename(path.strip())
    return base.split(".ko")[0].replace("-", "_")


def module_load_order(moddir, wanted):
    """[(name, path)] to insmod in order, dependencies first."""
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[modname(path)] = (path, [modname(d) for d in rest.split()])
    builtin = set()
    builtin_file = os.path.join(moddir, "modules.builtin")
    if os.path.exists(builtin_file):
        with open(builtin_file) as f:
            builtin = {modname(line) for line in f if line.strip()}
    order = []

    def visit(name, needed_by):
        if name in builtin or any(n == name for n, _ in order):
            return
        if name not in deps:
            raise VmError(f"kernel module {name} ({needed_by}) is neither built "
                          f"in nor unpacked in {moddir}")
        for dep in deps[name][1]:
            visit(dep, f"needed by {name}")
        order.append((name, os.path.join(moddir, deps[name][0])))

    for name in wanted:
        visit(name, "wanted by the VM")
    return order


def is_static_elf(path):
    """True for an ELF64 executable without a program interpreter."""
    with open(path, "rb") as f:
        elf = f.read(64)
        if elf[:4] != b"\x7fELF" or elf[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3  # PT_INTERP
               for i in range(phnum))


def find_static_busybox():
    for path in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")):
        if path and os.path.exists(path) and is_static_elf(path):
            return os.path.realpath(path)
    raise VmError("no static busybox found: install busybox-static")


def build_initramfs(kdir, kver, config, init=os.path.join(HERE, "guest-init.sh")):
    """The initramfs as bytes; init becomes /init, config /vb.conf (shell variables)."""
    busybox = find_static_busybox()
    applets = subprocess.run([busybox, "--list"], capture_output=True,
                             text=True, check=True).stdout.split()
    moddir = os.path.join(kdir, "modroot", "lib", "modules", kver)
    order = module_load_order(moddir, MODULES)

    cpio = Cpio()
    for d in ("bin", "dev", "proc", "sys", "lib", "lib/modules",
              "lower", "ovl", "host", "tmp"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    with open(busybox, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    for applet in applets:
        # Debian's list includes busybox itself: a self-link would replace
        # the binary and /init would fail with ELOOP (error -40).
        if applet != "busybox" and "/" not in applet:
            cpio.symlink(f"bin/{applet}", "busybox")
    for name, path in order:
        with open(path, "rb") as f:
            cpio.file(f"lib/modules/{name}.ko", f.read())
    cpio.file("lib/modules/load-order",
              "".join(f"{name}\n" for name, _ in order).encode())
    with open(init, "rb") as f:
        cpio.file("init", f.read(), 0o755)
    conf = "".join(f"{k}={shlex.quote(v)}\n" for k, v in config.items())
    cpio.file("vb.conf", conf.encode())
    return cpio.bytes()


# ---- QEMU -----------------------------------------------------------------

def kvm_usable():
    if os.environ.get("VB_ACCEL") == "tcg":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = re.search(r"\b(vmx|svm)\b", f.read())
    except OSError:
        return False
    return bool(flags) and os.access("/dev/kvm", os.W_OK)


def qopt(path):
    """A path inside a QEMU option list, where a comma is written ",,"."""
    return path.replace(",", ",,")


def qemu_command(kernel_image, initrd, tmp, logdir, memory, smp, kvm):
    if kvm:
        # intremap=on needs the split irqchip under KVM (untested here).
        accel = ["-machine", "q35,kernel-irqchip=split", "-accel", "kvm",
                 "-cpu", "host"]
    else:
        # tb-size caps QEMU's translation cache (its RSS) at no speed cost.
        accel = ["-machine", "q35", "-accel", "tcg,tb-size=128", "-cpu", "max"]
    dev = []

    def device(spec):
        dev.extend(["-device", spec])

    device("intel-iommu,intremap=on,caching-mode=on")
    device("virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,bus=pcie.0,addr=0x3")
    device("pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1,addr=0x10")
    device("e1000e,id=nic1,bus=rp1,romfile=")
    device("pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x11")
    device("e1000e,id=nic2,bus=rp2,romfile=")
    device("pcie-root-port,id=rp3,bus=pcie.0,chassis=3,slot=3,addr=0x12")
    device("pcie-root-port,id=rp4,bus=pcie.0,chassis=4,slot=4,addr=0x13")
    device("pcie-pci-bridge,id=br1,bus=rp4")
    device("e1000,id=bnic1,bus=br1,addr=0x1,romfile=")
    device("e1000,id=bnic2,bus=br1,addr=0x2,romfile=")
    return [
        "qemu-system-x86_64", "-name", "vfio-broker-test-vm",
        *accel, "-smp", str(smp), "-m", f"{memory}M",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-chardev", f"file,id=console,path={qopt(logdir)}/console.log",
        "-serial", "chardev:console",
        "-chardev", f"socket,id=ctl,path={qopt(tmp)}/ctl.sock,server=off",
        "-serial", "chardev:ctl",
        "-qmp", f"unix:{qopt(tmp)}/qmp.sock,server=on,wait=off",
        # ACPI hot-plug on the bridge; with SHPC instead, shpchp binds the
        # bridge and makes its IOMMU group permanently non-viable.
        "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=on",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,"
                  "multidevs=remap",
        *dev,
        "-kernel", kernel_image, "-initrd", initrd, "-append", CMDLINE,
    ]


def die_with_parent():
    """preexec_fn: SIGKILL QEMU if this driver dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Qmp:
    """Minimal QMP client: commands and the events that arrive meanwhile."""

    def __init__(self, path, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise VmError(f"cannot connect to QMP at {path}")
                time.sleep(0.05)
        self.buf = b""
        self.events = []
        self._read(time.monotonic() + timeout)  # greeting
        self.execute("qmp_capabilities")

    def _read(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VmError("QMP: no answer")
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    raise VmError("QMP: connection closed")
                self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None, timeout=30):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                err = reply["error"]
                raise VmError(f"{command}: {err.get('desc', err)}")
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name, match, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and match(ev.get("data", {})):
                    self.events.remove(ev)
                    return ev
            self.events.append(self._read(deadline))

    def close(self):
        self.sock.close()


# ---- the run --------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.kdir = os.path.abspath(args.kernel)
        with open(os.path.join(self.kdir, "kver")) as f:
            self.kver = f.read().strip()
        self.logdir = os.path.abspath(
            args.log_dir or os.path.join(os.path.dirname(self.kdir), "logs", self.kver))
        self.script = os.path.abspath(args.script)
        self.plan = []
        self.results = {}       # name -> (status, text)
        self.outputs = {}       # name -> [lines]
        self.current = None
        self.scenario_deadline = None
        self.scenario_limit = None
        self.problems = []      # infrastructure failures (timeouts, crashes)
        self.exit_status = None
        self.t_start = self.t_booted = self.t_end = None
        self.proc = self.qmp = self.ctl = None
        self.console_pos = 0

    # -- guest messages --

    def output(self, line):
        if self.current:
            self.outputs.setdefault(self.current, []).append(line)
        if self.args.verbose or self.args.show_output:
            print(line if self.args.show_output else f"  | {line}", flush=True)

    def ack(self, ok, text=""):
        reply = f"VB-ACK {'ok' if ok else 'error'} {text}".rstrip()
        self.ctl.sendall(reply.encode() + b"\n")

    def hotplug(self, rest):
        words = rest.split()
        op = words[0] if words else ""
        props = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            if op == "add":
                log(f"QMP device_add {props}")
                self.qmp.execute("device_add", props)
                self.ack(True)
            elif op == "del" and "id" in props:
                log(f"QMP device_del {props['id']}")
                self.qmp.execute("device_del", {"id": props["id"]})
                self.qmp.wait_event("DEVICE_DELETED",
                                    lambda d: d.get("device") == props["id"])
                self.ack(True)
            else:
                self.ack(False, f"bad request: {rest}")
        except VmError as e:
            log(f"hot-plug failed: {e}")
            self.ack(False, str(e))

    def qmp_request(self, rest):
        try:
            req = json.loads(rest)
            ret = self.qmp.execute(req["execute"], req.get("arguments"))
            self.ack(True, json.dumps(ret))
        except (ValueError, KeyError, VmError) as e:
            self.ack(False, str(e))

    def handle_line(self, line):
        m = MARKER.search(line)
        if not m:
            self.output(line)
            return
        if line[:m.start()].strip():
            self.output(line[:m.start()])
        kind, rest = m.group(1), m.group(2).strip()
        if kind == "BOOTED":
            self.t_booted = time.monotonic()
            log(f"booted in {self.t_booted - self.t_start:.1f} s")
        elif kind == "PLAN":
            self.plan = rest.split()
        elif kind == "BEGIN":
            # The script's own limit, if it gives one, is outlasted (by 30 s for its
            # kill and failure report), so that it reports the timeout and goes on.
            name, _, limit = rest.partition(" ")
            self.current = name
            self.scenario_limit = self.args.scenario_timeout
            if limit.isdigit():
                self.scenario_limit = max(self.scenario_limit, int(limit) + 30)
            self.scenario_deadline = time.monotonic() + self.scenario_limit
        elif kind == "RESULT":
            r = RESULT.match(rest)
            if not r:
                self.output(line)
                return
            status, name, text = r.groups()
            self.results[name] = (status, text)
            print(f"{status} {name}: {text}", flush=True)
            if status == "FAIL" and not self.args.verbose:
                self.print_output(name)
            self.current = None
            self.scenario_deadline = None
        elif kind == "HOTPLUG":
            self.hotplug(rest)
        elif kind == "QMP":
            self.qmp_request(rest)
        elif kind == "EXIT":
            status, _, msg = rest.partition(" ")
            self.exit_status = int(status) if status.lstrip("-").isdigit() else 255
            if msg:
                self.problems.append(f"guest: {msg}")

    def print_output(self, name):
        """The end of a failed test's output, without what the FAIL line says."""
        lines = [l for l in self.outputs.get(name, [])
                 if not l.startswith(("=== ", "FAIL: "))]
        for line in lines[-self.args.tail:]:
            print(f"    | {line}", flush=True)

    def stream_console(self):
        """In verbose mode, copy new console lines to stdout."""
        path = os.path.join(self.logdir, "console.log")
        try:
            with open(path, "rb") as f:
                f.seek(self.console_pos)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self.console_pos += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            print(f"console| {line.rstrip()}", flush=True)

    # -- lifecycle --

    def start(self, tmp):
        image = os.path.join(self.kdir, "vmlinux")
        if not os.path.exists(image):
            image = os.path.join(self.kdir, "vmlinuz")
        initrd = os.path.join(tmp, "initramfs.cpio")
        config = {
            "VB_SCRIPT": self.script,
            "VB_ARGS": " ".join(shlex.quote(a) for a in self.args.script_args),
            "VB_CWD": os.getcwd(),
            "VB_KVER": self.kver,
        }
        with open(initrd, "wb") as f:
            f.write(build_initramfs(self.kdir, self.kver, config, self.args.init))
        os.makedirs(self.logdir, exist_ok=True)
        for name in ("console.log", "output.log", "qemu.log"):
            open(os.path.join(self.logdir, name), "w").close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(tmp, "ctl.sock"))
        listener.listen(1)
        kvm = kvm_usable()
        cmd = qemu_command(image, initrd, tmp, self.logdir, self.args.memory,
                           self.args.smp, kvm)
        log(f"booting {self.kver} ({'KVM' if kvm else 'TCG'}, "
            f"{os.path.basename(image)}); logs in {self.logdir}")
        self.t_start = time.monotonic()
        with open(os.path.join(self.logdir, "qemu.log"), "wb") as qlog:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent)
        # QEMU connects its second serial port to us while it starts up.
        deadline = time.monotonic() + 30
        while True:
            ready, _, _ = select.select([listener], [], [], 0.2)
            if ready:
                self.ctl, _ = listener.accept()
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise VmError("QEMU did not start (see qemu.log)")
        listener.close()
        self.qmp = Qmp(os.path.join(tmp, "qmp.sock"))
        # QEMU has read the kernel and initramfs and both sockets are
        # connected: nothing in tmp is needed any more, so even a SIGKILL
        # of this driver leaves nothing behind.
        shutil.rmtree(tmp, ignore_errors=True)

    def loop(self):
        a = self.args
        boot_deadline = self.t_start + a.boot_timeout
        total_deadline = self.t_start + a.timeout
        buf = b""
        with open(os.path.join(self.logdir, "output.log"), "ab") as out:
            while True:
                ready, _, _ = select.select([self.ctl], [], [], 0.2)
                data = self.ctl.recv(65536) if ready else b""
                if data:
                    out.write(data)
                    out.flush()
                    buf += data.replace(b"\r", b"")
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self.handle_line(line.decode("utf-8", "replace"))
                if a.verbose:
                    self.stream_console()
                if self.exit_status is not None:
                    return
                if ready and not data:  # QEMU closed the port: it exited
                    if buf:
                        self.handle_line(buf.decode("utf-8", "replace"))
                    self.proc.wait(timeout=10)
                    self.problems.append(self.guest_death())
                    return
                now = time.monotonic()
                if self.t_booted is None and now > boot_deadline:
                    self.problems.append(f"timeout: the guest did not boot within "
                                         f"{a.boot_timeout} s")
                    return
                if self.scenario_deadline and now > self.scenario_deadline:
                    self.problems.append(f"timeout: {self.current} ran longer than "
                                         f"{self.scenario_limit} s")
                    return
                if now > total_deadline:
                    self.problems.append(f"timeout: the run took longer than {a.timeout} s")
                    return

    def guest_death(self):
        try:
            with open(os.path.join(self.logdir, "console.log"), errors="replace") as f:
                console = f.read()
        except OSError:
            console = ""
        if "Kernel panic" in console:
            return "the guest kernel panicked (see the console tail)"
        return f"QEMU exited (status {self.proc.returncode}) before the script finished"

    def stop(self):
        """Power the guest off, or kill QEMU; never leave it running."""
        if self.proc and self.proc.poll() is None and self.exit_status is not None:
            try:  # the guest is powering off
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.proc.poll() is None and self.qmp:
            try:
                self.qmp.execute("quit", timeout=2)
            except (VmError, OSError):
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for s in (self.qmp, self.ctl):
            if s:
                try:
                    s.close()
                except OSError:
                    pass
        self.t_end = time.monotonic()

    def print_tail(self, name, lines):
        path = os.path.join(self.logdir, name)
        try:
            with open(path, errors="replace") as f:
                content = f.read().splitlines()
        except OSError:
            return
        if not content:
            return
        print(f"--- last {min(lines, len(content))} lines of {path} ---")
        for line in content[-lines:]:
            print(line)
        print("---", flush=True)

    def report(self):
        """Print the summary; return the exit status."""
        failed = False
        for p in self.problems:
            print(f"vmrun: {p}", flush=True)
            failed = True
        if self.plan:
            for name in self.plan:
                if name not in self.results:
                    why = "no result: the guest stopped before it ran"
                    if name == self.current:
                        why = "no result: it was running when the run stopped"
                    self.results[name] = ("FAIL", why)
                    print(f"FAIL {name}: {why}", flush=True)
        counts = {s: sum(1 for r in self.results.values() if r[0] == s)
                  for s in ("PASS", "FAIL", "SKIP")}
        if counts["FAIL"]:
            failed = True
        if self.exit_status is None:
            failed = True
        elif self.exit_status != 0:
            if not counts["FAIL"]:
                print(f"vmrun: {os.path.basename(self.script)} exited with status "
                      f"{self.exit_status}", flush=True)
            failed = True
        if failed:
            self.print_tail("console.log", self.args.tail)
            if self.proc and self.proc.returncode not in (0, None, -signal.SIGTERM,
                                                           -signal.SIGKILL):
                self.print_tail("qemu.log", 20)
        boot = f"{self.t_booted - self.t_start:.1f}" if self.t_booted else "-"
        total = self.t_end - self.t_start if self.t_start else 0
        log(f"{self.kver}: boot {boot} s, whole VM run {total:.1f} s")
        summary = f"{counts['PASS']} passed, {counts['FAIL']} failed"
        if counts["SKIP"]:
            summary += f", {counts['SKIP']} skipped"
        if self.plan:
            print(summary, flush=True)
        if self.args.summary_file:
            # A run that failed with no scenario failing (the guest panicked or
            # timed out before the plan) is one failure, never "0 failed".
            fails = counts["FAIL"] or (1 if failed else 0)
            with open(self.args.summary_file, "w") as f:
                f.write(f"{counts['PASS']} {fails} {counts['SKIP']} "
                        f"{boot} {total:.1f}\n")
        if not self.plan and self.exit_status is not None and not self.problems:
            return self.exit_status
        return 1 if failed else 0


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Boot a guest kernel under QEMU and run a script in it.",
        epilog="See the top of this file for the guest protocol.")
    p.add_argument("--kernel", required=True, metavar="DIR",
                   help="kernel directory made by fetch-kernel.sh")
    p.add_argument("--log-dir", metavar="DIR",
                   help="where console.log, output.log and qemu.log go "
                        "(default: DIR/../logs/KVER)")
    p.add_argument("--init", default=os.path.join(HERE, "guest-init.sh"), metavar="FILE",
                   help="the initramfs's /init (default guest-init.sh; "
                        "tests/systemd/guest-init.sh execs systemd)")
    p.add_argument("--memory", type=int, default=512, metavar="MB")
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--boot-timeout", type=float, default=240, metavar="S",
                   help="QEMU start until the script starts (default 240)")
    p.add_argument("--scenario-timeout", type=float, default=150, metavar="S",
                   help="longest time between VB-BEGIN and VB-RESULT (default 150; "
                        "a VB-BEGIN's own limit plus 30 s when that is longer)")
    p.add_argument("--timeout", type=float, default=900, metavar="S",
                   help="the whole run (default 900)")
    p.add_argument("--tail", type=int, default=40, metavar="N",
                   help="log lines shown on failure (default 40)")
    p.add_argument("--show-output", action="store_true",
                   help="print the script's output as it comes (for the demo)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also stream the kernel console")
    p.add_argument("--summary-file", metavar="FILE",
                   help="write 'PASSED FAILED SKIPPED BOOT_S TOTAL_S' to FILE")
    p.add_argument("script", metavar="SCRIPT")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    # SIGINT too: a background job inherits it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    run = Run(args)
    tmp = tempfile.mkdtemp(prefix="vb-vm-")
    try:
        run.start(tmp)
        run.loop()
    except (VmError, OSError) as e:
        run.problems.append(str(e))
    except Interrupted as e:
        run.stop()
        log(f"interrupted by {e}; QEMU stopped")
        return 130
    finally:
        run.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return run.report()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
