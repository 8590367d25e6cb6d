# shellcheck shell=bash
# The guest: a per-run copy of the root filesystem on a tmpfs, booted with systemd-nspawn in
# the run's namespace. A supervisor relaunches nspawn when the guest reboots (nspawn exits with
# status 133 then), so `systemctl reboot` in the guest behaves like a droplet's reboot, and
# when the harness replaced its root filesystem, like a droplet rebuilt on the same volume.

readonly NSPAWN_REBOOT_STATUS=133
# On a host with cgroup v1 (and v2 beside it), the guest needs both of these.
readonly CGROUP_HIERARCHIES=(/sys/fs/cgroup/unified /sys/fs/cgroup/systemd)

# The guest's data volume. On a droplet it is a block device mounted at /srv/keel; here it is
# that directory of the guest's root filesystem, which replace_root can keep.
readonly GUEST_VOLUME="srv/keel"

# prepare_rootfs ARCHIVE: extracts onto a tmpfs, then gives the guest its identity.
prepare_rootfs() {
  local archive="$1"
  stage "extracting the root filesystem onto a tmpfs"
  mkdir -p "${RUN_DIR}/root"
  mount -t tmpfs -o "size=${KEEL_STANDIN_TMPFS_SIZE:-8g},mode=0755" "${NS}" "${RUN_DIR}/root"
  zstd -q -dc "${archive}" | tar "${ROOTFS_TAR_FLAGS[@]}" -xpf - -C "${RUN_DIR}/root"
  give_identity
}

# give_identity: the guest's own machine-id, host keys and trust in pebble's TLS CA, the run's
# root SSH key, and its hosts file. Host keys and the CA store's rehash take seconds, so they
# run in the background while the network comes up; await_host_keys waits for them.
IDENTITY_PID=""
give_identity() {
  local root="${RUN_DIR}/root"
  stage "giving the guest its own identity, keys and CA trust"
  (
    chroot "${root}" ssh-keygen -q -A
    chroot "${root}" update-ca-certificates
  ) >"${RUN_DIR}/identity.log" 2>&1 &
  IDENTITY_PID="$!"
  chroot "${root}" systemd-machine-id-setup >/dev/null 2>&1
  install -m 0644 "${RUN_DIR}/pebble/ca.pem" \
    "${root}/usr/local/share/ca-certificates/keel-standin-pebble-tls.crt"
  if [[ ! -f "${RUN_DIR}/id_ed25519" ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "${NS}" -f "${RUN_DIR}/id_ed25519"
  fi
  install -d -m 0700 "${root}/root/.ssh"
  install -m 0600 "${RUN_DIR}/id_ed25519.pub" "${root}/root/.ssh/authorized_keys"
  cat >"${root}/etc/hosts" <<HOSTS
127.0.0.1 localhost
127.0.1.1 standin
::1 localhost ip6-localhost ip6-loopback
127.0.0.1 ${STANDIN_DOMAIN}
HOSTS
}

# replace_root keep-volume|discard-volume: what a droplet replaced by `pulumi up` gets: a fresh
# root filesystem with new host keys and machine-id, and the old volume or none. The guest must
# be down (power_cut).
replace_root() {
  local mode="$1"
  local root="${RUN_DIR}/root"
  local kept="${root}/.keel-kept-volume"
  stage "replacing the guest's root filesystem (${mode})"
  if [[ "${mode}" == "keep-volume" && -d "${root}/${GUEST_VOLUME}" ]]; then
    mv -T "${root}/${GUEST_VOLUME}" "${kept}"
  fi
  find "${root}" -mindepth 1 -maxdepth 1 ! -name "${kept##*/}" -exec rm -rf {} +
  zstd -q -dc "$(rootfs_archive_path)" | tar "${ROOTFS_TAR_FLAGS[@]}" -xpf - -C "${root}"
  if [[ -d "${kept}" ]]; then
    mv -T "${kept}" "${root}/${GUEST_VOLUME}"
  fi
  give_identity
  await_host_keys "$(<"${RUN_DIR}/ports/22")"
}

# power_cut: kills the guest's PID 1, and with it every process of the guest, without warning.
power_cut() {
  local nspawn_pid pid
  nspawn_pid="$(<"${RUN_DIR}/nspawn.pid")"
  for pid in $(pgrep -P "${nspawn_pid}"); do
    if [[ "$(awk '/^NSpid:/ {print $NF}' "/proc/${pid}/status" 2>/dev/null)" == "1" ]]; then
      log "cutting the guest's power (killing its PID 1, host pid ${pid})"
      kill -KILL "${pid}"
      return 0
    fi
  done
  fail "found no PID 1 of the guest under systemd-nspawn ${nspawn_pid}"
}

# request_replace MODE: asks the supervisor to boot a new root filesystem once the guest is down.
request_replace() {
  if ! nspawn_alive; then
    log "no running guest to replace"
    emit '{"event":"guest-failed","boot":-1,"message":"no running guest to replace"}'
    return 0
  fi
  printf '%s\n' "$1" >"${RUN_DIR}/replace"
  power_cut
}

# await_host_keys: waits for the guest's host keys, then trusts exactly them for this run.
await_host_keys() {
  local ssh_port="$1"
  local key
  stage "waiting for the guest's SSH host keys and CA store" "${RUN_DIR}/identity.log"
  wait "${IDENTITY_PID}" || fail "ssh-keygen -A or update-ca-certificates failed in the guest's root filesystem"
  : >"${RUN_DIR}/known_hosts"
  for key in "${RUN_DIR}"/root/etc/ssh/ssh_host_*_key.pub; do
    printf '[127.0.0.1]:%s %s\n' "${ssh_port}" "$(cut -d' ' -f1,2 "${key}")" >>"${RUN_DIR}/known_hosts"
  done
}

ssh_guest() {
  timeout 180 ssh -F /dev/null -i "${RUN_DIR}/id_ed25519" -o IdentitiesOnly=yes \
    -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="${RUN_DIR}/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR \
    -p "$(<"${RUN_DIR}/ports/22")" -- root@127.0.0.1 "$@"
}

# The cgroup directories of this run: nspawn creates its supervisor/payload cgroups below its
# own, so each run gets its own parent and two runs never share the guest's cgroup tree.
run_cgroups() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    printf '%s\n' "/sys/fs/cgroup/${NS}"
    return 0
  fi
  local hierarchy
  for hierarchy in "${CGROUP_HIERARCHIES[@]}"; do
    if [[ -d "${hierarchy}" ]]; then
      printf '%s\n' "${hierarchy}/${NS}"
    fi
  done
}

join_run_cgroups() {
  local cgroup
  while read -r cgroup; do
    mkdir -p "${cgroup}"
    printf '%s\n' "${BASHPID}" >"${cgroup}/cgroup.procs"
  done < <(run_cgroups)
}

remove_run_cgroups() {
  local cgroup
  while read -r cgroup; do
    if [[ -d "${cgroup}" ]]; then
      if [[ -f "${cgroup}/cgroup.kill" && -n "$(find "${cgroup}" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]]; then
        log "killing processes left in ${cgroup}"
        printf '1\n' >"${cgroup}/cgroup.kill" || true
        sleep 0.5
      fi
      find "${cgroup}" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove ${cgroup}"
    fi
  done < <(run_cgroups)
}

# Capabilities beyond nspawn's default, each one a droplet's root has: nftables (NET_ADMIN),
# IPAddressDeny= (BPF and its system call), memory limits and locking (SYS_RESOURCE, IPC_LOCK),
# process accounting (SYS_PACCT; the kernel keeps it per PID namespace, so the guest's own).
launch_nspawn() {
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn --boot -D "${RUN_DIR}/root" -M "${NS}" \
    --network-namespace-path="/run/netns/${NS}" --register=no --keep-unit \
    --console=read-only --resolv-conf=off --timezone=off --link-journal=no \
    --capability=CAP_NET_ADMIN,CAP_BPF,CAP_SYS_RESOURCE,CAP_IPC_LOCK,CAP_SYS_PACCT --system-call-filter=bpf \
    >>"${RUN_DIR}/console.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/nspawn.pid"
}

nspawn_alive() {
  [[ -f "${RUN_DIR}/nspawn.pid" ]] && pid_matches "$(<"${RUN_DIR}/nspawn.pid")" "${RUN_DIR}/root"
}

# guest_booted: true once SSH answers and boot has finished; sets GUEST_STATE to running or
# degraded and FAILED_UNITS to the units that failed.
GUEST_STATE=""
FAILED_UNITS=()
guest_booted() {
  local state_file="${RUN_DIR}/state.${BASHPID}"
  local state
  interruptible ssh_guest 'systemctl is-system-running --wait' >"${state_file}" 2>>"${RUN_DIR}/ssh.log" || true
  state="$(<"${state_file}")"
  rm -f "${state_file}"
  case "${state}" in
    running | degraded) ;;
    *) return 1 ;;
  esac
  GUEST_STATE="${state}"
  mapfile -t FAILED_UNITS < <(ssh_guest \
    'systemctl list-units --state=failed --plain --no-legend --no-pager | cut -d" " -f1' \
    2>>"${RUN_DIR}/ssh.log")
  if [[ "${state}" == "degraded" ]]; then
    log "the guest is degraded; failed units: ${FAILED_UNITS[*]}"
  fi
}

# wait_for_boot SECONDS: fails (returns 1) early if nspawn exits while waiting.
wait_for_boot() {
  local seconds="$1"
  local deadline=$((EPOCHSECONDS + seconds))
  until guest_booted; do
    if ! nspawn_alive; then
      log "systemd-nspawn exited before the guest finished booting"
      return 1
    fi
    if ((EPOCHSECONDS >= deadline)); then
      log "the guest did not finish booting within ${seconds}s"
      return 1
    fi
    sleep 0.2
  done
}

guest_ssh_json() {
  printf '"ssh":{"host":"127.0.0.1","port":%s,"user":"root","privateKeyPath":"%s","knownHostsPath":"%s"}' \
    "$(<"${RUN_DIR}/ports/22")" "${RUN_DIR}/id_ed25519" "${RUN_DIR}/known_hosts"
}

ready_state_json() {
  printf '"state":%s,"failedUnits":%s' "$(json_string "${GUEST_STATE}")" \
    "$(json_string_array "${FAILED_UNITS[@]}")"
}

report_reboot() {
  local boot="$1"
  if wait_for_boot 180; then
    log "the guest is back after reboot ${boot}: ${GUEST_STATE}"
    emit "{\"event\":\"guest-ready\",\"boot\":${boot},$(ready_state_json)}"
  else
    show_log_tail "${RUN_DIR}/console.log"
    emit "{\"event\":\"guest-failed\",\"boot\":${boot},\"message\":\"the guest did not come back after a reboot\"}"
  fi
}

# supervise_guest: runs in the background for the whole run; boot 1 is awaited by the caller.
supervise_guest() {
  local boot=0
  local status
  local pid
  join_run_cgroups
  while :; do
    boot=$((boot + 1))
    launch_nspawn
    pid="$(<"${RUN_DIR}/nspawn.pid")"
    if ((boot > 1)); then
      report_reboot "${boot}" &
    fi
    status=0
    wait "${pid}" || status=$?
    rm -f "${RUN_DIR}/nspawn.pid"
    if [[ -e "${RUN_DIR}/stopping" ]]; then
      return 0
    fi
    if [[ -f "${RUN_DIR}/replace" ]]; then
      replace_root "$(<"${RUN_DIR}/replace")"
      rm -f "${RUN_DIR}/replace"
      emit "{\"event\":\"guest-replaced\",\"boot\":${boot}}"
      continue
    fi
    if ((status != NSPAWN_REBOOT_STATUS)); then
      log "systemd-nspawn exited with status ${status}; the guest is down"
      emit "{\"event\":\"guest-exited\",\"status\":${status}}"
      return 0
    fi
    log "the guest rebooted; booting it again"
    emit "{\"event\":\"guest-rebooting\",\"boot\":${boot}}"
  done
}

start_guest() {
  stage "booting the guest with systemd-nspawn" "${RUN_DIR}/console.log" "${RUN_DIR}/ssh.log"
  supervise_guest &
  printf '%s\n' "$!" >"${RUN_DIR}/supervisor.pid"
  wait_until 10 nspawn_alive || fail "systemd-nspawn did not start"
  wait_for_boot "${KEEL_STANDIN_BOOT_TIMEOUT:-120}" || fail "the guest did not boot"
  log "the guest is up: ${GUEST_STATE}"
}

# stop_guest: an orderly poweroff (SIGTERM to nspawn), then whatever is left in the cgroups.
stop_guest() {
  local pid
  touch "${RUN_DIR}/stopping"
  if nspawn_alive; then
    pid="$(<"${RUN_DIR}/nspawn.pid")"
    log "powering the guest off"
    kill -TERM "${pid}" 2>/dev/null || true
    wait_until 60 not_alive "${pid}" || log "the guest did not power off within 60s; killing it"
  fi
  remove_run_cgroups
  rm -f "${RUN_DIR}/nspawn.pid" "${RUN_DIR}/supervisor.pid"
}
