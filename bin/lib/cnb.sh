#!/usr/bin/env bash
# The Cloud Native Buildpack side of dynostat (Buildpack API 0.10, Heroku's Fir generation):
# bin/detect's CNB branch and bin/build. The Python, the agent, its dependencies and the
# launcher are installed by the same functions the classic bin/compile uses; this file only
# decides where they go (layers) and how the lifecycle sees them.
#
# Two layers, named after what they hold:
#   runtime/  the agent's CPython (runtime/python/) and push dependencies (runtime/vendor/).
#             launch = true so dynos have it, cache = true so a rebuild reuses it without
#             downloading. Nothing sits at its root on purpose: the launcher puts a layer's
#             bin/ on PATH and its lib/ on LD_LIBRARY_PATH for the app, and the app must not
#             find our pruned python3 or our libpython before its own.
#   agent/    exec.d/dynostat, and under home/ the same tree a classic slug gets
#             (.dynostat/ and .profile.d/dynostat.sh): the exec.d program runs that
#             launcher, so both generations start the agent with the same code.

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Bumped when the runtime layer's layout changes, so old cached layers are replaced.
readonly CNB_RUNTIME_LAYOUT=1

# Detection under the lifecycle: pass (0) for every app on a target we have a CPython for.
# DYNOSTAT_DISABLE does not fail detection: it is a run-time switch that a config var change
# flips without a rebuild (the exec.d program reads it at boot), and on Fir the buildpacks an
# app lists form one group in which every member is required, so a 100 here would fail the
# app's whole build rather than leave dynostat out. Older lifecycles do not match
# [[targets]] against the image themselves, hence the check here.
# Usage: cnb::detect  (prints why and returns 100 on a target we cannot serve)
function cnb::detect() {
	local os="${CNB_TARGET_OS:-linux}"
	local arch

	arch="$(cnb::machine_arch)"
	if [[ "${os}" == linux ]] && standalone::pin "${arch}" >/dev/null; then
		echo "dynostat"
		return 0
	fi
	echo "dynostat: no CPython for ${os}/${CNB_TARGET_ARCH:-${arch}}; dynostat runs on linux amd64 and arm64"
	return 100
}

# Writes <layers>/<layer>.toml. The lifecycle reads [types]; [metadata] is ours, handed back
# on the next build so we can tell whether a cached layer still fits.
# Usage: cnb::write_layer_toml LAYER_TOML LAUNCH BUILD CACHE [KEY VALUE ...]
function cnb::write_layer_toml() {
	local layer_toml="${1}"
	local launch="${2}"
	local build="${3}"
	local cache="${4}"
	local value
	shift 4

	{
		echo "[types]"
		echo "launch = ${launch}"
		echo "build = ${build}"
		echo "cache = ${cache}"
		echo
		echo "[metadata]"
		while [[ "$#" -ge 2 ]]; do
			value="$(cnb::toml_escape "${2}")"
			echo "${1} = \"${value}\""
			shift 2
		done
	} >"${layer_toml}"
}

# A value made safe inside a TOML basic string.
# Usage: cnb::toml_escape VALUE
function cnb::toml_escape() {
	local value="${1}"
	value="${value//\\/\\\\}"
	value="${value//\"/\\\"}"
	echo "${value}"
}

# Prints metadata KEY of a restored <layer>.toml (the lifecycle restores only [metadata]).
# Returns 1 when the file or the key is missing. Only the simple `key = "value"` lines that
# cnb::write_layer_toml writes are read; anything else reads as missing, which rebuilds.
# Usage: cnb::layer_metadata LAYER_TOML KEY
function cnb::layer_metadata() {
	local layer_toml="${1}"
	local key="${2}"
	local line value

	[[ -f "${layer_toml}" ]] || return 1
	while IFS= read -r line; do
		if [[ "${line}" == "${key} = \""*\" ]]; then
			value="${line#"${key} = \""}"
			value="${value%\"}"
			value="${value//\\\"/\"}"
			echo "${value//\\\\/\\}"
			return 0
		fi
	done <"${layer_toml}"
	return 1
}

# Returns 0 when the restored LAYER_TOML holds each KEY with its VALUE in its [metadata].
# Usage: cnb::metadata_matches LAYER_TOML KEY VALUE [KEY VALUE ...]
function cnb::metadata_matches() {
	local layer_toml="${1}"
	local restored
	shift

	while (($# >= 2)); do
		restored="$(cnb::layer_metadata "${layer_toml}" "${1}")" || return 1
		[[ "${restored}" == "${2}" ]] || return 1
		shift 2
	done
}

# The machine name (as `uname -m` and python-build-standalone spell it) of the CNB target
# architecture the lifecycle builds for; this machine's own when the lifecycle names none.
# Usage: cnb::machine_arch
function cnb::machine_arch() {
	case "${CNB_TARGET_ARCH:-}" in
	amd64) echo "x86_64" ;;
	arm64) echo "aarch64" ;;
	"") uname -m ;;
	*) echo "${CNB_TARGET_ARCH}" ;;
	esac
}

# The runtime layer: the agent's CPython and its optional dependencies. Reused as it is when
# its metadata says it holds what this build would install (same archive, requirements,
# architecture and layout) and its CPython still starts; otherwise emptied and filled again
# by the classic path's installers. pip is removed once the dependencies are in, as classic
# builds do, so a reused layer never needs it.
# Usage: cnb::runtime_layer LAYERS_DIR BUILDPACK_DIR SCRATCH_DIR MIRROR_URL MIRROR_SHA256
function cnb::runtime_layer() {
	local layers_dir="${1}"
	local buildpack_dir="${2}"
	local scratch_dir="${3}"
	local mirror_url="${4}"
	local mirror_sha256="${5}"
	local layer_dir="${layers_dir}/runtime"
	local layer_toml="${layers_dir}/runtime.toml"
	local python="${layer_dir}/python/bin/python3"
	local requirements="${buildpack_dir}/requirements/push.txt"
	local arch archive requirements_sha256 version
	local -a metadata

	arch="$(cnb::machine_arch)"
	archive="$(standalone::archive "${mirror_url}" "${mirror_sha256}" "${arch}")" || return 1
	requirements_sha256="$(download::sha256 "${requirements}")"
	# What this build puts in the layer, as the layer's metadata records it.
	metadata=(
		sha256 "${archive%% *}"
		requirements_sha256 "${requirements_sha256}"
		arch "${arch}"
		layout "${CNB_RUNTIME_LAYOUT}"
	)

	if cnb::metadata_matches "${layer_toml}" "${metadata[@]}" && version="$(python::version "${python}")"; then
		output::detail "Using the cached CPython ${version} and push dependencies (no download)"
	else
		rm -rf -- "${layer_dir}"
		mkdir -p -- "${layer_dir}"
		# No cache directory: the archive is removed once extracted, the layer is the cache.
		standalone::install "${mirror_url}" "${mirror_sha256}" "${arch}" "${layer_dir}/python" || return 1
		deps::install "${python}" "${requirements}" "${layer_dir}/vendor" "${scratch_dir}"
		prune::pip "${layer_dir}/python"
		version="$(python::version "${python}")"
	fi
	cnb::write_layer_toml "${layer_toml}" true false true "${metadata[@]}" python_version "${version}"
}

# The agent layer: a slug-shaped tree under agent/home/ built by the classic path's own
# functions (home/.dynostat/ and home/.profile.d/dynostat.sh), plus the exec.d program that
# runs that very launcher at boot. Nothing sits at the layer's root but exec.d/, so the
# launcher adds nothing to the app's PATH or LD_LIBRARY_PATH. launch = true only: it is
# rebuilt from this buildpack on every build, which costs a copy, not a download.
# Usage: cnb::agent_layer LAYERS_DIR BUILDPACK_DIR
function cnb::agent_layer() {
	local layers_dir="${1}"
	local buildpack_dir="${2}"
	local layer_dir="${layers_dir}/agent"
	local home="${layer_dir}/home"
	local runtime_dir="${layers_dir}/runtime"
	local version

	rm -rf -- "${layer_dir}"
	mkdir -p "${home}" "${layer_dir}/exec.d"
	agent::install "${buildpack_dir}" "${home}/.dynostat"
	agent::install_launcher "${buildpack_dir}" "${home}"
	# Absolute links into the runtime layer: the image keeps every layer at the path it was
	# built at.
	python::link "${runtime_dir}/python/bin/python3" "${home}/.dynostat"
	agent::compile "${home}/.dynostat/bin/python3" "${home}/.dynostat"
	if [[ -d "${runtime_dir}/vendor" ]]; then
		ln -s -- "${runtime_dir}/vendor" "${home}/.dynostat/vendor"
	fi
	cp -- "${buildpack_dir}/vendor/exec.d/dynostat" "${layer_dir}/exec.d/dynostat"
	chmod 0755 "${layer_dir}/exec.d/dynostat"

	version="$(cnb::buildpack_version "${buildpack_dir}")"
	cnb::write_layer_toml "${layers_dir}/agent.toml" true false false \
		buildpack_version "${version}"
	output::detail "Starts one agent per dyno before the process runs (exec.d)"
}

# Prints the version buildpack.toml gives this buildpack, or "unknown".
# Usage: cnb::buildpack_version BUILDPACK_DIR
function cnb::buildpack_version() {
	local buildpack_dir="${1}"
	local line

	while IFS= read -r line; do
		if [[ "${line}" =~ ^version\ =\ \"([^\"]+)\" ]]; then
			echo "${BASH_REMATCH[1]}"
			return 0
		fi
	done <"${buildpack_dir}/buildpack.toml"
	echo "unknown"
}
