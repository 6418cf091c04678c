"""dynostat as a Cloud Native Buildpack: detect, build, rebuild and launch like a Fir dyno.

Everything runs through the lifecycle stand-in in cnb_lifecycle.py: the real bin/detect and
bin/build, the real layers they write, the real exec.d program and the real agent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import standalone_archive
import tomllib
from cnb_lifecycle import LAUNCH_ENV_EXCLUDED, launch, launch_env

from support import readme_decoder
from support.paths import REPO
from support.subreaper import is_running, stat_fields

FIR_WEB = "web-12a34b56d-e78f9"
# Seconds exec.d may take, and fd 3 stay open: it must never wait for the agent, which runs
# for the dyno's life. A few hundred milliseconds of scheduling on a loaded 2-core machine are
# not a wait; how long it really takes is measured by bench/bench_launcher.sh.
EXEC_D_BUDGET = 1.0


def runtime_env(tmp_path: Path, dyno: str, **extra: str) -> dict[str, str]:
    """What a Fir dyno's launcher starts with: the image's PATH, the dyno's name, config."""
    lock_dir = tmp_path / "dyno-tmp"
    lock_dir.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "DYNO": dyno,
        "PORT": "5000",
        "TMPDIR": str(lock_dir),  # the dyno's own /tmp, where the agent's lock lives
        "CNB_LAYERS_DIR": "/layers",  # set on real images; the launcher must drop it
    }
    env.update(extra)
    return env


def built_image(lifecycle) -> Path:
    result = lifecycle.build()
    assert result.returncode == 0, result.stdout + result.stderr
    return lifecycle.image_layers_dir()


def launch_dyno(lifecycle, tmp_path, dyno, command="sleep 0.2", process_type="web", **config):
    layers = lifecycle.image_layers_dir()
    log_path = tmp_path / "dyno.log"
    with log_path.open("a") as log:
        launched = launch(
            layers,
            lifecycle.app_dir,
            process_type=process_type,
            command=command,
            runtime_env=runtime_env(tmp_path, dyno, **config),
            log=log,
        )
    for run in launched.exec_d:
        assert run.code == 0
        assert run.exited_after < EXEC_D_BUDGET, f"{run.path.name} took {run.exited_after:.3f}s"
        assert run.eof_after < EXEC_D_BUDGET, f"fd 3 stayed open {run.eof_after:.3f}s"
        assert run.output == {}, "exec.d set variables it never meant to"
    return launched, log_path


def agent_lines(log_path: Path, source: str) -> list[str]:
    return [
        line for line in log_path.read_text().splitlines() if line.startswith(f"source={source} ")
    ]


def wait_for_agent_lines(log_path: Path, source: str, timeout: float = 10.0) -> list[str]:
    """The agent's lines, once its first has reached the log."""
    deadline = time.monotonic() + timeout
    while not (lines := agent_lines(log_path, source)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lines, f"no line of the agent's within {timeout:g} s"
    return lines


def assert_each_stayed_out(reaper, pids: set[int]) -> None:
    """Every process in PIDS (what a finished launch left) exits by itself, with 0: agents
    that found the lock taken, or were told to stay out of this dyno."""
    assert reaper.wait_for_exit(pids) == dict.fromkeys(pids, 0)


def test_buildpack_toml_is_a_buildpack_api_0_10_descriptor_for_linux_amd64_and_arm64():
    descriptor = tomllib.loads((REPO / "buildpack.toml").read_text())
    assert descriptor["api"] == "0.10"
    buildpack = descriptor["buildpack"]
    assert buildpack["id"] == "dynostat/dynostat"
    assert all(part.isdigit() for part in buildpack["version"].split("."))
    assert buildpack["name"] == "dynostat"
    assert buildpack["homepage"].startswith("https://")
    targets = {(target["os"], target["arch"]) for target in descriptor["targets"]}
    assert targets == {("linux", "amd64"), ("linux", "arm64")}
    assert "order" not in descriptor  # a component buildpack: it has bin/detect and bin/build


def test_detect_passes_every_app_under_the_lifecycle_even_when_disabled_at_build_time(lifecycle):
    lifecycle.set_build_env(DYNOSTAT_DISABLE="true")
    detected = lifecycle.detect()
    assert detected.code == 0, detected.output
    assert detected.plan == {}


def test_detect_fails_with_100_and_says_why_on_a_target_without_a_cpython(lifecycle):
    lifecycle.target["CNB_TARGET_ARCH"] = "ppc64le"
    detected = lifecycle.detect()
    assert detected.code == 100
    assert "no CPython for linux/ppc64le" in detected.output


def test_build_writes_a_cached_runtime_layer_and_an_agent_layer_the_app_cannot_see(
    lifecycle, download_server, tmp_path
):
    layers = built_image(lifecycle)

    tomls = {path.stem: tomllib.loads(path.read_text()) for path in layers.glob("*.toml")}
    assert tomls["runtime"]["types"] == {"launch": True, "build": False, "cache": True}
    assert tomls["agent"]["types"] == {"launch": True, "build": False, "cache": False}
    assert (
        tomls["runtime"]["metadata"]["sha256"]
        == lifecycle.cache["runtime"].toml["metadata"]["sha256"]
    )
    assert set(lifecycle.image) == {"runtime", "agent"}
    assert set(lifecycle.cache) == {"runtime"}
    assert download_server.requests == ["/cpython-install_only.tar.gz"]

    # No bin/, lib/ or env files at a layer's root: the launcher would hand them to the app.
    for layer in ("runtime", "agent"):
        assert not {"bin", "lib", "env", "env.launch", "profile.d"} & {
            entry.name for entry in (layers / layer).iterdir()
        }
    env = launch_env(layers, "web", runtime_env(tmp_path, FIR_WEB))
    expected = {
        key: value
        for key, value in runtime_env(tmp_path, FIR_WEB).items()
        if key not in LAUNCH_ENV_EXCLUDED
    }
    assert env == expected

    exec_d = layers / "agent" / "exec.d" / "dynostat"
    assert os.access(exec_d, os.X_OK)
    python = layers / "agent" / "home" / ".dynostat" / "bin" / "python3"
    assert python.resolve().is_relative_to(layers / "runtime" / "python")
    version = subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.version_info >= (3, 9))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout == "True\n"


def test_a_rebuild_with_cached_layers_downloads_nothing(lifecycle, download_server):
    first = lifecycle.build()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Downloading" in first.stdout
    second = lifecycle.build()
    assert second.returncode == 0, second.stdout + second.stderr
    assert download_server.requests == ["/cpython-install_only.tar.gz"]
    assert "Downloading" not in second.stdout
    assert "Using the cached CPython" in second.stdout
    layers = lifecycle.image_layers_dir()
    assert (layers / "runtime" / "python" / "bin" / "python3").exists()


def test_a_new_python_mirror_replaces_the_cached_runtime(lifecycle, download_server):
    assert lifecycle.build().returncode == 0
    sha256 = standalone_archive.build(download_server.root / "mirror.tar.gz", "another release")
    lifecycle.set_build_env(
        DYNOSTAT_PYTHON_URL=f"{download_server.url}/mirror.tar.gz", DYNOSTAT_PYTHON_SHA256=sha256
    )
    rebuilt = lifecycle.build()
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert download_server.requests == ["/cpython-install_only.tar.gz", "/mirror.tar.gz"]
    assert lifecycle.cache["runtime"].toml["metadata"]["sha256"] == sha256


def test_a_bad_checksum_fails_the_build_with_nothing_cached(lifecycle):
    lifecycle.set_build_env(DYNOSTAT_PYTHON_SHA256="0" * 64)
    failed = lifecycle.build()
    assert failed.returncode != 0
    assert "does not match its expected sha256" in failed.stderr
    assert lifecycle.cache == {}
    assert lifecycle.image == {}


def test_exec_d_returns_at_once_with_fd_3_closed_and_one_agent_keeps_running(
    lifecycle, tmp_path, reaper
):
    built_image(lifecycle)
    launched, log_path = launch_dyno(
        lifecycle,
        tmp_path,
        FIR_WEB,
        command='command -v python3; echo "app PATH=$PATH"; sleep 2.5',
        DYNOSTAT_INTERVAL="1",
    )
    assert len(launched.exec_d) == 1
    assert launched.process.returncode == 0

    # Still running after the process it was started for has ended.
    agents = reaper.running()
    assert len(agents) == 1
    (agent,) = agents
    fields = stat_fields(agent)
    assert fields[1] == b"python3"
    assert int(fields[5]) == agent, "the agent leads its own session, away from the app's"
    assert os.readlink(f"/proc/{agent}/fd/0") == "/dev/null"

    log = log_path.read_text()
    assert "app PATH=/usr/local/bin:/usr/bin:/bin\n" in log
    assert "/usr/bin/python3\n" in log  # the app's python3 is not ours
    lines = agent_lines(log_path, FIR_WEB)
    tasks_lines = [line for line in lines if " sample#dynostat.tasks=" in line]
    assert len(tasks_lines) >= 2, log  # at least two ticks while the process ran
    assert all(list(readme_decoder.fields(line))[:2] == ["source", "dyno"] for line in lines)


def test_a_second_launch_in_the_same_dyno_starts_no_second_agent(lifecycle, tmp_path, reaper):
    built_image(lifecycle)
    launch_dyno(lifecycle, tmp_path, FIR_WEB, DYNOSTAT_INTERVAL="5")
    first = reaper.running()
    assert len(first) == 1
    # `heroku run:inside` runs the launcher again in the same dyno. Once it has returned,
    # what it started is this process's child: one agent, which finds the lock taken.
    launch_dyno(lifecycle, tmp_path, FIR_WEB, DYNOSTAT_INTERVAL="5")
    second = reaper.orphans() - first
    assert len(second) == 1
    assert_each_stayed_out(reaper, second)
    assert reaper.running() == first


def test_exec_d_starts_one_agent_whatever_shell_settings_the_app_s_environment_carries(
    lifecycle, tmp_path, reaper
):
    built_image(lifecycle)
    bash_env = tmp_path / "bash_env.sh"
    bash_env.write_text('echo "BASH_ENV ran"\nexit 3\n')
    hostile = {
        "POSIXLY_CORRECT": "1",
        "BASH_ENV": str(bash_env),
        "ENV": str(bash_env),
        "SHELLOPTS": "xtrace",
        "BASHOPTS": "failglob",
        "PS4": "+trace+ ",
        "BASH_FUNC_setsid%%": '() { echo "setsid hijacked"; }',
        "BASH_FUNC_cd%%": '() { echo "cd hijacked"; return 1; }',
        "BASH_FUNC_command%%": '() { echo "command hijacked"; }',
        "CDPATH": "/tmp",
        "GLOBIGNORE": "*",
    }
    # launch_dyno asserts that exec.d exits 0 at once and sets nothing.
    _, log_path = launch_dyno(
        lifecycle, tmp_path, FIR_WEB, command="echo app ran", DYNOSTAT_INTERVAL="5", **hostile
    )
    assert len(reaper.running()) == 1
    wait_for_agent_lines(log_path, FIR_WEB)
    lines = log_path.read_text().splitlines()
    # The app's own line, and otherwise only the agent's (which may come first): nothing the
    # hostile settings could have printed.
    assert [line for line in lines if not line.startswith(f"source={FIR_WEB} ")] == ["app ran"]


@pytest.fixture
def read_only_tmp(tmp_path):
    """The dyno's TMPDIR as a real read-only bind mount, unmounted again whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    lock_dir = tmp_path / "dyno-tmp"
    lock_dir.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(lock_dir), str(lock_dir)], check=True)
    try:
        yield lock_dir
    finally:
        subprocess.run(["umount", str(lock_dir)], check=True)


def test_a_read_only_tmp_still_gets_exactly_one_agent_however_often_it_launches(
    lifecycle, tmp_path, reaper, read_only_tmp
):
    built_image(lifecycle)
    _, log_path = launch_dyno(lifecycle, tmp_path, FIR_WEB, DYNOSTAT_INTERVAL="5")
    first = reaper.running()
    assert len(first) == 1
    for _ in range(3):
        launch_dyno(lifecycle, tmp_path, FIR_WEB, DYNOSTAT_INTERVAL="5")
    later = reaper.orphans() - first
    assert len(later) == 3
    assert_each_stayed_out(reaper, later)
    assert reaper.running() == first
    assert not (read_only_tmp / "dynostat.lock").exists()  # no file: the socket holds it
    wait_for_agent_lines(log_path, FIR_WEB)
    assert "at=error" not in log_path.read_text()


@pytest.mark.parametrize(
    "case",
    [
        ("worker-5d8f9c7b4-x2x9z", None, 1),
        ("my-worker-5d8f9c7b4-x2x9z", "my-worker", 1),
        ("my-worker-5d8f9c7b4-x2x9z", "worker", 0),
        ("web-12a34b56d-e78f9", "worker,clock", 0),
        ("scheduler-7c9d8e6f5-a1b2c", None, 0),
        ("release-7c9d8e6f5-a1b2c", None, 0),
        ("release-7c9d8e6f5-a1b2c", "all", 1),
        ("web.1", "web", 1),
        ("run.4821", None, 0),
        ("run-4821", None, 0),
        ("run-4821", "ALL", 1),
    ],
)
def test_process_types_are_filtered_by_fir_and_classic_dyno_names(
    lifecycle, tmp_path, reaper, case
):
    dyno, process_types, agents = case
    built_image(lifecycle)
    config = {"DYNOSTAT_INTERVAL": "1"}
    if process_types is not None:
        config["DYNOSTAT_PROCESS_TYPES"] = process_types
    _, log_path = launch_dyno(lifecycle, tmp_path, dyno, command="true", **config)
    if agents:
        wait_for_agent_lines(log_path, dyno)
        assert len(reaper.running()) == 1
    else:
        # The launch is over: whatever it started (where the launcher cannot tell, the agent
        # decides) is this process's child and stays out by itself.
        assert_each_stayed_out(reaper, reaper.orphans())
        assert agent_lines(log_path, dyno) == []


def test_disabled_at_run_time_starts_nothing_and_prints_nothing(lifecycle, tmp_path, reaper):
    built_image(lifecycle)
    _, log_path = launch_dyno(lifecycle, tmp_path, FIR_WEB, DYNOSTAT_DISABLE="true")
    # The launch is over, and nothing it could have started is left to come: no process.
    assert reaper.orphans() == set()
    assert log_path.read_text() == ""


def test_the_dyno_boots_when_the_agent_cannot_start(lifecycle, tmp_path, reaper):
    layers = built_image(lifecycle)
    # An image whose runtime layer lost its interpreter: exec.d must still pass.
    shutil.rmtree(layers / "runtime" / "python")
    launched = launch(
        layers,
        lifecycle.app_dir,
        process_type="web",
        command="echo booted",
        runtime_env=runtime_env(tmp_path, FIR_WEB),
        log=(tmp_path / "dyno.log").open("w"),
    )
    assert [run.code for run in launched.exec_d] == [0]
    assert launched.process.returncode == 0
    assert (tmp_path / "dyno.log").read_text() == "booted\n"
    assert reaper.orphans() == set()


def test_a_new_target_architecture_replaces_the_cached_runtime(lifecycle, download_server):
    assert lifecycle.build().returncode == 0
    lifecycle.target["CNB_TARGET_ARCH"] = (
        "arm64" if lifecycle.target["CNB_TARGET_ARCH"] == ("amd64") else "amd64"
    )
    rebuilt = lifecycle.build()
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert len(download_server.requests) == 2
    expected = {"amd64": "x86_64", "arm64": "aarch64"}[lifecycle.target["CNB_TARGET_ARCH"]]
    assert lifecycle.cache["runtime"].toml["metadata"]["arch"] == expected


@pytest.mark.parametrize(
    ("target_arch", "machine"), [("amd64", "x86_64"), ("arm64", "aarch64"), ("", None)]
)
def test_the_cnb_target_architecture_names_the_standalone_cpython_to_install(target_arch, machine):
    named = subprocess.run(
        ["bash", "-c", "source bin/lib/cnb.sh && cnb::machine_arch"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "CNB_TARGET_ARCH": target_arch},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = machine or os.uname().machine
    assert named.stdout == f"{expected}\n"


def test_the_reaper_lists_a_child_whose_name_is_not_utf_8(reaper):
    # Apps name processes with any bytes; /proc shows them as they are (prctl(2) PR_SET_NAME).
    named = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import ctypes, sys; ctypes.CDLL(None).prctl(15, b'\\xff\\xfe odd)', 0, 0, 0);"
            " print('named', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert named.stdout.readline() == b"named\n"
        assert named.pid in reaper.orphans()
    finally:
        named.stdin.close()
        named.wait(timeout=5)


def test_the_reaper_reads_a_hostile_name_in_proc_as_bytes(process_with_hostile_name, reaper):
    pid, comm = process_with_hostile_name
    assert pid in reaper.before, "the named process is this test's own child"
    assert reaper.orphans() == set()
    assert is_running(pid)
    pid_field, name, state = stat_fields(pid)[:3]
    assert (pid_field, name) == (str(pid).encode(), comm)
    # Between its "ready" and its read of stdin it may still be on a CPU.
    assert state in (b"S", b"R")
