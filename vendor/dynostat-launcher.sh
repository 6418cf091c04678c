# shellcheck shell=bash
# Starts the dyno's one dynostat agent, detached from whoever starts it. Shared by the classic
# buildpack's .profile.d/dynostat.sh (sourced by the dyno's login shell) and the Cloud Native
# Buildpack's exec.d program.
#
# It is sourced into the app's own shell, so: only functions and local variables (the caller
# unsets the functions), `return` and never `exit`, no failing command outside a condition
# (the caller may run under `set -e` or `set -u`), no command run in the caller's shell other
# than builtins, and nothing printed. Everything that changes state (environment, options,
# working directory, open files) happens in a subshell that becomes the agent.

# Starts `PYTHON -S <first dir of PYTHON_PATH>/dynostat-agent --lock LOCK_FILE` detached, unless
# this dyno should not run one. Without site imports and runpy (`-m`), the agent holds about
# 5 MB less memory: .pth files and sitecustomize load whatever the image has.
# PYTHON_PATH is the colon-separated list of directories the agent imports from (the one
# holding the dynostat package first). The agent takes the lock or exits at once, so calling
# this again (`heroku ps:exec`, a nested login shell) never starts a second agent.
# Usage: dynostat::launch PYTHON_PATH PYTHON LOCK_FILE
dynostat::launch() {
	local python_path="${1:-}"
	local python="${2:-}"
	local lock_file="${3:-}"
	local dyno="${DYNO:-}"
	local entry="${python_path%%:*}/dynostat-agent"
	local process_type suffix without_last types fd

	case "${DYNOSTAT_DISABLE:-}" in
	1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss] | [Oo][Nn]) return 0 ;;
	*) ;;
	esac
	# No dyno name: not a dyno, or a `heroku ps:exec` session, whose dyno already has its agent.
	[[ -n "${dyno}" && -n "${python_path}" && -n "${lock_file}" && -x "${python}" ]] || return 0
	[[ -r "${entry}" ]] || return 0

	# Classic names are <type>.<number> (web.1, run.4242); Fir names are
	# <type>-<hash>-<suffix> (web-12a34b56d-e78f9), where <type> may itself contain '-'.
	suffix="${dyno##*.}"
	without_last="${dyno%-*}"
	if [[ "${dyno}" == *.* && -n "${suffix}" && "${suffix}" != *[!0-9]* ]]; then
		process_type="${dyno%.*}"
	elif [[ "${without_last}" != "${dyno}" && "${without_last%-*}" != "${without_last}" ]]; then
		process_type="${without_last%-*}"
	else
		process_type="${dyno}"
	fi

	types="${DYNOSTAT_PROCESS_TYPES:-}"
	types="${types//[[:space:]]/}"
	if [[ -z "${types}" ]]; then
		# One-off, release-phase and scheduler dynos are short-lived and their output is often
		# parsed by scripts: no agent there unless asked for.
		case "${process_type}" in
		run | release | scheduler) return 0 ;;
		*) ;;
		esac
	elif [[ "${types}" != "all" && ",${types}," != *",${process_type},"* ]]; then
		return 0
	fi

	# The subshell forks once and execs setsid, which forks again and exits: the agent is
	# orphaned at once and reparented to the dyno's PID 1 (so an app that never reaps its
	# children cannot make it a zombie), leads a new session with no terminal (Ctrl+C in
	# `heroku run bash` cannot reach it), and the caller waits only for that first fork.
	(
		set +euf
		# Only the standard streams go to the agent: an inherited pipe (the CNB launcher's fd 3,
		# a parent's log pipe) held open by a long-lived process would keep its reader waiting.
		for fd in /proc/self/fd/*; do
			fd="${fd##*/}"
			if [[ "${fd}" != *[!0-9]* ]] && ((fd > 2)); then
				exec {fd}>&-
			fi
		done 2>/dev/null
		# The app's Python settings (PYTHONHOME, PYTHONPATH, PYTHONSTARTUP, ...) belong to the
		# app's interpreter and could point ours at a foreign stdlib or shadow its modules.
		unset -v "${!PYTHON@}"
		export PYTHONPATH="${python_path}" PYTHONNOUSERSITE=1 PYTHONSAFEPATH=1
		cd / || :
		if command -v setsid >/dev/null; then
			exec setsid -f "${python}" -S "${entry}" --lock "${lock_file}" </dev/null
		fi
		"${python}" -S "${entry}" --lock "${lock_file}" </dev/null &
	) || :
	return 0
}
