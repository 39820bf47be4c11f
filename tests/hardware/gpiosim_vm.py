"""A tiny Linux kernel with gpio-sim, booted in qemu (software emulation), running code as root
inside the guest against a real GPIO character device.

The host kernel has no GPIO support and cannot load modules, so the suite builds a minimal
kernel from Debian's ``linux-source-6.1`` once (about 4 minutes on 2 cores) and caches the
``bzImage`` outside the repository (``/var/cache/camio-gpio-sim/<hash>/``, or ``build/`` when
that is not writable): CI runs on a fresh clone of the same machine. The initramfs is busybox
only; the guest mounts the host root read-only over 9p, chroots into it and runs the project's
own venv Python. The result comes back as a marker line on the serial console.

Usable as a script: ``python tests/hardware/gpiosim_vm.py build`` builds (or finds) the kernel.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PACKAGES = (
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "linux-source-6.1",
    "qemu-system-x86",
    "busybox-static",
)
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
KERNEL_OPTIONS = [
    "64BIT",
    "PRINTK",
    "TTY",
    "SERIAL_8250",
    "SERIAL_8250_CONSOLE",
    "BLK_DEV_INITRD",
    "RD_GZIP",
    "BINFMT_ELF",
    "BINFMT_SCRIPT",
    "PROC_FS",
    "SYSFS",
    "DEVTMPFS",
    "DEVTMPFS_MOUNT",
    "TMPFS",
    "SHMEM",
    "CONFIGFS_FS",
    "GPIOLIB",
    "GPIO_CDEV",
    "GPIO_CDEV_V1",
    "GPIO_SIM",
    "NET",
    "UNIX",
    "INET",
    "NET_9P",
    "NET_9P_VIRTIO",
    "9P_FS",
    "VIRTIO_MENU",
    "VIRTIO",
    "VIRTIO_PCI",
    "PCI",
    "FUTEX",
    "EPOLL",
    "EVENTFD",
    "SIGNALFD",
    "TIMERFD",
    "AIO",
    "FILE_LOCKING",
    "MULTIUSER",
    "POSIX_TIMERS",
    "PROC_SYSCTL",
    "SYSVIPC",
    "HIGH_RES_TIMERS",
    "UNIX98_PTYS",
    "ADVISE_SYSCALLS",
    "MEMBARRIER",
    "RSEQ",
    "HYPERVISOR_GUEST",
    "PARAVIRT",
    "KVM_GUEST",
    "PCI_MSI",
    "POSIX_MQUEUE",
    "CGROUPS",
]
# Options the build must have produced (a silently dropped one would make the guest useless).
REQUIRED_OPTIONS = ("GPIO_SIM", "GPIO_CDEV", "CONFIGFS_FS", "9P_FS", "NET_9P_VIRTIO", "DEVTMPFS")
RESULT_MARKER = "CAMIO-GUEST-RESULT"
BUSYBOX = Path("/bin/busybox")


class VmError(RuntimeError):
    """The VM could not be built or booted; the message says why (with logs)."""


def _config_hash() -> str:
    text = "\n".join([KERNEL_SOURCE.name, "tinyconfig", *KERNEL_OPTIONS, "v1"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where the bzImage lives: /var/cache when writable, else the repository's build/."""
    key = _config_hash()
    preferred = Path("/var/cache/camio-gpio-sim") / key
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = preferred / ".writable"
        probe.touch()
        probe.unlink()
        return preferred
    except OSError:
        fallback = REPO / "build" / "camio-gpio-sim" / key
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def missing_tools() -> list[str]:
    """Host programs/files the VM suite needs and does not find."""
    missing = []
    for tool in ("qemu-system-x86_64", "flex", "bison", "bc", "make", "gcc"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if not BUSYBOX.exists():
        missing.append(str(BUSYBOX))
    return missing


def ensure_packages() -> None:
    """Install the Debian packages (only when missing; a no-op without root or apt)."""
    script = REPO / ".ci" / "system-deps"
    if script.exists():
        subprocess.run(["bash", str(script), *SYSTEM_PACKAGES], check=False, timeout=1800)


def kernel_image(log: Path | None = None) -> Path:
    """The cached bzImage, built first when absent (serialised by a lock file)."""
    directory = cache_dir()
    image = directory / "bzImage"
    if image.exists():
        return image
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():
            return image
        _build_kernel(directory, log or directory / "build.log")
    return image


def _build_kernel(directory: Path, log: Path) -> None:
    if not KERNEL_SOURCE.exists():
        raise VmError(f"{KERNEL_SOURCE} is missing (apt-get install linux-source-6.1)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="build-", dir=directory))
    try:
        with open(log, "w") as out:

            def run(*cmd: str, cwd: Path) -> None:
                out.write(f"$ {shlex.join(cmd)}\n")
                out.flush()
                done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    tail = log.read_text(errors="replace")[-4000:]
                    raise VmError(f"kernel build step failed: {shlex.join(cmd)}\n{tail}")

            run("tar", "-xf", str(KERNEL_SOURCE), "-C", str(work), cwd=work)
            (src,) = [p for p in work.iterdir() if p.is_dir()]
            run("make", "tinyconfig", cwd=src)
            enable: list[str] = []
            for option in KERNEL_OPTIONS:
                enable += ["-e", option]
            run("scripts/config", *enable, cwd=src)
            run("make", "olddefconfig", cwd=src)
            config = (src / ".config").read_text()
            lacking = [o for o in REQUIRED_OPTIONS if f"CONFIG_{o}=y" not in config]
            if lacking:
                raise VmError(f"kernel config lacks {lacking} after olddefconfig")
            jobs = str(os.cpu_count() or 1)
            run("nice", "-n", "15", "make", f"-j{jobs}", "bzImage", cwd=src)
            built = src / "arch" / "x86" / "boot" / "bzImage"
            tmp = directory / "bzImage.tmp"
            shutil.copyfile(built, tmp)
            shutil.copyfile(src / ".config", directory / "config")
            tmp.rename(directory / "bzImage")
            out.write(f"built in {time.monotonic() - started:.0f} s\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- initramfs -----------------------------------------------------------------------------------


def _cpio_entry(out: io.BytesIO, ino: int, name: str, mode: int, data: bytes = b"") -> None:
    namez = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(namez), 0]
    out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
    out.write(namez)
    out.write(b"\0" * (-(110 + len(namez)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def build_initramfs(init_script: str, path: Path) -> Path:
    """A gzip'd newc cpio: busybox, its applet links for the init, and ``/init``."""
    out = io.BytesIO()
    ino = 1
    for directory in ("bin", "dev", "proc", "sys", "mnt", "mnt/host"):
        _cpio_entry(out, ino, directory, stat.S_IFDIR | 0o755)
        ino += 1
    _cpio_entry(out, ino, "bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes())
    ino += 1
    for applet in ("sh", "mount", "mkdir", "echo", "cat", "chroot", "reboot", "sleep", "ls"):
        _cpio_entry(out, ino, f"bin/{applet}", stat.S_IFLNK | 0o777, b"busybox")
        ino += 1
    _cpio_entry(out, ino, "init", stat.S_IFREG | 0o755, init_script.encode())
    ino += 1
    _cpio_entry(out, ino, "TRAILER!!!", 0)
    path.write_bytes(gzip.compress(out.getvalue(), compresslevel=1))
    return path


def guest_init(command: list[str], env: dict[str, str]) -> str:
    """The guest's /init: mounts, chroot into the host root, run ``command``, print the marker."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t configfs configfs /sys/kernel/config
mkdir -p /dev/shm && mount -t tmpfs -o size=256m tmpfs /dev/shm
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /mnt/host
then
  mount --bind /proc /mnt/host/proc
  mount --bind /sys /mnt/host/sys
  mount --bind /dev /mnt/host/dev
  mount -t configfs configfs /mnt/host/sys/kernel/config 2>/dev/null
  echo "camio-guest: running"
  chroot /mnt/host /usr/bin/env -i {exports} {shlex.join(command)} < /dev/console
  echo "{RESULT_MARKER} rc=$?"
else
  echo "{RESULT_MARKER} rc=254 (9p mount failed)"
fi
reboot -f
"""


@dataclass
class GuestRun:
    rc: int
    console: str
    seconds: float


def run_in_guest(command: list[str], *, timeout: float = 300, cwd: str | None = None) -> GuestRun:
    """Boot the VM, run ``command`` (an argv inside the host root, as root) and return.

    Raises VmError when the VM produced no result marker (it hung, crashed or timed out).
    """
    image = kernel_image()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": "/dev/shm",
        "TMPDIR": "/dev/shm",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "CAMIO_GPIO_GUEST": "1",
        # Only the plugins the guest suite uses: importing every installed one over 9p in an
        # emulated CPU costs many seconds.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "LANG": "C.UTF-8",
    }
    if cwd:
        command = ["/bin/sh", "-c", f"cd {shlex.quote(cwd)} && exec {shlex.join(command)}"]
    with tempfile.TemporaryDirectory(prefix="camio-vm-") as tmp:
        initrd = build_initramfs(guest_init(command, env), Path(tmp) / "initrd.gz")
        argv = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "768",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-kernel",
            str(image),
            "-initrd",
            str(initrd),
            "-append",
            "console=ttyS0 quiet panic=-1 tsc=reliable",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        ]
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout.decode(errors="replace") if exc.stdout else ""
            raise VmError(
                f"the VM did not finish within {timeout:.0f} s; console:\n{output}"
            ) from None
        seconds = time.monotonic() - started
    console = done.stdout.decode(errors="replace").replace("\r\n", "\n")
    match = re.search(rf"{RESULT_MARKER} rc=(\d+)", console)
    if match is None:
        raise VmError(
            f"no result marker from the guest (qemu exit {done.returncode}); console:\n{console}"
        )
    return GuestRun(rc=int(match.group(1)), console=console, seconds=seconds)


def _main(args: list[str]) -> int:
    if args[:1] == ["build"]:
        started = time.monotonic()
        image = kernel_image()
        print(f"{image} ({time.monotonic() - started:.0f} s)")
        return 0
    if args[:1] == ["run"]:
        result = run_in_guest(args[1:], cwd=str(REPO))
        print(result.console)
        print(f"rc={result.rc} in {result.seconds:.1f} s")
        return result.rc
    print("usage: gpiosim_vm.py build | run CMD...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
