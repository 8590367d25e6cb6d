// nginx in front of the API: the main config and one include file per concern (TLS, limits,
// upstream, port 80, port 443) plus two snippets. Everything nginx answers itself (413, 429,
// 404 for /metrics, 503 when no instance answers) is JSON in the API's error shape.
import { NGINX_STATUS_PORT } from "./monitoring";
import type { RateLimits } from "../../infra/config-rules";
import { ACME_WEBROOT, apiPort } from "../layout";
import { LOG_ROTATION } from "./system";

export const NGINX_INCLUDE_DIR = "/etc/nginx/keel.d";
export const NGINX_SNIPPET_DIR = "/etc/nginx/snippets";

export interface NginxValues {
  readonly apiHost: string;
  readonly apiInstances: number;
  readonly rateLimits: RateLimits;
}

/** Security headers; identical to the API's own, so every response carries the same set. */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["Strict-Transport-Security", "max-age=63072000; includeSubDomains"],
  [
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  ],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Permissions-Policy", "camera=(), microphone=(), geolocation=()"],
];

/** The error body nginx returns itself, in the API's shape. */
function jsonError(status: number, code: string, message: string): string {
  return `return ${status} '{"error":{"code":"${code}","message":"${message}","requestId":"$keel_request_id"}}'`;
}

/** A refused request is logged when nginx's random request id (hex) ends with this. */
const REFUSED_LOG_SUFFIX = "00";
/** One refused request (429) in this many is written to the access log. */
export const REFUSED_LOG_SAMPLE = 16 ** REFUSED_LOG_SUFFIX.length;

/** The access log's JSON line; \`extra\` adds fields after the time. */
function logFormat(name: string, extra: string): string {
  return `log_format ${name} escape=json '{"time":"$time_iso8601",${extra}"requestId":"$keel_request_id",'
		'"remote":"$remote_addr","method":"$request_method","uri":"$request_uri",'
		'"status":$status,"bytes":$body_bytes_sent,"duration":$request_time,'
		'"upstream":"$upstream_addr","upstreamStatus":"$upstream_status","agent":"$http_user_agent"}';`;
}

export function renderNginxConf(): string {
  return `# Managed by Keel: nginx's main configuration. Keel's server blocks are in ${NGINX_INCLUDE_DIR}/.
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
include /etc/nginx/modules-enabled/*.conf;

events {
	worker_connections 1024;
}

http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	server_tokens off;
	include /etc/nginx/mime.types;
	default_type application/octet-stream;

	${logFormat("keel_json", "")}
	${logFormat("keel_json_sampled", `"sampled":${REFUSED_LOG_SAMPLE},`)}
	# A flood of refused requests (429) must not fill the disk: each answered request is logged,
	# but only one refusal in ${REFUSED_LOG_SAMPLE} (chosen by nginx's random request id, which a client cannot
	# set), marked "sampled":${REFUSED_LOG_SAMPLE}. Multiply to count; the addresses are there.
	map $status $keel_log_answered {
		429 0;
		default 1;
	}
	map "$status:$request_id" $keel_log_refused {
		"~^429:.*${REFUSED_LOG_SUFFIX}$" 1;
		default 0;
	}
	access_log /var/log/nginx/access.log keel_json if=$keel_log_answered;
	access_log /var/log/nginx/access.log keel_json_sampled if=$keel_log_refused;

	# No compression: the API's answers carry tokens and keys next to text a client chose, which
	# compression would let an attacker recover byte by byte (BREACH).
	gzip off;

	include ${NGINX_INCLUDE_DIR}/*.conf;
}
`;
}

/** Mozilla's intermediate TLS configuration (guidelines 5.7): TLS 1.2 and 1.3, AEAD ciphers. */
export function renderNginxTls(): string {
  return `# Managed by Keel: TLS as Mozilla's "intermediate" profile. The DHE suites are left out: they
# would need a dhparam file, and every client of TLS 1.2 speaks ECDHE.
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ecdh_curve X25519:prime256v1:secp384r1;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;
ssl_session_timeout 1d;
ssl_session_cache shared:KeelTLS:10m;
ssl_session_tickets off;
`;
}

export function renderNginxLimits(limits: RateLimits): string {
  return `# Managed by Keel: request limits per client address, answered with 429.
# Sign-up and login: ${limits.edgeAuthPerMinute} per minute, bursts of ${limits.edgeAuthBurst}.
limit_req_zone $binary_remote_addr zone=keel_auth:10m rate=${limits.edgeAuthPerMinute}r/m;
# The rest of the API: ${limits.edgeApiPerSecond} per second, bursts of ${limits.edgeApiBurst}. /health is not limited.
limit_req_zone $binary_remote_addr zone=keel_api:10m rate=${limits.edgeApiPerSecond}r/s;
limit_req_status 429;
# Refusals are logged at info, below error_log's warn: the access log's sample counts them,
# and error.log stays for real errors.
limit_req_log_level info;

# JSON bodies of up to 1 MB; larger requests get 413.
client_max_body_size 1m;
client_body_timeout 15s;
client_header_timeout 15s;
send_timeout 30s;
keepalive_timeout 30s;
`;
}

export function renderNginxUpstream(apiInstances: number): string {
  const servers = Array.from(
    { length: apiInstances },
    (_, i) => `\tserver 127.0.0.1:${apiPort(i + 1)} max_fails=0;`,
  ).join("\n");
  return `# Managed by Keel: the API instances. While one restarts, nginx passes its requests to
# another (proxy_next_upstream in snippets/keel-proxy.conf). max_fails=0: an instance is never
# marked down, because marks outlive a restart of a few seconds; in a rolling restart both
# instances would be marked at once and nginx would answer "no live upstreams". Trying a
# restarting instance first costs a refused connection on loopback.
upstream keel_api {
${servers}
	keepalive 16;
}

# A client's X-Request-ID is kept when it is a sane token; otherwise nginx makes one.
map $http_x_request_id $keel_request_id {
	"~^[A-Za-z0-9._:-]{8,128}$" $http_x_request_id;
	default $request_id;
}
`;
}

export function renderNginxHttp(apiHost: string): string {
  return `# Managed by Keel: port 80 serves Let's Encrypt's HTTP-01 challenges and redirects the rest.
server {
	listen 80;
	listen [::]:80;
	server_name ${apiHost};

	location ^~ /.well-known/acme-challenge/ {
		root ${ACME_WEBROOT};
		default_type text/plain;
	}

	location / {
		return 301 https://${apiHost}$request_uri;
	}
}

# Any other name: close the connection without an answer.
server {
	listen 80 default_server;
	listen [::]:80 default_server;
	server_name _;
	return 444;
}
`;
}

/** nginx's connection counters for the metrics exporter, on loopback only; never logged. */
export function renderNginxStatus(): string {
  return `# Managed by Keel: connection counters for the nginx exporter, on loopback only.
server {
	listen 127.0.0.1:${NGINX_STATUS_PORT};
	access_log off;

	location = /stub_status {
		stub_status;
	}

	location / {
		return 404;
	}
}
`;
}

export function renderNginxHttps(values: NginxValues): string {
  const { apiHost, rateLimits } = values;
  const authRetry = Math.ceil(60 / rateLimits.edgeAuthPerMinute);
  return `# Managed by Keel: the API over HTTPS. Installed once the certificate exists.
server {
	listen 443 ssl default_server;
	listen [::]:443 ssl default_server;
	# Clients asking for another name get no certificate at all.
	ssl_reject_handshake on;
}

server {
	listen 443 ssl;
	listen [::]:443 ssl;
	http2 on;
	server_name ${apiHost};

	ssl_certificate /etc/letsencrypt/live/${apiHost}/fullchain.pem;
	ssl_certificate_key /etc/letsencrypt/live/${apiHost}/privkey.pem;

	include ${NGINX_SNIPPET_DIR}/keel-headers.conf;
	include ${NGINX_SNIPPET_DIR}/keel-errors.conf;
	default_type application/json;

	location = /health {
		include ${NGINX_SNIPPET_DIR}/keel-proxy.conf;
	}

	# Metrics are for the machine itself (curl http://127.0.0.1:300N/metrics), never the internet.
	location = /metrics {
		${jsonError(404, "not_found", "Not found")};
	}

	location /v1/auth/ {
		limit_req zone=keel_auth burst=${rateLimits.edgeAuthBurst} nodelay;
		# A location's own error_page drops the server's: include them again.
		include ${NGINX_SNIPPET_DIR}/keel-errors.conf;
		error_page 429 @auth_limited;
		include ${NGINX_SNIPPET_DIR}/keel-proxy.conf;
	}

	location / {
		limit_req zone=keel_api burst=${rateLimits.edgeApiBurst} nodelay;
		include ${NGINX_SNIPPET_DIR}/keel-errors.conf;
		error_page 429 @api_limited;
		include ${NGINX_SNIPPET_DIR}/keel-proxy.conf;
	}

	location @auth_limited {
		include ${NGINX_SNIPPET_DIR}/keel-headers.conf;
		add_header Retry-After ${authRetry} always;
		${jsonError(429, "rate_limited", "Too many requests")};
	}

	location @api_limited {
		include ${NGINX_SNIPPET_DIR}/keel-headers.conf;
		add_header Retry-After 1 always;
		${jsonError(429, "rate_limited", "Too many requests")};
	}

	location @too_large {
		include ${NGINX_SNIPPET_DIR}/keel-headers.conf;
		${jsonError(413, "payload_too_large", "Request body larger than 1 MB")};
	}

	location @unavailable {
		include ${NGINX_SNIPPET_DIR}/keel-headers.conf;
		add_header Retry-After 5 always;
		${jsonError(503, "unavailable", "Service unavailable")};
	}
}
`;
}

/** The errors nginx answers itself, as JSON; included wherever a location sets its own. */
export function renderNginxErrors(): string {
  return `# Managed by Keel: errors nginx answers itself, in the API's JSON shape (named locations in
# keel.d/50-https.conf). nginx forgets these in a location that sets any error_page of its own,
# so such locations include this file again.
error_page 413 @too_large;
error_page 502 504 =503 @unavailable;
`;
}

/** Response headers on every HTTPS response; the API's copies are hidden so none is doubled. */
export function renderNginxHeaders(): string {
  const headers = SECURITY_HEADERS.map(
    ([name, value]) => `add_header ${name} "${value}" always;`,
  ).join("\n");
  return `# Managed by Keel: headers on every HTTPS response, including nginx's own errors.
${headers}
add_header X-Request-ID $keel_request_id always;
`;
}

export function renderNginxProxy(): string {
  const hidden = [...SECURITY_HEADERS.map(([name]) => name), "X-Request-ID", "X-Powered-By"]
    .map((name) => `proxy_hide_header ${name};`)
    .join("\n");
  return `# Managed by Keel: how requests reach the API instances.
proxy_pass http://keel_api;
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
# nginx is the only proxy (the API trusts one hop): the client address is set, never appended.
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Request-ID $keel_request_id;
proxy_connect_timeout 2s;
proxy_read_timeout 60s;
proxy_send_timeout 60s;

# An instance that is restarting refuses connections, and one that is up but not ready (its
# database or a new release is not) answers 503: either way the request goes to the next
# instance. POSTs are
# retried too: a refused connection never reached the API, and the API answers 503 only when it
# did nothing. The cost: a request cut off by a crashing instance may run twice.
proxy_next_upstream error http_503 non_idempotent;
proxy_next_upstream_timeout 10s;

${hidden}
`;
}

/** certbot.service's runtime directory, and the deploy hook's mark of a failure in it. */
export const CERTBOT_RUNTIME_DIR = "/run/keel-certbot";
export const CERTBOT_HOOK_FAILED = `${CERTBOT_RUNTIME_DIR}/deploy-hook-failed`;

/**
 * Reloads nginx after certbot renews a certificate, if the configuration is valid. certbot itself
 * exits 0 when a hook fails; the hook logs at priority err and leaves a mark that fails
 * certbot.service (see renderCertbotHardening), so the failure shows in `systemctl --failed`.
 */
export function renderCertbotDeployHook(): string {
  return `#!/bin/sh
# Managed by Keel: certbot runs this after renewing a certificate.
set -u
if ! out=$(nginx -t -q 2>&1 && systemctl reload nginx 2>&1); then
	logger -t keel-certbot -p daemon.err "renewed \${RENEWED_DOMAINS:-a certificate} but nginx was not reloaded: $out"
	if [ -d ${CERTBOT_RUNTIME_DIR} ]; then : >${CERTBOT_HOOK_FAILED}; fi
	exit 1
fi
`;
}

/** Rotation of nginx's logs: daily, and as soon as one passes 100 MB (logrotate runs hourly). */
export function renderNginxLogrotate(): string {
  return `# Managed by Keel: nginx's logs, rotated daily or at 100 MB, 14 kept, compressed.
/var/log/nginx/*.log {
${LOG_ROTATION}
	create 0640 www-data adm
	sharedscripts
	postrotate
		systemctl kill --signal=USR1 --kill-whom=main nginx.service >/dev/null 2>&1 || true
	endscript
}
`;
}

/** logrotate.timer every hour instead of daily, so maxsize is checked within the hour. */
export function renderLogrotateTimer(): string {
  return `# Managed by Keel: run logrotate hourly; size limits are only checked when it runs.
[Timer]
OnCalendar=
OnCalendar=hourly
AccuracySec=5m
`;
}
