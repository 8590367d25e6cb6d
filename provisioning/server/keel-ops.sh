#!/usr/bin/env bash
# keel-ops: the one program an operator's key runs (keel:operatorKeys). sshd forces it for the
# keel-ops user whatever the client asks; the request arrives in SSH_ORIGINAL_COMMAND, split on
# blanks and never evaluated. It reads and reports; it changes nothing on the server.
#   status      the platform's state as JSON: units, releases, instances, certificate, disks,
#               memory, failed units, backups, firing alerts
#   releases    the API releases kept on the server as JSON, the active one marked
#   logs SOURCE [--since DURATION] [--lines N] [--grep TEXT] [--follow]
#               SOURCE: api nginx nginx-errors postgres redis backup integrity ssh system
#               DURATION: a number and s, m, h or d (default 1h, at most 7d); N: the last N
#               lines (default 200, at most 10000); TEXT: a fixed string of letters, digits
#               and . _ : @ / = + -
# Root can run it too, with the request as arguments: keel-ops status.
set -Eeuo pipefail

readonly DATA_DIR=/srv/keel
readonly RELEASES=/srv/keel/releases
readonly CURRENT=/srv/keel/current
readonly SETTINGS=/etc/default/keel-ops
readonly BACKUP_METRICS=http://127.0.0.1:9188/
readonly PROMETHEUS_ALERTS=http://127.0.0.1:9090/api/v1/alerts
# API instance N listens on 127.0.0.1:300N.
readonly API_PORT_PREFIX=300
readonly DEFAULT_LINES=200
readonly MAX_LINES=10000
readonly MAX_SINCE_SECONDS=$((7 * 86400))
readonly SERVICES=(
  ssh.service fail2ban.service postgresql@17-main.service redis-server.service nginx.service
  keel-backup-metrics.socket keel-backup-watch.timer certbot.timer
  keel-backup-full.timer keel-backup-diff.timer keel-restore-drill.timer logrotate.timer
  prometheus.service prometheus-alertmanager.service prometheus-node-exporter.service
  prometheus-postgres-exporter.service prometheus-redis-exporter.service
  prometheus-nginx-exporter.service keel-tls-metrics.socket
)
readonly VERBS="status, releases, logs SOURCE [--since 1h] [--lines 200] [--grep TEXT] [--follow]"

die() {
  printf 'keel-ops: %s\n' "$*" >&2
  exit 2
}

setting() {
  sed -n "s/^$1=//p" "${SETTINGS}" 2>/dev/null
}

# api_instances: the numbers of the API instances systemd knows, one a line.
api_instances() {
  systemctl list-units --all --plain --no-legend 'keel-api@*.service' |
    sed -n 's/^keel-api@\([0-9]\)\.service .*/\1/p' | sort -n
}

unit_states() {
  systemctl show --property=Id,LoadState,ActiveState,SubState "$@" | jq -R -s '
    split("\n\n") | map(select(length > 0) | split("\n") | map(select(length > 0) |
      capture("^(?<key>[^=]+)=(?<value>.*)$")) | from_entries |
      {unit: .Id, load: .LoadState, active: .ActiveState, sub: .SubState})'
}

failed_units() {
  systemctl list-units --failed --plain --no-legend | jq -R -s 'split("\n") |
    map(select(length > 0) | split(" ")[0])'
}

releases_json() {
  local active="" dir id arrived migrated
  if [[ -L "${CURRENT}" ]]; then active="$(basename "$(readlink "${CURRENT}")")"; fi
  for dir in "${RELEASES}"/*/; do
    [[ -f "${dir}server.js" ]] || continue
    id="$(basename "${dir}")"
    arrived="$(stat -c %Y "${dir}.unpacked" 2>/dev/null || printf null)"
    migrated=false
    if [[ -f "${dir}.migrated" ]]; then migrated=true; fi
    jq -n --arg id "${id}" --argjson active "$([[ "${id}" == "${active}" ]] && echo true || echo false)" \
      --argjson arrived "${arrived}" --argjson migrated "${migrated}" \
      '{id: $id, active: $active, arrivedAt: $arrived, migrated: $migrated}'
  done | jq -s 'sort_by(.arrivedAt // 0) | reverse'
}

instance_json() {
  local n="$1" body code
  body="$(mktemp)"
  code="$(curl -s --max-time 2 -o "${body}" -w '%{http_code}' "http://127.0.0.1:${API_PORT_PREFIX}${n}/ready" || true)"
  jq -n --argjson n "${n}" --arg code "${code:-000}" --slurpfile body <(jq -c . "${body}" 2>/dev/null || true) \
    '{instance: $n, ready: ($code == "200"), httpStatus: ($code | tonumber), checks: ($body[0].checks // null)}'
  rm -f "${body}"
}

certificate_json() {
  local host end
  host="$(setting API_HOST)"
  end="$(openssl s_client -connect 127.0.0.1:443 -servername "${host}" </dev/null 2>/dev/null |
    openssl x509 -noout -enddate 2>/dev/null | sed -n 's/^notAfter=//p' || true)"
  if [[ -z "${end}" ]]; then
    jq -n --arg host "${host}" '{host: $host, notAfter: null, daysLeft: null}'
    return
  fi
  end="$(date -d "${end}" +%s)"
  jq -n --arg host "${host}" --argjson end "${end}" --argjson now "$(date +%s)" \
    '{host: $host, notAfter: $end, daysLeft: ((($end - $now) / 86400) | floor)}'
}

disks_json() {
  df -B1 --output=target,size,used,avail / "${DATA_DIR}" | tail -n +2 | jq -R -s --arg data "${DATA_DIR}" '
    split("\n") | map(select(length > 0) | split(" ") | map(select(length > 0))) |
    [(.[0] | {path: "/"}), (.[1] | {path: $data})] as $paths |
    [range(length) as $i | .[$i] as $row | $paths[$i] + {mount: $row[0],
      sizeBytes: ($row[1] | tonumber), usedBytes: ($row[2] | tonumber),
      availableBytes: ($row[3] | tonumber),
      usedPercent: (($row[2] | tonumber) * 100 / ($row[1] | tonumber) | floor)}]'
}

memory_json() {
  jq -R -s 'split("\n") | map(capture("^(?<key>[A-Za-z]+):\\s+(?<value>[0-9]+) kB") | .value |= tonumber * 1024) |
    from_entries | {totalBytes: .MemTotal, availableBytes: .MemAvailable,
      swapTotalBytes: .SwapTotal, swapFreeBytes: .SwapFree}' /proc/meminfo
}

# backup_json: the backup metrics (keel-backup-metrics.socket), named for people; null when
# nothing answers.
backup_json() {
  local metrics
  if ! metrics="$(curl -fs --max-time 5 "${BACKUP_METRICS}")"; then
    printf 'null\n'
    return
  fi
  jq -R -s 'split("\n") | map(select(length > 0 and (startswith("#") | not)) |
      capture("^(?<key>[^ ]+) (?<value>.+)$") | .value |= tonumber) | from_entries |
    {lastFullAt: .["keel_backup_last_success_timestamp_seconds{type=\"full\"}"],
     lastDiffAt: .["keel_backup_last_success_timestamp_seconds{type=\"diff\"}"],
     lastFailureAt: .keel_backup_last_failure_timestamp_seconds,
     lastWalArchivedAt: .keel_wal_last_archived_timestamp_seconds,
     walChainWhole: (if .keel_wal_chain_whole == null then null else .keel_wal_chain_whole == 1 end),
     lastDrillAt: .keel_restore_drill_last_success_timestamp_seconds,
     lastDrillFailureAt: .keel_restore_drill_last_failure_timestamp_seconds}' <<<"${metrics}"
}

# alerts_json: the alerts Prometheus has firing (pending ones are not yet alerts); null when
# Prometheus does not answer.
alerts_json() {
  local answer
  if ! answer="$(curl -fs --max-time 5 "${PROMETHEUS_ALERTS}")"; then
    printf 'null\n'
    return
  fi
  jq '[.data.alerts[] | select(.state == "firing") |
    {name: .labels.alertname, severity: .labels.severity, summary: .annotations.summary,
     since: (.activeAt | sub("\\.[0-9]+"; "") | fromdateiso8601)}] | sort_by(.since)' <<<"${answer}"
}

status() {
  (($# == 0)) || die "status takes no arguments"
  local instances=() n
  mapfile -t instances < <(api_instances)
  local units=("${SERVICES[@]}")
  for n in "${instances[@]}"; do units+=("keel-api@${n}.service"); done
  jq -n --arg host "$(hostname)" --argjson time "$(date +%s)" \
    --argjson units "$(unit_states "${units[@]}")" \
    --argjson failed "$(failed_units)" \
    --argjson releases "$(releases_json)" \
    --argjson instances "$(for n in "${instances[@]}"; do instance_json "${n}"; done | jq -s .)" \
    --argjson certificate "$(certificate_json)" \
    --argjson disks "$(disks_json)" \
    --argjson memory "$(memory_json)" \
    --argjson backup "$(backup_json)" \
    --argjson alerts "$(alerts_json)" \
    '{server: $host, time: $time, units: $units, failedUnits: $failed,
      release: {active: ([$releases[] | select(.active) | .id][0] // null),
        kept: [$releases[].id]},
      instances: $instances, certificate: $certificate, disks: $disks, memory: $memory,
      backup: $backup, alerts: $alerts}'
}

releases() {
  (($# == 0)) || die "releases takes no arguments"
  releases_json
}

# keep_since FIRST FORMAT SINCE: the lines of a log whose entries start at or after SINCE, read
# on stdin. Each entry starts with a time at column FIRST in FORMAT (a date(1) format); a line
# without one (a continuation) goes with the entry before it.
keep_since() {
  local first="$1" format="$2" since="$3"
  local cutoff
  cutoff="$(date -d "@${since}" "+${format}")"
  awk -v first="${first}" -v len="${#cutoff}" -v cutoff="${cutoff}" '
    { stamp = substr($0, first, len) }
    stamp ~ /^[0-9][0-9][0-9][0-9][-\/][0-9][0-9][-\/][0-9][0-9][ T][0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/ {
      keep = (stamp >= cutoff)
    }
    keep'
}

# from_journal SINCE FOLLOW OUTPUT JOURNALCTL-ARGS...
from_journal() {
  local since="$1" follow="$2" output="$3"
  shift 3
  local args=(--no-pager --quiet -o "${output}" --since "@${since}")
  if ((follow == 1)); then args+=(--follow); fi
  journalctl "${args[@]}" "$@"
}

# from_file SINCE FOLLOW FILE FIRST FORMAT: the file (and its first rotation) from SINCE.
from_file() {
  local since="$1" follow="$2" file="$3" first="$4" format="$5"
  [[ -r "${file}" ]] || die "${file} is not there or not readable"
  if ((follow == 1)); then
    tail -n "${DEFAULT_LINES}" -F "${file}" 2>/dev/null
  else
    { if [[ -r "${file}.1" ]]; then cat "${file}.1"; fi; cat "${file}"; } |
      keep_since "${first}" "${format}" "${since}"
  fi
}

logs() {
  local source="${1:-}"
  shift || true
  local seconds=3600 lines="${DEFAULT_LINES}" text="" follow=0
  while (($# > 0)); do
    case "$1" in
      --since)
        [[ "${2:-}" =~ ^([1-9][0-9]{0,6})([smhd])$ ]] || die "--since takes a duration such as 30m, 2h or 1d"
        local -A unit=([s]=1 [m]=60 [h]=3600 [d]=86400)
        seconds=$((BASH_REMATCH[1] * unit[${BASH_REMATCH[2]}]))
        ((seconds <= MAX_SINCE_SECONDS)) || die "--since goes back 7 days at most"
        shift 2
        ;;
      --lines)
        lines="${2:-}"
        if [[ ! "${lines}" =~ ^[1-9][0-9]{0,4}$ ]] || ((lines > MAX_LINES)); then
          die "--lines takes a number from 1 to ${MAX_LINES}"
        fi
        shift 2
        ;;
      --grep)
        [[ "${2:-}" =~ ^[A-Za-z0-9._:@/=+-]{1,128}$ ]] ||
          die "--grep takes up to 128 letters, digits and . _ : @ / = + -"
        text="$2"
        shift 2
        ;;
      --follow)
        follow=1
        shift
        ;;
      *) die "logs: unknown option \"$1\"" ;;
    esac
  done
  local since=$(($(date +%s) - seconds))
  {
    case "${source}" in
      api) from_journal "${since}" "${follow}" cat -u 'keel-api@*.service' ;;
      redis) from_journal "${since}" "${follow}" short-iso -u redis-server.service ;;
      backup) from_journal "${since}" "${follow}" short-iso -u 'keel-backup*' -u 'keel-restore-drill*' ;;
      integrity) from_journal "${since}" "${follow}" short-iso -t keel-integrity -t debsums ;;
      ssh) from_journal "${since}" "${follow}" short-iso -u ssh.service ;;
      system) from_journal "${since}" "${follow}" short-iso ;;
      nginx) from_file "${since}" "${follow}" /var/log/nginx/access.log 10 '%Y-%m-%dT%H:%M:%S' ;;
      nginx-errors) from_file "${since}" "${follow}" /var/log/nginx/error.log 1 '%Y/%m/%d %H:%M:%S' ;;
      postgres) from_file "${since}" "${follow}" /var/log/postgresql/postgresql-17-main.log 1 '%Y-%m-%d %H:%M:%S' ;;
      *) die "logs: unknown source \"${source}\"; sources: api nginx nginx-errors postgres redis backup integrity ssh system" ;;
    esac
  } | if [[ -n "${text}" ]]; then grep --line-buffered -F -- "${text}" || true; else cat; fi |
    if ((follow == 1)); then cat; else tail -n "${lines}"; fi
}

main() {
  local request=()
  if (($# > 0)); then
    request=("$@")
  else
    read -r -a request <<<"${SSH_ORIGINAL_COMMAND:-}"
  fi
  local verb="${request[0]:-}"
  local client="${SSH_CLIENT:-root on the server}"
  logger -t keel-ops -p auth.info -- "${client%% *} ran: ${request[*]:-(nothing)}" || true
  case "${verb}" in
    status) status "${request[@]:1}" ;;
    releases) releases "${request[@]:1}" ;;
    logs) logs "${request[@]:1}" ;;
    "") die "no verb given; verbs: ${VERBS}" ;;
    *) die "unknown verb \"${verb}\"; verbs: ${VERBS}" ;;
  esac
}

main "$@"
