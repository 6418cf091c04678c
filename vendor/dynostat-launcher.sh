#!/usr/bin/env bash
# Usage: bash -p .dynostat/launcher.sh profile.d|exec.d 3>AGENT_STDOUT 4>AGENT_STDERR
#
# Starts the dyno's one dynostat agent, detached from whoever starts it, and exits 0 at once.
# Run, never sourced, by both generations' entry points: the classic buildpack's
# .profile.d/dynostat.sh (from the dyno's login shell) and the Cloud Native Buildpack's exec.d
# program. The argument says which, and so where the lock that keeps one agent per dyno lives:
# in the slug (profile.d) or in the dyno's TMPDIR (exec.d, whose layers the dyno cannot write).
#
# It runs in a process of its own, as `bash -p`, so nothing of the app's shell can reach it:
# -p ignores exported functions, BASH_ENV, SHELLOPTS, BASHOPTS, CDPATH and GLOBIGNORE, and a
# fresh shell has none of the caller's variables, aliases, traps or options. What a parent can
# still pass in is POSIX mode (POSIXLY_CORRECT), so this file is valid bash in POSIX mode too.
# Its own stdout and stderr are /dev/null: it prints nothing, ever. The agent's streams arrive
# on fds 3 and 4 and become the agent's stdout and stderr.
#
# The agent decides whether this dyno gets one (dynostat.cli.stays_out): it exits at once,
# silently, where it must not run. Starting Python only to hear that costs a few milliseconds
# of CPU, so this program skips it only where the agent's answer is known for certain to be
# "stay out" (the cases are tested against the agent in tests/cases/process_types.tsv).
#
# No `set -e`: every path must end in exit 0, and a failed test below is an answer, not an error.

# Nothing this program does may show: whatever it was given as stdout and stderr, it keeps
# /dev/null (the agent gets fds 3 and 4).
exec 1>/dev/null 2>&1
# A failed exec must fall through to the next line, in POSIX mode too, instead of ending here.
shopt -s execfail

# The agent's answer for DYNO and DYNOSTAT_PROCESS_TYPES, where it is certain: 0 when the agent
# would stay out of this dyno, 1 when it might run (then only the agent can tell).
# Usage: dynostat_surely_stays_out
dynostat_surely_stays_out() {
	local dyno="${DYNO:-}"
	local process_type rest first second
	local digits="0123456789"
	local alnum="${digits}ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	# The values dynostat.config reads as true, in any case; it accepts more (" true "), and
	# then the agent says so itself.
	case "${DYNOSTAT_DISABLE:-}" in
	1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss] | [Oo][Nn]) return 0 ;;
	*) ;;
	esac
	# No dyno name: not a dyno, or a `heroku ps:exec` session.
	[[ -n "${dyno}" ]] || return 0
	# With a list of process types, or a name of another shape, the agent decides.
	[[ -z "${DYNOSTAT_PROCESS_TYPES:-}" ]] || return 1
	case "${dyno}" in
	run.* | release.* | scheduler.* | run-* | release-* | scheduler-*) ;;
	*) return 1 ;;
	esac
	# Exactly the names dynostat.identity.process_type gives run, release or scheduler:
	# <type>.<digits> (classic) and <type>-<id> or <type>-<id>-<id> (Fir), ids alphanumeric.
	process_type="${dyno%%[.-]*}"
	rest="${dyno#"${process_type}"}"
	if [[ "${rest}" == .* ]]; then
		rest="${rest#.}"
		[[ -n "${rest}" && "${rest}" != *[!${digits}]* ]] && return 0
		return 1
	fi
	rest="${rest#-}"
	first="${rest%%-*}"
	second="${rest#"${first}"}"
	second="${second#-}"
	[[ -n "${first}" && "${first}" != *[!${alnum}]* ]] || return 1
	[[ "${rest}" == "${first}" ]] && return 0
	[[ -n "${second}" && "${second}" != *[!${alnum}]* ]] && return 0
	return 1
}

# Usage: dynostat_launch profile.d|exec.d
dynostat_launch() {
	local mode="${1:-}"
	local home lock_file python entry setsid fd candidate

	home="${BASH_SOURCE[0]%/*}"
	[[ "${home}" != "${BASH_SOURCE[0]}" ]] || home="."
	cd -P -- "${home}" 2>/dev/null || return 0
	home="${PWD}"
	case "${mode}" in
	profile.d) lock_file="${home}/run/agent.lock" ;;
	exec.d)
		lock_file="${TMPDIR:-/tmp}/dynostat.lock"
		[[ "${lock_file}" == /* ]] || lock_file="/tmp/dynostat.lock"
		;;
	*) return 0 ;;
	esac
	python="${home}/bin/python3"
	entry="${home}/agent/dynostat-agent"
	[[ -x "${python}" && -r "${entry}" ]] || return 0
	if dynostat_surely_stays_out; then
		return 0
	fi

	# Only the agent's own streams go to it: an inherited pipe (the CNB launcher's fd 3, a
	# parent's log pipe) held open by a long-lived process would keep its reader waiting.
	for fd in /proc/self/fd/*; do
		fd="${fd##*/}"
		if [[ -n "${fd}" && "${fd}" != *[!0123456789]* ]] && ((fd > 4)); then
			exec {fd}>&-
		fi
	done
	# The app's Python settings (PYTHONHOME, PYTHONPATH, PYTHONSTARTUP, ...) belong to the
	# app's interpreter and could point ours at a foreign stdlib or shadow its modules.
	unset -v "${!PYTHON@}"
	export PYTHONPATH="${home}/agent:${home}/vendor" PYTHONNOUSERSITE=1 PYTHONSAFEPATH=1
	cd / || return 0

	# setsid forks once more and exits: the agent is orphaned at once and reparented to the
	# dyno's PID 1 (so an app that never reaps its children cannot make it a zombie), leads a
	# new session with no terminal (Ctrl+C in `heroku run bash` cannot reach it), and the
	# caller waits only for this process. The system's setsid first: the app's PATH may hold
	# programs of its own.
	for candidate in /usr/bin/setsid /bin/setsid; do
		[[ -x "${candidate}" ]] && setsid="${candidate}" && break
	done
	[[ -n "${setsid:-}" ]] || setsid="$(command -v setsid)" || setsid=""
	if [[ -n "${setsid}" ]]; then
		exec "${setsid}" -f "${python}" -S "${entry}" --lock "${lock_file}" \
			</dev/null 1>&3 2>&4 3>&- 4>&-
	fi
	"${python}" -S "${entry}" --lock "${lock_file}" </dev/null 1>&3 2>&4 3>&- 4>&- &
	return 0
}

# One line: bash has read it whole before the fd loop above closes the script's own fd.
dynostat_launch "$@"; exit 0
