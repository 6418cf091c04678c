# shellcheck shell=bash
# dynostat: starts the dyno's metrics agent. Installed by the dynostat buildpack; every dyno's
# `bash --login` sources this file before running the dyno's command.
#
# Being sourced into the app's shell, it keeps to a function with local variables, removes its
# functions again, never exits and never fails, and prints nothing: the agent writes its own
# log lines. See DYNOSTAT_DISABLE and DYNOSTAT_PROCESS_TYPES in the README.

dynostat_profile_d() {
	local profile_dir="${BASH_SOURCE[0]%/*}"
	local home

	[[ "${profile_dir}" != "${BASH_SOURCE[0]}" ]] || profile_dir="."
	[[ "${profile_dir}" == /* ]] || profile_dir="${PWD}/${profile_dir}"
	home="${profile_dir}/../.dynostat"

	[[ -r "${home}/launcher.sh" ]] || return 0
	# shellcheck source=vendor/dynostat-launcher.sh
	source "${home}/launcher.sh" || return 0
	dynostat::launch "${home}/agent:${home}/vendor" "${home}/bin/python3" "${home}/run/agent.lock"
	unset -f dynostat::launch
	return 0
}

dynostat_profile_d
unset -f dynostat_profile_d
