import { Writable } from "node:stream";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { ApiKeyCache } from "../../api/src/auth/api-key-cache";
import { hashApiKey } from "../../api/src/auth/api-keys";
import { createLogger } from "../../api/src/logger";
import type { RedisClient } from "../../api/src/redis";
import { createAccount, testApp, type Account } from "./support/app";
import { testEnv } from "./support/environment";
import { sleep, waitFor } from "./support/ports";
import { startServer, type ServerProcess } from "./support/server";

interface KeyBody {
  id: string;
  key: string;
}

const SUBSCRIBED = "subscribed to API key revocations: caching keys";

async function newKey(app: Express | string, account: Account): Promise<KeyBody> {
  const res = await request(app)
    .post("/v1/api-keys")
    .set("Authorization", `Bearer ${account.token}`)
    .send({ name: "cached" })
    .expect(201);
  return res.body as KeyBody;
}

/** Revokes a key in the database alone: no API instance hears of it. */
async function revokeBehindTheApisBack(key: string): Promise<void> {
  const updated = await testEnv()
    .db("api_keys")
    .where({ key_hash: hashApiKey(key) })
    .update({ revoked_at: new Date() });
  expect(updated).to.equal(1);
}

const listWith = (target: Express | string, key: string) =>
  request(target).get("/v1/systems").set("X-API-Key", key);

/** An app with an API key cache of its own, whose log messages are collected. */
function appWithOwnCache(ttlMs?: number) {
  const env = testEnv();
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) {
        messages.push(String((JSON.parse(line) as { msg: unknown }).msg));
      }
      done();
    },
  });
  const subscriber: RedisClient = env.redisClient.duplicate();
  const apiKeys = new ApiKeyCache(
    env.db,
    env.redisClient,
    subscriber,
    createLogger("info", sink),
    ttlMs,
  );
  return { app: testApp({ apiKeys }), messages, subscriber };
}

describe("the API key cache", () => {
  let account: Account;

  before(async () => {
    account = await createAccount(testApp());
  });

  describe("across API processes", () => {
    let first: ServerProcess;
    let second: ServerProcess;

    before(async () => {
      [first, second] = await Promise.all([startServer(), startServer()]);
      for (const server of [first, second]) {
        await waitFor("the subscription to revocations", () =>
          server.logs().some((line) => line.msg === SUBSCRIBED),
        );
      }
    });
    after(async () => {
      await Promise.all([first.stop(), second.stop()]);
    });

    it("when a key is revoked through one process, then another that had it cached refuses it at once", async () => {
      const key = await newKey(first.url(""), account);
      await listWith(second.url(""), key.key).expect(200);
      await listWith(second.url(""), key.key).expect(200);
      await request(first.url(""))
        .delete(`/v1/api-keys/${key.id}`)
        .set("Authorization", `Bearer ${account.token}`)
        .expect(204);
      await listWith(second.url(""), key.key).expect(403);
      await listWith(first.url(""), key.key).expect(403);
    });
  });

  describe("within one process", () => {
    const opened: RedisClient[] = [];
    after(() => {
      for (const subscriber of opened) subscriber.disconnect();
    });

    it("when a key is revoked in the database alone, then it works until its entry expires, and not after", async () => {
      const ttlMs = 400;
      const { app, messages, subscriber } = appWithOwnCache(ttlMs);
      opened.push(subscriber);
      await waitFor("the subscription", () => messages.includes(SUBSCRIBED));
      const key = await newKey(app, account);
      await listWith(app, key.key).expect(200);
      const cachedAt = Date.now();
      await revokeBehindTheApisBack(key.key);
      // Served from the cache: no query saw the revocation.
      await listWith(app, key.key).expect(200);
      await sleep(Math.max(0, cachedAt + ttlMs + 100 - Date.now()));
      await listWith(app, key.key).expect(403);
    });

    it("when its subscriber is closed on purpose (shutdown), then it stops caching without a warning", async () => {
      const { app, messages, subscriber } = appWithOwnCache();
      await waitFor("the subscription", () => messages.includes(SUBSCRIBED));
      const key = await newKey(app, account);
      await listWith(app, key.key).expect(200);
      const ended = new Promise((resolve) => subscriber.once("end", resolve));
      subscriber.disconnect();
      await ended;
      await revokeBehindTheApisBack(key.key);
      await listWith(app, key.key).expect(403);
      expect(messages).to.deep.equal([SUBSCRIBED]);
    });

    it("when Redis is away, then nothing is cached, so a revocation in the database counts at once; caching resumes when Redis is back", async () => {
      const { redis } = testEnv();
      const { app, messages, subscriber } = appWithOwnCache();
      opened.push(subscriber);
      await waitFor("the subscription", () => messages.includes(SUBSCRIBED));
      const during = await newKey(app, account);
      await listWith(app, during.key).expect(200);
      await redis.stop();
      try {
        await waitFor("the subscriber to notice", () =>
          messages.includes("API key revocations unreachable: not caching keys"),
        );
        await listWith(app, during.key).expect(200);
        await revokeBehindTheApisBack(during.key);
        await listWith(app, during.key).expect(403);
      } finally {
        await redis.start();
      }
      await waitFor(
        "the subscription again",
        () => messages.filter((message) => message === SUBSCRIBED).length === 2,
      );
      const after = await newKey(app, account);
      await listWith(app, after.key).expect(200);
      await revokeBehindTheApisBack(after.key);
      // Cached again: the default bound (10 s) has not passed.
      await listWith(app, after.key).expect(200);
    });
  });
});
