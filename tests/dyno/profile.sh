# shellcheck shell=bash
# The dyno's /etc/profile: the harness binds this file over /etc/profile inside the dyno's
# mount namespace, so every `bash --login` in the dyno (the command's shell and exec
# sessions) sources the app's .profile.d/*.sh first, as Heroku's dyno does; bash then
# sources $HOME/.profile by itself, so .profile comes after them, as Heroku documents.
# Heroku sets PATH and the rest from the dyno's environment, so nothing else happens here.
for __dyno_profile_script in "${HOME}"/.profile.d/*.sh; do
  if [[ -r "${__dyno_profile_script}" ]]; then
    # shellcheck source=/dev/null # the app's scripts are only known at run time
    . "${__dyno_profile_script}"
  fi
done
unset __dyno_profile_script
