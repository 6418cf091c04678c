#!/usr/bin/env bash
# Choosing and installing the Python the agent runs on at dyno boot. Every function takes the
# directories it works on as arguments, so the classic build (bin/compile) and the Cloud Native
# Buildpack build (bin/build) share this logic.

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# The oldest Python the agent supports.
PYTHON_MINIMUM_MAJOR=3
PYTHON_MINIMUM_MINOR=9

# The relocatable CPython installed when neither the slug nor the run image has a Python.
# Taken from uv's crates/uv-python/download-metadata.json (entries
# cpython-3.12.14-linux-<arch>-gnu), which records the python-build-standalone release
# assets with their sha256. install_only_stripped is the smallest flavour that keeps a full
# standard library.
PYTHON_STANDALONE_VERSION="3.12.14"
PYTHON_STANDALONE_RELEASE="20260814"

# Prints "URL SHA256" of the pinned python-build-standalone archive for a machine
# architecture as `uname -m` names it. Returns 1 for architectures without a pin.
# Usage: python::standalone_pin ARCH
function python::standalone_pin() {
	local arch="${1}"
	local base="https://github.com/astral-sh/python-build-standalone/releases/download/${PYTHON_STANDALONE_RELEASE}"
	local asset="cpython-${PYTHON_STANDALONE_VERSION}%2B${PYTHON_STANDALONE_RELEASE}-${arch}-unknown-linux-gnu-install_only_stripped.tar.gz"
	case "${arch}" in
	x86_64) echo "${base}/${asset} 5acfa3e9ba26b51ae161c83aff278da915b590d22373a424b2ba55b8afe91fcc" ;;
	aarch64) echo "${base}/${asset} 2d8e17dfd732102cfeb18e0e1fa6769b24caa034e159981129590fe409c7157a" ;;
	*) return 1 ;;
	esac
}

# Prints the full version (3.12.14) of a Python interpreter, or returns 1 when it does not run.
# -I keeps the build's PYTHONHOME/PYTHONPATH from changing which stdlib answers; -B keeps it
# from writing bytecode beside an interpreter that may live outside BUILD_DIR.
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

# Prints the path, relative to BUILD_DIR, of the app's own Python when another buildpack put
# one in the slug. Only interpreters that really live inside the slug count: a symlink into
# the build image would dangle on the dyno.
# Usage: python::find_in_slug BUILD_DIR
function python::find_in_slug() {
	local build_dir="${1}"
	# Where heroku/heroku-buildpack-python installs the app's Python.
	local relative=".heroku/python/bin/python3"
	local resolved build_root
	[[ -x "${build_dir}/${relative}" ]] || return 1
	build_root="$(realpath "${build_dir}")"
	resolved="$(realpath "${build_dir}/${relative}")"
	[[ "${resolved}" == "${build_root}/"* ]] || return 1
	echo "${relative}"
}

# Prints the Python of the stack's run image (the image dynos boot from, not the build image),
# or returns 1 when that image has none. heroku-22's run image ships python3.10; the heroku-24
# and heroku-26 run images ship no Python at all, although their build images do.
# DYNOSTAT_RUN_IMAGE_PYTHON replaces /usr/bin/python3; it exists only so tests can stand in
# for a stack image, and is not a config var.
# Usage: python::run_image_python STACK
function python::run_image_python() {
	local stack="${1}"
	case "${stack}" in
	heroku-22) echo "${DYNOSTAT_RUN_IMAGE_PYTHON:-/usr/bin/python3}" ;;
	*) return 1 ;;
	esac
}

# Shows a URL without credentials or query string, so a mirror's secrets never reach the
# build log.
# Usage: python::redact_url URL
function python::redact_url() {
	local url="${1}"
	local scheme rest
	url="${url%%\?*}"
	if [[ "${url}" == *://* ]]; then
		scheme="${url%%://*}"
		rest="${url#*://}"
		if [[ "${rest%%/*}" == *@* ]]; then
			rest="***@${rest#*@}"
		fi
		url="${scheme}://${rest}"
	fi
	echo "${url}"
}

# Makes ARCHIVE a verified copy of URL: reuses it when its sha256 already matches, otherwise
# downloads it next to ARCHIVE and moves it into place only once the checksum matches. On any
# failure nothing is left at ARCHIVE or beside it.
# Usage: python::fetch_archive URL SHA256 ARCHIVE
function python::fetch_archive() {
	local url="${1}"
	local expected_sha256="${2}"
	local archive="${3}"
	local shown_url partial curl_log curl_error actual_sha256

	shown_url="$(python::redact_url "${url}")"
	if [[ -f "${archive}" ]]; then
		actual_sha256="$(sha256sum "${archive}")"
		if [[ "${actual_sha256%% *}" == "${expected_sha256}" ]]; then
			output::detail "Using the cached download of ${shown_url}"
			return 0
		fi
		# A cached file that no longer matches is worthless; fetch it again.
		rm -f -- "${archive}"
	fi

	mkdir -p "$(dirname "${archive}")"
	partial="${archive}.partial"
	curl_log="${archive}.curl-log"
	output::detail "Downloading ${shown_url}"
	if ! curl --fail --silent --show-error --location \
		--proto '=http,https' --proto-redir '=http,https' \
		--retry 3 --retry-connrefused --retry-delay 1 \
		--connect-timeout 10 --max-time 600 \
		--output "${partial}" "${url}" 2>"${curl_log}"; then
		curl_error="$(python::redact_curl_log "${curl_log}" "${url}" "${shown_url}")"
		output::error \
			"Could not download the Python the agent needs." \
			"" \
			"URL: ${shown_url}" \
			"${curl_error}" \
			"" \
			"Check that the URL is reachable from the build (DYNOSTAT_PYTHON_URL names a" \
			"mirror when set), then build again. Nothing was installed or cached."
		rm -f -- "${partial}" "${curl_log}"
		return 1
	fi
	rm -f -- "${curl_log}"

	actual_sha256="$(sha256sum "${partial}")"
	actual_sha256="${actual_sha256%% *}"
	if [[ "${actual_sha256}" != "${expected_sha256}" ]]; then
		rm -f -- "${partial}"
		output::error \
			"The downloaded Python does not match its expected sha256." \
			"" \
			"URL:      ${shown_url}" \
			"Expected: ${expected_sha256}" \
			"Got:      ${actual_sha256}" \
			"" \
			"If DYNOSTAT_PYTHON_URL names a mirror, set DYNOSTAT_PYTHON_SHA256 to the sha256 of" \
			"that exact file; otherwise the download was corrupted or tampered with: build again." \
			"Nothing was installed or cached."
		return 1
	fi
	mv -f -- "${partial}" "${archive}" || return 1
	output::detail "Verified sha256 ${expected_sha256}"
}

# Prints curl's last error line with the URL's credentials hidden.
# Usage: python::redact_curl_log LOG URL SHOWN_URL
function python::redact_curl_log() {
	local log="${1}"
	local url="${2}"
	local shown_url="${3}"
	local last_line=""
	local line
	while IFS= read -r line; do
		[[ -n "${line}" ]] && last_line="${line}"
	done <"${log}"
	echo "${last_line//"${url}"/"${shown_url}"}"
}

# Extracts a python-build-standalone install_only archive so that HOME/bin/python3 exists,
# prunes it and checks that it runs and is new enough. Works in a sibling directory and moves it into place at
# the end, so a failure leaves nothing at HOME.
# Usage: python::extract_standalone ARCHIVE HOME
function python::extract_standalone() {
	local archive="${1}"
	local home="${2}"
	local unpack="${home}.partial"
	local arch version
	arch="$(uname -m)"

	rm -rf -- "${unpack}" "${home}"
	mkdir -p "${unpack}"
	if ! tar -xzf "${archive}" -C "${unpack}" 2>/dev/null || [[ ! -x "${unpack}/python/bin/python3" ]]; then
		rm -rf -- "${unpack}"
		output::error \
			"The Python archive is not a python-build-standalone install_only archive." \
			"" \
			"It does not unpack to python/bin/python3." \
			"" \
			"Point DYNOSTAT_PYTHON_URL at an install_only or install_only_stripped .tar.gz" \
			"for ${arch} Linux (gnu), or unset it to use the buildpack's pinned Python."
		return 1
	fi
	python::prune "${unpack}/python"
	if ! version="$(python::version "${unpack}/python/bin/python3")" || ! python::is_supported "${version}"; then
		rm -rf -- "${unpack}"
		output::error \
			"The downloaded Python does not run here, or is older than 3.9." \
			"" \
			"Found: ${version:-an interpreter that failed to start}" \
			"" \
			"Point DYNOSTAT_PYTHON_URL at a CPython 3.9 or newer build for ${arch} Linux (gnu)," \
			"or unset it to use the buildpack's pinned Python."
		return 1
	fi
	mv -- "${unpack}/python" "${home}"
	rmdir -- "${unpack}"
}

# Removes what the agent never loads from a standalone Python: tests, GUI toolkits, headers,
# static libraries, man pages, build-time configuration and the extra command-line tools.
# pip stays until python::remove_pip, because the build may still need it.
# Usage: python::prune HOME
function python::prune() {
	local home="${1}"
	local stdlib
	local entry

	rm -rf -- "${home}/include" "${home}/share" "${home}/lib/pkgconfig"
	for entry in "${home}"/lib/*.a "${home}"/lib/libtcl* "${home}"/lib/libtk* \
		"${home}"/lib/tcl* "${home}"/lib/tk* "${home}"/lib/itcl* "${home}"/lib/thread*; do
		[[ -e "${entry}" || -L "${entry}" ]] && rm -rf -- "${entry}"
	done
	for entry in "${home}"/bin/*; do
		case "${entry##*/}" in
		python3 | python3.[0-9] | python3.[0-9][0-9]) ;;
		*) rm -f -- "${entry}" ;;
		esac
	done
	for stdlib in "${home}"/lib/python3.*; do
		[[ -d "${stdlib}" ]] || continue
		rm -rf -- "${stdlib}/test" "${stdlib}/idlelib" "${stdlib}/tkinter" "${stdlib}/turtledemo" \
			"${stdlib}/turtle.py" "${stdlib}/lib2to3" "${stdlib}/pydoc_data" "${stdlib}/ensurepip" \
			"${stdlib}/__phello__" "${stdlib}"/config-3.*
		for entry in "${stdlib}"/lib-dynload/_tkinter* "${stdlib}"/lib-dynload/_test* \
			"${stdlib}"/lib-dynload/_ctypes_test* "${stdlib}"/lib-dynload/xxlimited* \
			"${stdlib}"/lib-dynload/_xxtestfuzz*; do
			[[ -e "${entry}" ]] && rm -f -- "${entry}"
		done
	done
	return 0
}

# Removes pip from a standalone Python once the build no longer needs it: the agent never
# installs anything on a dyno.
# Usage: python::remove_pip HOME
function python::remove_pip() {
	local home="${1}"
	local site_packages
	for site_packages in "${home}"/lib/python3.*/site-packages; do
		[[ -d "${site_packages}" ]] || continue
		rm -rf -- "${site_packages}"/pip "${site_packages}"/pip-*.dist-info
	done
	return 0
}

# Decides which Python runs the agent on the dyno, installs one if needed, and links it as
# AGENT_DIR/bin/python3 (relative when the target lives beside AGENT_DIR, so the link
# survives the slug moving from the build directory to /app). In order:
#   1. the app's own Python in the slug (BUILD_DIR, may be empty), when 3.9 or newer;
#   2. the stack's run-image Python, where the run image has one;
#   3. a standalone CPython, downloaded once into CACHE_DIR and extracted to AGENT_DIR/python.
# Usage: python::choose BUILD_DIR STACK ENV_DIR CACHE_DIR AGENT_DIR
function python::choose() {
	local build_dir="${1}"
	local stack="${2}"
	local env_dir="${3}"
	local cache_dir="${4}"
	local agent_dir="${5}"
	local relative candidate version target arch

	if [[ -n "${build_dir}" ]] && relative="$(python::find_in_slug "${build_dir}")"; then
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
	python::install_standalone "${env_dir}" "${arch}" "${agent_dir}/python" "${cache_dir}" || return 1
	target="${agent_dir}/python/bin/python3"
	version="$(python::version "${target}")"
	output::detail "Installed CPython ${version}, pruned to what the agent needs"
	python::link "${target}" "${agent_dir}"
}

# Prints the URL of the standalone CPython archive for ARCH (as `uname -m` names it): the
# mirror named by DYNOSTAT_PYTHON_URL in ENV_DIR when set, else the buildpack's pin.
# Usage: python::standalone_url ENV_DIR ARCH
function python::standalone_url() {
	local env_dir="${1}"
	local arch="${2}"
	local pin
	config::read "${env_dir}" DYNOSTAT_PYTHON_URL && return 0
	pin="$(python::standalone_pin "${arch}")" || return 1
	echo "${pin% *}"
}

# Prints the sha256 the archive of python::standalone_url must have.
# Usage: python::standalone_sha256 ENV_DIR ARCH
function python::standalone_sha256() {
	local env_dir="${1}"
	local arch="${2}"
	local pin sha256
	if sha256="$(config::read "${env_dir}" DYNOSTAT_PYTHON_SHA256)"; then
		echo "${sha256,,}"
		return 0
	fi
	config::read "${env_dir}" DYNOSTAT_PYTHON_URL >/dev/null && return 1
	pin="$(python::standalone_pin "${arch}")" || return 1
	echo "${pin#* }"
}

# Installs the standalone CPython for ARCH at HOME: the buildpack's pin, or the mirror named by
# DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 in ENV_DIR. With CACHE_DIR the archive is kept
# there under its sha256 (other cached archives are removed, so the cache stays small) and the
# next build downloads nothing; without it the archive is removed once extracted.
# Usage: python::install_standalone ENV_DIR ARCH HOME [CACHE_DIR]
function python::install_standalone() {
	local env_dir="${1}"
	local arch="${2}"
	local home="${3}"
	local cache_dir="${4:-}"
	local url="" sha256="" shown_url archive stale status=0

	url="$(config::read "${env_dir}" DYNOSTAT_PYTHON_URL)" || url=""
	sha256="$(config::read "${env_dir}" DYNOSTAT_PYTHON_SHA256)" || sha256=""
	# Checksums are often copied in upper case; sha256sum prints lower case.
	sha256="${sha256,,}"
	if [[ -n "${url}" || -n "${sha256}" ]]; then
		if [[ -z "${url}" || ! "${sha256}" =~ ^[0-9a-f]{64}$ ]]; then
			shown_url="$(python::redact_url "${url:-(unset)}")"
			output::error \
				"DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 must be set together." \
				"" \
				"Found: DYNOSTAT_PYTHON_URL=${shown_url} DYNOSTAT_PYTHON_SHA256=${sha256:-(unset)}" \
				"" \
				"Set both, the sha256 as the 64 lowercase hex digits of the archive's checksum:" \
				"  heroku config:set DYNOSTAT_PYTHON_URL=<archive URL> DYNOSTAT_PYTHON_SHA256=<sha256>" \
				"or unset both to use the buildpack's pinned Python."
			return 1
		fi
		output::detail "Installing a standalone CPython from DYNOSTAT_PYTHON_URL"
	else
		if ! url="$(python::standalone_url "${env_dir}" "${arch}")"; then
			output::error \
				"There is no standalone Python for this machine's architecture." \
				"" \
				"Found: ${arch}" \
				"" \
				"Set DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 to a python-build-standalone" \
				"install_only archive for this architecture."
			return 1
		fi
		sha256="$(python::standalone_sha256 "${env_dir}" "${arch}")"
		output::detail "Installing standalone CPython ${PYTHON_STANDALONE_VERSION} (python-build-standalone ${PYTHON_STANDALONE_RELEASE})"
	fi

	if [[ -n "${cache_dir}" ]]; then
		archive="${cache_dir}/python/${sha256}.tar.gz"
		for stale in "${cache_dir}"/python/*; do
			[[ -e "${stale}" && "${stale}" != "${archive}" ]] && rm -rf -- "${stale}"
		done
	else
		archive="${home}.archive.tar.gz"
	fi
	python::fetch_archive "${url}" "${sha256}" "${archive}" || return 1
	python::extract_standalone "${archive}" "${home}" || status=1
	[[ -n "${cache_dir}" ]] || rm -f -- "${archive}"
	return "${status}"
}

# Links AGENT_DIR/bin/python3 to TARGET: relatively when TARGET sits in the same tree
# (slug or layer), absolutely for a system Python.
# Usage: python::link TARGET AGENT_DIR
function python::link() {
	local target="${1}"
	local agent_dir="${2}"
	local parent link_target
	mkdir -p "${agent_dir}/bin"
	parent="$(realpath -m "${agent_dir}/..")"
	link_target="$(realpath -m -s "${target}")"
	if [[ "${link_target}" == "${parent}/"* ]]; then
		link_target="$(realpath -m -s --relative-to="${agent_dir}/bin" "${link_target}")"
	fi
	ln -sfn -- "${link_target}" "${agent_dir}/bin/python3" || return 1
	[[ -x "${agent_dir}/bin/python3" ]]
}
