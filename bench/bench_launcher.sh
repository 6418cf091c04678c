#!/usr/bin/env bash
# Usage: bash bench/bench_launcher.sh [ROUNDS]
# What the launcher adds to a dyno's boot: the wall time of sourcing .profile.d/dynostat.sh in
# the login shell, on a web dyno (starts an agent), on a web dyno whose shell is in POSIX mode,
# and on a one-off dyno (starts none), beside sourcing an empty file. Sourcing runs the
# launcher in a child `bash -p`, which starts the agent through setsid and exits; the shell
# waits for that child only. Prints the median and the slowest round in milliseconds. The
# agent here is a module that exits at once: the launcher never waits for the agent, so what
# the agent does cannot change the number.

set -euo pipefail

ROUNDS="${1:-100}"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK_DIR="$(mktemp -d)"
trap 'rm -rf -- "${WORK_DIR}"' EXIT

APP="${WORK_DIR}/app"
mkdir -p "${APP}/.profile.d" "${APP}/.dynostat/agent/dynostat" "${APP}/.dynostat/bin" "${APP}/.dynostat/run"
cp "${REPO_DIR}/vendor/profile.d/dynostat.sh" "${APP}/.profile.d/dynostat.sh"
cp "${REPO_DIR}/vendor/dynostat-launcher.sh" "${APP}/.dynostat/launcher.sh"
: >"${APP}/.dynostat/agent/dynostat/__init__.py"
: >"${APP}/.dynostat/agent/dynostat/__main__.py"
: >"${APP}/.dynostat/agent/dynostat-agent"
ln -s /usr/bin/python3 "${APP}/.dynostat/bin/python3"
: >"${WORK_DIR}/empty.sh"

# Prints a row: LABEL, then the median and slowest wall time in ms of ROUNDS sourcings of
# FILE in one login-like shell of dyno DYNO, with the extra NAME=VALUE environment.
# Usage: bench::row LABEL DYNO FILE [NAME=VALUE ...]
bench::row() {
	local label="${1}"
	local dyno="${2}"
	local file="${3}"
	shift 3
	# shellcheck disable=SC2016 # expanded by the measured shell, not by this one
	env -i HOME="${APP}" PATH=/usr/bin:/bin DYNO="${dyno}" ROUNDS="${ROUNDS}" FILE="${file}" "$@" \
		bash --noprofile --norc -c '
			cd "${HOME}"
			for ((round = 0; round < ROUNDS; round++)); do
				start="${EPOCHREALTIME/./}"
				source "${FILE}"
				end="${EPOCHREALTIME/./}"
				echo "$((end - start))"
				# A dyno sources the launcher once, on a quiet machine: let the agent the last
				# round started finish before measuring the next.
				sleep 0.05
			done' >"${WORK_DIR}/times"
	local sorted
	sorted="$(sort -n "${WORK_DIR}/times")"
	mapfile -t micros <<<"${sorted}"
	local median="${micros[$((${#micros[@]} / 2))]}"
	local slowest="${micros[-1]}"
	printf '%-38s %6d.%03d %6d.%03d\n' "${label}" $((median / 1000)) $((median % 1000)) \
		$((slowest / 1000)) $((slowest % 1000))
}

printf '%-38s %10s %10s\n' "sourced file (${ROUNDS} rounds)" "median ms" "max ms"
bench::row "empty file (baseline)" web.1 "${WORK_DIR}/empty.sh"
bench::row "launcher, web.1 (starts the agent)" web.1 "${APP}/.profile.d/dynostat.sh"
bench::row "launcher, web.1, POSIX-mode shell" web.1 "${APP}/.profile.d/dynostat.sh" POSIXLY_CORRECT=1
bench::row "launcher, run.1 (starts nothing)" run.1 "${APP}/.profile.d/dynostat.sh"
