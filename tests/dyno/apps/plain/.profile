# shellcheck shell=bash
# A fixture .profile: Heroku sources it after .profile.d, so it sees GREETING.
export PROFILE_SAW="${GREETING:-nothing}"
