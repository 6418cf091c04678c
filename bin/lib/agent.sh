#!/usr/bin/env bash
# Putting the agent package and the dyno-side launcher into the slug.

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Copies the agent package (without bytecode or test files) to AGENT_DIR/agent/dynostat and the
# launcher program to AGENT_DIR/launcher.sh (run as `bash -p`, so it needs no mode bits), and
# creates the run directory holding the lock file that keeps one agent per dyno.
# Usage: agent::install BUILDPACK_DIR AGENT_DIR
function agent::install() {
	local buildpack_dir="${1}"
	local agent_dir="${2}"
	mkdir -p "${agent_dir}/agent" "${agent_dir}/run"
	tar -C "${buildpack_dir}/agent" --exclude=__pycache__ --exclude='*.py[co]' \
		--exclude='test_*' --exclude='tests' -cf - dynostat dynostat-agent |
		tar -C "${agent_dir}/agent" -xf -
	cp -- "${buildpack_dir}/vendor/dynostat-launcher.sh" "${agent_dir}/launcher.sh"
	# The slug keeps files more reliably than empty directories.
	: >"${agent_dir}/run/agent.lock"
}

# Compiles the agent's modules with the Python that runs them on the dyno, so an agent never
# spends its first seconds (or, on a read-only slug, every start) compiling them itself.
# Usage: agent::compile PYTHON AGENT_DIR
function agent::compile() {
	local python="${1}"
	local agent_dir="${2}"
	"${python}" -m compileall -q -j 0 "${agent_dir}/agent/dynostat" >/dev/null
}

# Copies the one line that runs the launcher to BUILD_DIR/.profile.d/, which every dyno's login
# shell sources.
# Usage: agent::install_launcher BUILDPACK_DIR BUILD_DIR
function agent::install_launcher() {
	local buildpack_dir="${1}"
	local build_dir="${2}"
	mkdir -p "${build_dir}/.profile.d"
	cp -- "${buildpack_dir}/vendor/profile.d/dynostat.sh" "${build_dir}/.profile.d/dynostat.sh"
}

# Prints the size of the PATHs in MB with one decimal, as the slug counts it (symlinks as links).
# Usage: agent::size_mb PATH [PATH ...]
function agent::size_mb() {
	local total_bytes=0 bytes usage
	local line
	usage="$(du -s -b -- "$@")"
	while IFS= read -r line; do
		bytes="${line%%[[:space:]]*}"
		total_bytes=$((total_bytes + bytes))
	done <<<"${usage}"
	echo "$((total_bytes / 1048576)).$(((total_bytes % 1048576) * 10 / 1048576))"
}
