#!/usr/bin/env bash
# The Keel stand-in: a Debian 13 system with systemd as PID 1 and sshd, booted with
# systemd-nspawn in a private network namespace, beside pebble (ACME) and s3rver (R2).
#
#   standin.sh up [--forward GUEST_PORT]... [--until-signal]
#                                            boot one; serve until stdin closes or reads "stop",
#                                            or with --until-signal until SIGTERM (npm run local).
#                                            On stdin, "replace-root keep-volume" (or
#                                            discard-volume) cuts the guest's power and boots a
#                                            fresh root filesystem: a rebuilt droplet
#   standin.sh build [--server-packages]     build (or verify) the cached root filesystem and
#                                            print its path; with Keel's server packages added
# Beside the guest run pebble (ACME), s3rver (the API's bucket) and moto behind nginx (the
# backup bucket: pgBackRest needs HTTPS and a faithful S3).
#   standin.sh clean                         remove what crashed runs left behind
#   standin.sh down                          stop every running stand-in, kept ones included
#
# `up` writes progress to stderr and JSON events to stdout ("ready" with every address and
# port, "guest-rebooting", "guest-ready", "guest-exited", "failed"). Everything it creates is
# removed by its EXIT trap. KEEL_STANDIN_KEEP=1 keeps the stand-in up when it would stop or has
# failed, until the harness gets SIGTERM (`standin.sh down`). local/README.md has the rest.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"
readonly REPO_ROOT
readonly STANDIN_PREFIX="keel-standin"
readonly STANDIN_RUN_ROOT="/run/${STANDIN_PREFIX}"
readonly STANDIN_DOMAIN="api.standin.test"
readonly REQUIRED_COMMANDS=(mmdebstrap systemd-nspawn slirp4netns socat pebble zstd ssh ssh-keygen
  openssl ip ss flock setsid node tar chroot curl)

# shellcheck source=lib/common.sh
source "${SCRIPT_DIR}/lib/common.sh"
# shellcheck source=lib/rootfs.sh
source "${SCRIPT_DIR}/lib/rootfs.sh"
# shellcheck source=lib/network.sh
source "${SCRIPT_DIR}/lib/network.sh"
# shellcheck source=lib/services.sh
source "${SCRIPT_DIR}/lib/services.sh"
# shellcheck source=lib/guest.sh
source "${SCRIPT_DIR}/lib/guest.sh"

RUN_ID=""
RUN_DIR=""
NS=""
FORWARDS=(22 80 443)
UNTIL_SIGNAL=""

usage() {
  sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

check_host() {
  local command
  local missing=()
  if [[ "${EUID}" -ne 0 ]]; then
    fail "the stand-in needs root (mounts, namespaces, systemd-nspawn)"
  fi
  for command in "${REQUIRED_COMMANDS[@]}"; do
    command -v "${command}" >/dev/null || missing+=("${command}")
  done
  if ((${#missing[@]} > 0)); then
    fail "missing host commands: ${missing[*]} (local/host-packages.sh install installs them)"
  fi
}

parse_up_args() {
  while (($# > 0)); do
    case "$1" in
      --forward)
        if ! [[ "${2:-}" =~ ^[0-9]{1,5}$ ]] || (($2 < 1 || $2 > 65535)); then
          fail "--forward needs a port number, got '${2:-}'"
        fi
        if [[ " ${FORWARDS[*]} " != *" $2 "* ]]; then
          FORWARDS+=("$2")
        fi
        shift 2
        ;;
      --until-signal)
        UNTIL_SIGNAL=1
        shift
        ;;
      *) fail "unknown argument '$1' for up" ;;
    esac
  done
}

select_run() {
  RUN_ID="$1"
  RUN_DIR="${STANDIN_RUN_ROOT}/${RUN_ID}"
  NS="${STANDIN_PREFIX}-${RUN_ID}"
}

# kill_run_processes: whatever still runs for this run: processes in its namespace, and any
# process whose command line names its run directory (nspawn, slirp, relays, pebble, s3rver).
kill_run_processes() {
  local pids=()
  if [[ -e "/run/netns/${NS}" ]]; then
    mapfile -t pids < <(ip netns pids "${NS}" 2>/dev/null)
  fi
  if ((${#pids[@]} > 0)); then
    log "killing processes left in ${NS}: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  kill_processes_mentioning "${RUN_DIR}/"
}

# teardown_run: removes everything of the selected run; safe to run twice and on the remains
# of a crashed run.
teardown_run() {
  local pid_file
  discard_build
  if [[ -d "${RUN_DIR}" ]]; then
    stop_guest
    for pid_file in "${RUN_DIR}"/relay-*.pid; do
      stop_pid "${pid_file}" "${RUN_DIR}/" 5
    done
    stop_pid "${RUN_DIR}/pebble.pid" "${RUN_DIR}/pebble" 5
    stop_pid "${RUN_DIR}/s3rver.pid" "${RUN_DIR}/s3" 5
    stop_pid "${RUN_DIR}/backup-s3-nginx.pid" "nginx" 5
    stop_pid "${RUN_DIR}/backup-s3-moto.pid" "moto-s3.py" 5
    stop_pid "${RUN_DIR}/slirp.pid" "/run/netns/${NS}" 5
  else
    remove_run_cgroups
  fi
  kill_run_processes
  delete_network
  unmount_under "${RUN_DIR}"
  rm -rf "${RUN_DIR}"
}

# create_run_dir: the run directory appears with its owner.pid already inside (a rename), so a
# concurrent run's clean_leftovers never mistakes it for the remains of a crashed run.
create_run_dir() {
  local staging="${STANDIN_RUN_ROOT}/.new-${RUN_ID}"
  mkdir -p "${staging}/ports" "${staging}/relays"
  printf '%s\n' "$$" >"${staging}/owner.pid"
  mv -T "${staging}" "${RUN_DIR}"
}

on_exit() {
  local status="$?"
  trap - EXIT ERR
  # A second signal must not cut the teardown short.
  trap '' INT TERM HUP
  set +e
  if has_failed; then
    hold_if_kept
  fi
  STAGE_LOGS=()
  stage "tearing down ${NS}"
  teardown_run
  log "torn down"
  exit "${status}"
}

owner_alive() {
  local owner_file="${STANDIN_RUN_ROOT}/$1/owner.pid"
  [[ -f "${owner_file}" ]] && pid_matches "$(<"${owner_file}")" "standin.sh"
}

# leftover_run_ids: every run id that a run directory, namespace, netns hosts file or cgroup
# still names.
leftover_run_ids() {
  local path
  {
    for path in "${STANDIN_RUN_ROOT}"/* /run/netns/"${STANDIN_PREFIX}"-* \
      /etc/netns/"${STANDIN_PREFIX}"-* /sys/fs/cgroup/"${STANDIN_PREFIX}"-* \
      /sys/fs/cgroup/*/"${STANDIN_PREFIX}"-*; do
      if [[ -e "${path}" ]]; then
        path="${path##*/}"
        printf '%s\n' "${path#"${STANDIN_PREFIX}"-}"
      fi
    done
  } | sort -u
}

clean_leftovers() {
  local run_id
  mkdir -p "${STANDIN_RUN_ROOT}"
  while read -r run_id; do
    if [[ "${run_id}" =~ ^[0-9a-f]{8}$ ]] && ! owner_alive "${run_id}"; then
      log "cleaning up the remains of crashed run ${run_id}"
      (
        select_run "${run_id}"
        teardown_run
      )
    fi
  done < <(leftover_run_ids)
}

stop_all_running() {
  local owner_file
  local pid
  for owner_file in "${STANDIN_RUN_ROOT}"/*/owner.pid; do
    [[ -f "${owner_file}" ]] || continue
    pid="$(<"${owner_file}")"
    if pid_matches "${pid}" "standin.sh"; then
      log "stopping the stand-in of harness ${pid}"
      kill -TERM "${pid}" 2>/dev/null || true
      wait_until 120 not_alive "${pid}" || log "harness ${pid} did not stop within 120s"
    fi
  done
  clean_leftovers
}

ssh_command_hint() {
  printf 'ssh -i %s -o UserKnownHostsFile=%s -p %s root@127.0.0.1' "${RUN_DIR}/id_ed25519" \
    "${RUN_DIR}/known_hosts" "$(cat "${RUN_DIR}/ports/22" 2>/dev/null || printf '?')"
}

# hold_if_kept: with KEEL_STANDIN_KEEP=1, waits for SIGTERM/SIGINT before tearing down.
hold_if_kept() {
  local released=""
  [[ "${KEEL_STANDIN_KEEP:-}" == "1" && -n "${RUN_DIR}" ]] || return 0
  log "KEEL_STANDIN_KEEP=1: the stand-in stays up. Reach it with: $(ssh_command_hint)"
  log "logs are in ${RUN_DIR}; tear it down with: kill $$ (or ${SCRIPT_DIR}/standin.sh down)"
  exec 2>>"${RUN_DIR}/harness.log" {LOG_FD}>&2 {EVENTS_FD}>/dev/null
  trap 'released=1' TERM INT HUP
  until [[ -n "${released}" ]]; do
    sleep 1 &
    wait "$!" || true
  done
}

ready_event() {
  printf '{"event":"ready","boot":1,"runId":"%s","runDir":"%s","namespace":"%s","harnessPid":%s,' \
    "${RUN_ID}" "${RUN_DIR}" "${NS}" "$$"
  printf '"domain":"%s",%s,%s,%s,%s,%s}' "${STANDIN_DOMAIN}" "$(network_json)" "$(guest_ssh_json)" \
    "$(services_json)" "$(backup_s3_json)" "$(ready_state_json)"
}

serve_until_stopped() {
  local line
  if [[ -n "${UNTIL_SIGNAL}" ]]; then
    # The EXIT trap tears down on SIGTERM, SIGINT or SIGHUP; until then there is nothing to do.
    while :; do
      sleep 60 &
      wait "$!" || true
    done
  fi
  while IFS= read -r line; do
    case "${line}" in
      stop) break ;;
      "replace-root keep-volume" | "replace-root discard-volume") request_replace "${line#* }" ;;
      "") ;;
      *) log "ignoring unknown request '${line}' (see the usage of up)" ;;
    esac
  done
  log "stop requested"
  hold_if_kept
}

up() {
  local port
  local started="${EPOCHREALTIME}"
  exec {EVENTS_FD}>&1 1>&2 {LOG_FD}>&2
  trap '' PIPE
  trap 'on_error "$?" "${LINENO}" "${BASH_COMMAND}"' ERR
  parse_up_args "$@"
  check_host
  clean_leftovers
  select_run "$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  create_run_dir
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  log "run ${RUN_ID}: ${RUN_DIR}, namespace ${NS}"
  stage "making pebble's TLS certificates" "${RUN_DIR}/openssl.log"
  make_pebble_tls
  ROOTFS_FLAVOUR=s3
  ensure_rootfs
  prepare_backup_s3 "$(rootfs_archive_path)"
  ROOTFS_FLAVOUR=standin
  ensure_rootfs
  prepare_rootfs "$(rootfs_archive_path)"
  create_network
  for port in "${FORWARDS[@]}"; do
    forward_guest_port "${port}"
  done
  launch_pebble
  launch_s3
  launch_backup_s3
  await_host_keys "$(<"${RUN_DIR}/ports/22")"
  start_guest
  await_pebble
  await_s3
  await_backup_s3
  log "ready in $(elapsed_since "${started}")s: $(ssh_command_hint)"
  emit "$(ready_event)"
  serve_until_stopped
}

main() {
  local command="${1:-}"
  shift || true
  case "${command}" in
    up) up "$@" ;;
    build)
      check_host
      if [[ "${1:-}" == "--server-packages" ]]; then
        ROOTFS_FLAVOUR="server"
      elif (($# > 0)); then
        fail "unknown argument '$1' for build"
      fi
      ensure_rootfs
      rootfs_archive_path
      printf '\n'
      ;;
    clean) clean_leftovers ;;
    down) stop_all_running ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
