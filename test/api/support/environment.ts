// The tier's real parts, started once for the whole run by the global setup (hooks.ts):
// PostgreSQL, Redis and an S3-compatible server (s3rver), each a throwaway instance, plus the
// built API (dist) that the black-box tests run with plain node.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { buildApi } from "../../../api/build";
import { ApiKeyCache } from "../../../api/src/auth/api-key-cache";
import { createDatabase, type Database } from "../../../api/src/database";
import { createLogger } from "../../../api/src/logger";
import { migrateLatest } from "../../../api/src/migrations/runner";
import { createRedis, type RedisClient } from "../../../api/src/redis";
import { S3EvidenceStore } from "../../../api/src/storage/s3-store";
import { killTracked } from "./children";
import { TestPostgres } from "./postgres";
import { TestRedis } from "./redis";

export const BUCKET = "keel-evidence";
export const S3_KEY = "S3RVER";

export interface TestEnvironment {
  readonly tmp: string;
  readonly postgres: TestPostgres;
  readonly redis: TestRedis;
  readonly s3: S3rver;
  readonly s3Endpoint: string;
  /** The migrated database the tests share. */
  readonly databaseUrl: string;
  /** The built API: server.js, migrate.js, node_modules/. */
  readonly distDir: string;
  /** Shared pools, for apps built with createApp and for asserting rows. */
  readonly db: Database;
  readonly redisClient: RedisClient;
  /** The process's API key cache, shared by every app as one API process shares it. */
  readonly apiKeys: ApiKeyCache;
  readonly store: S3EvidenceStore;
  readonly bootstrapApiKey: string;
}

let current: TestEnvironment | undefined;
// Undo steps of a (possibly half-finished) set-up, newest first.
const cleanups: (() => Promise<void> | void)[] = [];

export function testEnv(): TestEnvironment {
  if (current === undefined) throw new Error("the api test environment is not set up");
  return current;
}

export async function setUpEnvironment(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "keel-api-tests-"));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const postgres = new TestPostgres();
  cleanups.push(() => postgres.destroy());
  const redis = new TestRedis();
  cleanups.push(() => redis.destroy());
  // Should mocha end without its teardown (a crash, Ctrl-C), stop the servers anyway: they
  // are not children that die with this process.
  const emergencyStop = (): void => {
    killTracked();
    redis.kill();
    postgres.destroy();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once("exit", emergencyStop);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      emergencyStop();
      process.kill(process.pid, signal);
    });
  }
  const distDir = join(tmp, "dist", "api");
  await Promise.all([postgres.init(), redis.start(), buildApi(distDir)]);

  const s3 = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory: join(tmp, "s3"),
    configureBuckets: [{ name: BUCKET }],
  });
  const { port: s3Port } = await s3.run();
  cleanups.push(() => s3.close());
  const s3Endpoint = `http://127.0.0.1:${s3Port}`;

  const databaseUrl = await postgres.createDatabase("keel");
  const db = createDatabase({ url: databaseUrl, logger: createLogger("silent") });
  cleanups.push(() => db.destroy());
  await migrateLatest(db, databaseUrl);
  const redisClient = createRedis(redis.url, createLogger("silent"));
  cleanups.push(() => redisClient.disconnect());
  const apiKeys = openApiKeyCache(db, redisClient);
  const store = new S3EvidenceStore(
    {
      kind: "s3",
      endpoint: s3Endpoint,
      region: "auto",
      bucket: BUCKET,
      accessKeyId: S3_KEY,
      secretAccessKey: S3_KEY,
    },
    createLogger("silent"),
  );
  cleanups.push(() => store.close());
  current = {
    tmp,
    postgres,
    redis,
    s3,
    s3Endpoint,
    databaseUrl,
    distDir,
    db,
    redisClient,
    apiKeys,
    store,
    bootstrapApiKey: `bootstrap-${randomBytes(24).toString("hex")}`,
  };
}

/**
 * An API key cache of its own, as a separate API process has, looking keys up in `db`. Its
 * Redis subscriber is closed at teardown.
 */
export function apiKeyCacheFor(db: Database): ApiKeyCache {
  return openApiKeyCache(db, testEnv().redisClient);
}

function openApiKeyCache(db: Database, redis: RedisClient): ApiKeyCache {
  const subscriber = redis.duplicate();
  cleanups.push(() => subscriber.disconnect());
  return new ApiKeyCache(db, redis, subscriber, createLogger("silent"));
}

export async function tearDownEnvironment(): Promise<void> {
  current = undefined;
  const failures: unknown[] = [];
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
    try {
      await cleanup();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, "the api test teardown failed");
}
