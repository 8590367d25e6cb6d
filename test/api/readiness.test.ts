import { expect } from "chai";
import request from "supertest";
import { createDatabase } from "../../api/src/database";
import { createLogger } from "../../api/src/logger";
import { createRedis } from "../../api/src/redis";
import { S3EvidenceStore } from "../../api/src/storage/s3-store";
import { testApp } from "./support/app";
import { blackHole } from "./support/black-hole";
import { BUCKET, S3_KEY, testEnv } from "./support/environment";
import { freePort } from "./support/ports";

describe("GET /ready", () => {
  it("when every dependency answers, then 200 with every check true and no caching", async () => {
    const response = await request(testApp()).get("/ready").expect(200);
    expect(response.body).to.deep.equal({
      status: "ready",
      checks: { database: true, redis: true, storage: true },
    });
    expect(response.get("Cache-Control")).to.equal("no-store");
  });

  it("when the bucket does not exist, then storage is the failing check", async () => {
    const store = new S3EvidenceStore(
      {
        kind: "s3",
        endpoint: testEnv().s3Endpoint,
        region: "auto",
        bucket: "no-such-bucket",
        accessKeyId: S3_KEY,
        secretAccessKey: S3_KEY,
      },
      createLogger("silent"),
    );
    try {
      const response = await request(testApp({ store })).get("/ready").expect(503);
      expect(response.body).to.deep.equal({
        status: "unavailable",
        checks: { database: true, redis: true, storage: false },
      });
    } finally {
      store.close();
    }
  });

  it("when every dependency hangs or is gone, then 503 naming each failing check, answered within the time box", async function () {
    // Each check gives up after one second; the checks run side by side.
    this.timeout(5_000);
    const hole = await blackHole();
    const logger = createLogger("silent");
    const db = createDatabase({ url: `postgres://keel:keel@127.0.0.1:${hole.port}/keel`, logger });
    const redis = createRedis(`redis://127.0.0.1:${await freePort()}`, logger);
    const store = new S3EvidenceStore(
      {
        kind: "s3",
        endpoint: `http://127.0.0.1:${hole.port}`,
        region: "auto",
        bucket: BUCKET,
        accessKeyId: S3_KEY,
        secretAccessKey: S3_KEY,
      },
      logger,
    );
    try {
      const response = await request(testApp({ db, redis, store })).get("/ready").expect(503);
      expect(response.body).to.deep.equal({
        status: "unavailable",
        checks: { database: false, redis: false, storage: false },
      });
    } finally {
      redis.disconnect();
      store.close();
      await db.destroy();
      await hole.close();
    }
  });
});
