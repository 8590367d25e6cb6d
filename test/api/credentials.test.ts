import { expect } from "chai";
import type { Express } from "express";
import { SignJWT } from "jose";
import request from "supertest";
import { JWT_SECRET, createAccount, testApp, type Account, type ErrorBody } from "./support/app";

const sign = (secret: string, claims: { sub: string; org: string }, expiresAt: number) =>
  new SignJWT({ org: claims.org })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(claims.sub)
    .setIssuer("keel")
    .setAudience("keel-api")
    .setIssuedAt(expiresAt - 900)
    .setExpirationTime(expiresAt)
    .sign(new TextEncoder().encode(secret));

describe("credentials on data endpoints", () => {
  let app: Express;
  let account: Account;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
  });

  it("when no credentials are sent, then 401 with a WWW-Authenticate challenge", async () => {
    const response = await request(app).get("/v1/systems").expect(401);
    expect(response.get("WWW-Authenticate")).to.equal('Bearer realm="keel"');
    expect((response.body as ErrorBody).error.code).to.equal("unauthorized");
  });

  it("when the Authorization scheme is not Bearer, then 401 with the challenge", async () => {
    const response = await request(app)
      .get("/v1/systems")
      .set("Authorization", "Basic dXNlcjpwYXNz")
      .expect(401);
    expect(response.get("WWW-Authenticate")).to.equal('Bearer realm="keel"');
  });

  it("when an API key is sent as X-API-Key or as a Bearer token, then both work", async () => {
    await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    await request(app)
      .get("/v1/systems")
      .set("Authorization", `Bearer ${account.apiKey}`)
      .expect(200);
  });

  it("when the API key is unknown, then 403", async () => {
    const response = await request(app)
      .get("/v1/systems")
      .set("X-API-Key", "keel_this-key-does-not-exist")
      .expect(403);
    expect((response.body as ErrorBody).error.code).to.equal("forbidden");
    expect(response.get("WWW-Authenticate")).to.equal(undefined);
  });

  it("when the access token is expired, forged or garbled, then 403", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: account.userId, org: account.orgId };
    const expired = await sign(JWT_SECRET, claims, now - 60);
    const forged = await sign("another-secret-that-is-long-enough-000", claims, now + 600);
    for (const token of [expired, forged, "eyJhbGciOiJIUzI1NiJ9.e30.garbage"]) {
      await request(app).get("/v1/systems").set("Authorization", `Bearer ${token}`).expect(403);
    }
    const valid = await sign(JWT_SECRET, claims, now + 600);
    await request(app).get("/v1/systems").set("Authorization", `Bearer ${valid}`).expect(200);
  });

  it("when the credential is absurdly long, then 403 without a database lookup error", async () => {
    await request(app).get("/v1/systems").set("X-API-Key", "k".repeat(5000)).expect(403);
  });

  it("when an API key is used on API-key management, then 403: that needs a user's token", async () => {
    const response = await request(app)
      .post("/v1/api-keys")
      .set("X-API-Key", account.apiKey)
      .send({ name: "escalation" })
      .expect(403);
    expect((response.body as ErrorBody).error.message).to.contain("user access token");
  });
});
