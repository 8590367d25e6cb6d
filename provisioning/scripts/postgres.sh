#!/usr/bin/env bash
# Step "postgres": PostgreSQL 17 and TimescaleDB from Debian, the cluster on the data volume,
# Keel's settings and client rules, a hardened unit, and the keel database with its roles: the
# owner role keel (no login) and a login role per password (payload inputs login-role and
# login-verifier: a SCRAM verifier, never the password). A rotated password gets a new login
# role; the old one keeps working for the API instances not yet restarted, until the api step
# has restarted them all and drops it.
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly VERSION=17
readonly CLUSTER=main
readonly UNIT="postgresql@${VERSION}-${CLUSTER}.service"
readonly DATA_DIR="/srv/keel/postgresql/${VERSION}/${CLUSTER}"
readonly CONF_DIR="/etc/postgresql/${VERSION}/${CLUSTER}"
# The cluster's configuration directory lives on the volume too (CONF_DIR links to it), so a
# rebuilt server finds the cluster whole: Debian's tools know a cluster by its configuration.
readonly KEPT_CONF_DIR="/srv/keel/postgresql/etc/${VERSION}/${CLUSTER}"
readonly OWNER=keel
readonly DATABASE=keel

psql_admin() {
  runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc "$@"
}

query() {
  psql_admin -tA -d "$1" -c "$2"
}

# Debian's package would create a cluster on the root disk; Keel creates its own on the volume.
prevent_default_cluster() {
  local conf=/etc/postgresql-common/createcluster.d/50-keel.conf
  local tmp
  tmp="$(mktemp)"
  printf '%s\n' "# Managed by Keel: clusters live on the data volume." \
    "create_main_cluster = false" \
    "data_directory = '/srv/keel/postgresql/%v/%c'" >"${tmp}"
  install_file "${tmp}" "${conf}" 0644 root root
  rm -f "${tmp}"
}

ensure_cluster() {
  ensure_dir /srv/keel/postgresql 0755 postgres postgres
  if [[ -f "${DATA_DIR}/PG_VERSION" && -f "${KEPT_CONF_DIR}/postgresql.conf" && ! -e "${CONF_DIR}" ]]; then
    # A rebuilt server: the volume holds the cluster and its configuration; link them again.
    adopt_volume_owner
    ensure_dir "${CONF_DIR%/*}" 0755 postgres postgres
    ln -s "${KEPT_CONF_DIR}" "${CONF_DIR}"
    note_change "adopted the cluster on the volume (${DATA_DIR})"
  elif ! pg_lsclusters --no-header | awk '{print $1 "/" $2}' | grep -qx "${VERSION}/${CLUSTER}"; then
    [[ ! -f "${DATA_DIR}/PG_VERSION" ]] ||
      die "${DATA_DIR} holds a cluster but ${KEPT_CONF_DIR} no configuration; move the cluster aside to start a new one, or restore its configuration there"
    pg_createcluster "${VERSION}" "${CLUSTER}" -d "${DATA_DIR}" -p 5432 --locale C.UTF-8 \
      -- --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    note_change "created cluster ${VERSION}/${CLUSTER} in ${DATA_DIR}"
  fi
  keep_configuration_on_volume
}

# keep_configuration_on_volume: moves the configuration directory Debian made onto the volume.
keep_configuration_on_volume() {
  [[ -L "${CONF_DIR}" ]] && return 0
  ensure_dir "${KEPT_CONF_DIR%/*}" 0755 postgres postgres
  mv -T "${CONF_DIR}" "${KEPT_CONF_DIR}"
  ln -s "${KEPT_CONF_DIR}" "${CONF_DIR}"
  note_change "${CONF_DIR} -> ${KEPT_CONF_DIR}"
}

# adopt_volume_owner: a new system may give the postgres user another uid than the old one did.
adopt_volume_owner() {
  if [[ "$(stat -c %U /srv/keel/postgresql/"${VERSION}")" != postgres ]]; then
    chown -R postgres:postgres /srv/keel/postgresql
    note_change "gave /srv/keel/postgresql to this system's postgres user"
  fi
}

# Installs settings, client rules and the unit drop-in; prints what the running server needs:
# nothing, a reload or a restart.
install_configuration() {
  local needs=none
  install_rendered "${CONF_DIR}/conf.d/50-keel.conf" 0640 postgres postgres
  if last_changed; then needs=reload; fi
  install_rendered "${CONF_DIR}/pg_hba.conf" 0640 postgres postgres
  if last_changed; then needs=reload; fi
  # The cluster's own files are for postgres alone (they name paths and settings).
  local own
  for own in postgresql.conf pg_ctl.conf pg_ident.conf start.conf environment; do
    ensure_mode "${CONF_DIR}/${own}" 0640
  done
  ensure_mode /var/lib/postgresql 0750
  install_rendered /etc/systemd/system/postgresql@.service.d/60-keel-start-reload.conf 0644 root root
  if last_changed; then
    daemon_reload
    # What the drop-in does at the next start, a reload does now.
    if [[ "${needs}" == none ]]; then needs=reload; fi
  fi
  install_rendered /etc/systemd/system/postgresql@.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
    needs=restart
  fi
  KEEL_PG_NEEDS="${needs}"
}

apply_configuration() {
  apply_service "${UNIT}" "${KEEL_PG_NEEDS}"
  # Some settings (shared_preload_libraries, memory) only take effect on a restart.
  if [[ "${KEEL_PG_NEEDS}" == "reload" &&
    "$(query postgres "SELECT count(*) FROM pg_settings WHERE pending_restart")" != "0" ]]; then
    systemctl restart "${UNIT}"
    note_change "restarted ${UNIT} (settings need a restart)"
  fi
}

wait_until_accepting() {
  wait_for 60 "PostgreSQL accepts connections" runuser -u postgres -- pg_isready -q -p 5432 ||
    die "PostgreSQL did not accept connections within 60 s; see journalctl -u ${UNIT}"
}

role_exists() {
  [[ -n "$(query postgres "SELECT 1 FROM pg_roles WHERE rolname = '$1'")" ]]
}

ensure_roles() {
  local login verifier
  login="$(input login-role)"
  verifier="$(input login-verifier)"
  [[ "${login}" =~ ^${OWNER}_[0-9a-f]{12}$ ]] || die "the login role name in the payload is malformed"
  [[ "${verifier}" =~ ^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$ ]] ||
    die "the login verifier in the payload is malformed"
  if ! role_exists "${OWNER}"; then
    psql_admin -d postgres <<<"CREATE ROLE ${OWNER} NOLOGIN;"
    note_change "owner role ${OWNER}"
  fi
  # The name derives from the password, so an existing login role already has this verifier.
  if ! role_exists "${login}"; then
    psql_admin -d postgres <<SQL
CREATE ROLE ${login} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE ${OWNER} PASSWORD '${verifier}';
-- Sessions act as the owner, so whatever migrations create belongs to ${OWNER}.
ALTER ROLE ${login} SET role = '${OWNER}';
SQL
    note_change "login role ${login}"
  fi
}

ensure_database() {
  if [[ -z "$(query postgres "SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'")" ]]; then
    psql_admin -d postgres <<<"CREATE DATABASE ${DATABASE} OWNER ${OWNER};"
    note_change "database ${DATABASE}"
  fi
  # The extension needs a superuser; the API's migrations find it and use it.
  if [[ -z "$(query "${DATABASE}" "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")" ]]; then
    psql_admin -d "${DATABASE}" <<<"CREATE EXTENSION IF NOT EXISTS timescaledb;"
    note_change "extension timescaledb in ${DATABASE}"
  fi
}

main() {
  keel_start postgres "$1"
  KEEL_PG_NEEDS=none
  prevent_default_cluster
  ensure_packages postgresql-common
  ensure_packages "postgresql-${VERSION}" "postgresql-${VERSION}-timescaledb"
  ensure_cluster
  install_configuration
  apply_configuration
  wait_until_accepting
  ensure_roles
  ensure_database
  keel_finish
}

main "$@"
