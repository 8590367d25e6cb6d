#!/usr/bin/env bash
# Shared functions of Keel's step scripts; each step sources this file from its payload.
#
# A step script is run as `step.sh WORK [ARGS...]` by the bootstrap command. WORK holds:
#   files/<absolute path>  files rendered by Keel, installed by the script at that path
#   inputs/<name>          values the script consumes but does not install (e.g. a verifier)
# Every action is guarded: a second run with the same payload changes nothing and restarts
# nothing. Each change is printed, and the last line says how many there were.

KEEL_STEP="${KEEL_STEP:-step}"
KEEL_WORK=""
KEEL_CHANGES=0
# When apt's package lists were last refreshed. It lives in /run, so a reboot forgets it.
KEEL_APT_STAMP="${KEEL_APT_STAMP:-/run/keel-apt-lists-updated}"

# keel_start STEP WORK: names the step for messages and remembers the payload directory.
keel_start() {
  KEEL_STEP="$1"
  KEEL_WORK="$2"
  trap 'keel_failed $LINENO' ERR
}

keel_failed() {
  printf 'keel %s: error: command failed at line %s\n' "${KEEL_STEP}" "$1" >&2
}

info() {
  printf 'keel %s: %s\n' "${KEEL_STEP}" "$*"
}

die() {
  printf 'keel %s: error: %s\n' "${KEEL_STEP}" "$*" >&2
  exit 1
}

note_change() {
  KEEL_CHANGES=$((KEEL_CHANGES + 1))
  printf 'keel %s: changed: %s\n' "${KEEL_STEP}" "$*"
}

# keel_finish: the last line of every step, which the end-to-end tests read. What a step changed
# becomes part of the file integrity baseline (the base step installs keel-integrity).
keel_finish() {
  if ((KEEL_CHANGES > 0)) && [[ -x /usr/local/sbin/keel-integrity ]]; then
    /usr/local/sbin/keel-integrity accept "keel ${KEEL_STEP}"
  fi
  if ((KEEL_CHANGES == 0)); then
    info "no changes"
  else
    info "${KEEL_CHANGES} change(s)"
  fi
}

# rendered PATH: where the payload holds the rendered file for PATH.
rendered() {
  printf '%s/files%s' "${KEEL_WORK}" "$1"
}

# input NAME: the content of a payload input.
input() {
  cat "${KEEL_WORK}/inputs/$1"
}

is_container() {
  systemd-detect-virt --container --quiet
}

# install_file SRC DEST MODE OWNER GROUP: installs SRC at DEST atomically, unless DEST already
# has that content, mode and owner. Sets KEEL_LAST_CHANGED to 1 when it changed DEST, else 0;
# test it with `if last_changed; then`. (Functions return 0 on purpose: bash ignores `set -e`
# inside a function called as an `if` condition.)
KEEL_LAST_CHANGED=0
install_file() {
  local src="$1" dest="$2" mode="$3" owner="$4" group="$5"
  KEEL_LAST_CHANGED=0
  if [[ -f "${dest}" ]] && cmp -s "${src}" "${dest}" &&
    [[ "$(stat -c '%a %U %G' "${dest}")" == "${mode#0} ${owner} ${group}" ]]; then
    return 0
  fi
  # Create a missing parent only: `install -d` would also reset an existing one's mode.
  [[ -d "$(dirname "${dest}")" ]] || install -d -m 0755 "$(dirname "${dest}")"
  install -m "${mode}" -o "${owner}" -g "${group}" "${src}" "${dest}.keel-new"
  mv -f "${dest}.keel-new" "${dest}"
  note_change "${dest}"
  KEEL_LAST_CHANGED=1
}

last_changed() {
  ((KEEL_LAST_CHANGED == 1))
}

# install_rendered DEST MODE OWNER GROUP: install_file from the payload's rendered copy of DEST.
install_rendered() {
  install_file "$(rendered "$1")" "$@"
}

# install_validated DEST MODE OWNER GROUP VALIDATOR...: installs the rendered DEST and, when it
# changed, runs VALIDATOR; if that fails, the previous file is restored and the step stops.
install_validated() {
  local dest="$1" mode="$2" owner="$3" group="$4"
  shift 4
  local backup=""
  if [[ -f "${dest}" ]]; then
    backup="$(mktemp)"
    cp -p "${dest}" "${backup}"
  fi
  install_rendered "${dest}" "${mode}" "${owner}" "${group}"
  if last_changed && ! "$@"; then
    if [[ -n "${backup}" ]]; then
      mv -f "${backup}" "${dest}"
    else
      rm -f "${dest}"
    fi
    die "${dest} was refused by '$*'; the previous version is back in place"
  fi
  rm -f "${backup}"
}

# remove_file PATH: removes PATH if present; sets KEEL_LAST_CHANGED like install_file.
remove_file() {
  KEEL_LAST_CHANGED=0
  [[ -e "$1" || -L "$1" ]] || return 0
  rm -f "$1"
  note_change "removed $1"
  KEEL_LAST_CHANGED=1
}

# ensure_dir PATH MODE OWNER GROUP
ensure_dir() {
  local path="$1" mode="$2" owner="$3" group="$4"
  if [[ -d "${path}" && "$(stat -c '%a %U %G' "${path}")" == "${mode#0} ${owner} ${group}" ]]; then
    return 0
  fi
  install -d -m "${mode}" -o "${owner}" -g "${group}" "${path}"
  note_change "directory ${path}"
}

# ensure_mode PATH MODE: gives an existing file or directory MODE.
ensure_mode() {
  local path="$1" mode="$2"
  [[ "$(stat -c '%a' "${path}")" == "${mode#0}" ]] && return 0
  chmod "${mode}" "${path}"
  note_change "mode ${mode} on ${path}"
}

as_postgres() {
  runuser -u postgres -- "$@"
}

# pgbackrest_run ARGS...: pgBackRest as postgres on Keel's stanza; PGBACKREST_CONF and STANZA
# come from the backup layout the calling step sources.
pgbackrest_run() {
  as_postgres pgbackrest --config="${PGBACKREST_CONF}" --stanza="${STANZA}" "$@"
}

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -q -y \
    -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold \
    "$@"
}

# apt_update_once: refreshes apt's package lists unless a step did in the last ten minutes, so a
# provisioning run refreshes them once, not once per step that installs something.
apt_update_once() {
  [[ -n "$(find "${KEEL_APT_STAMP}" -maxdepth 0 -mmin -10 2>/dev/null)" ]] && return 0
  apt_get update >/dev/null
  touch "${KEEL_APT_STAMP}"
}

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# ensure_packages PKG...: installs the packages that are missing, without recommends.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    is_installed "${pkg}" || missing+=("${pkg}")
  done
  ((${#missing[@]} > 0)) || return 0
  apt_update_once
  apt_get install --no-install-recommends "${missing[@]}" >/dev/null
  note_change "installed ${missing[*]}"
}

# ensure_enabled UNIT: enables UNIT (at boot) if it is not yet.
ensure_enabled() {
  systemctl is-enabled --quiet "$1" 2>/dev/null && return 0
  systemctl enable --quiet "$1"
  note_change "enabled $1"
}

# ensure_started UNIT: starts UNIT if it is not running.
ensure_started() {
  systemctl is-active --quiet "$1" && return 0
  systemctl start "$1"
  note_change "started $1"
}

# apply_service UNIT ACTION: UNIT enabled and running; a running UNIT then gets ACTION (none,
# reload or restart) for what changed. A unit that had to be started needs nothing more.
apply_service() {
  local unit="$1" action="$2"
  ensure_enabled "${unit}"
  if ! systemctl is-active --quiet "${unit}"; then
    systemctl start "${unit}"
    note_change "started ${unit}"
    return 0
  fi
  case "${action}" in
    none) ;;
    reload)
      systemctl reload "${unit}"
      info "reloaded ${unit}"
      ;;
    restart)
      systemctl restart "${unit}"
      note_change "restarted ${unit}"
      ;;
    *) die "apply_service: unknown action ${action}" ;;
  esac
}

daemon_reload() {
  systemctl daemon-reload
}

# wait_for TIMEOUT_SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_for() {
  local timeout="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
  info "${what}"
}
