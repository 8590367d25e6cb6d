import { createHash } from "node:crypto";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createAccount, findRow, testApp, type Account } from "./support/app";
import { testEnv } from "./support/environment";

interface KeyBody {
  id: string;
  name: string;
  prefix: string;
  key?: string;
  revokedAt: string | null;
}

describe("API keys", () => {
  let app: Express;
  let account: Account;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
  });

  const create = (name: string) =>
    request(app)
      .post("/v1/api-keys")
      .set("Authorization", `Bearer ${account.token}`)
      .send({ name });

  it("when a key is created, then it is shown once and only its SHA-256 is stored", async () => {
    const response = await create("ci").expect(201);
    const body = response.body as KeyBody;
    expect(body.key).to.match(/^keel_[A-Za-z0-9_-]{43}$/);
    expect(body.prefix).to.equal(body.key?.slice(0, 9));
    const row = await findRow("api_keys", { id: body.id });
    expect(row?.key_hash).to.equal(
      createHash("sha256")
        .update(body.key ?? "")
        .digest("hex"),
    );
    expect(JSON.stringify(row)).not.to.contain(body.key);
    expect(
      await findRow("audit_events", { action: "audit.api_key.create", target_id: body.id }),
    ).to.include({ actor_type: "user", actor_id: account.userId });

    const list = await request(app)
      .get("/v1/api-keys")
      .set("Authorization", `Bearer ${account.token}`)
      .expect(200);
    const items = (list.body as { items: KeyBody[] }).items;
    expect(items.map((k) => k.id)).to.include(body.id);
    expect(JSON.stringify(list.body)).not.to.contain(body.key);
  });

  it("when a key is revoked, then it stops working at once and revoking again is harmless", async () => {
    const key = (await create("short-lived").expect(201)).body as KeyBody;
    await request(app)
      .get("/v1/systems")
      .set("X-API-Key", key.key ?? "")
      .expect(200);
    await request(app)
      .delete(`/v1/api-keys/${key.id}`)
      .set("Authorization", `Bearer ${account.token}`)
      .expect(204);
    await request(app)
      .get("/v1/systems")
      .set("X-API-Key", key.key ?? "")
      .expect(403);
    await request(app)
      .delete(`/v1/api-keys/${key.id}`)
      .set("Authorization", `Bearer ${account.token}`)
      .expect(204);
    const row = await findRow("api_keys", { id: key.id });
    expect(row?.revoked_at).to.be.instanceOf(Date);
    const audits = await testEnv()
      .db("audit_events")
      .where({ action: "audit.api_key.revoke", target_id: key.id });
    expect(audits).to.have.length(1);
  });

  it("when another org's key is revoked, then 404 and the key keeps working", async () => {
    const other = await createAccount(app);
    const theirKey = await findRow("api_keys", {
      key_hash: createHash("sha256").update(other.apiKey).digest("hex"),
    });
    await request(app)
      .delete(`/v1/api-keys/${String(theirKey?.id)}`)
      .set("Authorization", `Bearer ${account.token}`)
      .expect(404);
    await request(app).get("/v1/systems").set("X-API-Key", other.apiKey).expect(200);
  });
});
