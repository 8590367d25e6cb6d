# shellcheck shell=bash
# What stands in for the outside world, inside the stand-in's namespace: pebble as the ACME
# server (HTTP-01 validated for real against the guest's port 80) and s3rver as R2.

readonly ACME_DIRECTORY="https://localhost:14000/dir"
readonly PEBBLE_MANAGEMENT_PORT=15000
readonly S3_BUCKET="keel-standin"
readonly S3_REGION="us-east-1"
# s3rver accepts exactly these credentials (its documented defaults).
readonly S3_ACCESS_KEY_ID="S3RVER"
readonly S3_SECRET_ACCESS_KEY="S3RVER"

write_openssl_config() {
  cat >"$1" <<'CONFIG'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
CONFIG
}

# make_pebble_tls: a throwaway CA and a localhost certificate for pebble's own HTTPS listeners
# (Debian's pebble ships none). The guest trusts this CA; it is not the CA pebble issues from.
make_pebble_tls() {
  local dir="${RUN_DIR}/pebble"
  mkdir -p "${dir}"
  write_openssl_config "${dir}/openssl.cnf"
  {
    openssl req -x509 -new -config "${dir}/openssl.cnf" -extensions ca \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -subj "/CN=keel-standin pebble TLS CA ${RUN_ID}" -keyout "${dir}/ca.key" -out "${dir}/ca.pem"
    openssl req -new -config "${dir}/openssl.cnf" \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout "${dir}/key.pem" -out "${dir}/leaf.csr"
    openssl x509 -req -in "${dir}/leaf.csr" -CA "${dir}/ca.pem" -CAkey "${dir}/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 7 \
      -extfile "${dir}/openssl.cnf" -extensions leaf -out "${dir}/cert.pem"
  } >>"${RUN_DIR}/openssl.log" 2>&1
}

write_pebble_config() {
  local dir="${RUN_DIR}/pebble"
  cat >"${dir}/pebble.json" <<CONFIG
{
  "pebble": {
    "listenAddress": "127.0.0.1:14000",
    "managementListenAddress": "127.0.0.1:${PEBBLE_MANAGEMENT_PORT}",
    "certificate": "${dir}/cert.pem",
    "privateKey": "${dir}/key.pem",
    "httpPort": 80,
    "tlsPort": 443,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
CONFIG
}

# await_listening NAME PIDFILE PORT SECONDS: waits until the service listens in the namespace;
# fails at once if it exits first.
await_listening() {
  local name="$1"
  local pid
  local port="$3"
  local deadline=$((EPOCHSECONDS + $4))
  pid="$(<"$2")"
  until ns_port_listening "${port}"; do
    if not_alive "${pid}"; then
      fail "${name} exited before listening on :${port}"
    fi
    if ((EPOCHSECONDS >= deadline)); then
      fail "${name} did not listen on :${port} within $4s"
    fi
    sleep 0.1
  done
}

# launch_pebble and launch_s3 start the services while the guest boots; await_pebble and
# await_s3 then wait for them and relay them to the host.
launch_pebble() {
  stage "starting pebble (the ACME server) in ${NS}" "${RUN_DIR}/pebble.log"
  write_pebble_config
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    ip netns exec "${NS}" pebble -config "${RUN_DIR}/pebble/pebble.json" \
    >"${RUN_DIR}/pebble.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/pebble.pid"
}

await_pebble() {
  stage "waiting for pebble" "${RUN_DIR}/pebble.log"
  await_listening pebble "${RUN_DIR}/pebble.pid" 14000 20
  await_listening pebble "${RUN_DIR}/pebble.pid" "${PEBBLE_MANAGEMENT_PORT}" 20
  relay_to_host pebble-management "${PEBBLE_MANAGEMENT_PORT}" "$(free_relay_port)"
}

s3rver_script() {
  node -e 'process.stdout.write(require.resolve("s3rver/bin/s3rver.js", { paths: [process.argv[1]] }))' \
    "${REPO_ROOT}/api"
}

services_json() {
  printf '"acme":{"directory":"%s","managementPort":%s,"tlsCaPath":"%s"},' \
    "${ACME_DIRECTORY}" "$(<"${RUN_DIR}/relays/pebble-management")" "${RUN_DIR}/pebble/ca.pem"
  printf '"s3":{"endpoint":"http://127.0.0.1:%s","region":"%s","bucket":"%s",' \
    "$(<"${RUN_DIR}/relays/s3")" "${S3_REGION}" "${S3_BUCKET}"
  printf '"accessKeyId":"%s","secretAccessKey":"%s"}' "${S3_ACCESS_KEY_ID}" "${S3_SECRET_ACCESS_KEY}"
}

# launch_s3: s3rver listens on 127.0.0.1:P in the namespace and (after await_s3) the relay
# listens on 127.0.0.1:P on the host, so http://127.0.0.1:P is the same endpoint, and the same
# signed Host header, for the API in the guest and for clients on the host.
launch_s3() {
  local script
  local port
  stage "starting s3rver (the R2 stand-in) in ${NS}" "${RUN_DIR}/s3rver.log"
  script="$(s3rver_script)" || fail "s3rver is not installed (run npm ci)"
  port="$(free_relay_port)" || fail "no free port for s3rver"
  printf '%s\n' "${port}" >"${RUN_DIR}/relays/s3"
  mkdir -p "${RUN_DIR}/s3"
  ip netns exec "${NS}" node "${script}" -d "${RUN_DIR}/s3" -a 127.0.0.1 -p "${port}" \
    --no-vhost-buckets --configure-bucket "${S3_BUCKET}" \
    >"${RUN_DIR}/s3rver.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/s3rver.pid"
}

await_s3() {
  local port
  port="$(<"${RUN_DIR}/relays/s3")"
  stage "waiting for s3rver" "${RUN_DIR}/s3rver.log"
  await_listening s3rver "${RUN_DIR}/s3rver.pid" "${port}" 30
  relay_to_host s3 "${port}" "${port}"
}
