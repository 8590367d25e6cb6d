#!/usr/bin/env bash
# Step "nginx": nginx and certbot from Debian; Keel's configuration; a certificate for the API
# host from the ACME server, kept on the data volume and renewed by certbot.timer, whose deploy
# hook reloads nginx. Every configuration change is checked with `nginx -t` before a reload,
# and a refused change is rolled back.
# Usage: nginx.sh WORK --domain HOST --email EMAIL --acme-server URL --webroot DIR
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly UNIT=nginx.service
readonly INCLUDE_DIR=/etc/nginx/keel.d
readonly LETSENCRYPT_LINK=/etc/letsencrypt
readonly LETSENCRYPT_DATA=/srv/keel/letsencrypt

# What the running nginx needs for the files installed so far: none, reload or restart.
NGINX_ACTION=none
NGINX_BACKUP=""

# Certificates live on the data volume, so a rebuilt server keeps them (no re-issue, no
# Let's Encrypt duplicate-certificate limit).
link_letsencrypt() {
  ensure_dir "${LETSENCRYPT_DATA}" 0755 root root
  if [[ -L "${LETSENCRYPT_LINK}" && "$(readlink "${LETSENCRYPT_LINK}")" == "${LETSENCRYPT_DATA}" ]]; then
    return 0
  fi
  if [[ -d "${LETSENCRYPT_LINK}" && ! -L "${LETSENCRYPT_LINK}" ]]; then
    [[ -z "$(ls -A "${LETSENCRYPT_LINK}")" ]] ||
      die "${LETSENCRYPT_LINK} is a non-empty directory; move its contents to ${LETSENCRYPT_DATA} first"
    rmdir "${LETSENCRYPT_LINK}"
  fi
  ln -sfn "${LETSENCRYPT_DATA}" "${LETSENCRYPT_LINK}"
  note_change "${LETSENCRYPT_LINK} -> ${LETSENCRYPT_DATA}"
}

# nginx_install DEST: installs a rendered nginx file, keeping a copy of /etc/nginx first.
nginx_install() {
  if [[ -z "${NGINX_BACKUP}" ]]; then
    NGINX_BACKUP="$(mktemp -d)"
    cp -a /etc/nginx "${NGINX_BACKUP}/"
  fi
  install_rendered "$1" 0644 root root
  if last_changed && [[ "${NGINX_ACTION}" == "none" ]]; then NGINX_ACTION=reload; fi
}

# apply_nginx: when files changed, validate them (rolling a refused change back), then reload,
# restart or start nginx as needed.
apply_nginx() {
  local refusal
  if [[ "${NGINX_ACTION}" != "none" ]] && ! refusal="$(nginx -t -q 2>&1)"; then
    rm -rf /etc/nginx
    cp -a "${NGINX_BACKUP}/nginx" /etc/nginx
    die "nginx refused the new configuration, which was rolled back: ${refusal}"
  fi
  apply_service "${UNIT}" "${NGINX_ACTION}"
  NGINX_ACTION=none
  [[ -z "${NGINX_BACKUP}" ]] || rm -rf "${NGINX_BACKUP}"
  NGINX_BACKUP=""
}

install_sandbox() {
  install_rendered /etc/systemd/system/nginx.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
    NGINX_ACTION=restart
  fi
}

# nginx's logs rotate daily or at 100 MB, checked hourly, by a sandboxed logrotate.
install_log_rotation() {
  install_rendered /etc/logrotate.d/nginx 0644 root root
  install_rendered /etc/systemd/system/logrotate.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then daemon_reload; fi
  install_rendered /etc/systemd/system/logrotate.timer.d/50-keel-hourly.conf 0644 root root
  if last_changed; then
    daemon_reload
    systemctl restart logrotate.timer
  fi
  ensure_enabled logrotate.timer
  ensure_started logrotate.timer
}

# The site Debian enables is not part of Keel's nginx.conf; remove it so nobody edits it in vain.
remove_default_site() {
  remove_file /etc/nginx/sites-enabled/default
}

install_http_configuration() {
  local conf
  for conf in /etc/nginx/nginx.conf "${INCLUDE_DIR}/10-tls.conf" "${INCLUDE_DIR}/20-limits.conf" \
    "${INCLUDE_DIR}/30-upstream.conf" "${INCLUDE_DIR}/40-http.conf" "${INCLUDE_DIR}/60-status.conf" \
    /etc/nginx/snippets/keel-headers.conf /etc/nginx/snippets/keel-errors.conf \
    /etc/nginx/snippets/keel-proxy.conf; do
    nginx_install "${conf}"
  done
}

# certificate_wanted DOMAIN SERVER: true when there is no certificate for DOMAIN issued by SERVER.
certificate_wanted() {
  local domain="$1" server="$2"
  local renewal="${LETSENCRYPT_LINK}/renewal/${domain}.conf"
  [[ -f "${LETSENCRYPT_LINK}/live/${domain}/fullchain.pem" && -f "${renewal}" ]] || return 0
  ! grep -qxF "server = ${server}" "${renewal}"
}

ensure_certificate() {
  local domain="$1" email="$2" server="$3" webroot="$4"
  certificate_wanted "${domain}" "${server}" || return 0
  local force=()
  if [[ -f "${LETSENCRYPT_LINK}/live/${domain}/fullchain.pem" ]]; then
    force=(--force-renewal)
  fi
  certbot certonly --non-interactive --quiet --agree-tos --no-eff-email \
    --email "${email}" --server "${server}" --key-type ecdsa \
    --webroot --webroot-path "${webroot}" --cert-name "${domain}" -d "${domain}" "${force[@]}"
  note_change "certificate for ${domain} from ${server}"
}

install_renewal_hook() {
  install_rendered /etc/letsencrypt/renewal-hooks/deploy/keel-reload-nginx 0755 root root
  install_rendered /etc/systemd/system/certbot.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
  fi
  ensure_enabled certbot.timer
  ensure_started certbot.timer
}

main() {
  keel_start nginx "$1"
  shift
  local domain="" email="" server="" webroot=""
  while (($# > 0)); do
    case "$1" in
      --domain) domain="$2" ;;
      --email) email="$2" ;;
      --acme-server) server="$2" ;;
      --webroot) webroot="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  [[ -n "${domain}" && -n "${email}" && -n "${server}" && -n "${webroot}" ]] ||
    die "usage: nginx.sh WORK --domain HOST --email EMAIL --acme-server URL --webroot DIR"

  link_letsencrypt
  ensure_packages nginx certbot logrotate
  install_log_rotation
  install_sandbox
  remove_default_site
  install_http_configuration
  apply_nginx

  ensure_certificate "${domain}" "${email}" "${server}" "${webroot}"
  install_renewal_hook
  nginx_install "${INCLUDE_DIR}/50-https.conf"
  apply_nginx
  keel_finish
}

main "$@"
