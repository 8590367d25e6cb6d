#!/usr/bin/env bash
# keel-integrity: Keel's intrusion checks, run by keel-aide.timer and keel-chkrootkit.timer, and
# AIDE's baseline, taken again by Keel's steps and by apt after they changed the system.
#   keel-integrity files           files changed since the baseline; exit status 1 if any
#   keel-integrity rootkits        what chkrootkit finds beyond the server's own files; 1 if any
#   keel-integrity accept REASON   a new baseline; what it accepts is counted in the journal
set -Eeuo pipefail

readonly AIDE_CONFIG=/etc/aide/aide.conf
readonly AIDE_DIR=/var/lib/keel/aide
readonly ROOTKIT_IGNORE=/etc/keel/chkrootkit.ignore
# AIDE's exit status ORs 1 (added), 2 (removed) and 4 (changed); 14 and above are errors.
readonly AIDE_FOUND_MAX=7

say() {
  printf 'keel-integrity: %s\n' "$*"
}

# announce MESSAGE: to the caller's output (a step's, apt's) and to the journal.
announce() {
  say "$*"
  logger -t keel-integrity -- "$*"
}

# run_aide MODE: AIDE's report in REPORT and its exit status in STATUS.
REPORT=""
STATUS=0
run_aide() {
  STATUS=0
  REPORT="$(aide "--$1" --config="${AIDE_CONFIG}" 2>&1)" || STATUS=$?
  if ((STATUS > AIDE_FOUND_MAX)); then
    printf '%s\n' "${REPORT}" >&2
    say "aide --$1 failed with status ${STATUS}" >&2
    exit "${STATUS}"
  fi
}

check_files() {
  run_aide check
  ((STATUS == 0)) && return 0
  # Without the report's last section, the checksums of the baseline file itself.
  printf '%s\n' "${REPORT}" | sed '/^The attributes of the (uncompressed) database/,$d'
  say "files changed since Keel's steps or apt last ran (above)"
  exit 1
}

check_rootkits() {
  local findings
  findings="$(chkrootkit -q 2>&1 | grep -Ev -f "${ROOTKIT_IGNORE}" || true)"
  [[ -z "${findings}" ]] && return 0
  printf '%s\n' "${findings}"
  say "chkrootkit found the above"
  exit 1
}

# accept REASON: the system as it is becomes the baseline. One at a time: a security update may
# end while a step ends.
accept() {
  local reason="$1" counts
  install -d -m 0700 "${AIDE_DIR}"
  exec {lock}>"${AIDE_DIR}/lock"
  flock "${lock}"
  if [[ ! -f "${AIDE_DIR}/aide.db" ]]; then
    run_aide init
    mv -f "${AIDE_DIR}/aide.db.new" "${AIDE_DIR}/aide.db"
    announce "first baseline, after ${reason}"
    return 0
  fi
  run_aide update
  if ((STATUS == 0)); then
    rm -f "${AIDE_DIR}/aide.db.new"
    return 0
  fi
  mv -f "${AIDE_DIR}/aide.db.new" "${AIDE_DIR}/aide.db"
  counts="$(printf '%s\n' "${REPORT}" |
    sed -nE 's/^ *(Added|Removed|Changed) entries:[[:space:]]*([0-9]+)$/\2 \1/p' | paste -sd, - | sed 's/,/, /g')"
  announce "new baseline after ${reason}: ${counts,,}"
}

main() {
  case "${1:-}" in
    files) check_files ;;
    rootkits) check_rootkits ;;
    accept)
      [[ -n "${2:-}" ]] || {
        say "accept needs a reason" >&2
        exit 2
      }
      accept "$2"
      ;;
    *)
      say "usage: keel-integrity files | rootkits | accept REASON" >&2
      exit 2
      ;;
  esac
}

main "$@"
