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
	local pid
	for pid in ${AGENT_PIDS:-}; do
		kill "${pid}" 2>/dev/null || true
	done
}

# Prints the pids of processes that have FILE open (the agent holds its lock file open).
# Usage: holders_of FILE
holders_of() {
	local file="${1}"
	local fd target pid holders=" "
	for fd in /proc/[0-9]*/fd/*; do
		target="$(readlink "${fd}" 2>/dev/null || true)"
		[[ "${target}" == "${file}" ]] || continue
		pid="${fd#/proc/}"
		pid="${pid%%/*}"
		[[ "${holders}" == *" ${pid} "* ]] || holders+="${pid} "
	done
	echo "${holders# }"
}

@test "a dyno booted from the built slug runs one real agent that logs its lines as web.1" {
	mkdir -p "${BUILD_DIR}/.heroku/python/bin"
	printf '#!/bin/sh\nexec %s "$@"\n' "${SYSTEM_PYTHON}" >"${BUILD_DIR}/.heroku/python/bin/python3"
	chmod +x "${BUILD_DIR}/.heroku/python/bin/python3"
	run -0 compile_app heroku-24
	# The slug is now what a dyno gets as /app.
	local app="${BUILD_DIR}" log="${BATS_TEST_TMPDIR}/dyno.log"
	# shellcheck disable=SC2016 # expanded by the dyno's shell, not by this one
	env -i HOME="${app}" PATH=/usr/bin:/bin DYNO=web.1 DYNOSTAT_INTERVAL=1 \
		bash --noprofile --norc -c 'cd "${HOME}" && for f in .profile.d/*.sh; do source "${f}"; done; echo "app started"' \
		>"${log}" 2>&1
	local lock
	lock="$(realpath "${app}/.dynostat/run/agent.lock")"
	local waited=0 agent_lines=0
	while ((waited < 200 && agent_lines < 8)); do
		sleep 0.05
		waited=$((waited + 1))
		agent_lines="$(grep -c '^source=web\.1 ' "${log}" || true)"
	done
	AGENT_PIDS="$(holders_of "${lock}")"
	run -0 wc -w <<<"${AGENT_PIDS}"
	assert_output "1"
	run -0 cat "${log}"
	assert_line --index 0 "app started"
	assert_line --regexp '^source=web\.1 dyno=[^ ]+ sample#dynostat\.load_avg_1m=[0-9]+\.[0-9]{2} '
	assert_line --regexp '^source=web\.1 dyno=[^ ]+ sample#dynostat\.tasks=[0-9]+ '
	refute_output --partial "Traceback"
	refute_output --partial "at=error"
}
