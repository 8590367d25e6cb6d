#!/usr/bin/env bash
# Step "backups": pgBackRest from Debian with an encrypted S3 repository in the backup bucket,
# continuous WAL archiving (asynchronous, with a bounded local queue), and the units that take
# backups, run restore drills, watch the WAL chain and publish metrics. The first run creates
# the stanza, proves archiving with `pgbackrest check` and takes the first full backup.
# Usage: backups.sh WORK --layout PATH --restore-pending yes|no
#   --layout: where the layout file the server's tools read goes
#   --restore-pending: keel:restore asks for a restore, which the restore step (next) performs
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly PG_UNIT=postgresql@17-main.service
readonly UNITS=(keel-backup-full.service keel-backup-diff.service keel-restore-drill.service
  keel-backup-watch.service keel-backup-metrics@.service)
readonly TIMERS=(keel-backup-full.timer keel-backup-diff.timer keel-restore-drill.timer
  keel-backup-watch.timer)

install_layout() {
  local dir
  for dir in "${BACKUP_DIR}" "${SPOOL_DIR}" "${STATE_DIR}" "${LOG_DIR}"; do
    ensure_dir "${dir}" 0750 postgres postgres
  done
  ensure_dir /usr/local/lib/keel 0755 root root
  install_rendered "${PGBACKREST_CONF}" 0640 root postgres
  install_rendered "${LAYOUT}" 0644 root root
  install_rendered /usr/local/lib/keel/keel-backup 0755 root root
  install_rendered /usr/local/bin/keel-backup-status 0755 root root
}

install_units() {
  local unit changed=0
  for unit in "${UNITS[@]}" "${TIMERS[@]}" keel-backup-metrics.socket; do
    install_rendered "/etc/systemd/system/${unit}" 0644 root root
    if last_changed; then changed=1; fi
  done
  if ((changed == 1)); then daemon_reload; fi
}

# archive_mode needs a restart; archive_command and archive_timeout a reload.
enable_archiving() {
  install_rendered /etc/postgresql/17/main/conf.d/60-keel-backup.conf 0640 postgres postgres
  last_changed || return 0
  systemctl reload "${PG_UNIT}"
  if [[ "$(as_postgres psql -X -tA -c "SELECT count(*) FROM pg_settings WHERE pending_restart")" != 0 ]]; then
    systemctl restart "${PG_UNIT}"
    note_change "restarted ${PG_UNIT} (archive_mode)"
  fi
  wait_for 60 "PostgreSQL accepts connections" as_postgres pg_isready -q -p 5432 ||
    die "PostgreSQL did not come back within 60 s; see journalctl -u ${PG_UNIT}"
}

# The stanza's state in the repository: 0 ok, 1 missing; anything else stops the step.
stanza_status() {
  local info
  info="$(pgbackrest_run --output=json info)" ||
    die "the backup repository cannot be reached: pgbackrest info failed (bucket, credentials, endpoint?)"
  jq -r '.[0].status.code' <<<"${info}"
}

ensure_stanza() {
  local code
  code="$(stanza_status)"
  case "${code}" in
    0) return 0 ;;
    1)
      pgbackrest_run stanza-create >/dev/null
      note_change "stanza ${STANZA} in the backup repository"
      ;;
    *) die "the backup repository holds the stanza in an unusable state (pgbackrest info status ${code})" ;;
  esac
}

# The repository's cluster is not this one: a new server (its volume lost) whose history is
# in the bucket. Archiving into that stanza must wait for the restore step to bring it back.
foreign_repository() {
  local ours theirs
  ours="$(as_postgres psql -X -tA -c "SELECT system_identifier FROM pg_control_system()")"
  theirs="$(pgbackrest_run --output=json info | jq -r '.[0].db[-1]["system-id"] // empty')"
  [[ -n "${theirs}" && "${theirs}" != "${ours}" ]]
}

has_backup() {
  [[ "$(pgbackrest_run --output=json info | jq '.[0].backup | length')" != 0 ]]
}

start_timers() {
  local timer
  for timer in "${TIMERS[@]}" keel-backup-metrics.socket; do
    ensure_enabled "${timer}"
    ensure_started "${timer}"
  done
}

main() {
  keel_start backups "$1"
  shift
  local restore_pending=""
  LAYOUT=""
  while (($# > 0)); do
    case "$1" in
      --layout) LAYOUT="$2" ;;
      --restore-pending) restore_pending="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  [[ -n "${LAYOUT}" && "${restore_pending}" =~ ^(yes|no)$ ]] ||
    die "usage: backups.sh WORK --layout PATH --restore-pending yes|no"
  # The layout (paths, stanza) as Keel's TypeScript renders it.
  # shellcheck source=/dev/null
  source "$(rendered "${LAYOUT}")"
  ensure_packages pgbackrest jq
  install_layout
  install_units
  enable_archiving
  ensure_stanza
  if foreign_repository; then
    [[ "${restore_pending}" == yes ]] ||
      die "the backup repository holds the backups of another cluster (a lost server?): set keel:restore latest to restore them here, or empty the backup bucket to start a new history"
    info "the repository holds the backups to restore; archiving starts once the restore step has run"
    start_timers
    keel_finish
    return 0
  fi
  if ((KEEL_CHANGES > 0)); then
    # Archiving end to end: a WAL switch, pushed and found in the repository.
    pgbackrest_run check >/dev/null || die "pgbackrest check failed: WAL does not reach the repository"
    info "pgbackrest check passed"
  fi
  if ! has_backup; then
    systemctl start keel-backup-full.service ||
      die "the first full backup failed: $(journalctl -u keel-backup-full.service -n 5 --no-pager -o cat | tr '\n' ' ')"
    note_change "first full backup"
  fi
  start_timers
  keel_finish
}

main "$@"
