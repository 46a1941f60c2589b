"""The app container of the ECS task, run on this machine the way Fargate runs it.

What runs comes from the repository, never from this file: the image from the Dockerfile's
runtime stage (user, environment, working directory, entrypoint, files, health check) on a model
of the distroless base it names; the task's side (environment, user, read-only root, stop
timeout, health check) from infra/. runc, the OCI runtime under Fargate's containerd, starts it
from a bundle: the root file system read-only, the task's user, no capabilities, Docker's minimal
/dev, PID 1 of its own PID namespace, and a network namespace of its own joined to this host by a
veth pair, so that the ALB's view (a non-loopback task IP) is real while the sidecar shares the
task's loopback, as in `awsvpc` mode.

The task IP is link-local (169.254.0.0/16): the pair is a point-to-point link this test makes, and
such an address can never shadow a route to another host.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import ipaddress
import json
import os
import random
import re
import resource
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from infra_hcl import Module, Unknown, references
from infra_terraform import evaluate
from infra_tools import ROOT

DOCKERFILE = ROOT / "Dockerfile"
PUBLIC_HOST = "mcp.example.com"
# What Terraform only knows at apply time, as it would be for a stack with a domain.
APPLY_TIME = {"APP__HTTP__ALLOWED_HOSTS": PUBLIC_HOST,
              "APP__AUTH__RESOURCE": f"https://{PUBLIC_HOST}/mcp"}


def _sbin(name: str) -> str:
    # Root's tools live in sbin, which a CI user's PATH may lack.
    return shutil.which(name) or f"/usr/sbin/{name}"


RUNC, IP = _sbin("runc"), _sbin("ip")


def task_environment() -> dict[str, str]:
    """The app container's environment as ECS gives it, for the variable defaults."""
    tf = Module.load()
    ev = tf.evaluator()
    env = {}
    for name, raw in tf.locals["app_environment"].items():
        try:
            env[name] = ev.value(raw)
        except Unknown:
            if name in APPLY_TIME:
                env[name] = APPLY_TIME[name]
            else:  # beyond the small evaluator (a conditional): terraform itself evaluates it
                env[name] = evaluate(raw, variables={v: ev.vars[v] for v in references(raw, "var")})
    # ECS adds the task's region to every container (the AWS SDK's region, e.g. for the tasks table).
    env.update({"AWS_REGION": ev.vars["region"], "AWS_DEFAULT_REGION": ev.vars["region"]})
    # ecs.tf sends no empty value.
    return {name: value for name, value in env.items() if value != ""}


def app_container() -> dict:
    """The app's container definition (locals.app_container), with what can be evaluated."""
    tf = Module.load()
    ev = tf.evaluator()
    container = {}
    for key, raw in tf.locals["app_container"].items():
        with contextlib.suppress(Unknown, KeyError):
            container[key] = ev.value(raw)
    return container


# --- the image ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DistrolessStatic:
    """What gcr.io/distroless/static(-debianN) holds: base-files, netbase, tzdata, CA certificates,
    passwd/group with root, nobody and nonroot (65532), nsswitch.conf, /tmp (1777) and the
    nonroot home. No shell, no libc. Its config sets PATH and SSL_CERT_FILE, and the `nonroot`
    tags USER 65532 and WORKDIR /home/nonroot."""

    nonroot: bool
    users = (("root", 0, "/root"), ("nobody", 65534, "/nonexistent"), ("nonroot", 65532, "/home/nonroot"))
    groups = (("root", 0), ("tty", 5), ("staff", 50), ("nobody", 65534), ("nonroot", 65532))
    # Copied from this Debian machine's packages of the same names (the base is built from them).
    host_files = ("/etc/ssl/certs/ca-certificates.crt", "/etc/os-release", "/etc/services",
                  "/etc/protocols", "/etc/ethertypes", "/etc/rpc", "/usr/share/zoneinfo")

    @classmethod
    def named(cls, image: str) -> "DistrolessStatic":
        name, _, tag = image.partition(":")
        assert re.fullmatch(r"gcr\.io/distroless/static(-debian\d+)?", name), (
            f"the runtime base is {image}: this test models distroless/static only; model the new base")
        return cls(nonroot=tag.startswith("nonroot"))

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}

    @property
    def user(self) -> str:
        return "65532" if self.nonroot else "0"

    @property
    def workdir(self) -> str:
        return "/home/nonroot" if self.nonroot else "/"

    def home_of(self, uid: int) -> str:
        return next((home for _, u, home in self.users if u == uid), "/")

    def write(self, rootfs: Path) -> None:
        etc = rootfs / "etc"
        etc.mkdir(parents=True)
        (etc / "passwd").write_text("".join(f"{n}:x:{u}:{u}:{n}:{h}:/sbin/nologin\n" for n, u, h in self.users))
        (etc / "group").write_text("".join(f"{n}:x:{g}:\n" for n, g in self.groups))
        (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
        for path in self.host_files:
            source, target = Path(path), rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True)
            else:
                shutil.copy2(source, target)
        (rootfs / "tmp").mkdir(mode=0o1777)
        os.chmod(rootfs / "tmp", 0o1777)
        for _, uid, home in self.users:
            if home != "/nonexistent":
                (rootfs / home.lstrip("/")).mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chown(rootfs / home.lstrip("/"), uid, uid)


@dataclass
class Image:
    """The runtime stage of the Dockerfile applied to its base, as the built image's config."""

    base: DistrolessStatic
    user: str
    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    cmd: list[str]
    exposed: list[str]
    healthcheck: list[str]
    healthcheck_options: dict[str, str]
    # What `docker stop` and the ECS agent send to PID 1 first (SIGKILL follows at stopTimeout).
    stop_signal: str = "SIGTERM"
    # path in the image -> the binary built from the Dockerfile's `--bin` of that name
    binaries: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        return self.entrypoint + self.cmd


def _exec_form(instruction: str, value: str) -> list[str]:
    # Shell form needs /bin/sh, which distroless does not have.
    assert value.startswith("["), f"{instruction} {value}: shell form, but the image has no shell"
    return json.loads(value)


def read_image(dockerfile: Path = DOCKERFILE) -> Image:
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
    stage: list[dict] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stage = []
        elif instruction["instruction"] != "COMMENT":
            stage.append(instruction)
    base = DistrolessStatic.named(parser.baseimage)
    image = Image(base=base, user=base.user, env={**base.env, **parser.envs}, workdir=base.workdir,
                  entrypoint=[], cmd=[], exposed=[], healthcheck=[], healthcheck_options={})
    for instruction in stage:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "USER":
            image.user = value
        elif kind == "WORKDIR":
            image.workdir = value
        elif kind == "ENTRYPOINT":
            image.entrypoint, image.cmd = _exec_form(kind, value), []  # as Docker resets CMD
        elif kind == "CMD":
            image.cmd = _exec_form(kind, value)
        elif kind == "STOPSIGNAL":
            image.stop_signal = value
        elif kind == "EXPOSE":
            image.exposed += value.split()
        elif kind == "HEALTHCHECK":
            options, _, command = value.partition(" CMD ")
            image.healthcheck = _exec_form(kind, command.strip())
            image.healthcheck_options = dict(re.findall(r"--([a-z-]+)=(\S+)", options))
        elif kind == "COPY":
            *sources, target = [w for w in value.split() if not w.startswith("--")]
            built = [s for s in sources if re.search(r"/target/[^/]+/release/[^/]+$", s)]
            assert built == sources and "--from=" in value, (
                f"COPY {value}: this test only knows release binaries from the build stage")
            for source in sources:
                name = source.rsplit("/", 1)[1]
                image.binaries[target if len(sources) == 1 and not target.endswith("/")
                               else f"{target.rstrip('/')}/{name}"] = name
        elif kind not in ("ENV", "LABEL", "ARG"):  # ENV comes from parser.envs
            raise AssertionError(f"{kind} {value}: not modelled by this test; add it to e2e/ecs_task.py")
    return image


def build_rootfs(image: Image, rootfs: Path, binaries: dict[str, str]) -> None:
    """The image's file system: the base, then the release binaries where the COPY puts them."""
    image.base.write(rootfs)
    (rootfs / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)  # as WORKDIR does
    for target, name in image.binaries.items():
        dest = rootfs / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(binaries[name], dest)
        os.chmod(dest, 0o755)
    # Mount points the runtime fills in (Docker makes the same ones in its init layer).
    for mount_point in ("proc", "sys", "dev"):
        (rootfs / mount_point).mkdir()
    for mount_point in ("etc/hosts", "etc/hostname"):
        (rootfs / mount_point).touch()


# --- the task's network ------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, text=True)


@dataclass
class TaskNetwork:
    """A network namespace with loopback and `eth0` holding the task IP; the other end of the
    veth pair stays in the test's namespace with `host_ip`, as the ALB's side of the link."""

    name: str
    task_ip: str
    host_ip: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the task's network namespace (the sidecar's place)."""
        return [IP, "netns", "exec", self.name, *argv]

    def call(self, fn, *args, **kwargs):
        """Runs fn(*args, **kwargs) in a thread that joined the namespace (setns is per thread)."""
        def inside():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            return fn(*args, **kwargs)
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(inside).result()


def _free_link_local_30() -> ipaddress.IPv4Network:
    used = subprocess.run([IP, "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    used += subprocess.run([IP, "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                           check=True).stdout
    # Away from 169.254.169.x/170.x, where AWS (and its stand-ins) put metadata endpoints.
    while True:
        net = ipaddress.IPv4Network(f"169.254.{random.randrange(1, 160)}.{4 * random.randrange(64)}/30")
        if not any(str(host) in used for host in net):
            return net


@contextlib.contextmanager
def task_network():
    suffix = uuid.uuid4().hex[:8]
    name, veth = f"mcp-task-{suffix}", f"mcpv{suffix}"
    net = _free_link_local_30()
    host_ip, task_ip = (str(h) for h in net.hosts())
    _ip("netns", "add", name)
    try:
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("-n", name, "addr", "add", f"{task_ip}/30", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield TaskNetwork(name, task_ip, host_ip)
    finally:
        # Deleting one end of the pair deletes both (the namespace's own cleanup is asynchronous).
        subprocess.run([IP, "link", "delete", veth], capture_output=True)
        subprocess.run([IP, "netns", "delete", name], capture_output=True)


# --- the container -----------------------------------------------------------------------------

# Docker's defaults (moby's oci.DefaultSpec), which the ECS agent and Fargate's containerd share.
_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
           "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    # The container's own cgroup, read-only: where Rust's std finds the CPU quota it sizes Tokio by.
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]
# Fargate's own nofile limit (every other limit is the kernel's default), capped at this
# process's: runc sets it after dropping its capabilities, and a sandbox may lack CAP_SYS_RESOURCE.
_NOFILE = min(65535, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


@dataclass
class Container:
    """One container of the task, run by runc from a bundle in `bundle`."""

    id: str
    bundle: Path
    state_root: Path

    def runc(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([RUNC, "--root", str(self.state_root), *args], **kw)

    def run(self, stdout) -> subprocess.Popen:
        """`runc run` in the foreground: its exit code is the container's."""
        return subprocess.Popen([RUNC, "--root", str(self.state_root), "run", "--bundle", str(self.bundle),
                                 self.id], stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True)

    def state(self) -> dict:
        return json.loads(self.runc("state", self.id, capture_output=True, text=True, check=True).stdout)

    def exec(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Runs argv in the container as its own process runs (user, env, cwd, no capabilities):
        what the ECS agent does for the container health check."""
        process = {**json.loads((self.bundle / "config.json").read_text())["process"], "args": argv}
        spec = self.bundle / f"exec-{uuid.uuid4().hex[:8]}.json"
        spec.write_text(json.dumps(process))
        return self.runc("exec", "--process", str(spec), self.id, capture_output=True, text=True,
                         timeout=timeout)

    def kill(self, signal: str) -> None:
        """Signals PID 1 of the container, as `docker stop` / ECS StopTask do."""
        self.runc("kill", self.id, signal, check=True, capture_output=True)

    def delete(self) -> None:
        self.runc("delete", "--force", self.id, capture_output=True)


@dataclass
class Task:
    """Everything the app container of one task shares: image, rootfs, network, runtime state."""

    image: Image
    rootfs: Path
    network: TaskNetwork
    workdir: Path
    user: str
    readonly_root: bool
    env: dict[str, str]

    def container(self, name: str, argv: list[str] | None = None) -> Container:
        bundle = self.workdir / name
        bundle.mkdir()
        uid, _, gid = self.user.partition(":")
        uid, gid = int(uid), int(gid or uid)
        hostname = "ip-" + self.network.task_ip.replace(".", "-")
        etc = {"hosts": f"127.0.0.1 localhost\n::1 localhost\n{self.network.task_ip} {hostname}\n",
               "hostname": f"{hostname}\n"}
        mounts = list(_MOUNTS)
        for file, text in etc.items():
            (bundle / file).write_text(text)
            mounts.append({"destination": f"/etc/{file}", "type": "bind", "source": str(bundle / file),
                           "options": ["rbind", "ro"]})
        env = {**self.image.env, "HOSTNAME": hostname, "HOME": self.image.base.home_of(uid), **self.env}
        config = {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": uid, "gid": gid},
                "args": argv or self.image.argv,
                "env": [f"{k}={v}" for k, v in env.items()],
                "cwd": self.image.workdir,
                "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _NOFILE, "soft": _NOFILE}],
                "noNewPrivileges": True,
            },
            "root": {"path": str(self.rootfs), "readonly": self.readonly_root},
            "hostname": hostname,
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                               {"type": "network", "path": self.network.path}],
                "maskedPaths": _MASKED,
                "readonlyPaths": _READONLY,
            },
        }
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        return Container(f"{self.network.name}-{name}", bundle, self.workdir / "runc")

    def run_once(self, name: str, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        """A short-lived container of the same image in the task's network."""
        container = self.container(name, argv)
        proc = container.run(subprocess.PIPE)
        try:
            output, _ = proc.communicate(timeout=timeout)
            return subprocess.CompletedProcess(proc.args, proc.returncode, output)
        finally:
            proc.kill()
            container.delete()


def cannot_run_containers() -> str | None:
    """Why this machine cannot run the task (None when it can): runc needs root and namespaces."""
    if os.geteuid() != 0:
        return "runs the container with runc, network namespaces and a veth pair: needs root"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"this machine refuses new namespaces to root: {probe.stderr.strip()}"
    return None
