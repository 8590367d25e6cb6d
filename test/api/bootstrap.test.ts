import { expect } from "chai";
import request from "supertest";
import { ensureDefaultOrg } from "../../api/src/bootstrap";
import { createDatabase, type Database } from "../../api/src/database";
import { createLogger } from "../../api/src/logger";
import { migrateLatest } from "../../api/src/migrations/runner";
import { testApp } from "./support/app";
import { testEnv } from "./support/environment";

describe("the bootstrap org and key", () => {
  let db: Database;
  before(async () => {
    const url = await testEnv().postgres.createDatabase("bootstrap");
    db = createDatabase({ url, logger: createLogger("silent") });
    await migrateLatest(db, url);
  });
  after(async () => {
    await db.destroy();
  });

  const counts = async () => ({
    orgs: (await db("orgs").where({ is_default: true })).length,
    keys: (await db("api_keys").where({ is_bootstrap: true })).length,
  });

  it("when ensured many times, also at once, then there is exactly one default org and one bootstrap key", async () => {
    const key = `first-key-${"a".repeat(32)}`;
    const results = await Promise.all(Array.from({ length: 5 }, () => ensureDefaultOrg(db, key)));
    expect(new Set(results.map((r) => r.orgId)).size).to.equal(1);
    expect(await counts()).to.deep.equal({ orgs: 1, keys: 1 });
    const again = await ensureDefaultOrg(db, key);
    expect(again.keyChanged).to.equal(false);
    expect(await counts()).to.deep.equal({ orgs: 1, keys: 1 });
  });

  it("when the key is rotated, then the old key stops working, the new one works in the default org, and it is audited", async () => {
    const oldKey = `rotate-old-${"b".repeat(32)}`;
    const newKey = `rotate-new-${"c".repeat(32)}`;
    const first = await ensureDefaultOrg(db, oldKey);
    await request(testApp({ db })).get("/v1/systems").set("X-API-Key", oldKey).expect(200);
    const second = await ensureDefaultOrg(db, newKey);
    expect(second).to.deep.include({ orgId: first.orgId, keyChanged: true });
    // A rotation is a restart with the new key: the restarted process has nothing cached.
    const app = testApp({ db });
    await request(app).get("/v1/systems").set("X-API-Key", oldKey).expect(403);
    const created = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", newKey)
      .send({ name: "ops", purpose: "p" })
      .expect(201);
    const row = (await db("systems")
      .where({ id: (created.body as { id: string }).id })
      .first()) as {
      org_id: string;
    };
    expect(row.org_id).to.equal(first.orgId);
    const audit = await db("audit_events").where({ action: "audit.api_key.bootstrap_rotate" });
    expect(audit.length).to.be.greaterThan(0);
  });

  it("when the bootstrap key was revoked through the API, then a restart with the same key keeps it revoked", async () => {
    const key = `revoked-${"d".repeat(32)}`;
    const { keyId } = await ensureDefaultOrg(db, key);
    await db("api_keys").where({ id: keyId }).update({ revoked_at: db.fn.now() });
    const restarted = await ensureDefaultOrg(db, key);
    expect(restarted.keyRevoked).to.equal(true);
    await request(testApp({ db })).get("/v1/systems").set("X-API-Key", key).expect(403);
    const rotated = await ensureDefaultOrg(db, `${key}-rotated`);
    expect(rotated.keyRevoked).to.equal(false);
  });
});
