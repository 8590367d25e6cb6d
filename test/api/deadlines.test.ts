// Every dependency call has a deadline (api/src/deadlines.ts, README "Deadlines"): with a
// dependency frozen (SIGSTOP of its throwaway server), a request answers within the bound.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createDatabase, type Database } from "../../api/src/database";
import { REQUEST_BOUND_MS } from "../../api/src/deadlines";
import { createLogger } from "../../api/src/logger";
import { createRedis, type RedisClient } from "../../api/src/redis";
import { S3EvidenceStore } from "../../api/src/storage/s3-store";
import {
  PASSWORD,
  createAccount,
  createSystem,
  testApp,
  type Account,
  type ErrorBody,
} from "./support/app";
import { BUCKET, S3_KEY, testEnv } from "./support/environment";
import { postgresProcesses, startS3Process, whileFrozen, type S3Process } from "./support/freeze";
import { startServer } from "./support/server";

/** Room for the test machine's own delays on top of the documented bound. */
const MARGIN_MS = 2_000;

/** The log lines an app writes, each parsed as JSON (a line that is not JSON fails the test). */
function jsonLines(): { lines: Record<string, unknown>[]; sink: Writable } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, sink };
}

async function timed<T>(action: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await action();
  return { result, ms: performance.now() - started };
}

describe("deadlines of dependency calls", function () {
  this.timeout(REQUEST_BOUND_MS * 3);

  describe("when the S3 server is frozen", () => {
    let s3: S3Process;
    let store: S3EvidenceStore;
    let app: Express;
    let account: Account;
    let evidenceId: string;
    const log = jsonLines();

    before(async () => {
      s3 = await startS3Process(join(testEnv().tmp, "s3-frozen"), BUCKET);
      const logger = createLogger("debug", log.sink);
      store = new S3EvidenceStore(
        {
          kind: "s3",
          endpoint: s3.endpoint,
          region: "auto",
          bucket: BUCKET,
          accessKeyId: S3_KEY,
          secretAccessKey: S3_KEY,
        },
        logger,
      );
      app = testApp({ store, logger });
      account = await createAccount(app);
      const systemId = await createSystem(app, account.apiKey, { name: "frozen s3", purpose: "p" });
      const created = await request(app)
        .post(`/v1/systems/${systemId}/evidence`)
        .set("X-API-Key", account.apiKey)
        .send({
          filename: "a.txt",
          sha256: createHash("sha256").update("a").digest("hex"),
          size: 1,
          contentType: "text/plain",
        })
        .expect(201);
      evidenceId = (created.body as { id: string }).id;
    });
    after(async () => {
      store.close();
      await s3.stop();
    });

    it("when an upload is completed, then it answers 503 within the bound and every log line is JSON", async () => {
      const { result, ms } = await whileFrozen([s3.pid], () =>
        timed(() =>
          request(app).post(`/v1/evidence/${evidenceId}/complete`).set("X-API-Key", account.apiKey),
        ),
      );
      expect(result.status).to.equal(503);
      expect((result.body as ErrorBody).error.code).to.equal("service_unavailable");
      expect(result.get("Retry-After")).to.equal("5");
      expect(ms).to.be.below(REQUEST_BOUND_MS + MARGIN_MS);
      const completion = log.lines.find(
        (line) =>
          line.msg === "request errored" ||
          (line.res as { statusCode?: number } | undefined)?.statusCode === 503,
      );
      expect(completion, "the 503 is logged as JSON").to.not.equal(undefined);
    });
  });

  it("when the built server's S3 is frozen, then it answers 503 within the bound, and stdout stays JSON and stderr empty", async () => {
    const s3 = await startS3Process(join(testEnv().tmp, "s3-frozen-server"), BUCKET);
    const server = await startServer({ S3_ENDPOINT: s3.endpoint });
    try {
      const key = { "X-API-Key": testEnv().bootstrapApiKey, "Content-Type": "application/json" };
      const system = await fetch(server.url("/v1/systems"), {
        method: "POST",
        headers: key,
        body: JSON.stringify({ name: "frozen s3", purpose: "p" }),
      });
      const systemId = ((await system.json()) as { id: string }).id;
      const evidence = await fetch(server.url(`/v1/systems/${systemId}/evidence`), {
        method: "POST",
        headers: key,
        body: JSON.stringify({
          filename: "a",
          sha256: "0".repeat(64),
          size: 1,
          contentType: "text/plain",
        }),
      });
      const evidenceId = ((await evidence.json()) as { id: string }).id;
      const { result, ms } = await whileFrozen([s3.pid], () =>
        timed(() =>
          fetch(server.url(`/v1/evidence/${evidenceId}/complete`), {
            method: "POST",
            headers: key,
          }),
        ),
      );
      expect(result.status).to.equal(503);
      expect(ms).to.be.below(REQUEST_BOUND_MS + MARGIN_MS);
      await server.stop();
      expect(server.logs().length).to.be.greaterThan(0);
      expect(server.stderr).to.equal("");
    } finally {
      await server.stop();
      await s3.stop();
    }
  });

  describe("when PostgreSQL is frozen", () => {
    let db: Database;
    let app: Express;
    let account: Account;

    before(async () => {
      db = createDatabase({ url: testEnv().databaseUrl, logger: createLogger("silent") });
      app = testApp({ db });
      account = await createAccount(app);
      // A pooled connection is open: the frozen server is reached through it, not refused.
      await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    });
    after(async () => {
      await db.destroy();
    });

    for (const [what, send] of [
      [
        "a list is read",
        (target: Express, key: string) => request(target).get("/v1/systems").set("X-API-Key", key),
      ],
      [
        "a system is created",
        (target: Express, key: string) =>
          request(target)
            .post("/v1/systems")
            .set("X-API-Key", key)
            .send({ name: "n", purpose: "p" }),
      ],
    ] as const) {
      it(`when ${what}, then it answers 503 within the bound`, async () => {
        const { result, ms } = await whileFrozen(postgresProcesses(testEnv().postgres.data), () =>
          timed(async () => send(app, account.apiKey)),
        );
        expect(result.status).to.equal(503);
        expect((result.body as ErrorBody).error.message).to.equal(
          "The database is unavailable; try again shortly.",
        );
        expect(ms).to.be.below(REQUEST_BOUND_MS + MARGIN_MS);
      });
    }
  });

  describe("when Redis is frozen", () => {
    let redis: RedisClient;
    let app: Express;
    let account: Account;

    before(async () => {
      redis = createRedis(testEnv().redis.url, createLogger("silent"));
      app = testApp({ redis });
      account = await createAccount(app);
    });
    after(() => {
      redis.disconnect();
    });

    it("when a list is read, then it is served (counted in memory) within the bound", async () => {
      const { result, ms } = await whileFrozen([testEnv().redis.pid], () =>
        timed(async () => request(app).get("/v1/systems").set("X-API-Key", account.apiKey)),
      );
      expect(result.status).to.equal(200);
      expect(ms).to.be.below(REQUEST_BOUND_MS + MARGIN_MS);
    });

    it("when a user logs in, then the login (lockout kept in memory) answers within the bound", async () => {
      const { result, ms } = await whileFrozen([testEnv().redis.pid], () =>
        timed(async () =>
          request(app).post("/v1/auth/login").send({ email: account.email, password: PASSWORD }),
        ),
      );
      expect(result.status).to.equal(200);
      expect(ms).to.be.below(REQUEST_BOUND_MS + MARGIN_MS);
    });
  });
});
