#!/usr/bin/env bash
# Downloading the standalone CPython's archive: nothing is used before its sha256 matches, a
# matching copy in the build cache is used instead of downloading, and a URL's credentials
# never reach the build log.

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Makes ARCHIVE a verified copy of URL: keeps it when its sha256 already matches, otherwise
# downloads it next to ARCHIVE and moves it into place only once the checksum matches. On any
# failure nothing is left at ARCHIVE or beside it.
# Usage: download::fetch URL SHA256 ARCHIVE
function download::fetch() {
	local url="${1}"
	local expected_sha256="${2}"
	local archive="${3}"
	local partial="${archive}.partial"
	local curl_log="${archive}.curl-log"
	local shown_url curl_error actual_sha256

	shown_url="$(download::redact_url "${url}")"
	if [[ -f "${archive}" ]]; then
		actual_sha256="$(download::sha256 "${archive}")"
		if [[ "${actual_sha256}" == "${expected_sha256}" ]]; then
			output::detail "Using the cached download of ${shown_url}"
			return 0
		fi
		# A cached file that no longer matches is worthless; fetch it again.
		rm -f -- "${archive}"
	fi

	mkdir -p -- "${archive%/*}"
	output::detail "Downloading ${shown_url}"
	if ! curl --fail --silent --show-error --location \
		--proto '=http,https' --proto-redir '=http,https' \
		--retry 3 --retry-connrefused --retry-delay 1 \
		--connect-timeout 10 --max-time 600 \
		--output "${partial}" "${url}" 2>"${curl_log}"; then
		curl_error="$(download::last_curl_error "${curl_log}" "${url}" "${shown_url}")"
		rm -f -- "${partial}" "${curl_log}"
		output::error <<-EOF
			Could not download the Python the agent needs.

			URL: ${shown_url}
			${curl_error}

			Check that the URL is reachable from the build (DYNOSTAT_PYTHON_URL names a
			mirror when set), then build again. Nothing was installed or cached.
		EOF
		return 1
	fi
	rm -f -- "${curl_log}"

	actual_sha256="$(download::sha256 "${partial}")"
	if [[ "${actual_sha256}" != "${expected_sha256}" ]]; then
		rm -f -- "${partial}"
		output::error <<-EOF
			The downloaded Python does not match its expected sha256.

			URL:      ${shown_url}
			Expected: ${expected_sha256}
			Got:      ${actual_sha256}

			If DYNOSTAT_PYTHON_URL names a mirror, set DYNOSTAT_PYTHON_SHA256 to the sha256 of
			that exact file; otherwise the download was corrupted or tampered with: build again.
			Nothing was installed or cached.
		EOF
		return 1
	fi
	mv -f -- "${partial}" "${archive}" || return 1
	output::detail "Verified sha256 ${expected_sha256}"
}

# Prints the sha256 of FILE as lowercase hex.
# Usage: download::sha256 FILE
function download::sha256() {
	local file="${1}"
	local sum
	sum="$(sha256sum <"${file}")"
	echo "${sum%% *}"
}

# Shows URL without credentials or query string, so a mirror's secrets never reach the
# build log.
# Usage: download::redact_url URL
function download::redact_url() {
	local url="${1%%\?*}"
	local scheme rest
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

# Prints the last line curl wrote to LOG, with URL shown as SHOWN_URL (without credentials).
# Usage: download::last_curl_error LOG URL SHOWN_URL
function download::last_curl_error() {
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
