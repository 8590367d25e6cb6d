#!/usr/bin/env bash
# Step "redis": Debian's redis-server on loopback, no persistence, the ACL file with the API's
# user, and a sandbox drop-in. Redis reads its ACL file only at start, so a changed file
# (a rotated password) restarts it; the API keeps serving from in-memory limits meanwhile.
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly UNIT=redis-server.service

# With the default user off, an unauthenticated PING is refused with NOAUTH: that is an answer.
redis_answers() {
  redis-cli -h 127.0.0.1 -p 6379 PING 2>&1 | grep -q -e PONG -e NOAUTH
}

main() {
  keel_start redis "$1"
  ensure_packages redis-server

  local action=none
  install_rendered /etc/redis/redis.conf 0640 root redis
  if last_changed; then action=restart; fi
  install_rendered /etc/redis/users.acl 0640 root redis
  if last_changed; then action=restart; fi
  install_rendered /etc/systemd/system/redis-server.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
    action=restart
  fi
  apply_service "${UNIT}" "${action}"
  wait_for 30 "Redis answers on 127.0.0.1:6379" redis_answers ||
    die "Redis did not answer within 30 s; see journalctl -u ${UNIT}"
  keel_finish
}

main "$@"
