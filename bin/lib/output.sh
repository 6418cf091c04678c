#!/usr/bin/env bash
# Build output in the shape Heroku users know: `-----> ` for a step, seven spaces for detail,
# ` !     ` for warnings and errors (errors on stderr).

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Usage: output::step "Installing the agent"
function output::step() {
	local message="${1}"
	echo "-----> dynostat: ${message}"
}

# Usage: output::detail "line" ["line" ...]
function output::detail() {
	local line
	for line in "$@"; do
		echo "       ${line}"
	done
}

# Usage: some_command | output::indent
function output::indent() {
	local line
	while IFS= read -r line; do
		echo "       ${line}"
	done
}

# Prints each argument, and each line within an argument, behind the ` !     ` marker; an empty
# argument becomes a bare ` !` line.
# Usage: output::marked "line" ["line" ...]
function output::marked() {
	local argument line
	for argument in "$@"; do
		while IFS= read -r line; do
			if [[ -n "${line}" ]]; then
				echo " !     ${line}"
			else
				echo " !"
			fi
		done <<<"${argument}"
	done
}

# Warnings go to stdout so they sit in order with the step they belong to.
# Usage: output::warning "line" ["line" ...]
function output::warning() {
	echo
	output::marked "$@"
	echo
}

# Errors are three parts: what went wrong, what we found, how to fix it. Pass an empty
# argument between the parts: it becomes a bare ` !` line that keeps them apart.
# Usage: output::error "what went wrong" "what we found" "how to fix it" ["more" ...]
function output::error() {
	{
		echo
		output::marked "$@"
		echo
	} >&2
}
