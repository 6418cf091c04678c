#!/usr/bin/env bash
# Build output in the shape Heroku users know: `-----> ` for a step, seven spaces for detail,
# ` !     ` for warnings and errors. Warnings go to stdout, so they sit in order with the step
# they belong to; errors go to stderr.

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Usage: output::step "Installing the agent"
function output::step() {
	local message="${1}"
	echo "-----> dynostat: ${message}"
}

# Usage: output::detail "Installed the agent into .dynostat/agent"
function output::detail() {
	local message="${1}"
	echo "       ${message}"
}

# A warning: what will not work, why, and what to do about it.
# Usage:
#   output::warning <<-EOF
#   	Pushing metrics will not work in this app.
#   	...
#   EOF
function output::warning() {
	output::marked
}

# An error in three parts, kept apart by empty lines: what went wrong, what we found, how to
# fix it.
# Usage:
#   output::error <<-EOF
#   	The download failed.
#
#   	URL: ${shown_url}
#
#   	Check that the URL is reachable from the build, then build again.
#   EOF
function output::error() {
	output::marked >&2
}

# Prints each line of stdin behind the ` !     ` marker, between two empty lines. An empty line
# becomes a bare ` !`, so a message's parts stay apart without trailing spaces.
# Usage: output::marked <<<"message"
function output::marked() {
	local line
	echo
	while IFS= read -r line; do
		if [[ -n "${line}" ]]; then
			echo " !     ${line}"
		else
			echo " !"
		fi
	done
	echo
}
