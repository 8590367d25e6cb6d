import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createAccount, findRow, testApp, type ErrorBody } from "./support/app";

describe("systems", () => {
  let app: Express;
  before(() => {
    app = testApp();
  });

  it("when a system is created with an API key, then it is stored in the caller's org and audited", async () => {
    const account = await createAccount(app);
    const response = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .send({ name: "Payroll", purpose: "Pays people" })
      .expect(201);
    const body = response.body as { id: string; name: string; purpose: string; createdAt: string };
    expect(body).to.include({ name: "Payroll", purpose: "Pays people" });
    const row = await findRow("systems", { id: body.id });
    expect(row).to.include({ org_id: account.orgId, name: "Payroll" });
    const audit = await findRow("audit_events", { target_id: body.id });
    expect(audit).to.include({
      action: "audit.system.create",
      actor_type: "api_key",
      org_id: account.orgId,
      request_id: response.get("X-Request-ID"),
    });
  });

  it("when systems are listed with a user token, then only the caller's org's systems appear, newest first", async () => {
    const mine = await createAccount(app);
    const theirs = await createAccount(app);
    for (const name of ["first", "second"]) {
      await request(app)
        .post("/v1/systems")
        .set("Authorization", `Bearer ${mine.token}`)
        .send({ name, purpose: "p" })
        .expect(201);
    }
    await request(app)
      .post("/v1/systems")
      .set("X-API-Key", theirs.apiKey)
      .send({ name: "secret", purpose: "p" })
      .expect(201);
    const list = await request(app)
      .get("/v1/systems")
      .set("Authorization", `Bearer ${mine.token}`)
      .expect(200);
    const names = (list.body as { items: { name: string }[] }).items.map((s) => s.name);
    expect(names).to.deep.equal(["second", "first"]);
  });

  it("when more systems exist than the page limit, then the cursor walks every one exactly once", async () => {
    const account = await createAccount(app);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await request(app)
        .post("/v1/systems")
        .set("X-API-Key", account.apiKey)
        .send({ name: `s${i}`, purpose: "p" })
        .expect(201);
      created.push((response.body as { id: string }).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(app)
        .get("/v1/systems")
        .query(cursor === null ? { limit: 2 } : { limit: 2, cursor })
        .set("X-API-Key", account.apiKey)
        .expect(200);
      const body = page.body as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...body.items.map((s) => s.id));
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(seen).to.deep.equal([...created].reverse());
  });

  it("when another org's system is requested, then the answer is 404 as for an unknown id", async () => {
    const owner = await createAccount(app);
    const stranger = await createAccount(app);
    const created = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", owner.apiKey)
      .send({ name: "private", purpose: "p" })
      .expect(201);
    const id = (created.body as { id: string }).id;
    const foreign = await request(app)
      .get(`/v1/systems/${id}`)
      .set("X-API-Key", stranger.apiKey)
      .expect(404);
    const unknown = await request(app)
      .get("/v1/systems/00000000-0000-4000-8000-000000000000")
      .set("X-API-Key", stranger.apiKey)
      .expect(404);
    expect((foreign.body as ErrorBody).error.code).to.equal("not_found");
    expect((foreign.body as ErrorBody).error.message).to.equal(
      (unknown.body as ErrorBody).error.message,
    );
    expect(JSON.stringify(foreign.body)).not.to.contain("private");
    await request(app).get(`/v1/systems/${id}`).set("X-API-Key", owner.apiKey).expect(200);
  });

  it("when the id is not a UUID, then the answer is 404", async () => {
    const account = await createAccount(app);
    await request(app).get("/v1/systems/1%20OR%201=1").set("X-API-Key", account.apiKey).expect(404);
  });

  it("when fields are missing or wrong, then 400 lists every bad field", async () => {
    const account = await createAccount(app);
    const response = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .send({ name: "", extra: true })
      .expect(400);
    const error = (response.body as ErrorBody).error;
    expect(error.code).to.equal("validation_failed");
    const paths = (error.details ?? []).map((d) => d.path);
    expect(paths).to.include.members(["body.name", "body.purpose", "body"]);
    expect(error.message).to.contain("body.name").and.to.contain("body.purpose");
  });

  it("when a cursor is well formed but names an impossible time, then 400 names query.cursor", async () => {
    const account = await createAccount(app);
    const cursor = Buffer.from(
      "2024-02-30T00:00:00.000000Z|00000000-0000-4000-8000-000000000000",
      "utf8",
    ).toString("base64url");
    const response = await request(app)
      .get("/v1/systems")
      .query({ cursor })
      .set("X-API-Key", account.apiKey)
      .expect(400);
    expect((response.body as ErrorBody).error.details).to.deep.equal([
      { path: "query.cursor", message: "is not a cursor returned by this API" },
    ]);
  });
});
