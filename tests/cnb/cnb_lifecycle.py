"""A stand-in for the CNB lifecycle, following Buildpack API 0.10, small enough to read.

It runs one buildpack the way the lifecycle does: `bin/detect` and `bin/build` with the
spec's variables, directories and positional arguments (cwd = the app directory), keeps the
launch layers of an "image" and the cached layers of a "cache" between builds, restores them
before a rebuild as the analysis and restore phases do, and launches a process the way the
launcher does: layer `bin/` and `lib/` on PATH and LD_LIBRARY_PATH, the `env/` and
`env.launch/` files by their suffix rules, then every `exec.d` program with fd 3 open on a
pipe that is read to EOF, then the command through `bash -c`.

Every file the buildpack writes for the lifecycle is validated with tomllib against the
spec's schema, so a typo there fails a test instead of a deploy.
"""

from __future__ import annotations

import os
import platform
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

BUILDPACK_API = "0.10"

# The launcher drops these from the process environment (lifecycle env.LaunchEnvExcludelist):
# an exec.d program cannot find its layers through CNB_LAYERS_DIR at run time.
LAUNCH_ENV_EXCLUDED = (
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
)
# Layer sub-directories the launcher puts on a path variable, prepended.
LAUNCH_ROOT_DIRS = {"bin": "PATH", "lib": "LD_LIBRARY_PATH"}
RESERVED_LAYER_NAMES = {"build", "launch", "store"}
LAYER_TYPE_KEYS = {"launch", "build", "cache"}
ENV_SUFFIXES = {"", "append", "default", "delim", "override", "prepend"}

# How long the launcher stand-in waits on an exec.d program before calling it stuck. The bar
# for passing is far lower (the tests assert 100 ms); this only stops a held fd 3 from hanging
# the test run the way it would hang a real dyno's boot.
EXEC_D_GIVE_UP_SECONDS = 5.0


class LifecycleError(AssertionError):
    """The buildpack broke the Buildpack API contract."""


def target_env() -> dict[str, str]:
    """The CNB_TARGET_* variables for this machine, as Heroku's heroku/builder:24 sets them."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "CNB_TARGET_OS": "linux",
        "CNB_TARGET_ARCH": arch,
        "CNB_TARGET_DISTRO_NAME": "ubuntu",
        "CNB_TARGET_DISTRO_VERSION": "24.04",
    }


def escape_id(buildpack_id: str) -> str:
    """The directory name of a buildpack's layers: '/' in its id becomes '_'."""
    return buildpack_id.replace("/", "_")


def read_descriptor(buildpack_dir: Path) -> dict:
    """buildpack.toml, checked for what a 0.10 lifecycle reads from it."""
    descriptor = tomllib.loads((buildpack_dir / "buildpack.toml").read_text())
    if descriptor.get("api") != BUILDPACK_API:
        raise LifecycleError(f"buildpack.toml api is {descriptor.get('api')!r}, not 0.10")
    buildpack = descriptor.get("buildpack")
    if not isinstance(buildpack, dict):
        raise LifecycleError("buildpack.toml has no [buildpack] table")
    for key in ("id", "version"):
        if not isinstance(buildpack.get(key), str) or not buildpack[key]:
            raise LifecycleError(f"buildpack.toml [buildpack] has no {key}")
    if "order" in descriptor:
        raise LifecycleError("a component buildpack must not declare an order")
    return descriptor


def platform_env(platform_dir: Path) -> dict[str, str]:
    """User-provided build variables: one file per variable in <platform>/env/, verbatim."""
    env_dir = platform_dir / "env"
    if not env_dir.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(env_dir.iterdir()) if path.is_file()}


def _phase_env(base_env: dict[str, str], platform_dir: Path, clear_env: bool) -> dict[str, str]:
    env = dict(base_env)
    if not clear_env:
        for name, value in platform_env(platform_dir).items():
            if name in LAUNCH_ROOT_DIRS.values() and env.get(name):
                env[name] = f"{value}{os.pathsep}{env[name]}"
            else:
                env[name] = value
    return env


@dataclass
class DetectResult:
    code: int
    output: str
    plan: dict


@dataclass
class StoredLayer:
    """One layer as the image or the cache keeps it: its metadata file and a copy of it."""

    toml: dict
    content: Path | None


@dataclass
class Lifecycle:
    """Builds an app with one buildpack, again and again, like a platform with a cache."""

    buildpack_dir: Path
    workspace: Path  # scratch root: layers, platform, image and cache copies live under it
    app_dir: Path
    base_env: dict[str, str]
    target: dict[str, str] = field(default_factory=target_env)
    image: dict[str, StoredLayer] = field(default_factory=dict)
    cache: dict[str, StoredLayer] = field(default_factory=dict)
    builds: int = 0

    def __post_init__(self) -> None:
        self.descriptor = read_descriptor(self.buildpack_dir)
        self.buildpack_id = self.descriptor["buildpack"]["id"]
        self.clear_env = bool(self.descriptor["buildpack"].get("clear-env", False))
        self.platform_dir = self.workspace / "platform"
        (self.platform_dir / "env").mkdir(parents=True, exist_ok=True)
        self.layers_root = self.workspace / "layers"
        self.layers_dir = self.layers_root / escape_id(self.buildpack_id)

    def set_build_env(self, **variables: str) -> None:
        """What `heroku config:set` looks like to a build: files in <platform>/env/."""
        for name, value in variables.items():
            (self.platform_dir / "env" / name).write_text(value)

    def detect(self) -> DetectResult:
        plan_dir = self.workspace / "detect-plan"
        shutil.rmtree(plan_dir, ignore_errors=True)
        plan_dir.mkdir(parents=True)
        plan_path = plan_dir / "plan.toml"
        plan_path.touch()
        completed = self._run_phase(
            "detect",
            [str(self.platform_dir), str(plan_path)],
            {"CNB_BUILD_PLAN_PATH": str(plan_path)},
            timeout=60,
        )
        plan = tomllib.loads(plan_path.read_text())
        validate_build_plan(plan)
        return DetectResult(completed.returncode, completed.stdout + completed.stderr, plan)

    def build(self) -> subprocess.CompletedProcess[str]:
        """Analysis, restore, build and export of one build; raises on any contract breach."""
        self._restore()
        plan_path = self.workspace / "bp-plan.toml"
        plan_path.write_text("")  # dynostat requires nothing, so its plan has no entries
        completed = self._run_phase(
            "build",
            [str(self.layers_dir), str(self.platform_dir), str(plan_path)],
            {"CNB_LAYERS_DIR": str(self.layers_dir), "CNB_BP_PLAN_PATH": str(plan_path)},
            timeout=300,
        )
        self.builds += 1
        if completed.returncode == 0:
            self._export()
        return completed

    def _run_phase(
        self, program: str, arguments: list[str], phase_env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Runs bin/PROGRAM in the app directory with what every phase gets (the platform's
        env files, CNB_BUILDPACK_DIR, CNB_PLATFORM_DIR, the target) and PHASE_ENV."""
        env = _phase_env(self.base_env, self.platform_dir, self.clear_env)
        env.update(
            CNB_BUILDPACK_DIR=str(self.buildpack_dir),
            CNB_PLATFORM_DIR=str(self.platform_dir),
            **phase_env,
            **self.target,
        )
        return run_in_app_dir(
            [str(self.buildpack_dir / "bin" / program), *arguments],
            self.app_dir,
            env,
            timeout,
            capture_output=True,
            text=True,
        )

    def layer_tomls(self) -> dict[str, dict]:
        """Every <layer>.toml the build left, parsed and validated."""
        layers = {}
        for path in sorted(self.layers_dir.glob("*.toml")):
            if path.stem in RESERVED_LAYER_NAMES:
                continue
            layers[path.stem] = validate_layer_toml(path)
        return layers

    def _restore(self) -> None:
        """What the analyzer and restorer leave in <layers> before /bin/build runs again.

        Metadata comes back without its [types] table; a layer's content comes back only from
        the cache (never from the image), and only for layers that were cached.
        """
        shutil.rmtree(self.layers_root, ignore_errors=True)
        self.layers_dir.mkdir(parents=True)
        for name in sorted(set(self.image) | set(self.cache)):
            stored = self.cache.get(name) or self.image[name]
            restored = {key: value for key, value in stored.toml.items() if key != "types"}
            (self.layers_dir / f"{name}.toml").write_text(dump_toml(restored))
            if name in self.cache and self.cache[name].content is not None:
                shutil.copytree(self.cache[name].content, self.layers_dir / name, symlinks=True)

    def _export(self) -> None:
        """Keeps launch layers in the image and cached layers in the cache, like the exporter."""
        launch_toml = self.layers_dir / "launch.toml"
        if launch_toml.exists():
            validate_launch_toml(launch_toml)
        for path in self.layers_dir.iterdir():
            if path.is_dir() and not (self.layers_dir / f"{path.name}.toml").exists():
                raise LifecycleError(f"layer directory {path.name}/ has no {path.name}.toml")
        new_image: dict[str, StoredLayer] = {}
        new_cache: dict[str, StoredLayer] = {}
        store = self.workspace / f"store-{self.builds}"
        for name, layer in self.layer_tomls().items():
            types = layer.get("types", {})
            content = self.layers_dir / name
            if types.get("launch"):
                if content.is_dir():
                    copy = store / "image" / name
                    shutil.copytree(content, copy, symlinks=True)
                    new_image[name] = StoredLayer(layer, copy)
                elif name in self.image:
                    # A launch layer left without a directory reuses the previous image's.
                    new_image[name] = StoredLayer(layer, self.image[name].content)
                else:
                    raise LifecycleError(f"launch layer {name} has no content to export")
            if types.get("cache") and content.is_dir():
                copy = store / "cache" / name
                shutil.copytree(content, copy, symlinks=True)
                new_cache[name] = StoredLayer(layer, copy)
            if not any(types.get(key) for key in LAYER_TYPE_KEYS) and content.is_dir():
                content.rename(self.layers_dir / f"{name}.ignore")
        self.image, self.cache = new_image, new_cache

    def image_layers_dir(self) -> Path:
        """The layers as the exported image holds them, at the path they were built at."""
        shutil.rmtree(self.layers_root, ignore_errors=True)
        self.layers_dir.mkdir(parents=True)
        for name, stored in self.image.items():
            (self.layers_dir / f"{name}.toml").write_text(dump_toml(stored.toml))
            shutil.copytree(stored.content, self.layers_dir / name, symlinks=True)
        return self.layers_dir


def run_in_app_dir(
    argv: list[str], app_dir: Path, env: dict[str, str], timeout: float, **output
) -> subprocess.CompletedProcess:
    """Runs a program as the lifecycle runs the buildpack's and the app's: in the app
    directory, with an empty stdin, its output where ``output`` says."""
    return subprocess.run(
        argv, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, timeout=timeout, check=False, **output
    )


def validate_build_plan(plan: dict) -> None:
    allowed = {"provides", "requires", "or"}
    if set(plan) - allowed:
        raise LifecycleError(f"build plan has unknown keys {sorted(set(plan) - allowed)}")
    for section in ("provides", "requires"):
        for entry in plan.get(section, []):
            if not isinstance(entry.get("name"), str):
                raise LifecycleError(f"build plan {section} entry without a name: {entry}")


def validate_layer_toml(path: Path) -> dict:
    try:
        layer = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise LifecycleError(f"{path.name} is not TOML: {error}") from error
    unknown = set(layer) - {"types", "metadata"}
    if unknown:
        raise LifecycleError(f"{path.name} has keys the spec does not know: {sorted(unknown)}")
    types = layer.get("types", {})
    if not isinstance(types, dict) or set(types) - LAYER_TYPE_KEYS:
        raise LifecycleError(f"{path.name} [types] may hold only launch, build and cache")
    for key, value in types.items():
        if not isinstance(value, bool):
            raise LifecycleError(f"{path.name} types.{key} is {value!r}, not a boolean")
    if not isinstance(layer.get("metadata", {}), dict):
        raise LifecycleError(f"{path.name} metadata is not a table")
    return layer


def validate_launch_toml(path: Path) -> dict:
    launch = tomllib.loads(path.read_text())
    unknown = set(launch) - {"labels", "processes", "slices"}
    if unknown:
        raise LifecycleError(f"launch.toml has unknown keys {sorted(unknown)}")
    for process in launch.get("processes", []):
        kind = process.get("type", "")
        if not kind or not all(char.isalnum() or char in "._-" for char in kind):
            raise LifecycleError(f"launch.toml process type {kind!r} is not allowed")
        if not process.get("command"):
            raise LifecycleError(f"launch.toml process {kind} has no command")
    return launch


def dump_toml(document: dict) -> str:
    """Enough of a TOML writer for layer metadata: tables of strings, numbers and booleans."""
    lines: list[str] = []
    for table, values in document.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, (int, float)):
                rendered = str(value)
            elif isinstance(value, str):
                rendered = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                raise LifecycleError(f"metadata {table}.{key} has a type this stand-in skips")
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


@dataclass
class ExecDRun:
    path: Path
    code: int
    exited_after: float  # seconds from start to the program's exit
    eof_after: float  # seconds from start to EOF on fd 3's reading end
    output: dict


@dataclass
class Launch:
    env: dict[str, str]
    exec_d: list[ExecDRun]
    process: subprocess.CompletedProcess


def _apply_env_dir(env: dict[str, str], env_dir: Path) -> None:
    """The spec's suffix rules for one env directory; an unsuffixed file overrides."""
    if not env_dir.is_dir():
        return
    for path in sorted(p for p in env_dir.iterdir() if p.is_file()):
        name, _, action = path.name.partition(".")
        if action not in ENV_SUFFIXES:
            raise LifecycleError(f"env file {path} has an unknown suffix")
        if action == "delim":
            continue
        value = path.read_text()
        delim_file = env_dir / f"{name}.delim"
        delimiter = delim_file.read_text() if delim_file.exists() else ""
        current = env.get(name, "")
        if action in ("", "override"):
            env[name] = value
        elif action == "default":
            if current == "":
                env[name] = value
        elif action == "prepend":
            env[name] = value + (delimiter + current if current else "")
        elif action == "append":
            env[name] = (current + delimiter if current else "") + value


def launch_env(layers_dir: Path, process_type: str, runtime_env: dict[str, str]) -> dict[str, str]:
    """The environment the launcher gives exec.d programs and the process."""
    env = {key: value for key, value in runtime_env.items() if key not in LAUNCH_ENV_EXCLUDED}
    layers = sorted(p for p in layers_dir.iterdir() if p.is_dir())
    for layer in layers:
        for sub_dir, variable in LAUNCH_ROOT_DIRS.items():
            if (layer / sub_dir).is_dir():
                current = env.get(variable, "")
                env[variable] = str(layer / sub_dir) + (os.pathsep + current if current else "")
    for layer in layers:
        _apply_env_dir(env, layer / "env")
        _apply_env_dir(env, layer / "env.launch")
        _apply_env_dir(env, layer / "env.launch" / process_type)
    return env


def run_exec_d(program: Path, env: dict[str, str], cwd: Path, log) -> ExecDRun:
    """Runs one exec.d program as the launcher does: fd 3 is a pipe read to EOF, stdin empty.

    Our copy of the writing end is closed as soon as the child has it, so EOF arrives only when
    the program and everything it started have let go of fd 3. posix_spawn puts the pipe on
    fd 3 in the child without touching this process's own fd 3.
    """
    read_end, write_end = os.pipe()
    if write_end == 3:
        # dup2(3, 3) would keep close-on-exec set; give the child a copy from elsewhere.
        moved = os.dup(write_end)
        os.close(write_end)
        write_end = moved
    devnull = os.open(os.devnull, os.O_RDONLY)
    # The launcher starts exec.d programs in the app directory; posix_spawn has no cwd, so the
    # child inherits ours for the moment of the spawn.
    previous_cwd = os.getcwd()
    os.chdir(cwd)
    started = time.monotonic()
    try:
        pid = os.posix_spawn(
            str(program),
            [str(program)],
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
                (os.POSIX_SPAWN_DUP2, write_end, 3),
            ],
        )
    finally:
        os.chdir(previous_cwd)
        os.close(write_end)
        os.close(devnull)
    chunks = []
    eof_after = None
    exited_after = None
    code = None
    deadline = started + EXEC_D_GIVE_UP_SECONDS
    try:
        while eof_after is None or exited_after is None:
            if time.monotonic() > deadline:
                raise LifecycleError(
                    f"{program.name}: still running or fd 3 still open after "
                    f"{EXEC_D_GIVE_UP_SECONDS} s; the real launcher would wait forever"
                )
            if exited_after is None:
                waited, status = os.waitpid(pid, os.WNOHANG)
                if waited == pid:
                    exited_after = time.monotonic() - started
                    code = os.waitstatus_to_exitcode(status)
            if eof_after is None:
                ready, _, _ = select.select([read_end], [], [], 0.002)
                if ready:
                    chunk = os.read(read_end, 65536)
                    if chunk:
                        chunks.append(chunk)
                    else:
                        eof_after = time.monotonic() - started
            else:
                time.sleep(0.002)
    finally:
        os.close(read_end)
        if exited_after is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    try:
        output = tomllib.loads(b"".join(chunks).decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise LifecycleError(f"{program.name} wrote something on fd 3 that is not TOML") from error
    for name, value in output.items():
        if not isinstance(value, str):
            raise LifecycleError(f"{program.name} set {name} to a non-string on fd 3")
    return ExecDRun(program, code, exited_after, eof_after, output)


def launch(
    layers_dir: Path,
    app_dir: Path,
    *,
    process_type: str,
    command: str,
    runtime_env: dict[str, str],
    log,
    timeout: float = 60,
) -> Launch:
    """Env, then exec.d (each layer, then each process-specific directory), then `bash -c`."""
    env = launch_env(layers_dir, process_type, runtime_env)
    runs = []
    layers = sorted(p for p in layers_dir.iterdir() if p.is_dir())
    for exec_dir in [layer / "exec.d" for layer in layers] + [
        layer / "exec.d" / process_type for layer in layers
    ]:
        if not exec_dir.is_dir():
            continue
        for program in sorted(p for p in exec_dir.iterdir() if p.is_file()):
            run = run_exec_d(program, env, app_dir, log)
            if run.code != 0:
                raise LifecycleError(f"exec.d {program.name} exited {run.code}: launch fails")
            env.update(run.output)
            runs.append(run)
    process = run_in_app_dir(["bash", "-c", command], app_dir, env, timeout, stdout=log, stderr=log)
    return Launch(env, runs, process)
