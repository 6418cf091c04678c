#!/usr/bin/env bats
# The launcher (.profile.d/dynostat.sh and .dynostat/launcher.sh), sourced the way a dyno's
# login shell does. Most tests use a fake slug whose agent is a stub that takes the real lock
# and records how it started; the decision of where an agent runs is tested with the real
# agent behind the real launcher, on the table the agent's own tests use.

# shellcheck source=tests/buildpack/helpers/common.bash
source "${BATS_TEST_DIRNAME:?}/helpers/common.bash"

CASES="${REPO_DIR}/tests/cases/process_types.tsv"

setup() {
	APP="${BATS_TEST_TMPDIR}/app"
	STATE_DIR="${BATS_TEST_TMPDIR}/state"
	STARTED="${BATS_TEST_TMPDIR}/started"
	make_slug "${APP}" stub
	mkdir -p "${STATE_DIR}"
}

teardown() {
	stop_agents
	if [[ -n "${SHARED_DIR:-}" ]]; then
		rm -rf -- "${SHARED_DIR}"
	fi
}

# Stops every agent the test started (by the pids they recorded) and forgets them.
stop_agents() {
	local pid waited
	[[ -f "${STATE_DIR}/attempts" ]] || return 0
	while IFS= read -r pid; do
		kill "${pid}" 2>/dev/null || continue
		waited=0
		while ! process_exited "${pid}" && ((waited < 100)); do
			sleep 0.02
			waited=$((waited + 1))
		done
	done <"${STATE_DIR}/attempts"
	rm -f -- "${STATE_DIR}/attempts" "${STATE_DIR}"/agent.*.json
}

# Succeeds once PID has exited: gone, or a zombie waiting for its reaper (its locks are free
# all the same).
# Usage: process_exited PID
process_exited() {
	local pid="${1}"
	local stat
	stat="$(cat "/proc/${pid}/stat" 2>/dev/null || true)"
	[[ -z "${stat}" || "${stat##*) }" == Z* ]]
}

# Lays out a slug at APP_DIR as bin/compile does: .profile.d/dynostat.sh, and .dynostat/ with
# the launcher, the lock file, a python3 link and the agent: the real one, or the stub (with
# the real lock module beside it).
# Usage: make_slug APP_DIR real|stub
make_slug() {
	local app_dir="${1}"
	local agent="${2}"
	mkdir -p "${app_dir}/.profile.d" "${app_dir}/.dynostat/agent" "${app_dir}/.dynostat/bin" \
		"${app_dir}/.dynostat/run"
	cp "${REPO_DIR}/vendor/profile.d/dynostat.sh" "${app_dir}/.profile.d/dynostat.sh"
	cp "${REPO_DIR}/vendor/dynostat-launcher.sh" "${app_dir}/.dynostat/launcher.sh"
	if [[ "${agent}" == real ]]; then
		cp -R "${REPO_DIR}/agent/dynostat" "${app_dir}/.dynostat/agent/dynostat"
	else
		cp -R "${HELPERS_DIR}/agent_stub/dynostat" "${app_dir}/.dynostat/agent/dynostat"
		cp "${REPO_DIR}/agent/dynostat/lock.py" "${app_dir}/.dynostat/agent/dynostat/lock.py"
	fi
	cp "${REPO_DIR}/agent/dynostat-agent" "${app_dir}/.dynostat/agent/dynostat-agent"
	ln -s "${SYSTEM_PYTHON}" "${app_dir}/.dynostat/bin/python3"
	: >"${app_dir}/.dynostat/run/agent.lock"
}

# Runs SCRIPT in a login-like shell of a dyno named DYNO: a clean environment with HOME=/app
# stand-in, cwd HOME, and every .profile.d script sourced first, as the dyno's bash --login
# does. Extra NAME=VALUE arguments are added to the environment. The shell writes to a file,
# like a dyno's log stream, because an agent it starts keeps that stream open for its whole
# life; the file is printed once the shell is done. The shell runs under a reaper, as under
# a dyno's PID 1, which adds to STARTED the pid of every process the shell left behind.
# Usage: dyno_shell DYNO SCRIPT [NAME=VALUE ...]
dyno_shell() {
	local dyno="${1}"
	local script="${2}"
	local shell_log="${BATS_TEST_TMPDIR}/shell.log"
	local status=0
	shift 2
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	"${SYSTEM_PYTHON}" -I -S "${HELPERS_DIR}/reaper.py" started "${STARTED}" -- \
		env -i HOME="${APP}" PATH=/usr/local/bin:/usr/bin:/bin DYNO="${dyno}" \
		DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" "$@" \
		bash --noprofile --norc -c 'cd "${HOME}" && for f in "${HOME}"/.profile.d/*.sh; do source "${f}"; done
'"${script}" >"${shell_log}" 2>&1 || status="$?"
	cat "${shell_log}"
	return "${status}"
}

# A web dyno's shell (bash with FLAGS) in which the app's own .profile.d/00-app.sh has run
# first (it holds whatever state the test gives it), then every other .profile.d script, then
# the app's command. Extra NAME=VALUE arguments are added to the environment. Prints the
# shell's output and returns its status.
# Usage: app_shell FLAGS [NAME=VALUE ...]
app_shell() {
	local flags="${1}"
	local shell_log="${BATS_TEST_TMPDIR}/app-shell.log"
	local status=0
	local -a flag_words=()
	shift
	read -r -a flag_words <<<"${flags}"
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	env -i HOME="${APP}" PATH=/usr/local/bin:/usr/bin:/bin DYNO=web.1 PORT=5000 \
		DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" "$@" \
		bash "${flag_words[@]}" -c 'cd "${HOME}"
for f in "${HOME}"/.profile.d/*.sh; do . "${f}"; done
echo "the app command ran"' >"${shell_log}" 2>&1 || status="$?"
	cat "${shell_log}"
	return "${status}"
}

# Fails unless, in a shell in the state STATE (the app's .profile.d/00-app.sh) run as
# `bash FLAGS` with the extra environment, sourcing dynostat's file prints exactly what
# sourcing an empty file in its place prints, ends with the same status, lets the app's command
# run, and starts one agent.
# Usage: assert_sourcing_is_invisible FLAGS STATE [NAME=VALUE ...]
assert_sourcing_is_invisible() {
	local flags="${1}"
	local state="${2}"
	local real empty real_status=0 empty_status=0
	shift 2
	stop_agents
	printf '%s\n' "${state}" >"${APP}/.profile.d/00-app.sh"
	real="$(app_shell "${flags}" "$@")" || real_status="$?"
	wait_for_attempts 1
	agent_state_file >/dev/null || fail "no agent holds the lock"
	mv "${APP}/.profile.d/dynostat.sh" "${BATS_TEST_TMPDIR}/dynostat.sh"
	: >"${APP}/.profile.d/dynostat.sh"
	empty="$(app_shell "${flags}" "$@")" || empty_status="$?"
	mv "${BATS_TEST_TMPDIR}/dynostat.sh" "${APP}/.profile.d/dynostat.sh"
	[[ "${real}" == *"the app command ran"* ]] || fail "the app's command did not run: ${real}"
	assert_equal "${real}" "${empty}"
	assert_equal "${real_status}" "${empty_status}"
	# Still the one agent: nothing started another.
	wait_for_attempts 1
}

# Waits until COUNT agents have started (won or lost the lock), then fails unless exactly
# COUNT have.
# Usage: wait_for_attempts COUNT
wait_for_attempts() {
	local count="${1}"
	local started
	wait_for "${count} agents to start" attempts_at_least "${count}"
	started="$(wc -l <"${STATE_DIR}/attempts")"
	assert_equal "${started}" "${count}"
}

# Succeeds once at least COUNT agents have started.
# Usage: attempts_at_least COUNT
attempts_at_least() {
	local count="${1}"
	local started
	[[ -f "${STATE_DIR}/attempts" ]] || return 1
	started="$(wc -l <"${STATE_DIR}/attempts")"
	((started >= count))
}

# Waits for the winning agent's state file and prints its path.
agent_state_file() {
	local found
	wait_for "the agent's state file" compgen -G "${STATE_DIR}/agent.*.json" >/dev/null
	found="$(compgen -G "${STATE_DIR}/agent.*.json")"
	echo "${found%%$'\n'*}"
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

# Fails unless the test's dyno shells started no process at all. Nothing is left to wait for:
# each shell ran under a reaper, which had every process the shell's launch started, running
# or exited, by the time the shell exited.
assert_no_agent_started() {
	assert [ -f "${STARTED}" ]
	run -0 cat "${STARTED}"
	assert_output ""
	assert [ ! -e "${STATE_DIR}/attempts" ]
}

# Fails unless exactly one of the agents that started is still alive, and it is the one that
# holds the lock: every other one exits as soon as it finds the lock taken.
assert_one_agent_alive() {
	local winner pid
	run -0 find "${STATE_DIR}" -name 'agent.*.json'
	assert_equal "${#lines[@]}" 1
	winner="$(agent_field pid)"
	while IFS= read -r pid; do
		[[ "${pid}" == "${winner}" ]] && continue
		wait_for "agent ${pid}, which lost the lock, to exit" process_exited "${pid}"
	done <"${STATE_DIR}/attempts"
	refute process_exited "${winner}"
}

# A directory every user can reach (the test's own temporary directory is root's alone),
# holding a copy of the slug; removed by teardown.
make_shared_slug() {
	SHARED_DIR="$(mktemp -d /tmp/dynostat-launcher-XXXXXX)"
	chmod 0755 "${SHARED_DIR}"
	APP="${SHARED_DIR}/app"
	STATE_DIR="${SHARED_DIR}/state"
	make_slug "${APP}" stub
	mkdir -p "${STATE_DIR}"
	chmod 0777 "${STATE_DIR}"
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
	# The winner still holds the lock; every other start has exited.
	run -1 flock --nonblock "${APP}/.dynostat/run/agent.lock" true
	assert_one_agent_alive
}

@test "twenty concurrent sourcings start exactly one agent" {
	local round
	for ((round = 0; round < 20; round++)); do
		dyno_shell web.1 ':' >/dev/null &
	done
	wait
	wait_for_attempts 20
	assert_one_agent_alive
}

@test "no Python starts and nothing is printed on one-off, release and scheduler dynos" {
	local dyno
	for dyno in run.1 run.4242 release.1 scheduler.1234 run-12a34b56d-e78f9 run-4821; do
		run -0 dyno_shell "${dyno}" 'echo "exit=$?"'
		assert_output "exit=0"
	done
	assert_no_agent_started
}

@test "no Python starts when DYNOSTAT_DISABLE is set" {
	local value
	for value in true 1 TRUE yes On; do
		run -0 dyno_shell web.1 'echo "exit=$?"' DYNOSTAT_DISABLE="${value}"
		assert_output "exit=0"
	done
	assert_no_agent_started
}

@test "no Python starts when the dyno has no name, as in heroku ps:exec sessions" {
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

@test "no agent and no error when the launcher is missing from the slug" {
	rm "${APP}/.dynostat/launcher.sh"
	run -0 dyno_shell web.1 'set -eE; trap "echo ERR trap" ERR; echo "exit=$?"'
	assert_output "exit=0"
	assert_no_agent_started
}

@test "the agent starts on a Fir web dyno by default" {
	run -0 dyno_shell web-12a34b56d-e78f9 ':'
	assert_output ""
	wait_for_attempts 1
}

@test "with DYNOSTAT_PROCESS_TYPES set, the launcher leaves the decision to the agent" {
	run -0 dyno_shell run.1 ':' DYNOSTAT_PROCESS_TYPES=ALL
	assert_output ""
	wait_for_attempts 1
}

@test "the launcher and the real agent agree on every case of the shared table of where an agent runs" {
	local real_app="${BATS_TEST_TMPDIR}/real-app"
	local log="${BATS_TEST_TMPDIR}/dyno.log"
	local line number=0 checked=0 dyno types disable runs invalid var log_text
	local -a env_args vars
	make_slug "${real_app}" real
	while IFS= read -r line; do
		number=$((number + 1))
		[[ -z "${line}" || "${line}" == "#"* || "${line}" == DYNO$'\t'* ]] && continue
		IFS=$'\t' read -r dyno types disable runs invalid <<<"${line}"
		env_args=()
		[[ "${dyno}" == "(unset)" ]] || env_args+=("DYNO=${dyno/#(empty)/}")
		[[ "${types}" == "(unset)" ]] || env_args+=("DYNOSTAT_PROCESS_TYPES=${types/#(empty)/}")
		[[ "${disable}" == "(unset)" ]] || env_args+=("DYNOSTAT_DISABLE=${disable/#(empty)/}")
		# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
		run -0 "${SYSTEM_PYTHON}" -I -S "${HELPERS_DIR}/reaper.py" settle "${log}" -- \
			env -i HOME="${real_app}" PATH=/usr/bin:/bin "${env_args[@]}" \
			bash -c 'cd "${HOME}" && for f in .profile.d/*.sh; do . "${f}"; done'
		log_text="$(<"${log}")"
		if [[ "${runs}" == yes ]]; then
			[[ "${output}" == "running=1" ]] || fail "line ${number} (${line}): ${output}, not one agent"
			grep -q 'sample#dynostat\.tasks=' "${log}" || fail "line ${number} (${line}): no samples"
		else
			[[ "${output}" == "running=0" ]] || fail "line ${number} (${line}): ${output}, not none"
			[[ -z "${log_text}" ]] || fail "line ${number} (${line}): printed ${log_text}"
		fi
		run grep -c 'at=error' "${log}"
		if [[ "${invalid}" == "-" ]]; then
			[[ "${output}" == 0 ]] || fail "line ${number} (${line}): ${log_text}"
		else
			IFS=, read -r -a vars <<<"${invalid}"
			[[ "${output}" == "${#vars[@]}" ]] || fail "line ${number} (${line}): ${log_text}"
			for var in "${vars[@]}"; do
				run grep -c "^source=[^ ]* dyno=[^ ]* at=error event=config_invalid var=${var} " "${log}"
				[[ "${output}" == 1 ]] || fail "line ${number} (${line}): ${var} named ${output} times"
			done
		fi
		checked=$((checked + 1))
	done <"${CASES}"
	# Not a formality: a table that lost its rows would pass.
	((checked >= 50)) || fail "only ${checked} cases in ${CASES}"
}

@test "in POSIX mode from the start (POSIXLY_CORRECT in the config) the app's command runs and one agent starts" {
	assert_sourcing_is_invisible "" ":" POSIXLY_CORRECT=1
}

@test "in a bash --posix login shell the app's command runs and one agent starts" {
	assert_sourcing_is_invisible "--posix --login" ":"
}

@test "after an earlier .profile.d script turned on POSIX mode the app's command runs and one agent starts" {
	assert_sourcing_is_invisible "" "set -o posix"
	run -0 dyno_shell web.1 'shopt -qo posix && echo "still posix"' POSIXLY_CORRECT=1
	assert_output "still posix"
}

@test "readonly variables named like anything the launcher uses change nothing" {
	local names="types fd home mode python entry dyno process_type rest first second digits alnum"
	names+=" setsid candidate lock_file profile_dir python_path suffix without_last flags"
	names+=" DYNOSTAT_NONE IFS"
	# shellcheck disable=SC2016 # expanded by the app's shell, not by this one
	assert_sourcing_is_invisible "" 'for name in '"${names}"'; do readonly "${name}=app"; done
readonly BASH_XTRACEFD PS4'
	assert_sourcing_is_invisible "--posix" "readonly ${names// /=app }=app"
}

@test "xtrace prints nothing of the launcher, to stderr or to BASH_XTRACEFD" {
	assert_sourcing_is_invisible "" "set -x"
	assert_sourcing_is_invisible "" "exec 7>&2; BASH_XTRACEFD=7; set -x"
	assert_sourcing_is_invisible "-x" ":"
	assert_sourcing_is_invisible "" "set -x; export SHELLOPTS"
}

@test "set -euo pipefail, -f, -C, -a, -k and -b change nothing" {
	assert_sourcing_is_invisible "" "set -euo pipefail -f -C -a -k -b"
	assert_sourcing_is_invisible "-euo pipefail" "umask 0777"
}

@test "traps on ERR, DEBUG, RETURN and EXIT, inherited into functions and subshells, change nothing" {
	# shellcheck disable=SC2016 # expanded by the app's shell, not by this one
	assert_sourcing_is_invisible "" 'set -eET
trap "echo ERR trap \$? >&2" ERR
trap "echo DEBUG trap: \$BASH_COMMAND" DEBUG
trap "echo RETURN trap" RETURN
trap "echo EXIT trap" EXIT'
}

@test "aliases named like the commands, keywords and builtins a script would use change nothing" {
	local state='shopt -s expand_aliases failglob nullglob extglob globstar dotglob nocaseglob nocasematch lastpipe'
	local name
	for name in bash exec setsid cd command unset local source '[' '[[' printf if case '{' 'then' \
		env python3 true false test exit return builtin declare eval shopt set trap read; do
		state+=$'\n'"alias '${name}'='echo alias ${name} >&2;'"
	done
	assert_sourcing_is_invisible "" "${state}"
}

@test "functions named like commands and builtins, exported or not, change nothing" {
	local state='' name
	for name in bash exec setsid cd command unset local source '[' printf env python3 python true \
		false test exit return builtin declare eval shopt set trap read kill wait sleep type \
		hash mkdir flock :; do
		state+="function ${name} { echo \"function ${name} called\" >&2; return 1; }"$'\n'
		state+="export -f ${name} 2>/dev/null"$'\n'
	done
	assert_sourcing_is_invisible "" "${state}"
}

@test "an odd IFS, CDPATH, GLOBIGNORE, TMOUT, BASH_ENV and a PATH of impostors change nothing" {
	local impostors="${BATS_TEST_TMPDIR}/impostors" name
	mkdir -p "${impostors}"
	for name in setsid bash env python3 python sh flock cat; do
		printf '#!/bin/sh\necho "impostor %s" >&2\nexit 1\n' "${name}" >"${impostors}/${name}"
		chmod +x "${impostors}/${name}"
	done
	printf 'echo "BASH_ENV ran" >&2\nexit 3\n' >"${BATS_TEST_TMPDIR}/bash_env.sh"
	assert_sourcing_is_invisible "" "IFS='/.-_ ae'
CDPATH=/tmp:/
GLOBIGNORE='*'
export CDPATH GLOBIGNORE TMOUT=1 BASH_ENV='${BATS_TEST_TMPDIR}/bash_env.sh' ENV='${BATS_TEST_TMPDIR}/bash_env.sh'
PATH='${impostors}':\"\${PATH}\""
}

@test "a shell without stdin, or sourcing the file from another directory, still starts one agent" {
	assert_sourcing_is_invisible "" "exec 0<&-"
	stop_agents
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	run -0 dyno_shell "" 'cd .profile.d && DYNO=web.1 && export DYNO && . ./dynostat.sh && cd /tmp && . "${HOME}/.profile.d/dynostat.sh" && echo sourced'
	assert_output "sourced"
	wait_for_attempts 2
	assert_one_agent_alive
}

@test "sourced by a POSIX sh that is not bash, under set -eu, the file returns 0 and prints nothing" {
	# shellcheck disable=SC2016 # expanded by the shell under test, not by this one
	run -0 env -i HOME="${APP}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" \
		/bin/sh -c 'set -eu; cd "${HOME}"; . ./.profile.d/dynostat.sh; echo "status=$?"'
	assert_output "status=0"
}

@test "sourcing leaves variables, functions, options and hashed commands exactly as they were" {
	local script
	# Bash itself changes these when any file is sourced: the source arguments and line
	# numbers, the last argument, the last pipeline's status.
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	script='dump() {
		declare -p | grep -vE "^declare -[-a-zA-Z]+ (_|BASH_ARGC|BASH_ARGV|BASH_LINENO|PIPESTATUS)="
		declare -F; set -o; shopt -p; trap -p; umask; pwd; hash
		descriptors=(/proc/$$/fd/*); echo "open descriptors: ${descriptors[*]##*/}"; unset descriptors
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
			-e "^open descriptors: 0 1 .*2" "${BATS_TEST_TMPDIR}/after"
		assert_output "4"
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

@test "in a read-only slug, as a user who may not write the lock file, concurrent sourcings start exactly one agent" {
	make_shared_slug
	local nobody_uid nobody_gid
	nobody_uid="$(id -u nobody)"
	nobody_gid="$(id -g nobody)"
	# A real read-only bind mount, in a mount namespace of its own that ends with its last
	# process: nothing to clean up on this machine. The dyno's log is a file: the agent keeps
	# it open for its whole life.
	# shellcheck disable=SC2016 # expanded by the namespace's shell, not by this one
	run -0 unshare --mount --propagation private -- bash -c '
		mount --bind -o ro "$1" "$1" || exit 1
		for round in 1 2 3 4 5 6 7 8; do
			setpriv --reuid="$2" --regid="$3" --clear-groups -- env -i HOME="$1" PATH=/usr/bin:/bin \
				DYNO=web.1 DYNOSTAT_TEST_STATE_DIR="$4" bash -c "cd && . .profile.d/dynostat.sh" \
				>>"$5" 2>&1 &
		done
		wait
		touch "$1/written" 2>/dev/null && echo "the slug is writable"
		echo done' bash "${APP}" "${nobody_uid}" "${nobody_gid}" "${STATE_DIR}" "${SHARED_DIR}/dyno.log"
	assert_output "done"
	wait_for_attempts 8
	run -0 cat "${SHARED_DIR}/dyno.log"
	assert_output ""
	assert_one_agent_alive
	# flock on a read-only descriptor: the file still holds the lock.
	run -0 agent_field lock_file_held
	assert_output "true"
}

@test "with a lock file no one but its owner may open, concurrent sourcings as another user start exactly one agent" {
	make_shared_slug
	chmod 0000 "${APP}/.dynostat/run/agent.lock"
	local round nobody_uid nobody_gid
	nobody_uid="$(id -u nobody)"
	nobody_gid="$(id -g nobody)"
	for ((round = 0; round < 8; round++)); do
		setpriv --reuid="${nobody_uid}" --regid="${nobody_gid}" --clear-groups -- \
			env -i HOME="${APP}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_TEST_STATE_DIR="${STATE_DIR}" \
			bash -c 'cd && . .profile.d/dynostat.sh' &
	done
	wait
	wait_for_attempts 8
	assert_one_agent_alive
	run -0 agent_field lock_file_held
	assert_output "false"
}

@test "the agent is orphaned at once to the nearest reaper, in its own session, away from the shell's process group" {
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	run -0 "${SYSTEM_PYTHON}" -I -S "${HELPERS_DIR}/reaper.py" placement "${STATE_DIR}" -- \
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
	# process, was gone at once, and the sourcing shell was never its parent.
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
		3>"${BATS_TEST_TMPDIR}/fd3" 4>"${BATS_TEST_TMPDIR}/fd4" 7>"${BATS_TEST_TMPDIR}/fd7" \
		12>"${BATS_TEST_TMPDIR}/fd12" >"${log}" 2>"${BATS_TEST_TMPDIR}/stderr.log"
	run -0 agent_field descriptors
	assert_output "[0, 1, 2]"
	run -0 agent_field stdin
	assert_output '"/dev/null"'
	run -0 agent_field stdout
	assert_output "\"${log}\""
	run -0 agent_field stderr
	assert_output "\"${BATS_TEST_TMPDIR}/stderr.log\""
	wait_for "the agent's first line in the log" grep -q 'agent stub started' "${log}"
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
	assert_output "\"${APP}/.dynostat/agent:${APP}/.dynostat/vendor\""
	run -0 agent_field argv
	assert_output "[\"--lock\", \"${APP}/.dynostat/run/agent.lock\"]"
	run -0 agent_field sys_path
	refute_output --partial "app-lib"
}
