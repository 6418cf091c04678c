#!/usr/bin/env bats
# bin/detect, bin/release and buildpack.toml: what the build system reads before and after
# bin/compile.

# shellcheck source=tests/buildpack/helpers/common.bash
source "${BATS_TEST_DIRNAME:?}/helpers/common.bash"

setup() {
	make_world
}

# Runs bin/detect as a CNB lifecycle does, for a target of architecture ARCH (as CNB names it).
# Usage: cnb_detect ARCH
cnb_detect() {
	local arch="${1}"
	mkdir -p "${WORLD}/platform"
	env -i PATH="${BUILD_PATH}" CNB_BUILDPACK_DIR="${REPO_DIR}" CNB_PLATFORM_DIR="${WORLD}/platform" \
		CNB_BUILD_PLAN_PATH="${WORLD}/plan.toml" CNB_TARGET_OS=linux CNB_TARGET_ARCH="${arch}" \
		bash "${REPO_DIR}/bin/detect" "${WORLD}/platform" "${WORLD}/plan.toml"
}

@test "detect passes for an app with no files at all and names the buildpack" {
	run -0 env -i PATH="${BUILD_PATH}" bash "${REPO_DIR}/bin/detect" "${BUILD_DIR}"
	assert_output "dynostat"
}

@test "detect passes for an app in another language" {
	echo 'source "https://rubygems.org"' >"${BUILD_DIR}/Gemfile"
	echo '{}' >"${BUILD_DIR}/package.json"
	run -0 env -i PATH="${BUILD_PATH}" bash "${REPO_DIR}/bin/detect" "${BUILD_DIR}"
	assert_output "dynostat"
}

@test "detect serves the CNB API when the lifecycle's variables are set: 0 on amd64 and arm64, 100 on a target without CPython" {
	run -0 cnb_detect amd64
	assert_output "dynostat"
	run -0 cnb_detect arm64
	assert_output "dynostat"
	run -100 cnb_detect s390x
	assert_output "dynostat: no CPython for linux/s390x; dynostat runs on linux amd64 and arm64"
}

@test "release prints a YAML mapping with no default process types and no add-ons" {
	run -0 env -i PATH="${BUILD_PATH}" bash "${REPO_DIR}/bin/release" "${BUILD_DIR}"
	assert_output "--- {}"
	# Parsed as YAML's JSON-compatible subset: an empty mapping after the document marker.
	run -0 "${SYSTEM_PYTHON}" -c 'import json, sys; print(json.loads(sys.argv[1].removeprefix("---").strip()))' "${output}"
	assert_output "{}"
}

@test "buildpack.toml is valid TOML that keeps tests, dev files and the report out of published releases" {
	run -0 "${SYSTEM_PYTHON}" - "${REPO_DIR}/buildpack.toml" <<-'PY'
		import sys, tomllib
		with open(sys.argv[1], "rb") as f:
		    data = tomllib.load(f)
		print(data["api"], data["buildpack"]["name"])
		print(" ".join(data["publish"]["Ignore"]["files"]))
	PY
	assert_line --index 0 "0.10 dynostat"
	assert_line --index 1 ".ci/ .github/ .gitignore .venv-test/ bench/ pyproject.toml report/ tests/"
}
