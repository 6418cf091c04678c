#!/usr/bin/env bash
# Config vars at build time. Classic builds get them as files in ENV_DIR (one file per var,
# the file's content is the value); Cloud Native Buildpacks get the same layout in
# CNB_PLATFORM_DIR/env. Nothing here reads the process environment, so a build behaves the
# same whoever runs it.

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Prints the value of config var NAME from ENV_DIR, without the blanks around it; prints
# nothing when the var is unset or blank.
# Usage: config::read ENV_DIR NAME
function config::read() {
	local env_dir="${1}"
	local name="${2}"
	local file="${env_dir}/${name}"
	local value

	[[ -n "${env_dir}" && -f "${file}" ]] || return 0
	value="$(<"${file}")"
	# Values pasted into the dashboard often carry a trailing newline or spaces.
	value="${value#"${value%%[![:space:]]*}"}"
	value="${value%"${value##*[![:space:]]}"}"
	echo "${value}"
}
