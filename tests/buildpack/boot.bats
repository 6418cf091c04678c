#!/usr/bin/env bats
# From build to boot: bin/compile builds a slug, and a dyno's login shell sourcing its
# .profile.d starts the real agent, whose lines reach the dyno's log stream.

# shellcheck source=tests/buildpack/helpers/common.bash
source "${BATS_TEST_DIRNAME:?}/helpers/common.bash"

setup() {
	make_world
	prepare_wheels
	PIP_FIND_LINKS="${WHEELS_DIR}"
}

teardown() {
	# The agent leaves the dyno's shell behind at once; it is found by the lock it holds.
	if [[ -f "${BUILD_DIR}/.dynostat/run/agent.lock" ]]; then
		holders_of "${BUILD_DIR}/.dynostat/run/agent.lock" >>"${BATS_TEST_TMPDIR}/pids"
	fi
	kill_recorded_processes
}

# Prints, one a line, the pids of the processes that have FILE open (the agent holds its
# lock file open).
# Usage: holders_of FILE
holders_of() {
	local file fd target holders=""
	file="$(realpath "${1}")"
	for fd in /proc/[0-9]*/fd/*; do
		target="$(readlink "${fd}" 2>/dev/null || true)"
		[[ "${target}" == "${file}" ]] || continue
		fd="${fd#/proc/}"
		holders+="${fd%%/*}"$'\n'
	done
	[[ -z "${holders}" ]] || sort -u <<<"${holders%$'\n'}"
}

# Returns 0 once FILE has at least COUNT lines that match PATTERN.
# Usage: has_lines COUNT PATTERN FILE
has_lines() {
	local count="${1}"
	local pattern="${2}"
	local file="${3}"
	local found
	found="$(grep -c -e "${pattern}" -- "${file}")" || true
	((found >= count))
}

@test "a dyno booted from the built slug runs one real agent that logs its lines as web.1" {
	make_app_python
	run -0 compile_app heroku-24
	# The slug is now what a dyno gets as /app.
	local app="${BUILD_DIR}" log="${BATS_TEST_TMPDIR}/dyno.log"
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	env -i HOME="${app}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_INTERVAL=1 \
		bash --noprofile --norc -c 'cd "${HOME}" && for f in .profile.d/*.sh; do source "${f}"; done; echo "app started"' \
		>"${log}" 2>&1
	wait_for "two samples in the dyno's log" has_lines 2 '^source=web\.1 .* sample#dynostat\.tasks=' "${log}"
	run -0 holders_of "${app}/.dynostat/run/agent.lock"
	assert_equal "${#lines[@]}" 1
	run -0 cat "${log}"
	assert_line --index 0 "app started"
	assert_line --regexp '^source=web\.1 dyno=[^ ]+ sample#dynostat\.load_avg_1m=[0-9]+\.[0-9]{2} '
	assert_line --regexp '^source=web\.1 dyno=[^ ]+ sample#dynostat\.tasks=[0-9]+ '
	refute_output --partial "Traceback"
	refute_output --partial "at=error"
}
