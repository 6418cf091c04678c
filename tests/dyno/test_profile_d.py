"""What the app's own shell and slug may be like, and still: the app's command runs, dynostat
prints nothing of its own but the agent's lines, and exactly one agent starts, also when
`heroku ps:exec` sessions and nested login shells source the profile again."""

from __future__ import annotations

import shutil

import pytest
from scenario import APPS, assert_exec_sessions_leave_one_agent


def app_with_profile(tmp_path, script: str):
    """The healthy app, with .profile.d/000-app.sh holding SCRIPT: sourced before dynostat's,
    as an app's own profile script or another buildpack's can be."""
    app = tmp_path / "app"
    shutil.copytree(APPS / "healthy", app)
    (app / ".profile.d").mkdir()
    (app / ".profile.d" / "000-app.sh").write_text(script)
    return app


@pytest.mark.parametrize(
    "script",
    [
        "set -o posix\n",
        "export POSIXLY_CORRECT=1\n",
        "readonly types=web fd=3 home=/app mode=posix python=app\nset -u\n",
        "set -o posix\nreadonly types=web fd=3 home=/app mode=posix python=app\nset -eu\n",
    ],
    ids=["set-o-posix", "POSIXLY_CORRECT", "readonly-names", "posix-readonly-strict"],
)
def test_a_login_shell_in_posix_mode_or_with_readonly_names_boots_the_app_and_one_agent(
    boot, tmp_path, script
):
    # POSIX mode rejects function names such as `dynostat::launch` and ends the login shell
    # with status 2 before the app's command; readonly names such as `types` or `fd` break
    # any `local` of the same name.
    dyno = boot(app_with_profile(tmp_path, script), "python3 web.py")
    dyno.wait_for("^web: listening on ", 10)
    dyno.wait_for("sample#dynostat.tasks=", 10)
    texts = [line.text for line in dyno.app_lines()]
    assert [text for text in texts if not text.startswith(("web: ", "source=web.1 "))] == []
    assert_exec_sessions_leave_one_agent(dyno, [None, dyno.environment(), dyno.environment()], 2)


def test_a_read_only_slug_gets_exactly_one_agent_however_often_the_profile_is_sourced(boot):
    dyno = boot("healthy", "python3 web.py", read_only_slug=True)
    dyno.wait_for("sample#dynostat.tasks=", 10)
    probe = dyno.exec("touch /app/.dynostat/run/agent.lock 2>&1; echo $?")
    assert probe.stdout.splitlines()[-1] != "0", "the slug is writable"
    assert_exec_sessions_leave_one_agent(dyno, [None, dyno.environment(), dyno.environment()], 2)
    assert not [line.text for line in dyno.app_lines() if "at=error" in line.text]
