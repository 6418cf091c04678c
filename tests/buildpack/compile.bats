#!/usr/bin/env bats
# bin/compile against throwaway BUILD/CACHE/ENV dirs: each way of choosing the agent's Python,
# downloads from a local server, warm rebuilds, and failures that must leave nothing behind.
# Every test compares the whole build output; the steps most builds share are spelled once,
# in setup.

# shellcheck source=tests/buildpack/helpers/common.bash
source "${BATS_TEST_DIRNAME:?}/helpers/common.bash"

setup_file() {
	prepare_wheels
}

setup() {
	make_world
	prepare_wheels
	SERVED_DIR="${BATS_TEST_TMPDIR}/served"
	mkdir -p "${SERVED_DIR}"
	ln -s "${WHEELS_DIR}" "${SERVED_DIR}/wheels"
	start_server "${SERVED_DIR}"
	PIP_FIND_LINKS="${SERVER_URL}/wheels/"
	DESCRIBED_DEPS="certifi 2026.10.19.post1"
	# This machine's architecture, as uname and the build's errors name it.
	MACHINE="$(uname -m)"

	# The start of a build that finds the app's Python in the slug (make_app_python).
	USING_APP_PYTHON="$(printf '%s\n' \
		"-----> dynostat: Choosing a Python for the agent" \
		"       Using the app's Python ${SYSTEM_PYTHON_VERSION} at .heroku/python/bin/python3 (already in the slug)")"
	# The steps after "Choosing a Python for the agent", around the push dependencies' outcome.
	AGENT_STEPS="$(printf '%s\n' \
		"-----> dynostat: Installing the agent" \
		"       Installed the agent into .dynostat/agent" \
		"-----> dynostat: Installing the agent's push dependencies")"
	DEPS_INSTALLED="       Installed ${DESCRIBED_DEPS} for Python ${SYSTEM_PYTHON_MINOR}"
	LAUNCHER_STEP="$(printf '%s\n' \
		"-----> dynostat: Installed the launcher as .profile.d/dynostat.sh" \
		"       It starts one agent per dyno, except on run, release and scheduler dynos" \
		"       Added N MB to the slug")"
	# The start of a heroku-24 build of an app without Python: it needs the standalone CPython.
	NEEDS_STANDALONE="$(printf '%s\n' \
		"-----> dynostat: Choosing a Python for the agent" \
		"       No Python 3.9+ in the slug, and the heroku-24 stack's run image has no Python")"
}

teardown() {
	kill_recorded_processes
}

# Makes PATH a python3 with a pip of its own: a virtual environment's, made once per run. A
# script, not a link: Python finds its environment from the path it was started by.
# Usage: make_python_with_pip PATH
make_python_with_pip() {
	local path="${1}"
	local venv="${BATS_RUN_TMPDIR:?}/python-with-pip"
	if [[ ! -f "${venv}/.complete" ]]; then
		rm -rf "${venv}"
		"${SYSTEM_PYTHON}" -m venv "${venv}"
		touch "${venv}/.complete"
	fi
	rm -f "${path}"
	write_script "${path}" "exec ${venv}/bin/python3 \"\$@\""
}

# Makes the build's uname say ARCH for the machine's architecture.
# Usage: stand_in_uname ARCH
stand_in_uname() {
	local arch="${1}"
	write_script "${TOOLS_DIR}/uname" \
		"if [ \"\$1\" = -m ]; then echo ${arch}; else exec /usr/bin/uname \"\$@\"; fi"
}

# Serves an archive made of DIRECTORY's ENTRY as SERVED_DIR/NAME, and names it, with its
# sha256, as the build's DYNOSTAT_PYTHON_URL mirror.
# Usage: serve_tree_as_mirror NAME DIRECTORY ENTRY
serve_tree_as_mirror() {
	local name="${1}"
	local directory="${2}"
	local entry="${3}"
	tar -C "${directory}" -czf "${SERVED_DIR}/${name}" "${entry}"
	serve_as_mirror "${name}"
}

# Points the build at a python-build-standalone shaped archive on the local server.
serve_standalone() {
	"${SYSTEM_PYTHON}" "${HELPERS_DIR}/standalone_archive.py" "${SERVED_DIR}/python.tar.gz" >/dev/null
	serve_as_mirror python.tar.gz
}

# Names SERVED_DIR/NAME, with its sha256 in STANDALONE_SHA256, as the build's
# DYNOSTAT_PYTHON_URL mirror.
# Usage: serve_as_mirror NAME
serve_as_mirror() {
	local name="${1}"
	STANDALONE_SHA256="$(sha256sum "${SERVED_DIR}/${name}")"
	STANDALONE_SHA256="${STANDALONE_SHA256%% *}"
	echo "${SERVER_URL}/${name}" >"${ENV_DIR}/DYNOSTAT_PYTHON_URL"
	echo "${STANDALONE_SHA256}" >"${ENV_DIR}/DYNOSTAT_PYTHON_SHA256"
}

# Names a mirror at URL whose checksum the build never gets to check.
# Usage: name_unchecked_mirror URL
name_unchecked_mirror() {
	local url="${1}"
	echo "${url}" >"${ENV_DIR}/DYNOSTAT_PYTHON_URL"
	echo "1111111111111111111111111111111111111111111111111111111111111111" >"${ENV_DIR}/DYNOSTAT_PYTHON_SHA256"
}

# The error of a build whose download from URL has sha256 GOT instead of EXPECTED.
# Usage: sha256_error URL EXPECTED GOT
sha256_error() {
	local url="${1}"
	local expected="${2}"
	local got="${3}"
	cat <<-EOF

		 !     The downloaded Python does not match its expected sha256.
		 !
		 !     URL:      ${url}
		 !     Expected: ${expected}
		 !     Got:      ${got}
		 !
		 !     If DYNOSTAT_PYTHON_URL names a mirror, set DYNOSTAT_PYTHON_SHA256 to the sha256 of
		 !     that exact file; otherwise the download was corrupted or tampered with: build again.
		 !     Nothing was installed or cached.
	EOF
}

# The error of a build whose download from URL failed with CURL_ERROR.
# Usage: download_error URL CURL_ERROR
download_error() {
	local url="${1}"
	local curl_error="${2}"
	cat <<-EOF

		 !     Could not download the Python the agent needs.
		 !
		 !     URL: ${url}
		 !     ${curl_error}
		 !
		 !     Check that the URL is reachable from the build (DYNOSTAT_PYTHON_URL names a
		 !     mirror when set), then build again. Nothing was installed or cached.
	EOF
}

# Runs compile_app STACK and prints its output with the slug size, which varies with the
# machine's Python, made stable; returns the build's status.
# Usage: compile_normalised STACK
compile_normalised() {
	local stack="${1}"
	local built status=0
	built="$(compile_app "${stack}" 2>&1)" || status="$?"
	sed -E 's/^(       Added )[0-9]+\.[0-9] MB to the slug$/\1N MB to the slug/' <<<"${built}"
	return "${status}"
}

# Lists the files and links under DIRECTORY, relative to it, in a stable order.
# Usage: sorted_files DIRECTORY
sorted_files() {
	local directory="${1}"
	local listing
	listing="$(cd "${directory}" && find . -mindepth 1 -not -type d)"
	LC_ALL=C sort <<<"${listing//.\//}"
}

# Fails unless the build left no trace of itself in BUILD_DIR, no partial file in the cache,
# and HOME and TMPDIR as empty as it found them.
assert_nothing_installed() {
	run find "${BUILD_DIR}" -mindepth 1 -path "${BUILD_DIR}/.heroku" -prune -o -print
	assert_success
	assert_output ""
	run find "${CACHE_DIR}" -name '*.partial*' -o -name '*.tar.gz' -o -name '*curl*'
	assert_success
	assert_output ""
	assert_nothing_written_outside
}

# Builds with the mirror's archive NAME, which downloads and verifies but cannot be used, and
# fails unless the build prints the error given on stdin after the download and installs
# nothing.
# Usage: assert_archive_refused NAME <<-EOF ... EOF
assert_archive_refused() {
	local name="${1}"
	local error
	error="$(cat)"
	run -1 compile_app heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Downloading ${SERVER_URL}/${name}
		       Verified sha256 ${STANDALONE_SHA256}
		${error}
	EOF
	assert [ ! -e "${BUILD_DIR}/.dynostat" ]
	assert [ ! -e "${BUILD_DIR}/.dynostat.partial" ]
	assert_nothing_written_outside
}

@test "compile reuses the app's own Python from the slug and installs agent, push dependencies and launcher" {
	make_app_python
	run -0 compile_normalised heroku-24
	assert_output - <<-EOF
		${USING_APP_PYTHON}
		${AGENT_STEPS}
		${DEPS_INSTALLED}
		${LAUNCHER_STEP}
	EOF
	run -0 readlink "${BUILD_DIR}/.dynostat/bin/python3"
	assert_output "../../.heroku/python/bin/python3"
	cmp "${REPO_DIR}/vendor/profile.d/dynostat.sh" "${BUILD_DIR}/.profile.d/dynostat.sh"
	cmp "${REPO_DIR}/vendor/dynostat-launcher.sh" "${BUILD_DIR}/.dynostat/launcher.sh"
	cmp "${REPO_DIR}/agent/dynostat/sample.py" "${BUILD_DIR}/.dynostat/agent/dynostat/sample.py"
	cmp "${REPO_DIR}/agent/dynostat-agent" "${BUILD_DIR}/.dynostat/agent/dynostat-agent"
	run find "${BUILD_DIR}/.dynostat/agent" -name 'test*'
	assert_output ""
	# Compiled at build time by the Python that runs the agent, none carried from the buildpack.
	run -0 find "${BUILD_DIR}/.dynostat/agent/dynostat/__pycache__" -name "cli.cpython-${SYSTEM_PYTHON_MINOR/./}.pyc"
	assert_output --partial "cli.cpython-"
	assert [ -f "${BUILD_DIR}/.dynostat/run/agent.lock" ]
	assert [ ! -e "${BUILD_DIR}/.dynostat/vendor/bin" ]
	assert_nothing_written_outside

	# The slug moves from the build directory to /app: everything must still resolve.
	mv "${BUILD_DIR}" "${WORLD}/moved"
	run -0 env -i PYTHONPATH="${WORLD}/moved/.dynostat/agent:${WORLD}/moved/.dynostat/vendor" \
		"${WORLD}/moved/.dynostat/bin/python3" -c 'import dynostat, dynostat.push.transport, certifi; print(certifi.__version__)'
	assert_output "2026.10.19"
}

@test "compile does not use an app Python older than 3.9 and uses the heroku-22 run image's Python instead" {
	write_script "${BUILD_DIR}/.heroku/python/bin/python3" "echo 3.8.18"
	run -0 compile_normalised heroku-22
	assert_output - <<-EOF
		-----> dynostat: Choosing a Python for the agent
		       Not using the app's Python at .heroku/python/bin/python3: 3.8.18, the agent needs 3.9+
		       Using the heroku-22 run image's Python ${SYSTEM_PYTHON_VERSION} at ${SYSTEM_PYTHON} (on every dyno of this stack)
		${AGENT_STEPS}
		${DEPS_INSTALLED}
		${LAUNCHER_STEP}
	EOF
	run -0 readlink "${BUILD_DIR}/.dynostat/bin/python3"
	assert_output "${SYSTEM_PYTHON}"
	assert_nothing_written_outside
}

@test "compile installs push dependencies for the pip-less heroku-22 run image's Python with the build image's pip" {
	hide_system_pip
	# The build image's python3 keeps a pip of its own, as heroku-22's build image does.
	make_python_with_pip "${TOOLS_DIR}/python3"
	run -0 compile_normalised heroku-22
	assert_output - <<-EOF
		-----> dynostat: Choosing a Python for the agent
		       Using the heroku-22 run image's Python ${SYSTEM_PYTHON_VERSION} at ${SYSTEM_PYTHON} (on every dyno of this stack)
		${AGENT_STEPS}
		${DEPS_INSTALLED}
		${LAUNCHER_STEP}
	EOF
	# Installed for another interpreter: no bytecode compiled by the build image's Python.
	run find "${BUILD_DIR}/.dynostat/vendor" -name '*.pyc'
	assert_output ""
	run -0 env -i PYTHONPATH="${BUILD_DIR}/.dynostat/vendor" "${BUILD_DIR}/.dynostat/bin/python3" \
		-c 'import certifi; print(certifi.__version__)'
	assert_output "2026.10.19"
	assert_nothing_written_outside
}

@test "compile warns that pushing is unavailable when no pip exists at build time, and still succeeds" {
	hide_system_pip
	run -0 compile_normalised heroku-22
	assert_output - <<-EOF
		-----> dynostat: Choosing a Python for the agent
		       Using the heroku-22 run image's Python ${SYSTEM_PYTHON_VERSION} at ${SYSTEM_PYTHON} (on every dyno of this stack)
		${AGENT_STEPS}

		 !     Pushing metrics (DYNOSTAT_URL) will not work in this app.
		 !     The Python ${SYSTEM_PYTHON_VERSION} the agent runs on has no pip, and neither does this build image,
		 !     so the push dependencies could not be installed. Log lines are not affected.
		 !     To push metrics, put a Python with pip in the slug before this buildpack runs
		 !     (e.g. heroku/python), or set DYNOSTAT_PYTHON_URL/DYNOSTAT_PYTHON_SHA256.

		${LAUNCHER_STEP}
	EOF
	assert [ ! -e "${BUILD_DIR}/.dynostat/vendor" ]
	assert [ -d "${BUILD_DIR}/.dynostat/agent/dynostat" ]
	assert_nothing_written_outside
}

@test "compile warns that pushing is unavailable when pip cannot install the push dependencies, and still succeeds" {
	mkdir -p "${SERVED_DIR}/no-wheels"
	PIP_FIND_LINKS="${SERVER_URL}/no-wheels/"
	make_app_python
	run -0 compile_normalised heroku-24
	assert_output - <<-EOF
		${USING_APP_PYTHON}
		${AGENT_STEPS}

		 !     Pushing metrics (DYNOSTAT_URL) will not work in this app.
		 !     pip could not install ${DESCRIBED_DEPS}:
		 !     ERROR: Could not find a version that satisfies the requirement certifi==2026.10.19.post1 (from versions: none)
		 !     ERROR: No matching distribution found for certifi==2026.10.19.post1
		 !     Log lines are not affected. Build again to retry.

		${LAUNCHER_STEP}
	EOF
	assert [ ! -e "${BUILD_DIR}/.dynostat/vendor" ]
	run -0 find "${CACHE_DIR}/dynostat" -path '*/vendor/*'
	assert_output ""
	assert_nothing_written_outside
}

@test "compile installs a pruned standalone CPython when neither slug nor run image has Python, and a warm rebuild downloads nothing" {
	serve_standalone
	run -0 compile_normalised heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Downloading ${SERVER_URL}/python.tar.gz
		       Verified sha256 ${STANDALONE_SHA256}
		       Installed CPython ${SYSTEM_PYTHON_VERSION}, pruned to what the agent needs
		${AGENT_STEPS}
		${DEPS_INSTALLED}
		${LAUNCHER_STEP}
	EOF
	run -0 readlink "${BUILD_DIR}/.dynostat/bin/python3"
	assert_output "../python/bin/python3"
	# What is left of the standalone tree: the interpreter and the stdlib the agent imports.
	run -0 sorted_files "${BUILD_DIR}/.dynostat/python"
	assert_output - <<-EOF
		bin/python3
		bin/python3.11
		lib/python3.11/json/__init__.py
		lib/python3.11/lib-dynload/_ssl.so
	EOF
	assert_nothing_written_outside
	run -0 grep -c '^/python.tar.gz$' "${SERVER_LOG}"
	assert_output "1"
	run -0 grep -c '^/wheels/.*\.whl$' "${SERVER_LOG}"
	assert_output "1"

	local requests_before
	requests_before="$(wc -l <"${SERVER_LOG}")"
	run -0 compile_normalised heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Using the cached download of ${SERVER_URL}/python.tar.gz
		       Installed CPython ${SYSTEM_PYTHON_VERSION}, pruned to what the agent needs
		${AGENT_STEPS}
		       Reused ${DESCRIBED_DEPS} from the build cache
		${LAUNCHER_STEP}
	EOF
	run -0 wc -l <"${SERVER_LOG}"
	assert_output "${requests_before}"
	run -0 env -i PYTHONPATH="${BUILD_DIR}/.dynostat/agent:${BUILD_DIR}/.dynostat/vendor" \
		"${BUILD_DIR}/.dynostat/bin/python3" -c 'import dynostat, dynostat.push.transport, certifi; print(certifi.__version__)'
	assert_output "2026.10.19"
	assert_nothing_written_outside
}

@test "compile accepts a mirror checksum copied in upper case" {
	serve_standalone
	echo "${STANDALONE_SHA256^^}" >"${ENV_DIR}/DYNOSTAT_PYTHON_SHA256"
	run -0 compile_app heroku-24
	assert_line "       Verified sha256 ${STANDALONE_SHA256}"
	run -0 readlink "${BUILD_DIR}/.dynostat/bin/python3"
	assert_output "../python/bin/python3"
}

@test "without a mirror, compile fetches the pinned install_only_stripped release for each architecture and checks its pinned sha256" {
	# A curl that writes a file which is not the pinned archive, so the test needs no network;
	# and a uname for each architecture, so it runs on any machine.
	local stand_in="${BATS_TEST_TMPDIR}/stand-in.tar.gz"
	echo "not the pinned archive" >"${stand_in}"
	local stand_in_sha256
	stand_in_sha256="$(sha256sum "${stand_in}")"
	stand_in_sha256="${stand_in_sha256%% *}"
	write_script "${TOOLS_DIR}/curl" \
		"while [ \"\$#\" -gt 1 ]; do [ \"\$1\" = --output ] && cp ${stand_in} \"\$2\"; shift; done"
	local release="https://github.com/astral-sh/python-build-standalone/releases/download/20260814"
	local pin arch pinned_sha256 url error
	for pin in "x86_64 5acfa3e9ba26b51ae161c83aff278da915b590d22373a424b2ba55b8afe91fcc" \
		"aarch64 2d8e17dfd732102cfeb18e0e1fa6769b24caa034e159981129590fe409c7157a"; do
		read -r arch pinned_sha256 <<<"${pin}"
		url="${release}/cpython-3.12.14%2B20260814-${arch}-unknown-linux-gnu-install_only_stripped.tar.gz"
		error="$(sha256_error "${url}" "${pinned_sha256}" "${stand_in_sha256}")"
		stand_in_uname "${arch}"
		run -1 compile_app heroku-24
		assert_output - <<-EOF
			${NEEDS_STANDALONE}
			       Installing standalone CPython 3.12.14 (python-build-standalone 20260814)
			       Downloading ${url}
			${error}
		EOF
		assert_nothing_installed
	done
}

@test "compile fails clearly on a wrong checksum, installs nothing and caches nothing" {
	serve_standalone
	local wrong_sha256="0000000000000000000000000000000000000000000000000000000000000000"
	echo "${wrong_sha256}" >"${ENV_DIR}/DYNOSTAT_PYTHON_SHA256"
	local error
	error="$(sha256_error "${SERVER_URL}/python.tar.gz" "${wrong_sha256}" "${STANDALONE_SHA256}")"
	run -1 compile_app heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Downloading ${SERVER_URL}/python.tar.gz
		${error}
	EOF
	assert_nothing_installed
}

@test "compile fails clearly when the Python download is not found, installs nothing and caches nothing" {
	name_unchecked_mirror "${SERVER_URL}/missing.tar.gz"
	local error
	error="$(download_error "${SERVER_URL}/missing.tar.gz" "curl: (22) The requested URL returned error: 404")"
	run -1 compile_app heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Downloading ${SERVER_URL}/missing.tar.gz
		${error}
	EOF
	assert_nothing_installed
}

@test "compile fails clearly when the Python download is cut short, installs nothing and caches nothing" {
	serve_standalone
	echo "${SERVER_URL}/truncated/python.tar.gz" >"${ENV_DIR}/DYNOSTAT_PYTHON_URL"
	local error
	# curl words the short transfer with the byte count left, which depends on the archive.
	error="$(download_error "${SERVER_URL}/truncated/python.tar.gz" "curl: (18) transfer closed with N bytes remaining to read")"
	run -1 compile_app heroku-24
	run -0 sed -E 's/with [0-9]+ bytes remaining to read/with N bytes remaining to read/' <<<"${output}"
	assert_output - <<-EOF
		${NEEDS_STANDALONE}
		       Installing a standalone CPython from DYNOSTAT_PYTHON_URL
		       Downloading ${SERVER_URL}/truncated/python.tar.gz
		${error}
	EOF
	assert_nothing_installed
}

@test "compile keeps the previous build's agent when a rebuild fails" {
	make_app_python
	run -0 compile_app heroku-24
	rm -rf "${BUILD_DIR:?}/.heroku"
	name_unchecked_mirror "${SERVER_URL}/missing.tar.gz"
	run -1 compile_app heroku-24
	assert [ ! -e "${BUILD_DIR}/.dynostat.partial" ]
	assert [ -d "${BUILD_DIR}/.dynostat/agent/dynostat" ]
}

@test "compile refuses a mirror URL without its checksum and never prints the URL's credentials" {
	echo "http://builder:s3cr3t@127.0.0.1:9/python.tar.gz?token=t0ps3cr3t" >"${ENV_DIR}/DYNOSTAT_PYTHON_URL"
	run -1 compile_app heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}

		 !     DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 must be set together.
		 !
		 !     Found: DYNOSTAT_PYTHON_URL=http://***@127.0.0.1:9/python.tar.gz DYNOSTAT_PYTHON_SHA256=(unset)
		 !
		 !     Set both, the sha256 as the 64 lowercase hex digits of the archive's checksum:
		 !       heroku config:set DYNOSTAT_PYTHON_URL=<archive URL> DYNOSTAT_PYTHON_SHA256=<sha256>
		 !     or unset both to use the buildpack's pinned Python.
	EOF
	refute_output --partial "s3cr3t"
	assert_nothing_installed
}

@test "compile hides a mirror's credentials in download errors" {
	name_unchecked_mirror "http://builder:s3cr3t@127.0.0.1:${SERVER_URL##*:}/missing.tar.gz"
	run -1 compile_app heroku-24
	assert_line "       Downloading http://***@127.0.0.1:${SERVER_URL##*:}/missing.tar.gz"
	assert_line " !     URL: http://***@127.0.0.1:${SERVER_URL##*:}/missing.tar.gz"
	refute_output --partial "s3cr3t"
}

@test "compile fails clearly when the mirror's archive is not an install_only archive, and installs nothing" {
	write_script "${BATS_TEST_TMPDIR}/flat/bin/python3" "exec ${SYSTEM_PYTHON} \"\$@\""
	serve_tree_as_mirror flat.tar.gz "${BATS_TEST_TMPDIR}/flat" bin
	assert_archive_refused flat.tar.gz <<-EOF

		 !     The Python archive is not a python-build-standalone install_only archive.
		 !
		 !     It does not unpack to python/bin/python3.
		 !
		 !     Point DYNOSTAT_PYTHON_URL at an install_only or install_only_stripped .tar.gz
		 !     for ${MACHINE} Linux (gnu), or unset it to use the buildpack's pinned Python.
	EOF
}

@test "compile fails clearly when the mirror's Python is older than 3.9, and installs nothing" {
	write_script "${BATS_TEST_TMPDIR}/old/python/bin/python3" "echo 3.8.18"
	serve_tree_as_mirror old.tar.gz "${BATS_TEST_TMPDIR}/old" python
	assert_archive_refused old.tar.gz <<-EOF

		 !     The downloaded Python does not run here, or is older than 3.9.
		 !
		 !     Found: 3.8.18
		 !
		 !     Point DYNOSTAT_PYTHON_URL at a CPython 3.9 or newer build for ${MACHINE} Linux (gnu),
		 !     or unset it to use the buildpack's pinned Python.
	EOF
}

@test "compile fails clearly on a machine whose architecture has no pinned CPython" {
	stand_in_uname riscv64
	run -1 compile_app heroku-24
	assert_output - <<-EOF
		${NEEDS_STANDALONE}

		 !     There is no standalone Python for this machine's architecture.
		 !
		 !     Found: riscv64
		 !
		 !     Set DYNOSTAT_PYTHON_URL and DYNOSTAT_PYTHON_SHA256 to a python-build-standalone
		 !     install_only archive for this architecture.
	EOF
	assert_nothing_installed
	run -0 cat "${SERVER_LOG}"
	assert_output ""
}
