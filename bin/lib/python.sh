#!/usr/bin/env bash
# Choosing the Python the agent runs on at dyno boot: the app's own in the slug, else the run
# image's, else a standalone CPython (standalone.sh), and linking the chosen one where the
# launcher looks for it. Every function takes what it works on as arguments, so the classic
# build (bin/compile) and the Cloud Native Buildpack build (bin/build) share it.

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# The oldest Python the agent supports.
readonly PYTHON_MINIMUM_MAJOR=3
readonly PYTHON_MINIMUM_MINOR=9

# Decides which Python runs the agent on the dyno, installs one if needed, and links it as
# AGENT_DIR/bin/python3. In order:
#   1. the app's own Python in the slug (BUILD_DIR), when 3.9 or newer;
#   2. the stack's run-image Python, where the run image has one;
#   3. a standalone CPython (the pin, or the mirror MIRROR_URL and MIRROR_SHA256 name),
#      downloaded once into CACHE_DIR and extracted to AGENT_DIR/python.
# Usage: python::choose BUILD_DIR STACK AGENT_DIR CACHE_DIR MIRROR_URL MIRROR_SHA256
function python::choose() {
	local build_dir="${1}"
	local stack="${2}"
	local agent_dir="${3}"
	local cache_dir="${4}"
	local mirror_url="${5}"
	local mirror_sha256="${6}"
	local relative candidate version arch

	if relative="$(python::find_in_slug "${build_dir}")"; then
		if version="$(python::version "${build_dir}/${relative}")" && python::is_supported "${version}"; then
			output::detail "Using the app's Python ${version} at ${relative} (already in the slug)"
			python::link "${build_dir}/${relative}" "${agent_dir}"
			return
		fi
		output::detail "Not using the app's Python at ${relative}: ${version:-it does not run}, the agent needs 3.9+"
	fi

	if candidate="$(python::run_image_python "${stack}")"; then
		if version="$(python::version "${candidate}")" && python::is_supported "${version}"; then
			output::detail "Using the ${stack} run image's Python ${version} at ${candidate} (on every dyno of this stack)"
			python::link "${candidate}" "${agent_dir}"
			return
		fi
		output::detail "Not using the ${stack} run image's Python at ${candidate}: ${version:-it does not run}"
	else
		output::detail "No Python 3.9+ in the slug, and the ${stack:-unknown} stack's run image has no Python"
	fi

	arch="$(uname -m)"
	standalone::install "${mirror_url}" "${mirror_sha256}" "${arch}" "${agent_dir}/python" "${cache_dir}" || return 1
	python::link "${agent_dir}/python/bin/python3" "${agent_dir}"
}

# Prints the path, relative to BUILD_DIR, of the app's own Python when another buildpack put
# one in the slug. Only interpreters that really live inside the slug count: a symlink into
# the build image would dangle on the dyno.
# Usage: python::find_in_slug BUILD_DIR
function python::find_in_slug() {
	local build_dir="${1}"
	# Where heroku/heroku-buildpack-python installs the app's Python.
	local relative=".heroku/python/bin/python3"
	local build_root resolved

	[[ -x "${build_dir}/${relative}" ]] || return 1
	build_root="$(realpath "${build_dir}")"
	resolved="$(realpath "${build_dir}/${relative}")"
	[[ "${resolved}" == "${build_root}/"* ]] || return 1
	echo "${relative}"
}

# Prints the Python of the stack's run image (the image dynos boot from, not the build image),
# or returns 1 when that image has none. heroku-22's run image ships python3.10 at the same
# path as its build image; the heroku-24 and heroku-26 run images ship no Python at all,
# although their build images do.
# Usage: python::run_image_python STACK
function python::run_image_python() {
	local stack="${1}"
	case "${stack}" in
	heroku-22) echo "/usr/bin/python3" ;;
	*) return 1 ;;
	esac
}

# Prints the full version (3.12.14) of the Python interpreter PYTHON, or returns 1 when it
# does not run. -I keeps the build's PYTHONHOME/PYTHONPATH from changing which stdlib answers;
# -B keeps it from writing bytecode beside an interpreter that may live outside BUILD_DIR.
# Usage: python::version PYTHON
function python::version() {
	local python="${1}"
	[[ -x "${python}" ]] || return 1
	timeout 30 "${python}" -I -B -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null
}

# Returns 0 when VERSION (3.12.14) is new enough for the agent.
# Usage: python::is_supported VERSION
function python::is_supported() {
	local version="${1}"
	local major minor
	IFS=. read -r major minor _ <<<"${version}"
	[[ "${major}" =~ ^[0-9]+$ && "${minor}" =~ ^[0-9]+$ ]] || return 1
	((major > PYTHON_MINIMUM_MAJOR || (major == PYTHON_MINIMUM_MAJOR && minor >= PYTHON_MINIMUM_MINOR)))
}

# Links AGENT_DIR/bin/python3 to TARGET: relatively when TARGET sits in the same tree as
# AGENT_DIR (the slug or a layer), so the link survives the slug moving from the build
# directory to /app; absolutely for a system Python.
# Usage: python::link TARGET AGENT_DIR
function python::link() {
	local target="${1}"
	local agent_dir="${2}"
	local parent link_target

	mkdir -p -- "${agent_dir}/bin"
	parent="$(realpath -m "${agent_dir}/..")"
	link_target="$(realpath -m -s "${target}")"
	if [[ "${link_target}" == "${parent}/"* ]]; then
		link_target="$(realpath -m -s --relative-to="${agent_dir}/bin" "${link_target}")"
	fi
	ln -sfn -- "${link_target}" "${agent_dir}/bin/python3" || return 1
	[[ -x "${agent_dir}/bin/python3" ]]
}
