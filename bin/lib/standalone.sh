#!/usr/bin/env bash
# The standalone CPython the agent runs on when neither the slug nor the run image has a
# Python for it: which archive (the buildpack's pin, or the mirror an app names with
# DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256), and installing it, pruned, from the
# verified download.

# shellcheck disable=SC2310 # these functions return a status for callers to test on purpose

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# The pinned python-build-standalone release, taken from uv's
# crates/uv-python/download-metadata.json (entries cpython-3.12.14-linux-<arch>-gnu), which
# records the release assets with their sha256. install_only_stripped is the smallest flavour
# that keeps a full standard library.
readonly STANDALONE_VERSION="3.12.14"
readonly STANDALONE_RELEASE="20260814"

# Prints "SHA256 URL" of the pinned archive for a machine architecture as `uname -m` names
# it. Returns 1 for an architecture without a pin.
# Usage: standalone::pin ARCH
function standalone::pin() {
	local arch="${1}"
	local base="https://github.com/astral-sh/python-build-standalone/releases/download/${STANDALONE_RELEASE}"
	local asset="cpython-${STANDALONE_VERSION}%2B${STANDALONE_RELEASE}-${arch}-unknown-linux-gnu-install_only_stripped.tar.gz"
	case "${arch}" in
	x86_64) echo "5acfa3e9ba26b51ae161c83aff278da915b590d22373a424b2ba55b8afe91fcc ${base}/${asset}" ;;
	aarch64) echo "2d8e17dfd732102cfeb18e0e1fa6769b24caa034e159981129590fe409c7157a ${base}/${asset}" ;;
	*) return 1 ;;
	esac
}

# Prints "SHA256 URL" of the archive to install for ARCH: the mirror when either of
# MIRROR_URL and MIRROR_SHA256 is set, else the pin. Says why on stderr and returns 1 when
# only one of the two is set, or ARCH has no pin.
# Usage: standalone::archive MIRROR_URL MIRROR_SHA256 ARCH
function standalone::archive() {
	local mirror_url="${1}"
	# Checksums are often copied in upper case; sha256sum prints lower case.
	local mirror_sha256="${2,,}"
	local arch="${3}"
	local shown_url

	if [[ -z "${mirror_url}" && -z "${mirror_sha256}" ]]; then
		standalone::pin "${arch}" && return 0
		output::error <<-EOF
			There is no standalone Python for this machine's architecture.

			Found: ${arch}

			Set DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 to a python-build-standalone
			install_only archive for this architecture.
		EOF
		return 1
	fi
	if [[ -z "${mirror_url}" || ! "${mirror_sha256}" =~ ^[0-9a-f]{64}$ ]]; then
		shown_url="$(download::redact_url "${mirror_url:-(unset)}")"
		output::error <<-EOF
			DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 must be set together.

			Found: DYNOSTAT_PYTHON_URL=${shown_url} DYNOSTAT_PYTHON_SHA256=${mirror_sha256:-(unset)}

			Set both, the sha256 as the 64 lowercase hex digits of the archive's checksum:
			  heroku config:set DYNOSTAT_PYTHON_URL=<archive URL> DYNOSTAT_PYTHON_SHA256=<sha256>
			or unset both to use the buildpack's pinned Python.
		EOF
		return 1
	fi
	echo "${mirror_sha256} ${mirror_url}"
}

# Installs the standalone CPython for ARCH at HOME, from the archive standalone::archive
# chooses. With CACHE_DIR the archive is kept there under its sha256 (other cached archives
# are removed, so the cache stays small) and the next build downloads nothing; without it
# the archive is removed once extracted.
# Usage: standalone::install MIRROR_URL MIRROR_SHA256 ARCH HOME [CACHE_DIR]
function standalone::install() {
	local mirror_url="${1}"
	local mirror_sha256="${2}"
	local arch="${3}"
	local home="${4}"
	local cache_dir="${5:-}"
	local archive sha256 url archive_file stale version status=0

	archive="$(standalone::archive "${mirror_url}" "${mirror_sha256}" "${arch}")" || return 1
	sha256="${archive%% *}"
	url="${archive#* }"
	if [[ -n "${mirror_url}" ]]; then
		output::detail "Installing a standalone CPython from DYNOSTAT_PYTHON_URL"
	else
		output::detail "Installing standalone CPython ${STANDALONE_VERSION} (python-build-standalone ${STANDALONE_RELEASE})"
	fi

	if [[ -n "${cache_dir}" ]]; then
		archive_file="${cache_dir}/python/${sha256}.tar.gz"
		for stale in "${cache_dir}"/python/*; do
			[[ -e "${stale}" && "${stale}" != "${archive_file}" ]] && rm -rf -- "${stale}"
		done
	else
		archive_file="${home}.archive.tar.gz"
	fi
	download::fetch "${url}" "${sha256}" "${archive_file}" || return 1
	standalone::extract "${archive_file}" "${home}" "${arch}" || status=1
	[[ -n "${cache_dir}" ]] || rm -f -- "${archive_file}"
	((status == 0)) || return 1

	version="$(python::version "${home}/bin/python3")"
	output::detail "Installed CPython ${version}, pruned to what the agent needs"
}

# Extracts a python-build-standalone install_only ARCHIVE so that HOME/bin/python3 exists,
# prunes it, and checks that it runs and is new enough. Works in a sibling directory and
# moves it into place at the end, so a failure leaves nothing at HOME.
# Usage: standalone::extract ARCHIVE HOME ARCH
function standalone::extract() {
	local archive="${1}"
	local home="${2}"
	local arch="${3}"
	local unpack="${home}.partial"
	local version

	rm -rf -- "${unpack}" "${home}"
	mkdir -p -- "${unpack}"
	if ! tar -xzf "${archive}" -C "${unpack}" 2>/dev/null || [[ ! -x "${unpack}/python/bin/python3" ]]; then
		rm -rf -- "${unpack}"
		output::error <<-EOF
			The Python archive is not a python-build-standalone install_only archive.

			It does not unpack to python/bin/python3.

			Point DYNOSTAT_PYTHON_URL at an install_only or install_only_stripped .tar.gz
			for ${arch} Linux (gnu), or unset it to use the buildpack's pinned Python.
		EOF
		return 1
	fi
	prune::unused "${unpack}/python"
	if ! version="$(python::version "${unpack}/python/bin/python3")" || ! python::is_supported "${version}"; then
		rm -rf -- "${unpack}"
		output::error <<-EOF
			The downloaded Python does not run here, or is older than 3.9.

			Found: ${version:-an interpreter that failed to start}

			Point DYNOSTAT_PYTHON_URL at a CPython 3.9 or newer build for ${arch} Linux (gnu),
			or unset it to use the buildpack's pinned Python.
		EOF
		return 1
	fi
	mv -- "${unpack}/python" "${home}"
	rmdir -- "${unpack}"
}
