// Apps built with createApp against the shared real parts, and small API helpers.
import { randomUUID } from "node:crypto";
import type { Express } from "express";
import request from "supertest";
import { createApp, type AppDeps } from "../../../api/src/app";
import { loadConfig, type Config } from "../../../api/src/config";
import { createLogger, type Logger } from "../../../api/src/logger";
import { apiKeyCacheFor, BUCKET, S3_KEY, testEnv } from "./environment";
import { observeApp } from "./observe";

export const JWT_SECRET = "test-jwt-secret-0123456789abcdefghijklmnop";
export const FRONTEND_ORIGIN = "https://app.example.test";
export const PASSWORD = "correct horse battery staple";

/** The environment of an API process wired to the test instances. */
export function apiEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env = testEnv();
  const base: Record<string, string | undefined> = {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "3000",
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redis.url,
    JWT_SECRET,
    FRONTEND_ORIGINS: FRONTEND_ORIGIN,
    S3_ENDPOINT: env.s3Endpoint,
    S3_REGION: "auto",
    S3_BUCKET: BUCKET,
    S3_ACCESS_KEY_ID: S3_KEY,
    S3_SECRET_ACCESS_KEY: S3_KEY,
    BOOTSTRAP_API_KEY: env.bootstrapApiKey,
    TRUST_PROXY: "1",
    LOG_LEVEL: "silent",
    // Generous by default: the rate-limit tests set their own and use callers of their own.
    RATE_LIMIT_PER_MINUTE: "100000",
    EXPENSIVE_RATE_LIMIT_PER_MINUTE: "100000",
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  const loaded = loadConfig(apiEnv(overrides));
  if (!loaded.ok) throw new Error(`test config invalid: ${loaded.errors.join("; ")}`);
  return loaded.config;
}

/**
 * createApp with the shared database, Redis and S3 store unless replaced (another database gets
 * an API key cache of its own). Every response it sends is checked against the OpenAPI document
 * (observe.ts).
 */
export function testApp(
  options: { env?: Record<string, string | undefined>; logger?: Logger } & Partial<AppDeps> = {},
): Express {
  const env = testEnv();
  const { env: overrides, ...deps } = options;
  return observeApp(
    createApp({
      config: testConfig(overrides),
      logger: createLogger("silent"),
      db: env.db,
      redis: env.redisClient,
      store: env.store,
      ...deps,
      apiKeys: deps.apiKeys ?? (deps.db === undefined ? env.apiKeys : apiKeyCacheFor(deps.db)),
    }),
  );
}

export const uniqueEmail = (): string => `user-${randomUUID()}@example.test`;

export interface Account {
  readonly email: string;
  readonly userId: string;
  readonly orgId: string;
  readonly token: string;
  /** An API key of the account's org. */
  readonly apiKey: string;
}

/** Creates a system in the org of `apiKey`; returns its id. */
export async function createSystem(
  app: Express,
  apiKey: string,
  system: { name: string; purpose: string },
): Promise<string> {
  const created = await request(app)
    .post("/v1/systems")
    .set("X-API-Key", apiKey)
    .send(system)
    .expect(201);
  return (created.body as { id: string }).id;
}

/** Registers a user (and org), logs in and creates an API key. */
export async function createAccount(app: Express): Promise<Account> {
  const email = uniqueEmail();
  const registered = await request(app)
    .post("/v1/auth/register")
    .send({ email, password: PASSWORD, orgName: `Org ${randomUUID()}` })
    .expect(201);
  const login = await request(app)
    .post("/v1/auth/login")
    .send({ email, password: PASSWORD })
    .expect(200);
  const token = (login.body as { accessToken: string }).accessToken;
  const key = await request(app)
    .post("/v1/api-keys")
    .set("Authorization", `Bearer ${token}`)
    .send({ name: "tests" })
    .expect(201);
  const body = registered.body as { user: { id: string }; org: { id: string } };
  return {
    email,
    userId: body.user.id,
    orgId: body.org.id,
    token,
    apiKey: (key.body as { key: string }).key,
  };
}

/** The first row of `table` matching `where`. */
export async function findRow(
  table: string,
  where: Record<string, unknown>,
): Promise<Record<string, unknown> | undefined> {
  return (await testEnv().db(table).where(where).first()) as Record<string, unknown> | undefined;
}

/** The JSON error body every failure carries. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    details?: { path: string; message: string }[];
  };
}
