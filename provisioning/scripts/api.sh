#!/usr/bin/env bash
# Step "api": unpacks the API release, installs its environment and units, runs the release's
# migrations once, then restarts the instances one at a time, each gated on its /ready. When
# an instance of a new release never becomes ready, the previous release is restored. A new
# release is then watched through nginx for a while; when too many of its answers are 5xx, or
# its p99 latency is too far above the previous release's, the previous release is restored the
# same way and the step fails with the numbers.
# Rotated secrets are revoked here, once every instance runs on the new ones: the Postgres
# login roles of earlier passwords are dropped, and an earlier JWT key is retired in the key
# ring (it verifies tokens for one more token lifetime, then the API refuses it).
# Usage: api.sh WORK --release ID --archive PATH --instances N --jwt-keys PATH --token-seconds N
#   --watch-seconds N --max-error-rate SHARE --max-latency-factor N
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly RELEASES=/srv/keel/releases
readonly CURRENT=/srv/keel/current
readonly ENV_FILE=/etc/keel/api.env
# Instance N (1 to 8) listens on 127.0.0.1:300N.
readonly PORT_PREFIX=300
readonly MAX_INSTANCES=8
readonly KEEP_RELEASES=5
readonly READY_TIMEOUT=60
# The watch window reads the requests nginx passed to the API from its access log (JSON lines);
# with fewer than WATCH_MIN_REQUESTS it cannot judge, and the release stays.
readonly ACCESS_LOG=/var/log/nginx/access.log
readonly WATCH_MIN_REQUESTS=20
# The previous release's latency is that of the last BASELINE_REQUESTS requests nginx passed to
# it (read from the last BASELINE_BYTES of the log before the release); latencies below
# LATENCY_FLOOR_MS are noise, so the bound is counted from at least that.
readonly BASELINE_REQUESTS=2000
readonly BASELINE_BYTES=$((8 * 1024 * 1024))
readonly LATENCY_FLOOR_MS=50
# Exists from an environment or unit change until every instance was restarted on it, so a
# run that failed half-way still restarts them all the next time.
readonly RESTART_PENDING=/etc/keel/api.restart-pending
readonly LOGIN_ROLE_PATTERN='^keel_[0-9a-f]{12}$'
readonly RING_HEADER="# Managed by Keel: keys that verify access tokens, 'RETIRED_AT SECRET' (- while in use)."

kept_releases() {
  local dir ids=()
  for dir in "${RELEASES}"/*/; do
    if [[ -f "${dir}server.js" ]]; then ids+=("$(basename "${dir}")"); fi
  done
  printf '%s' "${ids[*]:-none}"
}

# unpack_release ID ARCHIVE: the archive's SHA-256 starts with ID; a release is unpacked once.
unpack_release() {
  local id="$1" archive="$2"
  [[ -f "${RELEASES}/${id}/server.js" ]] && return 0
  [[ -f "${archive}" ]] ||
    die "release ${id} is not kept on this server (it keeps $(kept_releases)) and no archive was uploaded to ${archive}: keel:apiRelease must name a kept release"
  local digest staging
  digest="$(sha256sum "${archive}" | cut -d' ' -f1)"
  [[ "${digest}" == "${id}"* ]] || die "release ${id}: ${archive} is corrupt (SHA-256 ${digest})"
  staging="$(mktemp -d "${RELEASES}/.staging.XXXXXX")"
  tar -xzf "${archive}" -C "${staging}" --no-same-owner
  if [[ ! -f "${staging}/server.js" || ! -f "${staging}/migrate.js" ]]; then
    rm -rf "${staging}"
    die "release ${id}: the archive holds no server.js and migrate.js"
  fi
  chmod -R u=rwX,go=rX "${staging}"
  # When the release arrived (its files carry the build's fixed time): keel-ops reports it.
  touch "${staging}/.unpacked"
  rm -rf "${RELEASES:?}/${id}"
  mv "${staging}" "${RELEASES}/${id}"
  rm -f "${archive}"
  note_change "unpacked release ${id}"
}

# env_value FILE NAME: the value of NAME in an environment file; nothing when either is missing.
env_value() {
  [[ -f "$1" ]] || return 0
  sed -n "s/^$2=//p" "$1"
}

# jwt_ring_next MODE NOW LIFETIME KEY...: prints the JWT key ring read on stdin, updated. The
# KEYs are in use ("-"); with MODE retire, any other key in use is retired at NOW. Keys retired
# LIFETIME seconds before NOW or earlier are left out: the API refuses them already. Secrets go
# through bash builtins only, never onto a command line.
jwt_ring_next() {
  local mode="$1" now="$2" lifetime="$3"
  shift 3
  local retired secret key
  local -A in_use=()
  for key in "$@"; do in_use["${key}"]=1; done
  printf '%s\n' "${RING_HEADER}"
  while read -r retired secret; do
    [[ -n "${secret}" && "${retired}" != "#"* && -z "${in_use[${secret}]:-}" ]] || continue
    if [[ "${retired}" == - ]]; then
      if [[ "${mode}" == retire ]]; then retired="${now}"; fi
    elif [[ ! "${retired}" =~ ^[0-9]+$ ]] || ((retired + lifetime <= now)); then
      continue
    fi
    printf '%s %s\n' "${retired}" "${secret}"
  done
  for key in "$@"; do printf -- '- %s\n' "${key}"; done
}

# update_jwt_ring RING LIFETIME MODE: with MODE stage (before any restart), the new JWT key and
# the one the running instances sign with are both in use, so every instance accepts the tokens
# of both; with MODE retire (every instance restarted), only the new key is.
update_jwt_ring() {
  local ring="$1" lifetime="$2" mode="$3"
  local new running tmp
  new="$(env_value "$(rendered "${ENV_FILE}")" JWT_SECRET)"
  [[ -n "${new}" ]] || die "the rendered environment holds no JWT_SECRET"
  local keys=("${new}")
  if [[ "${mode}" == stage ]]; then
    running="$(env_value "${ENV_FILE}" JWT_SECRET)"
    if [[ -n "${running}" && "${running}" != "${new}" ]]; then keys+=("${running}"); fi
  fi
  tmp="$(mktemp)"
  if [[ -f "${ring}" ]]; then
    jwt_ring_next "${mode}" "$(date +%s)" "${lifetime}" "${keys[@]}" <"${ring}" >"${tmp}"
  else
    jwt_ring_next "${mode}" "$(date +%s)" "${lifetime}" "${keys[@]}" </dev/null >"${tmp}"
  fi
  install_file "${tmp}" "${ring}" 0640 root keel
  rm -f "${tmp}"
}

# install_runtime RING LIFETIME: key ring, environment file and units. Sets RESTART_ALL when
# running instances must pick up a change.
install_runtime() {
  local changed=0
  update_jwt_ring "$1" "$2" stage
  install_rendered "${ENV_FILE}" 0640 root keel
  if last_changed; then changed=1; fi
  local units_changed=0
  install_rendered /etc/systemd/system/keel-api@.service 0644 root root
  if last_changed; then units_changed=1; fi
  install_rendered /etc/systemd/system/keel-migrate@.service 0644 root root
  if last_changed; then units_changed=1; fi
  if ((units_changed == 1)); then
    daemon_reload
    changed=1
  fi
  if ((changed == 1)); then touch "${RESTART_PENDING}"; fi
  RESTART_ALL=0
  if [[ -e "${RESTART_PENDING}" ]]; then RESTART_ALL=1; fi
}

migrate_release() {
  local id="$1"
  [[ -f "${RELEASES}/${id}/.migrated" ]] && return 0
  if ! systemctl start "keel-migrate@${id}.service"; then
    journalctl -u "keel-migrate@${id}.service" -n 30 --no-pager >&2 || true
    die "the migrations of release ${id} failed; the running release is untouched"
  fi
  touch "${RELEASES}/${id}/.migrated"
  note_change "applied the migrations of release ${id}"
}

instance_ready() {
  curl -fs --max-time 2 -o /dev/null "http://127.0.0.1:${PORT_PREFIX}$1/ready"
}

# restart_instance N: restarts keel-api@N and waits for its /ready; fails at once when systemd
# gives up on it (a crash loop), or after READY_TIMEOUT.
restart_instance() {
  local unit="keel-api@$1.service"
  local deadline=$((SECONDS + READY_TIMEOUT))
  # A unit that hit its start limit refuses even a manual restart until reset.
  systemctl reset-failed "${unit}" 2>/dev/null || true
  systemctl restart "${unit}"
  until instance_ready "$1"; do
    if [[ "$(systemctl show -p ActiveState --value "${unit}")" == "failed" ]] || ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.5
  done
  info "keel-api@$1 is ready"
}

switch_current() {
  ln -sfn "${RELEASES}/$1" "${CURRENT}.keel-new"
  mv -T "${CURRENT}.keel-new" "${CURRENT}"
  touch "${RELEASES}/$1"
}

current_release() {
  if [[ -L "${CURRENT}" ]]; then
    basename "$(readlink "${CURRENT}")"
  fi
}

# restore_previous PREVIOUS COUNT: puts PREVIOUS back on instances 1 to COUNT, one at a time.
restore_previous() {
  local previous="$1" count="$2" i
  switch_current "${previous}"
  for ((i = 1; i <= count; i++)); do
    restart_instance "${i}" || info "keel-api@${i} is not ready on ${previous} either"
  done
}

# roll_back FAILED_INSTANCE RELEASE PREVIOUS: puts PREVIOUS back on every restarted instance.
roll_back() {
  local failed="$1" id="$2" previous="$3"
  journalctl -u "keel-api@${failed}.service" -n 30 --no-pager >&2 || true
  if [[ -z "${previous}" || "${previous}" == "${id}" ]]; then
    die "keel-api@${failed} did not become ready (its log is above)"
  fi
  restore_previous "${previous}" "${failed}"
  die "release ${id} never became ready on keel-api@${failed}; rolled back to ${previous}"
}

access_log_size() {
  stat -c %s "${ACCESS_LOG}" 2>/dev/null || printf '0\n'
}

# jq_log PROGRAM: runs the jq PROGRAM on the access log lines on stdin, with `proxied` (the
# requests nginx passed to the API) and `p99` (their p99 duration in milliseconds) defined.
jq_log() {
  jq -R -s -r 'def proxied: [split("\n")[] | fromjson? | select(.upstream != "")];
    def p99: (map(.duration) | sort) as $d |
      if ($d | length) == 0 then 0 else $d[(($d | length) * 0.99 | ceil) - 1] * 1000 | round end;
    '"$1"
}

# window_counts START: "TOTAL ERRORS P99_MS" of the requests nginx passed to the API since byte
# START of its access log (all of it when it was rotated meanwhile).
window_counts() {
  local start="$1"
  if (($(access_log_size) < start)); then start=0; fi
  tail -c "+$((start + 1))" "${ACCESS_LOG}" 2>/dev/null |
    jq_log 'proxied | "\(length) \(map(select(.status >= 500)) | length) \(p99)"'
}

# baseline_latency END: "COUNT P99_MS" of the last requests nginx passed to the API before byte
# END of its access log: the release that served them.
baseline_latency() {
  head -c "$1" "${ACCESS_LOG}" 2>/dev/null | tail -c "${BASELINE_BYTES}" |
    jq_log 'proxied | .[-'"${BASELINE_REQUESTS}"':] | "\(length) \(p99)"'
}

# watch_release ID PREVIOUS INSTANCES SECONDS MAX_RATE MAX_FACTOR BASELINE_END: the new release
# ID serves for SECONDS; when more than MAX_RATE of the requests nginx passed to the API got a
# 5xx, or their p99 is above MAX_FACTOR times the previous release's (measured before byte
# BASELINE_END of the access log, counted from at least LATENCY_FLOOR_MS), PREVIOUS goes back
# on every instance and the step fails with the numbers.
watch_release() {
  local id="$1" previous="$2" instances="$3" seconds="$4" max_rate="$5" max_factor="$6"
  local baseline_end="$7"
  local start total errors p99 rate before before_p99 bound
  read -r before before_p99 < <(baseline_latency "${baseline_end}")
  start="$(access_log_size)"
  info "watching release ${id} through nginx for ${seconds} s"
  sleep "${seconds}"
  read -r total errors p99 < <(window_counts "${start}")
  if ((total < WATCH_MIN_REQUESTS)); then
    info "watch: ${total} request(s) in ${seconds} s, too few to judge (${WATCH_MIN_REQUESTS} needed); release ${id} stays"
    return 0
  fi
  rate="$(awk -v e="${errors}" -v t="${total}" 'BEGIN { printf "%.3f", e / t }')"
  if awk -v r="${rate}" -v m="${max_rate}" 'BEGIN { exit !(r > m) }'; then
    restore_previous "${previous}" "${instances}"
    die "release ${id} answered ${errors} of ${total} requests with a 5xx (error rate ${rate}, above keel:releaseMaxErrorRate ${max_rate}; p99 ${p99} ms) in its ${seconds} s watch; rolled back to ${previous}"
  fi
  local latency="p99 ${p99} ms, previous release too few requests to compare"
  if ((before >= WATCH_MIN_REQUESTS)); then
    bound=$((max_factor * (before_p99 > LATENCY_FLOOR_MS ? before_p99 : LATENCY_FLOOR_MS)))
    if ((p99 > bound)); then
      restore_previous "${previous}" "${instances}"
      die "release ${id} answered with a p99 of ${p99} ms, above ${bound} ms (keel:releaseMaxLatencyFactor ${max_factor} times the previous release's ${before_p99} ms, counted from at least ${LATENCY_FLOOR_MS} ms) in its ${seconds} s watch; rolled back to ${previous}"
    fi
    latency="p99 ${p99} ms (previous release ${before_p99} ms, bound ${bound} ms)"
  fi
  info "watch: ${total} requests in ${seconds} s, ${errors} with a 5xx (error rate ${rate}), ${latency}; release ${id} stays"
}

# roll_out ID INSTANCES WATCH_SECONDS MAX_RATE MAX_FACTOR
roll_out() {
  local id="$1" instances="$2" watch_seconds="$3" max_rate="$4" max_factor="$5"
  local previous i baseline_end
  previous="$(current_release)"
  # Where the previous release's traffic ends in nginx's log, before any instance restarts.
  baseline_end="$(access_log_size)"
  if [[ "${previous}" != "${id}" ]]; then
    switch_current "${id}"
    note_change "current release ${id} (was ${previous:-none})"
    RESTART_ALL=1
  fi
  for ((i = 1; i <= instances; i++)); do
    ensure_enabled "keel-api@${i}.service"
    if ((RESTART_ALL == 1)) || ! systemctl is-active --quiet "keel-api@${i}.service"; then
      restart_instance "${i}" || roll_back "${i}" "${id}" "${previous}"
      note_change "restarted keel-api@${i}"
    fi
  done
  rm -f "${RESTART_PENDING}"
  if [[ -n "${previous}" && "${previous}" != "${id}" ]] && ((watch_seconds > 0)); then
    watch_release "${id}" "${previous}" "${instances}" "${watch_seconds}" "${max_rate}" \
      "${max_factor}" "${baseline_end}"
  fi
}

psql_admin() {
  as_postgres psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -d postgres "$@"
}

# retire_login_roles LOGIN: every instance runs on the password of LOGIN now, so the login roles
# of earlier passwords go: no new session, the remaining ones ended, the role dropped. The old
# password is refused from here on.
retire_login_roles() {
  local login="$1" role
  [[ "${login}" =~ ${LOGIN_ROLE_PATTERN} ]] || die "the login role name in the payload is malformed"
  while IFS= read -r role; do
    [[ -n "${role}" ]] || continue
    psql_admin >/dev/null <<SQL
ALTER ROLE ${role} NOLOGIN;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}';
DROP ROLE ${role};
SQL
    note_change "dropped login role ${role} of an earlier password"
  done < <(psql_admin -tA -c "SELECT rolname FROM pg_roles
    WHERE rolname ~ '${LOGIN_ROLE_PATTERN}' AND rolname <> '${login}'")
}

stop_extra_instances() {
  local instances="$1" i
  for ((i = instances + 1; i <= MAX_INSTANCES; i++)); do
    if systemctl is-enabled --quiet "keel-api@${i}.service" 2>/dev/null ||
      systemctl is-active --quiet "keel-api@${i}.service"; then
      systemctl disable --now --quiet "keel-api@${i}.service"
      note_change "stopped keel-api@${i}"
    fi
  done
}

# Keeps the newest releases and always the current one.
prune_releases() {
  local current kept=0 dir
  current="$(current_release)"
  while IFS= read -r dir; do
    if [[ "${dir}" == "${current}" ]] || ((kept < KEEP_RELEASES)); then
      kept=$((kept + 1))
      continue
    fi
    rm -rf "${RELEASES:?}/${dir}"
    note_change "removed old release ${dir}"
  done < <(find "${RELEASES}" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' |
    sort -rn | cut -d' ' -f2)
}

main() {
  keel_start api "$1"
  shift
  local id="" archive="" instances="" ring="" lifetime="" watch_seconds="" max_rate=""
  local max_factor=""
  while (($# > 0)); do
    case "$1" in
      --release) id="$2" ;;
      --archive) archive="$2" ;;
      --instances) instances="$2" ;;
      --jwt-keys) ring="$2" ;;
      --token-seconds) lifetime="$2" ;;
      --watch-seconds) watch_seconds="$2" ;;
      --max-error-rate) max_rate="$2" ;;
      --max-latency-factor) max_factor="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  [[ "${id}" =~ ^[0-9a-f]{16,64}$ && -n "${archive}" && "${instances}" =~ ^[1-8]$ &&
    "${ring}" == /* && "${lifetime}" =~ ^[0-9]+$ && "${watch_seconds}" =~ ^[0-9]+$ &&
    "${max_rate}" =~ ^[01](\.[0-9]+)?$ && "${max_factor}" =~ ^[1-9][0-9]*$ ]] ||
    die "usage: api.sh WORK --release HEX --archive PATH --instances 1-8 --jwt-keys PATH --token-seconds N --watch-seconds N --max-error-rate SHARE --max-latency-factor N"

  ensure_packages nodejs curl jq
  unpack_release "${id}" "${archive}"
  install_runtime "${ring}" "${lifetime}"
  migrate_release "${id}"
  roll_out "${id}" "${instances}" "${watch_seconds}" "${max_rate}" "${max_factor}"
  stop_extra_instances "${instances}"
  retire_login_roles "$(input login-role)"
  update_jwt_ring "${ring}" "${lifetime}" retire
  prune_releases
  keel_finish
}

main "$@"
