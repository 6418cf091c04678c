#!/usr/bin/env bash
# Slimming the standalone CPython down to what the agent loads, so the slug carries no more
# than the agent needs.

# Lets shellcheck know the options every caller runs these functions under.
set -euo pipefail

# Removes what the agent never loads from the standalone CPython at HOME: tests, GUI toolkits,
# headers, static libraries, man pages, build-time configuration and the extra command-line
# tools. pip stays until prune::pip, because the build may still need it.
# Usage: prune::unused HOME
function prune::unused() {
	local home="${1}"
	local stdlib entry

	# A pattern that matches nothing stays as it is, names no file, and rm -f passes over it.
	rm -rf -- "${home}/include" "${home}/share" "${home}/lib/pkgconfig" "${home}"/lib/*.a \
		"${home}"/lib/libtcl* "${home}"/lib/libtk* "${home}"/lib/tcl* "${home}"/lib/tk* \
		"${home}"/lib/itcl* "${home}"/lib/thread*
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
		rm -f -- "${stdlib}"/lib-dynload/_tkinter* "${stdlib}"/lib-dynload/_test* \
			"${stdlib}"/lib-dynload/_ctypes_test* "${stdlib}"/lib-dynload/xxlimited* \
			"${stdlib}"/lib-dynload/_xxtestfuzz*
	done
}

# Removes pip from the standalone CPython at HOME once the build no longer needs it: nothing
# installs packages on a dyno.
# Usage: prune::pip HOME
function prune::pip() {
	local home="${1}"
	rm -rf -- "${home}"/lib/python3.*/site-packages/pip "${home}"/lib/python3.*/site-packages/pip-*.dist-info
}
