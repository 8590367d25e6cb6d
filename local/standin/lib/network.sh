# shellcheck shell=bash
# The stand-in's network: a private network namespace shared by the guest, pebble and s3rver;
# slirp4netns gives it user-mode NAT (the guest reaches Debian's archive, the host's own network
# is untouched) and forwards guest ports to free host loopback ports. Services that stand in
# for the outside world (pebble's management port, s3rver) are relayed to the host over a UNIX
# socket instead, so they stay reachable whatever firewall the guest installs on tap0.

readonly GUEST_ADDRESS="10.0.2.100"
# Where host-side clients come from, as the guest sees them (slirp's gateway).
readonly CLIENT_ADDRESS="10.0.2.2"

write_netns_hosts() {
  mkdir -p "/etc/netns/${NS}"
  cat >"/etc/netns/${NS}/hosts" <<HOSTS
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
127.0.0.1 ${STANDIN_DOMAIN}
HOSTS
}

slirp_ready() {
  [[ -S "${RUN_DIR}/slirp.sock" ]] \
    && ip -n "${NS}" -4 addr show dev tap0 2>/dev/null | grep -q "inet ${GUEST_ADDRESS}/"
}

create_network() {
  local lock
  stage "creating network namespace ${NS} with slirp4netns" "${RUN_DIR}/slirp.log"
  write_netns_hosts
  exec {lock}>"${STANDIN_RUN_ROOT}/.netns.lock"
  flock -w 30 "${lock}" || fail "could not lock ${STANDIN_RUN_ROOT}/.netns.lock"
  ip netns add "${NS}"
  exec {lock}>&-
  ip -n "${NS}" link set lo up
  slirp4netns --configure --mtu=65520 --disable-host-loopback --netns-type=path \
    --api-socket "${RUN_DIR}/slirp.sock" "/run/netns/${NS}" tap0 \
    >"${RUN_DIR}/slirp.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/slirp.pid"
  wait_until 15 slirp_ready || fail "slirp4netns did not configure tap0 within 15s"
}

slirp_request() {
  printf '%s' "$1" | socat -t 5 - "UNIX-CONNECT:${RUN_DIR}/slirp.sock"
}

port_is_taken_by_run() {
  local port="$1"
  grep -qx "${port}" "${RUN_DIR}"/ports/* 2>/dev/null
}

# forward_guest_port GUEST_PORT: slirp forwards a free host loopback port to it; the host port
# is recorded in ports/GUEST_PORT. A port taken between the check and the bind is retried.
forward_guest_port() {
  local guest_port="$1"
  local attempt
  local host_port
  local reply
  stage "forwarding guest port ${guest_port} to the host" "${RUN_DIR}/slirp.log"
  for attempt in {1..20}; do
    host_port="$(random_port)"
    if ! port_is_free "${host_port}" || port_is_taken_by_run "${host_port}"; then
      continue
    fi
    reply="$(slirp_request "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":${host_port},\"guest_addr\":\"${GUEST_ADDRESS}\",\"guest_port\":${guest_port}}}")" || reply=""
    if [[ "${reply}" == *'"return"'* ]]; then
      printf '%s\n' "${host_port}" >"${RUN_DIR}/ports/${guest_port}"
      log "guest port ${guest_port} is at 127.0.0.1:${host_port} (attempt ${attempt})"
      return 0
    fi
    log "slirp refused host port ${host_port}: ${reply:-no reply}"
  done
  fail "no free host port could be forwarded to guest port ${guest_port}"
}

ns_port_listening() {
  local port="$1"
  [[ -n "$(ss -N "${NS}" -Hltn "sport = :${port}" 2>/dev/null)" ]]
}

host_port_listening() {
  local port="$1"
  ! port_is_free "${port}"
}

# relay_to_host NAME NS_PORT HOST_PORT: 127.0.0.1:HOST_PORT on the host reaches
# 127.0.0.1:NS_PORT in the namespace, through the UNIX socket NAME.sock in the run directory.
relay_to_host() {
  local name="$1"
  local ns_port="$2"
  local host_port="$3"
  local socket="${RUN_DIR}/${name}.sock"
  ip netns exec "${NS}" socat "UNIX-LISTEN:${socket},fork,unlink-early,mode=600" \
    "TCP:127.0.0.1:${ns_port}" >>"${RUN_DIR}/relay.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/relay-${name}-ns.pid"
  wait_until 10 test -S "${socket}" || fail "the relay for ${name} did not create ${socket}"
  socat "TCP-LISTEN:${host_port},bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:${socket}" \
    >>"${RUN_DIR}/relay.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/relay-${name}-host.pid"
  wait_until 10 host_port_listening "${host_port}" \
    || fail "the relay for ${name} did not listen on 127.0.0.1:${host_port}"
  printf '%s\n' "${host_port}" >"${RUN_DIR}/relays/${name}"
}

# free_relay_port: a port free on the host that no forwarded guest port or relay of this run
# uses (a relay's port is reserved by writing relays/NAME before it listens).
free_relay_port() {
  local attempt
  local port
  for attempt in {1..50}; do
    port="$(random_port)"
    if port_is_free "${port}" && ! port_is_taken_by_run "${port}" \
      && ! grep -qx "${port}" "${RUN_DIR}"/relays/* 2>/dev/null; then
      printf '%s\n' "${port}"
      return 0
    fi
  done
  log "no free port found after ${attempt} attempts"
  return 1
}

network_json() {
  local port
  local first=1
  printf '"clientAddress":"%s","ports":{' "${CLIENT_ADDRESS}"
  for port in "${FORWARDS[@]}"; do
    ((first)) || printf ','
    printf '"%s":%s' "${port}" "$(<"${RUN_DIR}/ports/${port}")"
    first=0
  done
  printf '}'
}

# delete_network: the namespace, its hosts file, and iproute2's /run/netns mount once no
# namespace is left in it (ip netns add creates that mount on first use).
delete_network() {
  local lock
  exec {lock}>"${STANDIN_RUN_ROOT}/.netns.lock"
  flock -w 30 "${lock}" || log "could not lock ${STANDIN_RUN_ROOT}/.netns.lock; deleting anyway"
  if [[ -e "/run/netns/${NS}" ]]; then
    ip netns del "${NS}" || log "could not delete network namespace ${NS}"
  fi
  if mountpoint -q /run/netns && [[ -z "$(ls -A /run/netns)" ]]; then
    umount /run/netns || log "could not unmount the empty /run/netns"
  fi
  exec {lock}>&-
  rm -rf "/etc/netns/${NS}"
  rmdir --ignore-fail-on-non-empty /etc/netns 2>/dev/null || true
}
