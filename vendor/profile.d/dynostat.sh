# shellcheck shell=bash
# dynostat: starts the dyno's metrics agent. Installed by the dynostat buildpack; every dyno's
# login shell sources this file before running the dyno's command.
#
# It is sourced into the app's own shell, whose state is the app's: POSIX mode, set -euxo
# pipefail, noclobber, readonly variables, aliases and functions named like any command
# (exported or not), traps on ERR, DEBUG and RETURN, odd IFS, CDPATH and GLOBIGNORE. So this
# file is one line that sets no variable, defines no function and calls no command by a name
# the app could redefine. It runs the launcher (.dynostat/launcher.sh, next to this directory)
# in a child process of its own, a fresh `bash -p`, and that does the work:
# - `( ... )` is an operator, which no alias can replace, and the words are quoted, which no
#   alias can match; the program is named by its path.
# - Inside the child, stdout and stderr are /dev/null, so that xtrace (or the trace fd 5-9
#   of BASH_XTRACEFD), an inherited DEBUG trap or an error can print nothing. The shell's own
#   stdout and stderr reach the launcher as fds 3 and 4, for the agent.
# - `|| ${DYNOSTAT_NONE+}` keeps a failure (no bash, no launcher) from reaching set -e or an
#   ERR trap: a command of no words, which succeeds. The file's status is always 0.
# - Every expansion is safe under set -u, in bash and in any POSIX shell: the launcher is
#   found next to this file, from BASH_SOURCE, relative or absolute as bash sourced it.
# The launcher prints nothing, returns as soon as the agent is started (a few ms), and starts
# one agent per dyno however often this is sourced. See DYNOSTAT_DISABLE and
# DYNOSTAT_PROCESS_TYPES in the README.
("${BASH:-/bin/bash}" -p "${BASH_SOURCE:+${BASH_SOURCE%"${BASH_SOURCE##*/}"}}../.dynostat/launcher.sh" profile.d) 3>&1 4>&2 1>/dev/null 2>&1 0</dev/null 5>&- 6>&- 7>&- 8>&- 9>&- || ${DYNOSTAT_NONE+}
