"""A Linux board over SSH (`ssh://user@host[:port]`): the compiled model's static executable
(firmware.elf) is copied to a fresh folder on the board, run there, and its report and output
file are read back, all through `ssh` (streams through `cat`, so the board needs no SFTP server
and no scp: a dropbear board works too). The clock on the board is CLOCK_MONOTONIC: figures are
wall-clock nanoseconds, per inference for every run and per layer as the median over the runs.

Authentication is by key only (BatchMode: nothing is asked) and host-key checking stays as the
user's SSH configuration has it; edgeprune never turns it off. URL options:
  board=NAME          the board file (default: the compiled model's board)
  identity=PATH       a private key (ssh -i), else ssh's defaults and ~/.ssh/config
  known_hosts=PATH    a known_hosts file (UserKnownHostsFile) instead of ~/.ssh/known_hosts
  exec=COMMAND        run the executable through COMMAND on the board, e.g. `qemu-aarch64` on an
                      x86 machine with qemu-user (then the wall clock is the emulator's, i.e. noise)
"""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from edgeprune.artefact import content_hash
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.devices import Device, DeviceURL, Measurement, register_device
from edgeprune.profile.linux_app import linux_build, signal_error
from edgeprune.profile.run_app import input_payload, parse_report, split_outputs, tail
from edgeprune.targets import Target, require_program

if TYPE_CHECKING:
    from edgeprune.compile.api import CompiledModel

SSH_ERROR = 255           # ssh's own exit status (connection, authentication, host key)
CONNECT_TIMEOUT_SECONDS = 10
EXIT_MARK = "EP_EXIT"     # the remote shell's status of the executable, printed after it


@register_device("ssh")
class SshDevice(Device):
    """The model's executable on a Linux board reached over SSH."""

    unit = "ns"

    def __init__(self, url: DeviceURL, *, run_timeout: float = 600.0) -> None:
        super().__init__(url)
        if not url.target:
            raise EdgepruneError(f"device {url.text!r} names no host (ssh://user@host[:port])")
        self.run_timeout = run_timeout
        self.login = f"{url.user}@{url.target}" if url.user else url.target
        self.remote_dir: str | None = None
        self.model: CompiledModel | None = None
        self.target: Target | None = None

    @property
    def method(self) -> str:
        wrapper = self.url.options.get("exec")
        return (f"wall clock (CLOCK_MONOTONIC) on {self.login} over SSH"
                + (f", run through `{wrapper}`" if wrapper else "") + "; median over the runs")

    def _options(self) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"]
        if "identity" in self.url.options:
            options += ["-i", self.url.options["identity"], "-o", "IdentitiesOnly=yes"]
        if "known_hosts" in self.url.options:
            options += ["-o", f"UserKnownHostsFile={self.url.options['known_hosts']}"]
        return options

    def _ssh(self, command: str, stdin: bytes = b"", timeout: float = 120.0) -> subprocess.CompletedProcess:
        """`command` run by the board's shell, `stdin` fed to it; ssh's own failures raised."""
        port = ["-p", str(self.url.port)] if self.url.port else []
        argv = [require_program("ssh"), *self._options(), *port, self.login, command]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.url.text}: `{command}` did not finish within {timeout:g} s") from None
        if done.returncode == SSH_ERROR:
            raise self._ssh_error(done.stderr.decode(errors="replace"))
        return done

    def _ssh_error(self, stderr: str) -> DeviceError:
        """What went wrong in ssh itself, with what to do about it."""
        port = f" -p {self.url.port}" if self.url.port else ""
        where = f"{self.url.target}:{self.url.port}" if self.url.port else self.url.target
        known_as = f"'[{self.url.target}]:{self.url.port}'" if self.url.port else self.url.target
        known_hosts = self.url.options.get("known_hosts", "~/.ssh/known_hosts")
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
            return DeviceError(
                f"the host key of {where} has CHANGED since it was recorded in {known_hosts} (a reinstalled "
                f"board, or someone in between). If the board was reinstalled, remove the old key with "
                f"`ssh-keygen -R {known_as} -f {known_hosts}` and add the new one")
        if "Host key verification failed" in stderr:
            return DeviceError(
                f"the host key of {where} is not known, and edgeprune keeps host-key checking on. Check the "
                f"board's key fingerprint (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the board) "
                f"and add it: `ssh-keyscan{port} {self.url.target} >> {known_hosts}` "
                f"(or connect once with `ssh{port} {self.login}` and accept it)")
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            return DeviceError(
                f"SSH authentication as {self.login} failed: edgeprune logs in with a key only (BatchMode, "
                f"no passwords). Install your public key on the board (`ssh-copy-id{port} {self.login}`), "
                f"or name the private key with `identity=PATH` in the device URL. ssh said: {tail(stderr, 2)}")
        if any(text in stderr for text in ("Connection refused", "timed out", "Could not resolve",
                                           "No route to host", "Network is unreachable", "Connection closed")):
            return DeviceError(f"cannot reach {where} over SSH (is the board on, its address right and sshd "
                               f"running?): {tail(stderr, 2)}")
        return DeviceError(f"{self.url.text}: ssh failed: {tail(stderr)}")

    def prepare(self, firmware_dir: Path) -> None:
        self.close()
        model, target = linux_build(Path(firmware_dir), self.url.board, self.url.text)
        copied = self._ssh('d=$(mktemp -d /tmp/edgeprune-XXXXXX) && cat > "$d/firmware.elf" && '
                           'chmod +x "$d/firmware.elf" && echo "$d"', model.elf.read_bytes())
        if copied.returncode != 0:
            raise DeviceError(f"{self.url.text}: cannot copy the executable to the board: "
                              f"{tail(copied.stderr.decode(errors='replace'))}")
        self.remote_dir = copied.stdout.decode().strip()
        self.model, self.target = model, target

    def run(self, inputs: Sequence[np.ndarray | bytes], repeats: int = 1) -> Measurement:
        if self.remote_dir is None:
            raise DeviceError(f"{self.url.text}: run() before prepare()")
        wrapper = self.url.options.get("exec", "")
        folder = shlex.quote(self.remote_dir)
        done = self._ssh(f"cd {folder} && cat > input.bin && {wrapper} ./firmware.elf; echo {EXIT_MARK} $?",
                         input_payload(inputs, repeats), self.run_timeout)
        text = done.stdout.decode(errors="replace")
        status = self._exit_status(text, done.stderr.decode(errors="replace"))
        if status != 0:
            raise self._run_error(status, text + done.stderr.decode(errors="replace"))
        report = parse_report(text, repeats, f"the executable on {self.login}")
        if report.clock != "ns":
            raise DeviceError(f"{self.url.text}: the executable reported a {report.clock!r} clock, not the "
                              f"wall clock; output:\n{tail(text)}")
        raw = self._ssh(f"cat {folder}/output.bin").stdout
        return Measurement(split_outputs(raw, self.model.manifest["outputs"]), report.run_ticks, report.layer_ticks,
                           report.stack_bytes, self.unit, 1.0, self.target.name, content_hash(self.model.source))

    def _exit_status(self, stdout: str, stderr: str) -> int:
        for line in reversed(stdout.splitlines()):
            if line.startswith(EXIT_MARK + " "):
                return int(line.split()[1])
        raise DeviceError(f"{self.url.text}: the remote shell did not report the executable's exit; "
                          f"output:\n{tail(stdout + stderr)}")

    def _run_error(self, status: int, text: str) -> DeviceError:
        """A shell status: 128+N is signal N, 126/127 a command that cannot run or is missing."""
        if status > 128:
            return signal_error(self.target, f"the core at {self.login}", status - 128, text)
        if status in (126, 127):
            wrapper = self.url.options.get("exec")
            what = f"`{wrapper}` (the exec= option)" if wrapper else "the executable"
            return DeviceError(f"{self.url.text}: the board could not start {what} (shell status {status}); "
                               f"output:\n{tail(text)}")
        return DeviceError(f"{self.url.text}: the executable stopped with code {status}; output:\n{tail(text)}")

    def close(self) -> None:
        if self.remote_dir is not None:
            folder, self.remote_dir = self.remote_dir, None
            try:
                self._ssh(f"rm -rf {shlex.quote(folder)}")
            except DeviceError:
                pass  # the board went away: nothing left to clean up from here
