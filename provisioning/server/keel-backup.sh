#!/usr/bin/env bash
# keel-backup: Keel's backups on the server, around pgBackRest. Installed by the backups step as
# /usr/local/lib/keel/keel-backup; its systemd units run it as the postgres user.
#
#   keel-backup run full|diff   record row counts in the database, then take a backup
#   keel-backup drill           restore the latest backup into a scratch cluster and check it
#   keel-backup watch           notice dropped WAL (a broken chain) and repair it with a full backup
#   keel-backup status [--json|--prometheus|--http]   the backup state (default: --json)
#
# Every failure prints one line starting with "keel-backup: error:" and exits non-zero, so the
# unit fails; nothing reports a success it did not have. The layout (paths, stanza, ports) comes
# from the file the backups step renders from Keel's TypeScript layout.
set -Eeuo pipefail

# shellcheck source=/dev/null
source "${KEEL_BACKUP_LAYOUT:-/etc/pgbackrest/keel.env}"

# error MESSAGE: one line on stderr. When stderr is the journal (JOURNAL_STREAM names it), the
# line is logged at priority "err" (the <3> prefix), so `journalctl -p err` finds every failure.
error() {
  local priority=""
  if [[ -n "${JOURNAL_STREAM:-}" && "$(stat -L -c '%d:%i' "/proc/$$/fd/2" 2>/dev/null)" == "${JOURNAL_STREAM}" ]]; then
    priority="<3>"
  fi
  printf '%skeel-backup: error: %s\n' "${priority}" "$*" >&2
}

die() {
  error "$@"
  exit 1
}

info() {
  printf 'keel-backup: %s\n' "$*"
}

pgbackrest_run() {
  pgbackrest --config="${PGBACKREST_CONF}" --stanza="${STANZA}" "$@"
}

psql_keel_stdin() {
  psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -tA -d "${DATABASE}"
}

now() {
  date -u +%s
}

# write_state NAME JSON: a state file, replaced atomically.
write_state() {
  local tmp
  tmp="$(mktemp "${STATE_DIR}/.$1.XXXXXX")"
  printf '%s\n' "$2" >"${tmp}"
  mv -f "${tmp}" "${STATE_DIR}/$1.json"
}

read_state() {
  if [[ -f "${STATE_DIR}/$1.json" ]]; then cat "${STATE_DIR}/$1.json"; else printf 'null\n'; fi
}

# The counts are written into the database itself, so every backup carries the numbers the
# drill compares a restored copy with.
record_counts() {
  local kind="$1" selects=() table
  for table in "${KEY_TABLES[@]}"; do
    selects+=("'${table}', (SELECT count(*) FROM public.${table})")
  done
  psql_keel_stdin <<SQL
CREATE SCHEMA IF NOT EXISTS keel_backup;
CREATE TABLE IF NOT EXISTS keel_backup.marks (
  taken_at timestamptz PRIMARY KEY DEFAULT clock_timestamp(),
  kind text NOT NULL,
  counts jsonb NOT NULL
);
INSERT INTO keel_backup.marks (kind, counts) VALUES ('${kind}', jsonb_build_object($(
    IFS=,
    printf '%s' "${selects[*]}"
  )));
SQL
}

refresh_info() {
  local info
  info="$(pgbackrest_run --output=json info)" || return 1
  write_state info "${info}"
}

run_backup() {
  local kind="$1" started finished
  [[ "${kind}" == full || "${kind}" == diff ]] || die "usage: keel-backup run full|diff"
  started="$(now)"
  record_counts "${kind}" || die "could not record the row counts before the ${kind} backup"
  info "${kind} backup started"
  if ! pgbackrest_run --type="${kind}" backup; then
    write_state last-backup-failure "$(jq -n --arg type "${kind}" --argjson at "$(now)" '{type: $type, at: $at}')"
    refresh_info || true
    die "the ${kind} backup failed (see /var/log/pgbackrest/${STANZA}-backup.log)"
  fi
  rm -f "${STATE_DIR}/last-backup-failure.json"
  finished="$(now)"
  refresh_info || die "the ${kind} backup finished, but pgbackrest info failed"
  local label
  label="$(jq -r '.[0].backup[-1].label' "${STATE_DIR}/info.json")"
  write_state "last-${kind}" "$(jq -n --arg label "${label}" --argjson started "${started}" \
    --argjson finished "${finished}" '{label: $label, started: $started, finished: $finished}')"
  if [[ "${kind}" == full ]]; then
    # A new full backup starts a chain that needs none of the dropped WAL.
    rm -f "${STATE_DIR}/wal-dropped.json"
    forget_replaced_clusters "${started}"
  fi
  info "${kind} backup ${label} done in $((finished - started)) s"
}

# forget_replaced_clusters SINCE: a cluster a restore replaced is kept (for keel:restore undo)
# until a full backup started after the restore succeeds. Its name is the time it was replaced.
forget_replaced_clusters() {
  local since="$1" dir replaced
  for dir in "${REPLACED_DIR}"/*/; do
    [[ -d "${dir}" ]] || continue
    dir="${dir%/}"
    replaced="$(date -u -d "$(sed -E 's/^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z.*/\1-\2-\3 \4:\5:\6/' <<<"${dir##*/}")" +%s 2>/dev/null)" ||
      continue
    if ((replaced < since)); then
      rm -rf --one-file-system "${dir}"
      info "removed ${dir}, the cluster a restore replaced: the full backup since then is the way back"
    fi
  done
}

# wal_drop: the drop that broke the chain as JSON ({at, line}), or null: the one the watch
# recorded, else the newest "dropped WAL file" warning of pgBackRest's asynchronous archive-push
# when it is newer than the start of the last full backup.
wal_drop() {
  local log="${LOG_DIR}/${STANZA}-archive-push-async.log" drop drop_time last_full_start
  if [[ -f "${STATE_DIR}/wal-dropped.json" ]]; then
    cat "${STATE_DIR}/wal-dropped.json"
    return 0
  fi
  drop="$(grep -hs 'dropped WAL file' "${log}" | tail -n 1)" || true
  if [[ -n "${drop}" ]]; then
    drop_time="$(date -u -d "$(cut -d' ' -f1,2 <<<"${drop}" | cut -d. -f1)" +%s)"
    last_full_start="$(jq -r '.started // 0' <<<"$(read_state last-full)")"
    if ((drop_time >= last_full_start)); then
      jq -n --argjson at "${drop_time}" --arg line "${drop}" '{at: $at, line: $line}'
      return 0
    fi
  fi
  printf 'null\n'
}

# watch_chain: a dropped WAL segment newer than the last full backup breaks the chain; it stays
# broken (walChain in the status, a failed unit each time) until a full backup succeeds, which
# the watch itself takes as soon as the repository answers again. The drop is recorded, so that
# log rotation cannot hide it.
watch_chain() {
  local drop
  drop="$(wal_drop)"
  if [[ "${drop}" != null ]]; then
    write_state wal-dropped "${drop}"
  fi
  if [[ -f "${STATE_DIR}/wal-dropped.json" ]]; then
    error "WAL was dropped at $(date -u -d "@$(jq -r .at "${STATE_DIR}/wal-dropped.json")" +%FT%TZ) (the local queue was full while the repository was unreachable); point-in-time recovery has a gap until a new full backup; taking one now"
    run_backup full
    return 0
  fi
  refresh_info || die "the backup repository cannot be reached (pgbackrest info failed)"
  local failed archived
  failed="$(psql -X -tA -d postgres -c "SELECT coalesce(extract(epoch FROM last_failed_time)::bigint, 0) FROM pg_stat_archiver")"
  archived="$(psql -X -tA -d postgres -c "SELECT coalesce(extract(epoch FROM last_archived_time)::bigint, 0) FROM pg_stat_archiver")"
  ((failed <= archived)) || die "WAL archiving is failing since $(date -u -d "@${failed}" +%FT%TZ); PostgreSQL keeps the WAL until it succeeds"
  info "the backup chain is whole"
}

# drill_counts_ok SOCKET_DIR: every key table holds at least the rows the newest mark recorded
# (the mark is written before the backup starts, so later writes can only add rows), and the
# events hypertable answers a time_bucket query.
drill_check() {
  local socket="$1" mark table recorded restored
  local q=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -tA -h "${socket}" -p "${DRILL_PORT}" -d "${DATABASE}")
  mark="$("${q[@]}" -c "SELECT counts FROM keel_backup.marks ORDER BY taken_at DESC LIMIT 1")"
  [[ -n "${mark}" ]] || die "drill: the restored copy has no row-count mark"
  for table in "${KEY_TABLES[@]}"; do
    recorded="$(jq -r --arg t "${table}" '.[$t]' <<<"${mark}")"
    restored="$("${q[@]}" -c "SELECT count(*) FROM public.${table}")"
    ((restored >= recorded)) ||
      die "drill: ${table} has ${restored} rows in the restored copy, fewer than the ${recorded} recorded before the backup"
    DRILL_COUNTS="$(jq -c --arg t "${table}" --argjson n "${restored}" '. + {($t): $n}' <<<"${DRILL_COUNTS}")"
  done
  [[ "$("${q[@]}" -c "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'")" == 1 ]] ||
    die "drill: events is not a hypertable in the restored copy"
  "${q[@]}" -c "SELECT time_bucket('1 day', ts) AS day, count(*) FROM public.events GROUP BY day ORDER BY day DESC LIMIT 1" >/dev/null ||
    die "drill: the events hypertable does not answer a time_bucket query"
}

stop_drill_cluster() {
  if [[ -f "${DRILL_DIR}/data/postmaster.pid" ]]; then
    "${PG_BIN}/pg_ctl" -D "${DRILL_DIR}/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

run_drill() {
  local started finished label free needed
  started="$(now)"
  DRILL_COUNTS='{}'
  trap 'stop_drill_cluster; rm -rf "${DRILL_DIR}"' EXIT
  stop_drill_cluster
  rm -rf "${DRILL_DIR}"
  mkdir -p "${DRILL_DIR}/data" "${DRILL_DIR}/socket"
  chmod 0700 "${DRILL_DIR}/data"
  refresh_info || die "drill: the backup repository cannot be reached"
  label="$(jq -r '.[0].backup[-1].label // empty' "${STATE_DIR}/info.json")"
  [[ -n "${label}" ]] || die "drill: there is no backup to restore"
  needed="$(jq -r '.[0].backup[-1].info.size' "${STATE_DIR}/info.json")"
  free="$(df --output=avail -B1 "${DRILL_DIR}" | tail -n 1)"
  ((free > needed + needed / 5)) ||
    die "drill: ${DRILL_DIR} has ${free} bytes free, too few to restore backup ${label} (${needed} bytes)"
  pgbackrest_run --pg1-path="${DRILL_DIR}/data" --type=immediate --target-action=promote \
    --archive-mode=off --set="${label}" restore >/dev/null || die "drill: restoring backup ${label} failed"
  cat >"${DRILL_DIR}/postgresql.conf" <<CONF
# A throwaway copy for the restore drill: a Unix socket only, no archiving.
data_directory = '${DRILL_DIR}/data'
hba_file = '${DRILL_DIR}/pg_hba.conf'
ident_file = '${DRILL_DIR}/pg_ident.conf'
listen_addresses = ''
port = ${DRILL_PORT}
unix_socket_directories = '${DRILL_DIR}/socket'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
shared_buffers = '32MB'
archive_mode = off
# No queries during recovery: a hot standby would need the production server's limits.
hot_standby = off
max_connections = 10
CONF
  printf 'local all postgres peer\n' >"${DRILL_DIR}/pg_hba.conf"
  : >"${DRILL_DIR}/pg_ident.conf"
  "${PG_BIN}/pg_ctl" -D "${DRILL_DIR}/data" -o "-c config_file=${DRILL_DIR}/postgresql.conf" \
    -l "${DRILL_DIR}/postgres.log" -w -t 600 start >/dev/null ||
    die "drill: the restored copy did not start: $(tail -n 5 "${DRILL_DIR}/postgres.log" | tr '\n' ' ')"
  local tries=0
  until [[ "$(psql -X -tA -h "${DRILL_DIR}/socket" -p "${DRILL_PORT}" -d postgres -c 'SELECT pg_is_in_recovery()')" == f ]]; do
    ((tries++ < 600)) || die "drill: the restored copy never left recovery"
    sleep 1
  done
  drill_check "${DRILL_DIR}/socket"
  stop_drill_cluster
  finished="$(now)"
  write_state last-drill "$(jq -n --arg label "${label}" --argjson started "${started}" \
    --argjson finished "${finished}" --argjson counts "${DRILL_COUNTS}" \
    '{ok: true, label: $label, started: $started, finished: $finished, counts: $counts}')"
  info "drill: backup ${label} restored and checked in $((finished - started)) s: ${DRILL_COUNTS}"
}

# A failed drill is recorded too, so the status never shows an old success as the latest word.
drill() {
  local status=0
  (run_drill) || status=$?
  if ((status != 0)); then
    write_state last-drill-failure "$(jq -n --argjson at "$(now)" '{at: $at}')"
    exit "${status}"
  fi
  rm -f "${STATE_DIR}/last-drill-failure.json"
}

status_json() {
  local archiver
  archiver="$(psql -X -tA -d postgres -c "SELECT json_build_object(
      'lastArchivedAt', extract(epoch FROM last_archived_time)::bigint,
      'lastArchivedWal', last_archived_wal,
      'lastFailedAt', extract(epoch FROM last_failed_time)::bigint,
      'failedCount', failed_count) FROM pg_stat_archiver" 2>/dev/null || printf 'null')"
  jq -n --argjson info "$(read_state info)" --argjson full "$(read_state last-full)" \
    --argjson diff "$(read_state last-diff)" --argjson failure "$(read_state last-backup-failure)" \
    --argjson drill "$(read_state last-drill)" \
    --argjson drillFailure "$(read_state last-drill-failure)" \
    --argjson dropped "$(wal_drop)" --argjson archiver "${archiver:-null}" \
    --argjson replaced "$(find "${REPLACED_DIR}" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | jq -R . | jq -s .)" '
    {
      stanza: ($info[0].name // null),
      repositoryStatus: ($info[0].status.message // "unknown"),
      backups: [($info[0].backup // [])[] | {label: .label, type: .type, start: .timestamp.start, stop: .timestamp.stop,
        size: .info.size, repositorySize: .info.repository.delta}],
      lastFull: $full, lastDiff: $diff, lastBackupFailure: $failure,
      wal: (($archiver // {}) + {oldest: ($info[0].archive[0].min // null), newest: ($info[0].archive[0].max // null)}),
      walChain: (if $dropped == null then "whole" else "broken" end),
      walDropped: $dropped,
      lastDrill: $drill,
      lastDrillFailure: $drillFailure,
      replacedClusters: $replaced
    }'
}

status_prometheus() {
  status_json | jq -r '
    def gauge(name; help; value; labels):
      if value == null then empty else
        "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name)\(labels) \(value)" end;
    [
      gauge("keel_backup_last_success_timestamp_seconds"; "End of the last successful backup of this type."; .lastFull.finished; "{type=\"full\"}"),
      (if .lastDiff.finished == null then empty else "keel_backup_last_success_timestamp_seconds{type=\"diff\"} \(.lastDiff.finished)" end),
      gauge("keel_backup_last_failure_timestamp_seconds"; "When the last backup failed; gone once one succeeds."; .lastBackupFailure.at; ""),
      gauge("keel_wal_last_archived_timestamp_seconds"; "When PostgreSQL last archived a WAL segment."; .wal.lastArchivedAt; ""),
      gauge("keel_wal_last_failed_timestamp_seconds"; "When archiving a WAL segment last failed."; .wal.lastFailedAt; ""),
      gauge("keel_wal_chain_whole"; "1 while no WAL was dropped since the last full backup."; (if .walChain == "whole" then 1 else 0 end); ""),
      gauge("keel_restore_drill_last_success_timestamp_seconds"; "End of the last successful restore drill."; .lastDrill.finished; ""),
      gauge("keel_restore_drill_last_failure_timestamp_seconds"; "When the last restore drill failed."; .lastDrillFailure.at; ""),
      gauge("keel_backup_repository_bytes"; "Size of the backups in the repository."; ([.backups[].repositorySize] | add); "")
    ] | join("\n")'
}

status() {
  case "${1:---json}" in
    --json) status_json ;;
    --prometheus) status_prometheus ;;
    --http)
      # One request per connection (systemd socket activation). Its head is read to the end,
      # since closing a socket with unread data resets the connection before the answer.
      local body line
      while IFS= read -r -t 5 line && [[ -n "${line%$'\r'}" ]]; do :; done
      body="$(status_prometheus)"
      printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %s\r\n\r\n%s\n' \
        "$((${#body} + 1))" "${body}"
      ;;
    *) die "usage: keel-backup status [--json|--prometheus|--http]" ;;
  esac
}

main() {
  local command="${1:-}"
  shift || true
  case "${command}" in
    run) run_backup "${1:-}" ;;
    drill) drill ;;
    watch) watch_chain ;;
    status) status "$@" ;;
    *) die "usage: keel-backup run full|diff | drill | watch | status [--json|--prometheus|--http]" ;;
  esac
}

main "$@"
