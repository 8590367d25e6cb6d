import { expect } from "chai";
import type { Express } from "express";
import { decodeJwt, decodeProtectedHeader } from "jose";
import request from "supertest";
import { PASSWORD, findRow, testApp, uniqueEmail, type ErrorBody } from "./support/app";
import { testEnv } from "./support/environment";
import { createHash } from "node:crypto";

const lockKey = (email: string): string =>
  `keel:login:lock:${createHash("sha256").update(email).digest("hex")}`;

describe("registration and login", () => {
  let app: Express;
  before(() => {
    app = testApp();
  });

  const register = (email: string, password = PASSWORD) =>
    request(app).post("/v1/auth/register").send({ email, password, orgName: "Acme" });
  const login = (email: string, password = PASSWORD) =>
    request(app).post("/v1/auth/login").send({ email, password });

  it("when someone registers, then the user and org are created, the password is stored as argon2id and it is audited", async () => {
    const email = uniqueEmail();
    const response = await register(email).expect(201);
    const body = response.body as {
      user: { id: string; email: string; orgId: string };
      org: { id: string; name: string };
    };
    expect(body.user).to.include({ email, orgId: body.org.id });
    expect(body.org.name).to.equal("Acme");
    const user = await findRow("users", { id: body.user.id });
    expect(String(user?.password_hash)).to.match(/^\$argon2id\$/);
    expect(String(user?.password_hash)).not.to.contain(PASSWORD);
    const audit = await findRow("audit_events", {
      action: "audit.auth.register",
      actor_id: body.user.id,
    });
    expect(audit).to.include({ org_id: body.org.id, request_id: response.get("X-Request-ID") });
  });

  it("when the password is shorter than 12 characters or the email is malformed, then 400 names each field", async () => {
    const response = await request(app)
      .post("/v1/auth/register")
      .send({ email: "not-an-email", password: "short", orgName: "Acme" })
      .expect(400);
    const details = (response.body as ErrorBody).error.details ?? [];
    expect(details.map((d) => d.path)).to.have.members(["body.email", "body.password"]);
    expect(details.find((d) => d.path === "body.password")?.message).to.contain("12");
  });

  it("when an email registers twice (in any letter case), then the second answer is 409", async () => {
    const email = uniqueEmail();
    await register(email).expect(201);
    const again = await register(email.toUpperCase()).expect(409);
    expect((again.body as ErrorBody).error.code).to.equal("email_taken");
  });

  it("when the password is right, then login returns a 15-minute HS256 access token for the user", async () => {
    const email = uniqueEmail();
    const registered = await register(email).expect(201);
    const userId = (registered.body as { user: { id: string } }).user.id;
    const response = await login(email).expect(200);
    const body = response.body as { accessToken: string; tokenType: string; expiresIn: number };
    expect(body.tokenType).to.equal("Bearer");
    expect(body.expiresIn).to.equal(900);
    expect(decodeProtectedHeader(body.accessToken).alg).to.equal("HS256");
    const claims = decodeJwt(body.accessToken);
    expect(claims.sub).to.equal(userId);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).to.equal(900);
    expect(
      await findRow("audit_events", { action: "audit.auth.login", actor_id: userId }),
    ).to.not.equal(undefined);
  });

  it("when the password is wrong, then login answers 401 and the failure is audited", async () => {
    const email = uniqueEmail();
    const registered = await register(email).expect(201);
    const userId = (registered.body as { user: { id: string } }).user.id;
    const response = await login(email, "wrong password!!").expect(401);
    expect((response.body as ErrorBody).error.code).to.equal("invalid_credentials");
    expect(
      await findRow("audit_events", { action: "audit.auth.login_failed", target_id: userId }),
    ).to.include({ actor_type: "anonymous" });
  });

  it("when five logins fail for one email, then it is locked for 15 minutes in Redis, even for the right password", async () => {
    const email = uniqueEmail();
    await register(email).expect(201);
    for (let attempt = 1; attempt <= 4; attempt++) {
      await login(email, "wrong password!!").expect(401);
    }
    const fifth = await login(email, "wrong password!!").expect(429);
    expect((fifth.body as ErrorBody).error.code).to.equal("login_locked");
    const retryAfter = Number(fifth.get("Retry-After"));
    expect(retryAfter).to.be.within(890, 900);

    const right = await login(email).expect(429);
    expect(Number(right.get("Retry-After"))).to.be.within(1, 900);
    const ttl = await testEnv().redisClient.pttl(lockKey(email));
    expect(ttl).to.be.within(1, 15 * 60 * 1000);

    // Another email is not affected.
    const other = uniqueEmail();
    await register(other).expect(201);
    await login(other).expect(200);
  });

  it("when the lock expires, then the right password logs in and the failure count starts again", async () => {
    const email = uniqueEmail();
    await register(email).expect(201);
    for (let attempt = 1; attempt <= 4; attempt++) {
      await login(email, "wrong password!!").expect(401);
    }
    await login(email, "wrong password!!").expect(429);
    // Expire the lock as Redis would after 15 minutes.
    await testEnv().redisClient.del(lockKey(email));
    await login(email).expect(200);
    for (let attempt = 1; attempt <= 4; attempt++) {
      await login(email, "wrong password!!").expect(401);
    }
  });

  it("when logins fail for an unknown email, then the answers match a known one's and it locks too", async () => {
    const email = uniqueEmail();
    const first = await login(email, "wrong password!!").expect(401);
    expect((first.body as ErrorBody).error.message).to.equal("The email or password is wrong.");
    for (let attempt = 2; attempt <= 4; attempt++) {
      await login(email, "wrong password!!").expect(401);
    }
    await login(email, "wrong password!!").expect(429);
  });
});
