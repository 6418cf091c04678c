# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the .bats files that source this
# Shared by the buildpack's bats files: a throwaway world per test (build, cache and env dirs,
# a fake HOME and TMPDIR that must stay empty), the build run as the build system runs it, a
# local HTTP server (serve.py), and cleanup of every process a test starts.
# standalone_archive.py, beside this file, builds the stand-in CPython archive.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert


REPO_DIR="$(cd "${BATS_TEST_DIRNAME:?}/../.." && pwd)"
HELPERS_DIR="${BATS_TEST_DIRNAME:?}/helpers"
# Debian's interpreter: readable by every user, with pip, and the one CI installs.
SYSTEM_PYTHON=/usr/bin/python3

# Gives the test fresh BUILD_DIR, CACHE_DIR, ENV_DIR, and a HOME and TMPDIR that a build must
# leave untouched. PATH gets a directory whose python3 is the system one, so which pip the
# build can fall back on does not depend on the machine's PATH.
make_world() {
	WORLD="${BATS_TEST_TMPDIR:?}/world"
	BUILD_DIR="${WORLD}/build"
	CACHE_DIR="${WORLD}/cache"
	ENV_DIR="${WORLD}/env"
	FAKE_HOME="${WORLD}/home"
	FAKE_TMPDIR="${WORLD}/tmp"
	TOOLS_DIR="${WORLD}/tools"
	mkdir -p "${BUILD_DIR}" "${CACHE_DIR}" "${ENV_DIR}" "${FAKE_HOME}" "${FAKE_TMPDIR}" "${TOOLS_DIR}"
	ln -s "${SYSTEM_PYTHON}" "${TOOLS_DIR}/python3"
	BUILD_PATH="${TOOLS_DIR}:/usr/local/bin:/usr/bin:/bin"
	# What compile_app runs the build inside; hide_system_pip sets it.
	BUILD_WRAPPER=()
	SYSTEM_PYTHON_VERSION="$("${SYSTEM_PYTHON}" -c 'import platform; print(platform.python_version())')"
	SYSTEM_PYTHON_MINOR="${SYSTEM_PYTHON_VERSION%.*}"
}

# Runs bin/compile the way the build system does: only the variables a classic build has,
# plus the pip settings that point pip at the local wheel server (PIP_FIND_LINKS). On
# heroku-22 the build takes this machine's /usr/bin/python3 for the run image's.
# Usage: compile_app STACK
compile_app() {
	local stack="${1}"
	"${BUILD_WRAPPER[@]}" env -i PATH="${BUILD_PATH}" HOME="${FAKE_HOME}" TMPDIR="${FAKE_TMPDIR}" \
		STACK="${stack}" PIP_FIND_LINKS="${PIP_FIND_LINKS:-}" PIP_NO_INDEX=1 \
		bash "${REPO_DIR}/bin/compile" "${BUILD_DIR}" "${CACHE_DIR}" "${ENV_DIR}"
}

# Makes compile_app build where /usr/bin/python3 has no pip, as on heroku-22's run image: in a
# mount namespace of the build's own, an empty directory is mounted over pip's package.
hide_system_pip() {
	local pip_package
	pip_package="$("${SYSTEM_PYTHON}" -I -c 'import os, pip; print(os.path.dirname(pip.__file__))')"
	mkdir -p "${WORLD}/no-pip"
	# shellcheck disable=SC2016 # expanded by the namespace's shell, not by this one
	BUILD_WRAPPER=(unshare --mount --map-root-user -- sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
		sh "${WORLD}/no-pip" "${pip_package}")
}

# Fails unless the build left HOME and TMPDIR as empty as it found them.
assert_nothing_written_outside() {
	run find "${FAKE_HOME}" "${FAKE_TMPDIR}" -mindepth 1
	assert_success
	assert_output ""
}

# Downloads the pinned push dependencies once per run, as wheels for the system Python, into
# WHEELS_DIR; the local server then plays the package index for the builds.
prepare_wheels() {
	WHEELS_DIR="${BATS_RUN_TMPDIR:?}/wheels"
	if [[ ! -f "${WHEELS_DIR}/.complete" ]]; then
		mkdir -p "${WHEELS_DIR}"
		PIP_CACHE_DIR="${BATS_RUN_TMPDIR:?}/pip-cache" "${SYSTEM_PYTHON}" -m pip download --quiet \
			--disable-pip-version-check --only-binary=:all: \
			--requirement "${REPO_DIR}/requirements/push.txt" --dest "${WHEELS_DIR}"
		touch "${WHEELS_DIR}/.complete"
	fi
}

# Writes an executable shell script at PATH whose lines are LINEs: a stand-in for a program.
# Usage: write_script PATH LINE [LINE ...]
write_script() {
	local path="${1}"
	shift
	mkdir -p "${path%/*}"
	printf '%s\n' '#!/bin/sh' "$@" >"${path}"
	chmod +x "${path}"
}

# The app's Python as heroku/python leaves it: inside the slug, answering like CPython.
make_app_python() {
	write_script "${BUILD_DIR}/.heroku/python/bin/python3.11" "exec ${SYSTEM_PYTHON} \"\$@\""
	ln -s python3.11 "${BUILD_DIR}/.heroku/python/bin/python3"
}

# Runs COMMAND every 50 ms until it succeeds; after 10 s fails the test, naming WHAT it waited
# for.
# Usage: wait_for WHAT COMMAND [ARG ...]
wait_for() {
	local what="${1}"
	local tries
	shift
	for ((tries = 0; tries < 200; tries++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "waited 10 s for ${what}"
}

# Starts serve.py over DIRECTORY; sets SERVER_URL and SERVER_LOG.
# Usage: start_server DIRECTORY
start_server() {
	local directory="${1}"
	local port_file="${BATS_TEST_TMPDIR:?}/server.port"
	SERVER_LOG="${BATS_TEST_TMPDIR:?}/server.log"
	"${SYSTEM_PYTHON}" "${HELPERS_DIR}/serve.py" --root "${directory}" --port-file "${port_file}" \
		--log "${SERVER_LOG}" --max-requests 100 --lifetime 300 3>&- &
	record_process "$!"
	# serve.py moves the port file into place whole, once it listens.
	wait_for "the test server to listen" test -f "${port_file}"
	SERVER_URL="http://127.0.0.1:$(<"${port_file}")"
}

# Records PID for kill_recorded_processes.
# Usage: record_process PID
record_process() {
	local pid="${1}"
	echo "${pid}" >>"${BATS_TEST_TMPDIR:?}/pids"
}

# Kills every process the test recorded, by pid; teardown calls it, also after a failure.
kill_recorded_processes() {
	local pid
	[[ -f "${BATS_TEST_TMPDIR:?}/pids" ]] || return 0
	while IFS= read -r pid; do
		kill "${pid}" 2>/dev/null || true
	done <"${BATS_TEST_TMPDIR:?}/pids"
}
