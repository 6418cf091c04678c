#!/usr/bin/env bash
# The agent's optional dependencies (certifi's CA bundle, for pushing metrics), installed with
# pip into a directory the launcher puts on the agent's path. The installed tree is cached per
# requirements file and Python version, so a warm rebuild runs no pip and downloads nothing.

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Installs REQUIREMENTS for PYTHON into VENDOR_DIR, reusing CACHE_DIR/vendor when it holds
# the same set for the same Python. A missing pip or a failed install is a warning, not a
# failure: the agent runs without them, only pushing is unavailable.
# Usage: deps::install PYTHON REQUIREMENTS VENDOR_DIR CACHE_DIR
function deps::install() {
	local python="${1}"
	local requirements="${2}"
	local vendor_dir="${3}"
	local cache_dir="${4}"
	local version python_minor arch key cached described outcome

	version="$(python::version "${python}")"
	python_minor="${version%.*}"
	arch="$(uname -m)"
	key="$(deps::cache_key "${requirements}" "${python_minor}" "${arch}")"
	cached="${cache_dir}/vendor/${key}"
	described="$(deps::describe "${requirements}")"

	outcome="Reused ${described} from the build cache"
	if [[ ! -f "${cached}/.complete" ]]; then
		deps::pip_install "${python}" "${version}" "${requirements}" "${described}" "${cache_dir}" "${cached}"
		# Without a complete tree deps::pip_install has said why pushing will not work.
		[[ -f "${cached}/.complete" ]] || return 0
		outcome="Installed ${described} for Python ${python_minor}"
	fi
	mkdir -p -- "${vendor_dir}"
	cp -a -- "${cached}/." "${vendor_dir}/"
	rm -f -- "${vendor_dir}/.complete"
	output::detail "${outcome}"
}

# Installs REQUIREMENTS for PYTHON (of full version VERSION) into DESTINATION, with pip's
# caches and work files in CACHE_DIR, and marks it complete with a .complete file;
# DESTINATION replaces every other tree cached beside it. When no pip is to be had or pip
# fails, it warns (DESCRIBED names what was asked for) and DESTINATION stays absent.
# Usage: deps::pip_install PYTHON VERSION REQUIREMENTS DESCRIBED CACHE_DIR DESTINATION
function deps::pip_install() {
	local python="${1}"
	local version="${2}"
	local requirements="${3}"
	local described="${4}"
	local cache_dir="${5}"
	local destination="${6}"
	local python_minor="${version%.*}"
	local staging="${cache_dir}/tmp/vendor"
	local pip_log="${cache_dir}/tmp/pip.log"
	local pip_python pip_tail
	local -a cross_flags=()

	if ! pip_python="$(deps::find_pip "${python}")"; then
		output::warning <<-EOF
			Pushing metrics (DYNOSTAT_URL) will not work in this app.
			The Python ${version} the agent runs on has no pip, and neither does this build image,
			so the push dependencies could not be installed. Log lines are not affected.
			To push metrics, put a Python with pip in the slug before this buildpack runs
			(e.g. heroku/python), or set DYNOSTAT_PYTHON_URL/DYNOSTAT_PYTHON_SHA256.
		EOF
		return 0
	fi
	if [[ "${pip_python}" != "${python}" ]]; then
		# Wheels for another interpreter: binary wheels only, and no bytecode compiled for the
		# wrong version.
		cross_flags=(--python-version "${python_minor}" --only-binary=:all: --no-compile)
	fi

	mkdir -p -- "${cache_dir}/vendor" "${cache_dir}/pip" "${cache_dir}/tmp"
	rm -rf -- "${staging}"
	# Every cache pip keeps lives in CACHE_DIR, and HOME and TMPDIR point there too, so the
	# build writes nothing else; PIP_INDEX_URL and friends from the environment still apply.
	if ! env HOME="${cache_dir}/tmp" TMPDIR="${cache_dir}/tmp" XDG_CACHE_HOME="${cache_dir}/tmp" \
		PIP_CACHE_DIR="${cache_dir}/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
		PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1 \
		timeout 600 "${pip_python}" -I -m pip install --quiet --no-warn-script-location \
		--target "${staging}" --requirement "${requirements}" "${cross_flags[@]}" >"${pip_log}" 2>&1; then
		pip_tail="$(tail -n 3 -- "${pip_log}")"
		rm -rf -- "${staging}" "${pip_log}"
		output::warning <<-EOF
			Pushing metrics (DYNOSTAT_URL) will not work in this app.
			pip could not install ${described}:
			${pip_tail}
			Log lines are not affected. Build again to retry.
		EOF
		return 0
	fi
	rm -f -- "${pip_log}"
	# Console scripts carry the build path in their shebang and are never used.
	rm -rf -- "${staging:?}/bin"
	touch -- "${staging}/.complete"
	rm -rf -- "${cache_dir}/vendor/"*
	mv -- "${staging}" "${destination}"
}

# Prints the interpreter whose pip installs the dependencies for PYTHON: PYTHON itself when it
# has pip, else the build image's python3 with pip (it then installs wheels for PYTHON's
# version, which works because all of them are pure Python or ship binary wheels). Returns 1
# when no pip is to be had.
# Usage: deps::find_pip PYTHON
function deps::find_pip() {
	local python="${1}"
	local build_python
	if timeout 60 "${python}" -I -B -m pip --version >/dev/null 2>&1; then
		echo "${python}"
		return 0
	fi
	if build_python="$(command -v python3)" && timeout 60 "${build_python}" -I -B -m pip --version >/dev/null 2>&1; then
		echo "${build_python}"
		return 0
	fi
	return 1
}

# Prints the cache key of an installed vendor tree: what was asked for, for which Python.
# Usage: deps::cache_key REQUIREMENTS PYTHON_MINOR ARCH
function deps::cache_key() {
	local requirements="${1}"
	local python_minor="${2}"
	local arch="${3}"
	local digest
	digest="$({ cat -- "${requirements}" && echo "python=${python_minor} arch=${arch}"; } | sha256sum)"
	echo "${digest:0:16}"
}

# Prints the names and versions pinned in REQUIREMENTS as "certifi 2026.10.19.post1, six 1.17.0".
# Usage: deps::describe REQUIREMENTS
function deps::describe() {
	local requirements="${1}"
	local line described=""
	while IFS= read -r line; do
		line="${line%%#*}"
		line="${line//[[:space:]]/}"
		[[ "${line}" == *==* ]] || continue
		described+="${described:+, }${line%%==*} ${line#*==}"
	done <"${requirements}"
	echo "${described}"
}
