# shellcheck shell=bash
# A fixture .profile.d script: proves the dyno's login shell sources these first.
export GREETING="sourced from .profile.d"
