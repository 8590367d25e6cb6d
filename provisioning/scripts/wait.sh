#!/usr/bin/env bash
# Step "wait": the first command on a new server. Waits until cloud-init and boot are done,
# and refuses to go on unless the server runs Debian 13, the only system Keel provisions.
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

check_debian_13() {
  local ID="" VERSION_ID="" PRETTY_NAME="unknown"
  # shellcheck source=/dev/null
  source /etc/os-release
  [[ "${ID}" == "debian" && "${VERSION_ID}" == "13" ]] ||
    die "Keel provisions Debian 13 (trixie) only; this server runs ${PRETTY_NAME}"
}

wait_for_cloud_init() {
  command -v cloud-init >/dev/null || return 0
  # Exit status 2 means "done, with recoverable errors": the server is usable.
  local status=0
  cloud-init status --wait >/dev/null || status=$?
  ((status == 0 || status == 2)) || die "cloud-init failed (status ${status}); see /var/log/cloud-init.log"
}

wait_for_boot() {
  local state
  state="$(systemctl is-system-running --wait || true)"
  case "${state}" in
    running) ;;
    degraded) info "boot finished degraded; failed units: $(systemctl list-units --state=failed --plain --no-legend | awk '{print $1}' | xargs)" ;;
    *) die "boot did not finish: system state is ${state}" ;;
  esac
}

main() {
  keel_start wait "$1"
  check_debian_13
  wait_for_cloud_init
  wait_for_boot
  info "server is up: $(uname -r), $(nproc) CPU(s)"
  keel_finish
}

main "$@"
