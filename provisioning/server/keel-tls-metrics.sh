#!/usr/bin/env bash
# keel-tls-metrics: answers one Prometheus scrape (systemd socket activation, one connection per
# process) with the expiry of the certificate nginx serves for the API host, as a client sees it.
# Without an answer from nginx it reports keel_tls_probe_success 0 and no expiry.
set -Eeuo pipefail

readonly SETTINGS=/etc/default/keel-ops

# not_after HOST: the served certificate's notAfter in seconds since the epoch, or nothing.
not_after() {
  local end
  end="$(openssl s_client -connect 127.0.0.1:443 -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -enddate 2>/dev/null | sed -n 's/^notAfter=//p' || true)"
  [[ -n "${end}" ]] || return 0
  date -d "${end}" +%s
}

metrics() {
  local host end
  host="$(sed -n 's/^API_HOST=//p' "${SETTINGS}")"
  end="$(not_after "${host}")"
  printf '# HELP keel_tls_probe_success 1 when nginx served a certificate for the API host.\n'
  printf '# TYPE keel_tls_probe_success gauge\n'
  printf 'keel_tls_probe_success %d\n' "$([[ -n "${end}" ]] && echo 1 || echo 0)"
  [[ -n "${end}" ]] || return 0
  printf '# HELP keel_tls_certificate_not_after_timestamp_seconds When the served certificate expires.\n'
  printf '# TYPE keel_tls_certificate_not_after_timestamp_seconds gauge\n'
  printf 'keel_tls_certificate_not_after_timestamp_seconds %s\n' "${end}"
}

main() {
  # Read the request's head to its end: closing a socket with unread data resets the connection.
  local line body
  while IFS= read -r -t 5 line && [[ -n "${line%$'\r'}" ]]; do :; done
  body="$(metrics)"
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %s\r\n\r\n%s\n' \
    "$((${#body} + 1))" "${body}"
}

main "$@"
