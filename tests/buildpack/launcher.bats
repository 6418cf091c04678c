#!/usr/bin/env bats
# The launcher (.profile.d/dynostat.sh), sourced the way a dyno's login shell does, in a fake
# slug whose agent is a stub that takes the lock like the real one and records how it started.

# shellcheck source=tests/buildpack/helpers/common.bash
source "${BATS_TEST_DIRNAME:?}/helpers/common.bash"

setup() {
	APP="${BATS_TEST_TMPDIR}/app"
	STATE_DIR="${BATS_TEST_TMPDIR}/state"
	mkdir -p "${APP}/.profile.d" "${APP}/.dynostat/agent" "${APP}/.dynostat/bin" \
		"${APP}/.dynostat/run" "${STATE_DIR}"
	cp "${REPO_DIR}/vendor/profile.d/dynostat.sh" "${APP}/.profile.d/dynostat.sh"
	cp "${REPO_DIR}/vendor/dynostat-launcher.sh" "${APP}/.dynostat/launcher.sh"
	cp -R "${BATS_TEST_DIRNAME}/helpers/agent_stub/dynostat" "${APP}/.dynostat/agent/dynostat"
	cp "${REPO_DIR}/agent/dynostat-agent" "${APP}/.dynostat/agent/dynostat-agent"
	ln -s "${SYSTEM_PYTHON}" "${APP}/.dynostat/bin/python3"
	: >"${APP}/.dynostat/run/agent.lock"
}

teardown() {
	local pid
	if [[ -f "${STATE_DIR}/attempts" ]]; then
		while IFS= read -r pid; do
			kill "${pid}" 2>/dev/null || true
		done <"${STATE_DIR}/attempts"
	fi
}

# Runs SCRIPT in a login-like shell of a dyno named DYNO: a clean environment with HOME=/app
# stand-in, cwd HOME, and every .profile.d script sourced first, as the dyno's bash --login
# does. Extra NAME=VALUE arguments are added to the environment. The shell writes to a file,
# like a dyno's log stream, because an agent it starts keeps that stream open for its whole
# life; the file is printed once the shell is done.
# Usage: dyno_shell DYNO SCRIPT [NAME=VALUE ...]
dyno_shell() {
	local dyno="${1}"
	local script="${2}"
	local shell_log="${BATS_TEST_TMPDIR}/shell.log"
	local status=0
	shift 2
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	env -i HOME="${APP}" PATH=/usr/local/bin:/usr/bin:/bin DYNO="${dyno}" \
		DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" "$@" \
		bash --noprofile --norc -c 'cd "${HOME}" && for f in "${HOME}"/.profile.d/*.sh; do source "${f}"; done
'"${script}" >"${shell_log}" 2>&1 || status="$?"
	cat "${shell_log}"
	return "${status}"
}

# Waits until COUNT agents have started (won or lost the lock); fails after 10 s.
# Usage: wait_for_attempts COUNT
wait_for_attempts() {
	local count="${1}"
	local waited=0 lines=0
	while ((waited < 200)); do
		if [[ -f "${STATE_DIR}/attempts" ]]; then
			lines="$(wc -l <"${STATE_DIR}/attempts")"
			((lines >= count)) && break
		fi
		sleep 0.05
		waited=$((waited + 1))
	done
	assert_equal "${lines}" "${count}"
}

# Waits for the winning agent's state file and prints its path.
agent_state_file() {
	local waited=0 found
	while ((waited < 200)); do
		for found in "${STATE_DIR}"/agent.*.json; do
			if [[ -f "${found}" ]]; then
				echo "${found}"
				return 0
			fi
		done
		sleep 0.05
		waited=$((waited + 1))
	done
	return 1
}

# Prints field NAME of the agent's state as JSON.
# Usage: agent_field NAME
agent_field() {
	local name="${1}"
	local state
	state="$(agent_state_file)"
	"${SYSTEM_PYTHON}" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' \
		"${state}" "${name}"
}

# Fails unless no agent ever started, giving a launched one time to show up first.
assert_no_agent_started() {
	sleep 0.5
	assert [ ! -e "${STATE_DIR}/attempts" ]
}

@test "three sourcings start exactly one agent, and the later ones yield to it" {
	run -0 dyno_shell web.1 'source .profile.d/dynostat.sh; source .profile.d/dynostat.sh'
	assert_output ""
	wait_for_attempts 3
	run -0 dyno_shell web.1 ':'
	assert_output ""
	wait_for_attempts 4
	run -0 ls "${STATE_DIR}"
	assert_line --regexp '^agent\.[0-9]+\.json$'
	run -0 find "${STATE_DIR}" -name 'agent.*.json'
	assert_equal "${#lines[@]}" 1
	# The winner still holds the lock; every other start has exited.
	run -1 flock --nonblock "${APP}/.dynostat/run/agent.lock" true
	local winner pid stat alive=0
	winner="$(agent_field pid)"
	sleep 0.3
	while IFS= read -r pid; do
		[[ "${pid}" == "${winner}" ]] && continue
		# An exited process may linger as a zombie until this machine's PID 1 reaps it.
		stat="$(cat "/proc/${pid}/stat" 2>/dev/null || true)"
		[[ -n "${stat}" && "${stat##*) }" != Z* ]] && alive=$((alive + 1))
	done <"${STATE_DIR}/attempts"
	assert_equal "${alive}" 0
}

@test "no agent and no output at all on one-off, release and scheduler dynos" {
	local dyno
	for dyno in run.1 run.4242 release.1 scheduler.1234 run-12a34b56d-e78f9; do
		run -0 dyno_shell "${dyno}" 'echo "exit=$?"'
		assert_output "exit=0"
	done
	assert_no_agent_started
}

@test "no agent when DYNOSTAT_DISABLE is set" {
	local value
	for value in true 1 TRUE yes; do
		run -0 dyno_shell web.1 'echo "exit=$?"' DYNOSTAT_DISABLE="${value}"
		assert_output "exit=0"
	done
	assert_no_agent_started
}

@test "no agent when the dyno has no name, as in heroku ps:exec sessions" {
	run -0 dyno_shell "" 'echo "exit=$?"'
	assert_output "exit=0"
	assert_no_agent_started
}

@test "no agent and no error when the slug's Python is missing" {
	rm "${APP}/.dynostat/bin/python3"
	run -0 dyno_shell web.1 'echo "exit=$?"'
	assert_output "exit=0"
	assert_no_agent_started
}

@test "DYNOSTAT_PROCESS_TYPES limits the agent to the listed process types" {
	run -0 dyno_shell web.1 ':' DYNOSTAT_PROCESS_TYPES="worker, clock"
	assert_output ""
	assert_no_agent_started
	run -0 dyno_shell worker.2 ':' DYNOSTAT_PROCESS_TYPES="worker, clock"
	assert_output ""
	wait_for_attempts 1
}

@test "DYNOSTAT_PROCESS_TYPES matches Fir dyno names, whose process type may contain dashes" {
	run -0 dyno_shell web-12a34b56d-e78f9 ':' DYNOSTAT_PROCESS_TYPES=my-worker
	assert_no_agent_started
	run -0 dyno_shell my-worker-5f6d7c8b9-x1y2z ':' DYNOSTAT_PROCESS_TYPES=my-worker
	wait_for_attempts 1
}

@test "the agent starts on a Fir web dyno by default" {
	run -0 dyno_shell web-12a34b56d-e78f9 ':'
	assert_output ""
	wait_for_attempts 1
}

@test "DYNOSTAT_PROCESS_TYPES=all starts the agent on one-off dynos too" {
	run -0 dyno_shell run.1 ':' DYNOSTAT_PROCESS_TYPES=all
	wait_for_attempts 1
}

@test "sourcing leaves variables, functions, options and hashed commands exactly as they were" {
	local script
	# Bash itself changes these when any file is sourced: the source arguments and line
	# numbers, the last argument, the last pipeline's status.
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	script='dump() {
		declare -p | grep -vE "^declare -[-a-zA-Z]+ (_|BASH_ARGC|BASH_ARGV|BASH_LINENO|PIPESTATUS)="
		declare -F; set -o; shopt -p; trap -p; umask; pwd; hash
	}
	set -u
	dump >"${DYNOSTAT_TEST_STATE_DIR}/../before"
	source .profile.d/dynostat.sh
	echo "exit=$?"
	dump >"${DYNOSTAT_TEST_STATE_DIR}/../after"'
	local dyno
	for dyno in web.1 run.1; do
		run -0 dyno_shell "${dyno}" "${script}" PYTHONPATH=/app/lib
		assert_output "exit=0"
		run -0 diff "${BATS_TEST_TMPDIR}/before" "${BATS_TEST_TMPDIR}/after"
		assert_output ""
		# The dump is not empty by mistake: it holds the caller's own settings.
		run -0 grep -cE -e '^declare -x PYTHONPATH="/app/lib"$' -e '^nounset[[:space:]]+on$' -e '^declare -f dump$' \
			"${BATS_TEST_TMPDIR}/after"
		assert_output "3"
	done
	wait_for_attempts 2
}

@test "the caller's set -e, set -u and pipefail survive and the script carries on" {
	local dyno
	for dyno in web.1 run.1 ""; do
		run -0 dyno_shell "${dyno}" 'set -euo pipefail; source .profile.d/dynostat.sh; echo "flags=$-"; shopt -qo pipefail && echo pipefail'
		assert_output - <<-EOF
			flags=ehuBc
			pipefail
		EOF
	done
}

@test "the agent is orphaned at once to the nearest reaper, in its own session, away from the shell's process group" {
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	run -0 "${SYSTEM_PYTHON}" "${HELPERS_DIR}/subreaper.py" "${STATE_DIR}" -- \
		env -i HOME="${APP}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" \
		bash --noprofile --norc -c 'source "${HOME}/.profile.d/dynostat.sh"'
	local report="${output}"
	field() { "${SYSTEM_PYTHON}" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "${report}" "$1"; }
	local agent agent_ppid agent_sid agent_pgid subreaper shell shell_sid shell_pgid
	agent="$(field agent)"
	agent_ppid="$(field agent_ppid_now)"
	agent_sid="$(field agent_sid)"
	agent_pgid="$(field agent_pgid)"
	subreaper="$(field subreaper)"
	shell="$(field shell)"
	shell_sid="$(field shell_sid)"
	shell_pgid="$(field shell_pgid)"
	# Reparented to the subreaper that ran the shell: its first parent, the launcher's
	# subshell, was gone at once, and the sourcing shell was never its parent.
	assert_equal "${agent_ppid}" "${subreaper}"
	refute [ "${agent_ppid}" = "${shell}" ]
	# A session of its own (setsid): the terminal's Ctrl+C cannot reach it.
	assert_equal "${agent_sid}" "${agent}"
	refute [ "${agent_sid}" = "${shell_sid}" ]
	refute [ "${agent_pgid}" = "${shell_pgid}" ]
}

@test "the agent gets /dev/null for stdin, the shell's stdout and stderr, and no other descriptor of the shell" {
	local log="${BATS_TEST_TMPDIR}/dyno.log"
	# The shell holds extra descriptors, like a CNB launcher's fd 3 or an app's open log.
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	env -i HOME="${APP}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" \
		DYNOSTAT_TEST_ANNOUNCE=1 bash --noprofile --norc -c 'source "${HOME}/.profile.d/dynostat.sh"' \
		3>"${BATS_TEST_TMPDIR}/fd3" 7>"${BATS_TEST_TMPDIR}/fd7" >"${log}" 2>&1
	run -0 agent_field descriptors
	assert_output "[0, 1, 2]"
	run -0 agent_field stdin
	assert_output '"/dev/null"'
	run -0 agent_field stdout
	assert_output "\"${log}\""
	local waited=0
	while ! grep -q 'agent stub started' "${log}" && ((waited < 100)); do
		sleep 0.05
		waited=$((waited + 1))
	done
	run -0 cat "${log}"
	assert_output "agent stub started"
}

@test "the app's Python settings never reach the agent's interpreter" {
	# A PYTHONPATH module that would break the agent if it were imported, and a PYTHONHOME
	# that would make the interpreter fail to start at all.
	mkdir -p "${BATS_TEST_TMPDIR}/app-lib"
	echo 'raise SystemExit("the app PYTHONPATH leaked into the agent")' >"${BATS_TEST_TMPDIR}/app-lib/json.py"
	run -0 dyno_shell web.1 ':' PYTHONPATH="${BATS_TEST_TMPDIR}/app-lib" PYTHONHOME=/nonexistent \
		PYTHONSTARTUP=/nonexistent/startup.py PYTHONUSERBASE=/nonexistent
	assert_output ""
	run -0 agent_field python_environment
	assert_output '["PYTHONNOUSERSITE", "PYTHONPATH", "PYTHONSAFEPATH"]'
	run -0 agent_field pythonpath
	assert_output "\"${APP}/.profile.d/../.dynostat/agent:${APP}/.profile.d/../.dynostat/vendor\""
	run -0 agent_field argv
	assert_output "[\"--lock\", \"${APP}/.profile.d/../.dynostat/run/agent.lock\"]"
	run -0 agent_field sys_path
	refute_output --partial "app-lib"
}
