import { Writable } from "node:stream";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createLogger } from "../../api/src/logger";
import { PASSWORD, createAccount, testApp, uniqueEmail, type Account } from "./support/app";

describe("request logs", () => {
  let lines: Record<string, unknown>[];
  let raw: string[];
  let app: Express;
  let account: Account;
  before(async () => {
    lines = [];
    raw = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) {
          raw.push(line);
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    app = testApp({ logger: createLogger("debug", sink) });
    account = await createAccount(app);
  });

  it("when a request is served, then its log line is JSON with the request id, method, URL and status", async () => {
    const response = await request(app)
      .get("/v1/systems?limit=5")
      .set("X-API-Key", account.apiKey)
      .set("X-Request-ID", "trace-abc-123")
      .expect(200);
    expect(response.get("X-Request-ID")).to.equal("trace-abc-123");
    const line = lines.find((l) => l.requestId === "trace-abc-123");
    expect(line).to.deep.include({
      level: "info",
      msg: "request completed",
      req: { method: "GET", url: "/v1/systems?limit=5", ip: "127.0.0.1" },
      res: { statusCode: 200 },
    });
  });

  it("when the probes are polled, then each answer carries a request id and no log line is written", async () => {
    const before = lines.length;
    const health = await request(app).get("/health").set("X-Request-ID", "probe-1").expect(200);
    expect(health.get("X-Request-ID")).to.equal("probe-1");
    const metrics = await request(app).get("/metrics").expect(200);
    expect(metrics.get("X-Request-ID")).to.match(/^[0-9a-f-]{36}$/);
    // The next logged request proves the sink is written synchronously.
    await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    expect(lines.slice(before).map((l) => (l.req as { url: string }).url)).to.deep.equal([
      "/v1/systems",
    ]);
  });

  it("when credentials, passwords and keys pass through, then none of them reaches the log", async () => {
    const email = uniqueEmail();
    await request(app)
      .post("/v1/auth/register")
      .set("Cookie", "session=cookie-secret-value")
      .send({ email, password: PASSWORD, orgName: "Logged" })
      .expect(201);
    const login = await request(app).post("/v1/auth/login").send({ email, password: PASSWORD });
    const token = (login.body as { accessToken: string }).accessToken;
    const created = await request(app)
      .post("/v1/api-keys")
      .set("Authorization", `Bearer ${token}`)
      .send({ name: "k" })
      .expect(201);
    const key = (created.body as { key: string }).key;
    await request(app).get("/v1/systems").set("X-API-Key", key).expect(200);
    await request(app).get("/v1/systems").set("X-API-Key", "keel_wrong-key-value").expect(403);
    const all = raw.join("\n");
    for (const secret of [PASSWORD, token, key, "keel_wrong-key-value", "cookie-secret-value"]) {
      expect(all).not.to.contain(secret);
    }
  });
});
