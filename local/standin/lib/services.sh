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

# The backup bucket: moto (an S3 server that checks SigV4 signatures, with the small patch in
# s3/moto-s3.py) behind nginx for TLS, both from a Debian 13 tree of their own run with chroot
# in the namespace. pgBackRest speaks only HTTPS: nginx serves pebble's localhost certificate,
# which the guest trusts, on 127.0.0.1:P; the guest reaches it as https://localhost:P.
readonly BACKUP_S3_BUCKET="keel-standin-backups"
readonly BACKUP_S3_REGION="us-east-1"

# prepare_backup_s3 ARCHIVE: its tree on a tmpfs, with the server script and nginx's config.
prepare_backup_s3() {
  local archive="$1"
  local root="${RUN_DIR}/s3root"
  local port back
  stage "extracting the backup bucket's S3 server (moto behind nginx)"
  mkdir -p "${root}"
  mount -t tmpfs -o size=1g,mode=0755 "${NS}-s3" "${root}"
  zstd -q -dc "${archive}" | tar "${ROOTFS_TAR_FLAGS[@]}" -xpf - -C "${root}"
  port="$(free_relay_port)" || fail "no free port for the backup bucket"
  printf '%s\n' "${port}" >"${RUN_DIR}/relays/backup-s3"
  back="$(free_relay_port)" || fail "no free port for moto"
  printf '%s\n' "${back}" >"${RUN_DIR}/relays/backup-s3-moto"
  mkdir -p "${root}/srv/s3/tmp"
  install -m 0644 "${SCRIPT_DIR}/s3/moto-s3.py" "${root}/srv/s3/moto-s3.py"
  install -m 0600 "${RUN_DIR}/pebble/cert.pem" "${root}/srv/s3/cert.pem"
  install -m 0600 "${RUN_DIR}/pebble/key.pem" "${root}/srv/s3/key.pem"
  cat >"${root}/srv/s3/nginx.conf" <<CONFIG
daemon off;
worker_processes 1;
pid /srv/s3/nginx.pid;
error_log /srv/s3/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path /srv/s3/tmp;
  proxy_temp_path /srv/s3/tmp;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate /srv/s3/cert.pem;
    ssl_certificate_key /srv/s3/key.pem;
    client_max_body_size 0;
    location / {
      # An R2 outage on request: while this file exists, every request gets a 503.
      if (-f /srv/s3/outage) { return 503; }
      proxy_pass http://127.0.0.1:${back};
      proxy_set_header Host \$http_host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_http_version 1.1;
    }
  }
}
CONFIG
}

launch_backup_s3() {
  local root="${RUN_DIR}/s3root"
  stage "starting the backup bucket (moto and nginx) in ${NS}" "${RUN_DIR}/backup-s3.log"
  # The first three requests are unauthenticated: they create the IAM user whose key signs the rest.
  INITIAL_NO_AUTH_ACTION_COUNT=3 ip netns exec "${NS}" chroot "${root}" python3 /srv/s3/moto-s3.py \
    -H 127.0.0.1 -p "$(<"${RUN_DIR}/relays/backup-s3-moto")" \
    >"${RUN_DIR}/backup-s3.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/backup-s3-moto.pid"
  ip netns exec "${NS}" chroot "${root}" nginx -c /srv/s3/nginx.conf \
    >>"${RUN_DIR}/backup-s3.log" 2>&1 </dev/null {EVENTS_FD}>&- {LOG_FD}>&- &
  printf '%s\n' "$!" >"${RUN_DIR}/backup-s3-nginx.pid"
}

# backup_s3_request SERVICE CREDENTIALS CURL_ARGS...: a signed request from inside the namespace.
backup_s3_request() {
  local service="$1" credentials="$2"
  shift 2
  ip netns exec "${NS}" curl -sS --fail-with-body --max-time 10 --cacert "${RUN_DIR}/pebble/ca.pem" \
    --aws-sigv4 "aws:amz:${BACKUP_S3_REGION}:${service}" --user "${credentials}" "$@"
}

# await_backup_s3: a user allowed everything in S3, its access key, and the bucket.
await_backup_s3() {
  local port url out key secret
  port="$(<"${RUN_DIR}/relays/backup-s3")"
  url="https://localhost:${port}/"
  stage "waiting for the backup bucket" "${RUN_DIR}/backup-s3.log"
  await_listening moto "${RUN_DIR}/backup-s3-moto.pid" "$(<"${RUN_DIR}/relays/backup-s3-moto")" 60
  await_listening "nginx (backup bucket)" "${RUN_DIR}/backup-s3-nginx.pid" "${port}" 20
  backup_s3_request iam bootstrap:bootstrap "${url}" \
    --data "Version=2010-05-08&Action=CreateUser&UserName=pgbackrest" >/dev/null
  backup_s3_request iam bootstrap:bootstrap "${url}" \
    --data "Version=2010-05-08&Action=PutUserPolicy&UserName=pgbackrest&PolicyName=s3&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D" >/dev/null
  out="$(backup_s3_request iam bootstrap:bootstrap "${url}" \
    --data "Version=2010-05-08&Action=CreateAccessKey&UserName=pgbackrest")"
  key="$(sed -n 's:.*<AccessKeyId>\(.*\)</AccessKeyId>.*:\1:p' <<<"${out}")"
  secret="$(sed -n 's:.*<SecretAccessKey>\(.*\)</SecretAccessKey>.*:\1:p' <<<"${out}")"
  [[ -n "${key}" && -n "${secret}" ]] || fail "moto gave no access key: ${out}"
  printf '%s %s\n' "${key}" "${secret}" >"${RUN_DIR}/backup-s3.credentials"
  backup_s3_request s3 "${key}:${secret}" -X PUT "${url}${BACKUP_S3_BUCKET}" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" >/dev/null
}

backup_s3_json() {
  local key secret
  read -r key secret <"${RUN_DIR}/backup-s3.credentials"
  printf '"backupS3":{"endpoint":"https://localhost:%s","region":"%s","bucket":"%s",' \
    "$(<"${RUN_DIR}/relays/backup-s3")" "${BACKUP_S3_REGION}" "${BACKUP_S3_BUCKET}"
  printf '"accessKeyId":"%s","secretAccessKey":"%s","outageFlag":"%s"}' "${key}" "${secret}" \
    "${RUN_DIR}/s3root/srv/s3/outage"
}
