import { Writable } from "node:stream";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createDatabase } from "../../api/src/database";
import { createLogger } from "../../api/src/logger";
import {
  FRONTEND_ORIGIN,
  createAccount,
  testApp,
  type Account,
  type ErrorBody,
} from "./support/app";
import { testEnv } from "./support/environment";

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

const CSP_DIRECTIVES = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "frame-ancestors 'none'",
];

function expectSecurityHeaders(response: request.Response): void {
  expect(response.headers).to.include(SECURITY_HEADERS);
  const csp = String(response.headers["content-security-policy"])
    .split(";")
    .map((d) => d.trim());
  expect(csp).to.have.members(CSP_DIRECTIVES);
  expect(response.headers).not.to.have.property("x-powered-by");
}

function expectErrorShape(response: request.Response, status: number, code: string): ErrorBody {
  expect(response.status).to.equal(status);
  expect(response.type).to.equal("application/json");
  const body = response.body as ErrorBody;
  expect(Object.keys(body)).to.deep.equal(["error"]);
  expect(body.error.code).to.equal(code);
  expect(body.error.message).to.be.a("string").and.not.equal("");
  expect(body.error.requestId).to.equal(response.get("X-Request-ID"));
  return body;
}

describe("HTTP behaviour common to every endpoint", () => {
  let app: Express;
  let account: Account;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
  });

  it("when any response is sent (success, error, probe), then it carries the security headers and no X-Powered-By", async () => {
    expectSecurityHeaders(await request(app).get("/health").expect(200));
    expectSecurityHeaders(await request(app).get("/v1/systems").set("X-API-Key", account.apiKey));
    expectSecurityHeaders(await request(app).get("/nowhere").expect(404));
    expectSecurityHeaders(await request(app).post("/v1/systems").expect(401));
  });

  it("when the Origin is in FRONTEND_ORIGINS, then CORS allows it; any other origin gets no Allow-Origin", async () => {
    const allowed = await request(app).get("/health").set("Origin", FRONTEND_ORIGIN).expect(200);
    expect(allowed.get("Access-Control-Allow-Origin")).to.equal(FRONTEND_ORIGIN);
    expect(allowed.get("Vary")).to.contain("Origin");
    const preflight = await request(app)
      .options("/v1/systems")
      .set("Origin", FRONTEND_ORIGIN)
      .set("Access-Control-Request-Method", "POST")
      .set("Access-Control-Request-Headers", "x-api-key, content-type")
      .expect(204);
    expect(preflight.get("Access-Control-Allow-Methods")).to.contain("POST");
    expect(preflight.get("Access-Control-Allow-Headers")).to.contain("X-API-Key");

    const foreign = await request(app)
      .get("/health")
      .set("Origin", "https://evil.example")
      .expect(200);
    expect(foreign.get("Access-Control-Allow-Origin")).to.equal(undefined);
    const foreignPreflight = await request(app)
      .options("/v1/systems")
      .set("Origin", "https://evil.example")
      .set("Access-Control-Request-Method", "POST");
    expect(foreignPreflight.get("Access-Control-Allow-Origin")).to.equal(undefined);
  });

  it("when the route does not exist, then 404 in the error shape", async () => {
    const response = await request(app).get("/v2/unknown?x=1");
    expectErrorShape(response, 404, "not_found");
  });

  it("when the body is over 1 MB, then 413", async () => {
    const response = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .set("Content-Type", "application/json")
      .send(JSON.stringify({ name: "big", purpose: "x".repeat(1024 * 1024) }));
    expectErrorShape(response, 413, "payload_too_large");
  });

  it("when the JSON is malformed, then 400", async () => {
    const response = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .set("Content-Type", "application/json")
      .send('{"name": "unterminated');
    expectErrorShape(response, 400, "invalid_json");
  });

  it("when the body is not JSON, then 415", async () => {
    const text = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .set("Content-Type", "text/plain")
      .send("name=x");
    expectErrorShape(text, 415, "unsupported_media_type");
    const form = await request(app)
      .post("/v1/auth/login")
      .type("form")
      .send({ email: "a@b.example", password: "x" });
    expectErrorShape(form, 415, "unsupported_media_type");
  });

  it("when a sane X-Request-ID comes in, then it is echoed; otherwise a fresh id is issued", async () => {
    const kept = await request(app).get("/health").set("X-Request-ID", "nginx-0f3a9c.17");
    expect(kept.get("X-Request-ID")).to.equal("nginx-0f3a9c.17");
    for (const insane of ["has spaces", "x".repeat(200), "semi;colon", "<script>"]) {
      const replaced = await request(app).get("/health").set("X-Request-ID", insane);
      expect(replaced.get("X-Request-ID")).to.match(/^[0-9a-f-]{36}$/);
    }
    const a = await request(app).get("/health");
    const b = await request(app).get("/health");
    expect(a.get("X-Request-ID")).not.to.equal(b.get("X-Request-ID"));
  });

  it("when an unexpected error happens, then the client gets a generic 500 without internals, and the log keeps the stack", async () => {
    // A database without the schema makes every query fail in a way no validation foresees.
    const url = await testEnv().postgres.createDatabase("http_unmigrated");
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        done();
      },
    });
    const logger = createLogger("info", sink);
    const db = createDatabase({ url, logger });
    try {
      const broken = testApp({ db, logger });
      const response = await request(broken)
        .post("/v1/auth/register")
        .send({ email: "a@b.example", password: "long enough password", orgName: "x" });
      const body = expectErrorShape(response, 500, "internal_error");
      expect(body.error.message).to.equal("Internal server error.");
      expect(JSON.stringify(body)).not.to.match(/relation|orgs|stack|at /);
      const logged = lines
        .map((line) => JSON.parse(line) as { requestId?: string; err?: { stack?: string } })
        .find((line) => line.requestId === body.error.requestId && line.err !== undefined);
      expect(logged?.err?.stack).to.contain('relation "orgs" does not exist');
    } finally {
      await db.destroy();
    }
  });
});
