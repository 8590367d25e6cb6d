import { randomInt } from "node:crypto";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createAccount, createSystem, testApp, type Account, type ErrorBody } from "./support/app";
import { testEnv } from "./support/environment";

// Every test counts against callers of its own: a fresh client address (TRUST_PROXY=1, so
// X-Forwarded-For names the client) or a fresh API key.
const freshIp = (): string => `198.51.${randomInt(0, 256)}.${randomInt(1, 255)}`;

describe("rate limits", () => {
  let generous: Express;
  before(() => {
    generous = testApp();
  });

  it("when an anonymous client exceeds RATE_LIMIT_PER_MINUTE, then 429 with Retry-After and the RateLimit headers", async () => {
    const app = testApp({ env: { RATE_LIMIT_PER_MINUTE: "3" } });
    const ip = freshIp();
    for (let i = 1; i <= 3; i++) {
      const ok = await request(app).get("/docs").set("X-Forwarded-For", ip).expect(200);
      expect(ok.get("RateLimit")).to.match(new RegExp(`^"general"; r=${3 - i}; t=\\d+$`));
      expect(ok.get("RateLimit-Policy")).to.match(/^"general"; q=3; w=60; pk=:[A-Za-z0-9+/=]+:$/);
    }
    const limited = await request(app).get("/docs").set("X-Forwarded-For", ip).expect(429);
    expect((limited.body as ErrorBody).error.code).to.equal("rate_limited");
    expect(Number(limited.get("Retry-After"))).to.be.within(1, 60);
    expect(limited.get("RateLimit")).to.match(/^"general"; r=0; t=\d+$/);
    // Another client is not affected, and the count lives in Redis.
    await request(app).get("/docs").set("X-Forwarded-For", freshIp()).expect(200);
    expect(await testEnv().redisClient.get(`keel:rl:general:ip:${ip}`)).to.equal("4");
  });

  it("when requests carry API keys, then each key has its own budget, whatever the address", async () => {
    const first = await createAccount(generous);
    const second = await createAccount(generous);
    const app = testApp({ env: { RATE_LIMIT_PER_MINUTE: "2" } });
    const ip = freshIp();
    const list = (account: Account) =>
      request(app).get("/v1/systems").set("X-Forwarded-For", ip).set("X-API-Key", account.apiKey);
    await list(first).expect(200);
    await list(first).expect(200);
    await list(first).expect(429);
    await list(second).expect(200);
    await list(second).expect(200);
    await list(second).expect(429);
  });

  it("when evidence is created or downloaded too often, then the expensive limit answers 429 before the general one", async () => {
    const account = await createAccount(generous);
    const app = testApp({
      env: { RATE_LIMIT_PER_MINUTE: "100", EXPENSIVE_RATE_LIMIT_PER_MINUTE: "2" },
    });
    const systemId = await createSystem(app, account.apiKey, { name: "s", purpose: "p" });
    const declare = () =>
      request(app)
        .post(`/v1/systems/${systemId}/evidence`)
        .set("X-API-Key", account.apiKey)
        .send({ filename: "f", sha256: "a".repeat(64), size: 1, contentType: "text/plain" });
    await declare().expect(201);
    const second = await declare().expect(201);
    const limited = await declare().expect(429);
    expect(limited.get("RateLimit")).to.contain('"expensive"; r=0');
    const download = await request(app)
      .get(`/v1/evidence/${(second.body as { id: string }).id}/download`)
      .set("X-API-Key", account.apiKey)
      .expect(429);
    expect((download.body as ErrorBody).error.code).to.equal("rate_limited");
    // Cheap endpoints still answer.
    await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
  });

  it("when two API processes serve the same caller, then they share one count through Redis", async () => {
    const one = testApp({ env: { RATE_LIMIT_PER_MINUTE: "4" } });
    const two = testApp({ env: { RATE_LIMIT_PER_MINUTE: "4" } });
    const ip = freshIp();
    await request(one).get("/docs").set("X-Forwarded-For", ip).expect(200);
    await request(two).get("/docs").set("X-Forwarded-For", ip).expect(200);
    await request(one).get("/docs").set("X-Forwarded-For", ip).expect(200);
    await request(two).get("/docs").set("X-Forwarded-For", ip).expect(200);
    await request(one).get("/docs").set("X-Forwarded-For", ip).expect(429);
  });

  it("when probes are polled, then /health and /ready are never rate limited", async () => {
    const app = testApp({ env: { RATE_LIMIT_PER_MINUTE: "1" } });
    const ip = freshIp();
    for (let i = 0; i < 3; i++) {
      await request(app).get("/health").set("X-Forwarded-For", ip).expect(200);
      await request(app).get("/ready").set("X-Forwarded-For", ip).expect(200);
    }
    expect(await testEnv().redisClient.exists(`keel:rl:general:ip:${ip}`)).to.equal(0);
  });
});
