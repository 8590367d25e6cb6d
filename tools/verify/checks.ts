// The verification suite: named checks of a Keel deployment, run from outside as a user would.
// `npm run verify` runs them against any deployment; the end-to-end tier runs them against the
// local stand-in. Each check throws when it fails; checks run in order and share what earlier
// ones created (a user, an API key, a system). The API's own operations are called through the
// client generated from its OpenAPI document (api.d.ts, openapi-fetch), so the suite is also a
// consumer of that contract; raw requests remain for what the document does not cover (TLS,
// port 80, nginx's answers, headers) and for deliberately malformed requests.
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { LookupFunction } from "node:net";
import { connect, type ConnectionOptions, type PeerCertificate } from "node:tls";
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./api";
import { fetchThrough, send, type HttpResponse, type RequestInit } from "./client";

export interface VerifyOptions {
  /** The API's base URL, e.g. https://api.example.com. */
  readonly url: string;
  /** Where port 80 answers; default: the same host over http on port 80. */
  readonly httpUrl?: string;
  /** The admin API key (the stack output adminApiKey); checks that need it fail without it. */
  readonly apiKey?: string;
  /** Extra trusted root (PEM), e.g. a test ACME server's; default: the system's roots. */
  readonly ca?: string;
  readonly lookup?: LookupFunction;
  /** Also exceed the rate limits (locks this client out of sign-in for a minute). */
  readonly limits?: boolean;
}

export interface Check {
  readonly name: string;
  /** Runs only with --limits: it deliberately exceeds limits. */
  readonly limits?: boolean;
  run(ctx: VerifyContext): Promise<void>;
}

interface Flow {
  email?: string;
  password?: string;
  accessToken?: string;
  apiKey?: string;
  apiKeyId?: string;
  systemId?: string;
  evidenceId?: string;
  evidenceBytes?: Buffer;
}

export class VerifyContext {
  readonly base: URL;
  readonly httpBase: URL;
  readonly flow: Flow = {};
  /** The generated client: typed calls of the documented operations. */
  readonly client: Client<paths>;

  constructor(readonly options: VerifyOptions) {
    this.base = new URL(options.url);
    this.httpBase = new URL(options.httpUrl ?? `http://${this.base.hostname}/`);
    this.client = createClient<paths>({
      baseUrl: this.base.href.replace(/\/$/, ""),
      fetch: fetchThrough(options),
    });
  }

  get host(): string {
    return this.base.hostname;
  }

  /** A request to the API over HTTPS. */
  api(path: string, init: RequestInit = {}): Promise<HttpResponse> {
    return send(new URL(path, this.base), init, this.options);
  }

  /** A request to any URL (presigned storage URLs), trusting the same roots. */
  fetch(url: string, init: RequestInit = {}): Promise<HttpResponse> {
    return send(url, init, this.options);
  }

  /** A raw JSON request (the e2e tier's own checks use it too). */
  json(method: string, path: string, body: unknown, headers: Record<string, string> = {}) {
    return this.api(path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  }

  http(path: string): Promise<HttpResponse> {
    return send(new URL(path, this.httpBase), {}, this.options);
  }

  /** Opens a TLS connection to the API host and reports how it went. */
  tls(options: ConnectionOptions): Promise<{ protocol: string | null; cert: PeerCertificate }> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: this.host,
        port: Number(this.base.port || 443),
        servername: this.host,
        ca: this.options.ca,
        lookup: this.options.lookup,
        ...options,
      });
      socket.setTimeout(10_000, () => socket.destroy(new Error("TLS handshake timed out")));
      socket.once("secureConnect", () => {
        resolve({ protocol: socket.getProtocol(), cert: socket.getPeerCertificate(true) });
        socket.end();
      });
      socket.once("error", reject);
    });
  }

  /** Authorisation headers of the admin key. */
  admin(): Record<string, string> {
    assert.ok(this.options.apiKey, "this check needs the admin API key (--api-key-file)");
    return { "x-api-key": this.options.apiKey };
  }

  need<K extends keyof Flow>(key: K): NonNullable<Flow[K]> {
    const value = this.flow[key];
    assert.ok(
      value !== undefined,
      `this check needs ${key}, which an earlier check failed to make`,
    );
    return value;
  }
}

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

function expectStatus(res: HttpResponse, status: number, what: string): void {
  assert.equal(
    res.status,
    status,
    `${what}: expected ${status}, got ${res.status} ${res.text().slice(0, 300)}`,
  );
}

/** What a typed call of the generated client gives back. */
interface Answer<T> {
  readonly data?: T;
  readonly error?: unknown;
  readonly response: Response;
}

/** The data of a typed call that answered `status`; fails naming what came instead. */
function expectAnswer<T>(answer: Answer<T>, status: number, what: string): T {
  const got = answer.response.status;
  const body = JSON.stringify(answer.error ?? answer.data ?? "").slice(0, 300);
  assert.equal(got, status, `${what}: expected ${status}, got ${got} ${body}`);
  return answer.data as T;
}

/** A typed call that failed with `status` and the documented error body. */
function expectError(answer: Answer<unknown>, status: number, what: string): void {
  const got = answer.response.status;
  assert.equal(got, status, `${what}: expected ${status}, got ${got}`);
  expectErrorBody(answer.error);
}

function expectErrorShape(res: HttpResponse): void {
  expectErrorBody(res.json());
}

function expectErrorBody(value: unknown): void {
  const body = value as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  assert.equal(typeof body.error?.code, "string", "error.code");
  assert.equal(typeof body.error?.message, "string", "error.message");
  assert.equal(typeof body.error?.requestId, "string", "error.requestId");
}

function expectSecurityHeaders(res: HttpResponse, where: string): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    assert.equal(res.header(name), value, `${name} on ${where}`);
  }
  assert.equal(res.header("x-powered-by"), "", `X-Powered-By on ${where}`);
}

async function refusedProtocol(ctx: VerifyContext, version: "TLSv1" | "TLSv1.1"): Promise<void> {
  // SECLEVEL=0 lets this client offer the old protocol, so a refusal can only come from the server.
  const error: NodeJS.ErrnoException = await ctx
    .tls({ minVersion: version, maxVersion: version, ciphers: "DEFAULT@SECLEVEL=0" })
    .then(
      (ok) => new Error(`the server accepted ${ok.protocol ?? version}`),
      (err: NodeJS.ErrnoException) => err,
    );
  assert.ok(
    /ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER/.test(error.code ?? ""),
    `${version}: expected the server to refuse the protocol, got ${error.code ?? ""} ${error.message}`,
  );
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export const CHECKS: readonly Check[] = [
  {
    name: "port 80 answers only with a 301 to https",
    async run(ctx) {
      for (const path of ["/", "/v1/systems?x=1", "/health"]) {
        const res = await ctx.http(path);
        expectStatus(res, 301, `http ${path}`);
        assert.equal(res.header("location"), `https://${ctx.host}${path}`);
      }
    },
  },
  {
    name: "port 80 serves ACME challenges from the webroot",
    async run(ctx) {
      const res = await ctx.http(`/.well-known/acme-challenge/keel-verify-${randomUUID()}`);
      // An unknown token is a plain 404 from the webroot, not a redirect.
      expectStatus(res, 404, "unknown challenge token");
    },
  },
  {
    name: "TLS 1.2 and TLS 1.3 are accepted",
    async run(ctx) {
      for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
        const { protocol } = await ctx.tls({ minVersion: version, maxVersion: version });
        assert.equal(protocol, version);
      }
    },
  },
  {
    name: "TLS 1.0 and TLS 1.1 are refused",
    async run(ctx) {
      await refusedProtocol(ctx, "TLSv1");
      await refusedProtocol(ctx, "TLSv1.1");
    },
  },
  {
    name: "the certificate chains to the trusted root and names the host",
    async run(ctx) {
      const { cert } = await ctx.tls({});
      const names = (cert.subjectaltname ?? "").split(", ");
      assert.ok(
        names.includes(`DNS:${ctx.host}`),
        `subjectAltName ${names.join(", ")} lacks ${ctx.host}`,
      );
      const now = Date.now();
      assert.ok(Date.parse(cert.valid_from) <= now && now < Date.parse(cert.valid_to), "validity");
    },
  },
  {
    name: "HSTS is sent with a max-age of at least a year",
    async run(ctx) {
      const res = await ctx.api("/health");
      const maxAge = /max-age=(\d+)/.exec(res.header("strict-transport-security"));
      assert.ok(maxAge, `Strict-Transport-Security: "${res.header("strict-transport-security")}"`);
      assert.ok(Number(maxAge[1]) >= 31_536_000, `max-age ${maxAge[1]} is under a year`);
    },
  },
  {
    name: "security headers are on API responses and on nginx's own errors",
    async run(ctx) {
      expectSecurityHeaders(await ctx.api("/health"), "/health");
      expectSecurityHeaders(await ctx.api(`/no-such-route-${randomUUID()}`), "a 404");
      expectSecurityHeaders(await ctx.api("/metrics"), "/metrics");
    },
  },
  {
    name: "the Server header names no version",
    async run(ctx) {
      const server = (await ctx.api("/health")).header("server");
      assert.ok(!/\d/.test(server), `Server: "${server}"`);
    },
  },
  {
    name: "every response carries an X-Request-ID, and a client's own id is kept",
    async run(ctx) {
      assert.match((await ctx.api("/health")).header("x-request-id"), /^[A-Za-z0-9._:-]{8,128}$/);
      const own = `verify-${randomUUID()}`;
      const res = await ctx.api(`/no-such-route-${randomUUID()}`, {
        headers: { "x-request-id": own },
      });
      assert.equal(res.header("x-request-id"), own);
      assert.equal(res.json<{ error: { requestId: string } }>().error.requestId, own);
    },
  },
  {
    name: "/health answers 200",
    async run(ctx) {
      assert.deepEqual(expectAnswer(await ctx.client.GET("/health"), 200, "/health"), {
        status: "ok",
      });
    },
  },
  {
    name: "/ready answers 200 with every check true",
    async run(ctx) {
      assert.deepEqual(expectAnswer(await ctx.client.GET("/ready"), 200, "/ready"), {
        status: "ready",
        checks: { database: true, redis: true, storage: true },
      });
    },
  },
  {
    name: "/metrics is not reachable from outside",
    async run(ctx) {
      const res = await ctx.api("/metrics");
      expectStatus(res, 404, "/metrics");
      assert.doesNotMatch(res.text(), /http_request|process_cpu/);
    },
  },
  {
    name: "/docs serves the OpenAPI document",
    async run(ctx) {
      const doc = expectAnswer(await ctx.client.GET("/docs"), 200, "/docs");
      assert.match(doc.openapi, /^3\./);
      assert.ok(
        (doc.paths as Record<string, unknown>)["/v1/systems"],
        "the document lists /v1/systems",
      );
    },
  },
  {
    name: "without credentials the API answers 401 with WWW-Authenticate",
    async run(ctx) {
      const answer = await ctx.client.GET("/v1/systems");
      expectError(answer, 401, "no credentials");
      assert.notEqual(
        answer.response.headers.get("www-authenticate") ?? "",
        "",
        "WWW-Authenticate",
      );
    },
  },
  {
    name: "a wrong API key is refused with 403",
    async run(ctx) {
      const answer = await ctx.client.GET("/v1/systems", {
        headers: { "x-api-key": `wrong-${randomUUID()}` },
      });
      expectError(answer, 403, "wrong key");
    },
  },
  {
    name: "the admin API key works",
    async run(ctx) {
      const answer = await ctx.client.GET("/v1/systems", { headers: ctx.admin() });
      expectAnswer(answer, 200, "GET /v1/systems with the admin key");
    },
  },
  {
    name: "a new user registers and logs in",
    async run(ctx) {
      const email = `verify-${randomUUID()}@keel-verify.invalid`;
      const password = randomBytes(18).toString("base64url");
      const registered = await ctx.client.POST("/v1/auth/register", {
        body: { email, password, orgName: `Keel verify ${new Date().toISOString()}` },
      });
      expectAnswer(registered, 201, "register");
      const login = await ctx.client.POST("/v1/auth/login", { body: { email, password } });
      const { accessToken } = expectAnswer(login, 200, "login");
      assert.match(accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a JWT");
      Object.assign(ctx.flow, { email, password, accessToken });
    },
  },
  {
    name: "an API key is created, shown once, listed and accepted",
    async run(ctx) {
      const bearer = { authorization: `Bearer ${ctx.need("accessToken")}` };
      const created = await ctx.client.POST("/v1/api-keys", {
        body: { name: "verify" },
        headers: bearer,
      });
      const { id, key } = expectAnswer(created, 201, "create API key");
      assert.ok(key.length >= 32, "the key is shown");
      const listed = expectAnswer(
        await ctx.client.GET("/v1/api-keys", { headers: bearer }),
        200,
        "list API keys",
      );
      const entry = listed.items.find((item) => item.id === id);
      assert.ok(entry, "the new key is listed");
      assert.ok(!JSON.stringify(listed).includes(key), "the listing never shows the key again");
      const used = await ctx.client.GET("/v1/systems", { headers: { "x-api-key": key } });
      expectAnswer(used, 200, "use key");
      Object.assign(ctx.flow, { apiKey: key, apiKeyId: id });
    },
  },
  {
    name: "a system is created and read back",
    async run(ctx) {
      const auth = { "x-api-key": ctx.need("apiKey") };
      const created = await ctx.client.POST("/v1/systems", {
        body: { name: "Verify system", purpose: "keel verify" },
        headers: auth,
      });
      const { id } = expectAnswer(created, 201, "create system");
      const read = await ctx.client.GET("/v1/systems/{id}", {
        params: { path: { id } },
        headers: auth,
      });
      assert.equal(expectAnswer(read, 200, "read system").name, "Verify system");
      ctx.flow.systemId = id;
    },
  },
  {
    name: "evidence bytes go up through the presigned URL and come back the same",
    async run(ctx) {
      const auth = { "x-api-key": ctx.need("apiKey") };
      const bytes = randomBytes(64 * 1024 + 17);
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      const created = await ctx.client.POST("/v1/systems/{id}/evidence", {
        params: { path: { id: ctx.need("systemId") } },
        body: {
          filename: "verify.bin",
          sha256,
          size: bytes.length,
          contentType: "application/octet-stream",
        },
        headers: auth,
      });
      const upload = expectAnswer(created, 201, "create evidence");
      const put = await ctx.fetch(upload.uploadUrl, {
        method: upload.method,
        headers: upload.headers,
        body: bytes,
      });
      assert.ok(
        put.status >= 200 && put.status < 300,
        `upload: ${put.status} ${put.text().slice(0, 300)}`,
      );
      const evidence = { params: { path: { id: upload.id } }, headers: auth };
      const completed = await ctx.client.POST("/v1/evidence/{id}/complete", evidence);
      expectAnswer(completed, 200, "complete");
      const download = await ctx.client.GET("/v1/evidence/{id}/download", evidence);
      const fetched = await ctx.fetch(expectAnswer(download, 200, "download URL").url);
      expectStatus(fetched, 200, "download");
      assert.ok(fetched.body.equals(bytes), "the downloaded bytes equal the uploaded ones");
      Object.assign(ctx.flow, { evidenceId: upload.id, evidenceBytes: bytes });
    },
  },
  {
    name: "events are accepted and counted in stats",
    async run(ctx) {
      const auth = { "x-api-key": ctx.need("apiKey") };
      const type = `verify.${randomUUID()}`;
      const now = Date.now();
      const events = [1, 2, 3].map((value, i) => ({
        type,
        ts: new Date(now - i * 1000).toISOString(),
        value,
      }));
      const posted = await ctx.client.POST("/v1/events", { body: events, headers: auth });
      expectAnswer(posted, 202, "post events");
      const from = new Date(now - 3_600_000).toISOString();
      const to = new Date(now + 60_000).toISOString();
      const stats = await ctx.client.GET("/v1/events/stats", {
        params: { query: { type, bucket: "1h", from, to } },
        headers: auth,
      });
      const { buckets } = expectAnswer(stats, 200, "stats");
      assert.equal(
        buckets.reduce((sum, b) => sum + b.count, 0),
        3,
      );
    },
  },
  {
    name: "a revoked API key stops working at once",
    async run(ctx) {
      const bearer = { authorization: `Bearer ${ctx.need("accessToken")}` };
      const revoked = await ctx.client.DELETE("/v1/api-keys/{id}", {
        params: { path: { id: ctx.need("apiKeyId") } },
        headers: bearer,
      });
      expectAnswer(revoked, 204, "revoke");
      const answer = await ctx.client.GET("/v1/systems", {
        headers: { "x-api-key": ctx.need("apiKey") },
      });
      expectError(answer, 403, "revoked key");
    },
  },
  {
    name: "a 2 MB body is refused with 413",
    async run(ctx) {
      const res = await ctx.api("/v1/events", {
        method: "POST",
        headers: { "content-type": "application/json", ...ctx.admin() },
        body: Buffer.alloc(2 * 1024 * 1024, "a"),
      });
      expectStatus(res, 413, "2 MB body");
      expectErrorShape(res);
    },
  },
  {
    name: "nginx limits sign-in with 429 and Retry-After",
    limits: true,
    async run(ctx) {
      for (let attempt = 1; attempt <= 30; attempt++) {
        const answer = await ctx.client.POST("/v1/auth/login", {
          body: {
            email: `nobody-${randomUUID()}@keel-verify.invalid`,
            password: "not-the-password",
          },
        });
        const headers = answer.response.headers;
        if (answer.response.status === 429 && !headers.has("ratelimit-policy")) {
          assert.ok(Number(headers.get("retry-after")) > 0, "Retry-After");
          expectErrorBody(answer.error);
          return;
        }
      }
      assert.fail("30 quick sign-in attempts were never limited by nginx");
    },
  },
  {
    name: "the API's own limit answers 429 with Retry-After and RateLimit headers",
    limits: true,
    async run(ctx) {
      const auth = ctx.admin();
      const system = await ctx.client.POST("/v1/systems", {
        body: { name: "Verify limits", purpose: "keel verify --limits" },
        headers: auth,
      });
      const systemId = expectAnswer(system, 201, "create system").id;
      // Evidence creation is an expensive endpoint. Paced under nginx's default 10 r/s, so the
      // 429 can only be the API's.
      for (let attempt = 1; attempt <= 300; attempt++) {
        const answer = await ctx.client.POST("/v1/systems/{id}/evidence", {
          params: { path: { id: systemId } },
          body: {
            filename: `limit-${attempt}.txt`,
            sha256: createHash("sha256").update(String(attempt)).digest("hex"),
            size: 1,
            contentType: "text/plain",
          },
          headers: auth,
        });
        const headers = answer.response.headers;
        if (answer.response.status === 429) {
          assert.ok(headers.has("ratelimit-policy"), "RateLimit-Policy");
          assert.ok(headers.has("ratelimit"), "RateLimit");
          assert.ok(Number(headers.get("retry-after")) > 0, "Retry-After");
          expectErrorBody(answer.error);
          return;
        }
        expectAnswer(answer, 201, `evidence ${attempt}`);
        await sleep(125);
      }
      assert.fail("300 evidence creations were never limited by the API");
    },
  },
];

export interface CheckResult {
  readonly name: string;
  readonly status: "passed" | "failed" | "skipped";
  readonly message?: string;
  readonly seconds: number;
}

/** Runs the checks in order; limit checks only with options.limits. */
export async function runChecks(
  options: VerifyOptions,
  onResult: (result: CheckResult) => void = () => undefined,
): Promise<CheckResult[]> {
  const ctx = new VerifyContext(options);
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    const started = performance.now();
    let result: CheckResult;
    if (check.limits === true && options.limits !== true) {
      result = { name: check.name, status: "skipped", message: "needs --limits", seconds: 0 };
    } else {
      try {
        await check.run(ctx);
        result = {
          name: check.name,
          status: "passed",
          seconds: (performance.now() - started) / 1000,
        };
      } catch (err) {
        result = {
          name: check.name,
          status: "failed",
          message: err instanceof Error ? err.message : String(err),
          seconds: (performance.now() - started) / 1000,
        };
      }
    }
    results.push(result);
    onResult(result);
  }
  return results;
}
