"""The dyno itself, without the buildpack: what it promises about namespaces, the user, the
limits, the environment, the login shell, the stop sequence and the clean-up."""

from __future__ import annotations

import os
from pathlib import Path

import harness
from scenario import APPS

MARKER = "DYNO_HARNESS_MARKER"


def test_the_login_shell_sources_profile_d_then_profile_in_a_heroku_like_environment(
    boot, monkeypatch
):
    monkeypatch.setenv(MARKER, "must not reach the dyno")
    dyno = boot(
        "plain",
        'echo "greeting=$GREETING"; echo "profile_saw=$PROFILE_SAW"; env | sort',
        config={"SOME_CONFIG": "a value"},
        buildpack=None,
    )
    assert dyno.wait_exit(10) == 0
    texts = [line.text for line in dyno.app_lines()]
    assert "greeting=sourced from .profile.d" in texts
    assert "profile_saw=sourced from .profile.d" in texts
    env = dict(text.split("=", 1) for text in texts[2:])
    assert env["HOME"] == "/app"
    assert env["PWD"] == "/app"
    assert env["DYNO"] == "web.1"
    assert env["PORT"] == str(dyno.port)
    assert env["SOME_CONFIG"] == "a value"
    assert env["PATH"] == harness.BASE_PATH
    assert MARKER not in env
    assert "LC_CTYPE" not in env


def test_the_command_runs_unprivileged_under_its_task_limit_beneath_a_reaping_init(boot):
    dyno = boot(
        "plain",
        "id -u; ulimit -u; cat /proc/1/comm; echo $$ $PPID; cat /proc/self/cgroup",
        dyno="worker.1",
        tasks_limit=64,
        memory_limit=96 * harness.MIB,
        buildpack=None,
    )
    assert dyno.wait_exit(10) == 0
    uid, nproc, init_comm, shell_pids, *cgroups = [line.text for line in dyno.app_lines()]
    assert uid == str(dyno.uid)
    assert int(uid) != 0
    assert nproc == "64"
    assert init_comm == "python3"  # init.py, not the app's shell
    shell_pid, shell_parent = shell_pids.split()
    assert shell_pid != "1"
    assert shell_parent == "1"
    assert "PORT" not in dyno.environment()
    assert any(line.endswith(f"/dynostat-dyno-{dyno.uid}") for line in cgroups)
    assert dyno.cgroups.read_pids_max() == 64
    assert dyno.cgroups.read_memory_limit() == 96 * harness.MIB


def test_the_task_limit_stops_forks_with_eagain(boot):
    # A shell that forks sleepers until fork fails: bash reports the failure itself.
    dyno = boot(
        "plain",
        "for i in $(seq 100); do sleep 30 & done 2>&1 | head -n 1; echo done",
        dyno="worker.1",
        tasks_limit=24,
        buildpack=None,
    )
    dyno.wait_for("Resource temporarily unavailable", 15)
    assert len(dyno.processes()) <= 24


def test_orphans_are_reaped_by_init_so_they_never_stay_zombies(boot):
    # The subshell exits at once, orphaning its sleeper; the sleeper exits a moment later.
    # Its /proc entry outlives it as long as it is a zombie: it goes only once init has
    # reaped it, so the shell waits for exactly that (and never ends if init does not).
    dyno = boot(
        "plain",
        "orphan=$( (sleep 0.2 >/dev/null & echo $!) ); "
        'while [ -e "/proc/${orphan}" ]; do sleep 0.02; done; '
        "grep -h '^State:' /proc/[0-9]*/status | grep -c Z; true",
        buildpack=None,
    )
    assert dyno.wait_exit(10) == 0
    assert [line.text for line in dyno.app_lines()] == ["0"]


def test_stop_sends_sigterm_to_every_process_then_sigkill_after_the_grace_period(boot):
    dyno = boot(
        "plain",
        "trap 'echo shell got TERM' TERM; (trap '' TERM; sleep 60) & "
        "echo started; while true; do sleep 0.1; done",
        grace=1.0,
        buildpack=None,
    )
    dyno.wait_for("^started$", 10)
    uid = dyno.uid
    dyno.stop()
    texts = [line.text for line in dyno.lines]
    sigterm = texts.index("Stopping all processes with SIGTERM")
    assert "shell got TERM" in texts[sigterm:]
    assert "Stopping remaining processes with SIGKILL" in texts[sigterm:]
    assert not dyno.cgroups.pids()
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _uid_of(pid) == uid]


def test_leaving_the_block_removes_every_process_cgroup_and_file_even_after_an_error(
    dyno_machine, tmp_path
):
    app = APPS / "plain"
    try:
        with harness.run(
            app, "sleep 60", buildpack=None, cache_dir=tmp_path, dyno="worker.1"
        ) as session:
            dyno = session.dyno
            work_dir = session.work_dir
            dyno.wait_for(lambda line: line.text.startswith("State changed"), 10)
            assert dyno.processes()
            raise KeyError("a failing test")
    except KeyError:
        pass
    assert not any(path.exists() for path in dyno.cgroups.dirs)
    assert not work_dir.exists()
    assert dyno.init_pid is not None
    assert not Path(f"/proc/{dyno.init_pid}").exists()


def test_exec_sessions_run_inside_the_dyno_as_its_user_without_config_vars(boot):
    dyno = boot("plain", "sleep 60", config={"SECRET_THING": "x"}, dyno="worker.1", buildpack=None)
    dyno.wait_for(lambda line: line.text.startswith("State changed"), 10)
    result = dyno.exec(
        'id -u; echo "$GREETING"; echo "${SECRET_THING:-unset}"; pwd; hostname; '
        "cat /proc/self/cgroup"
    )
    assert result.returncode == 0
    assert result.stdout.split("\n")[4] == dyno.hostname
    assert f"/dynostat-dyno-{dyno.uid}" in result.stdout
    assert result.stdout.split("\n")[:4] == [
        str(dyno.uid),
        "sourced from .profile.d",
        "unset",
        "/app",
    ]


def _uid_of(pid: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def test_the_harness_reads_the_machine_s_proc_as_bytes(process_with_hostile_name):
    pid, _ = process_with_hostile_name
    uid = harness.free_uid()
    assert uid not in (0, os.getuid(), _uid_of(str(pid)))
    assert _uid_of(str(pid)) == os.getuid()
    assert harness._ns_pid(pid) == 0, "a process of the machine's own PID namespace"
