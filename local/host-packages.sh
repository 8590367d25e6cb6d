#!/usr/bin/env bash
# The Debian packages this machine needs for Keel's tests and for the local platform, listed
# once: .ci/run, `npm test` and `npm run local` all go through this script.
#
#   host-packages.sh check     print the missing packages, one line; exit 1 when any is missing
#   host-packages.sh install   install the missing ones (needs root); nothing when none is missing
set -Eeuo pipefail

readonly PACKAGES=(
  # provisioning tier: shellcheck; a Debian 13 tree for systemd-analyze, nginx -t, sshd -t
  shellcheck mmdebstrap zstd
  # api tier: throwaway PostgreSQL and Redis servers
  postgresql redis-server
  # the local platform and the e2e tier: a Debian 13 stand-in booted with systemd-nspawn in a
  # network namespace (slirp4netns), pebble as the ACME server, OpenSSH to provision it
  systemd-container slirp4netns socat pebble openssh-client openssl iproute2 curl ca-certificates
  # e2e tier: a client built on Go's SSH library, the one inside Pulumi's command provider
  golang-go golang-golang-x-crypto-dev
)

missing_packages() {
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null)" != "install ok installed" ]]; then
      printf '%s\n' "${pkg}"
    fi
  done
}

install_missing() {
  local missing=()
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} > 0)) || return 0
  if ((EUID != 0)); then
    printf 'keel: missing Debian packages: %s; install them as root: sudo %s install\n' \
      "${missing[*]}" "$0" >&2
    exit 1
  fi
  printf 'keel: installing Debian packages: %s\n' "${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # The packages start their default servers; Keel's tests start throwaway instances of their own.
  local service
  for service in postgresql redis-server; do
    if [[ " ${missing[*]} " == *" ${service} "* ]]; then
      service "${service}" stop >/dev/null 2>&1 || true
    fi
  done
}

main() {
  case "${1:-}" in
    check)
      local missing
      missing="$(missing_packages | xargs)"
      [[ -z "${missing}" ]] || {
        printf '%s\n' "${missing}"
        exit 1
      }
      ;;
    install) install_missing ;;
    *)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
