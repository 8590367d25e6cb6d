import { expect } from "chai";
import { PASSWORD, uniqueEmail } from "./support/app";
import { testEnv } from "./support/environment";
import { waitFor } from "./support/ports";
import { startServer, type ServerProcess } from "./support/server";

interface ReadyBody {
  status: string;
  checks: { database: boolean; redis: boolean; storage: boolean };
}

async function ready(server: ServerProcess): Promise<{ status: number; body: ReadyBody }> {
  const response = await fetch(server.url("/ready"));
  return { status: response.status, body: (await response.json()) as ReadyBody };
}

function post(
  server: ServerProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(server.url(path), {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("outages of Redis and PostgreSQL (black box)", () => {
  let server: ServerProcess;
  const key = () => ({ "X-API-Key": testEnv().bootstrapApiKey });

  beforeEach(async () => {
    server = await startServer({ RATE_LIMIT_PER_MINUTE: "100000" });
  });
  afterEach(async () => {
    await server.stop();
  });

  it("when Redis stops, then the API keeps serving with in-memory limits and lockouts, /ready says redis:false, and it recovers by itself", async () => {
    const { redis } = testEnv();
    await redis.stop();
    try {
      await waitFor(
        "/ready to report redis:false",
        async () => (await ready(server)).status === 503,
      );
      expect((await ready(server)).body).to.deep.equal({
        status: "unavailable",
        checks: { database: true, redis: false, storage: true },
      });

      const created = await post(
        server,
        "/v1/systems",
        { name: "during redis outage", purpose: "p" },
        key(),
      );
      expect(created.status).to.equal(201);
      expect(created.headers.get("ratelimit")).to.match(/^"general"; r=\d+; t=\d+$/);

      const email = uniqueEmail();
      expect(
        (await post(server, "/v1/auth/register", { email, password: PASSWORD, orgName: "o" }))
          .status,
      ).to.equal(201);
      const statuses: number[] = [];
      for (let attempt = 1; attempt <= 6; attempt++) {
        statuses.push(
          (await post(server, "/v1/auth/login", { email, password: "wrong password!!" })).status,
        );
      }
      expect(statuses).to.deep.equal([401, 401, 401, 401, 429, 429]);
      expect(server.running).to.equal(true);
    } finally {
      await redis.start();
    }
    await waitFor("/ready to recover", async () => (await ready(server)).status === 200);
    const after = await fetch(server.url("/v1/systems"), { headers: key() });
    expect(after.status).to.equal(200);
    const keys = await testEnv().redisClient.keys("keel:rl:general:key:*");
    expect(keys.length).to.be.greaterThan(0);
    expect(server.logs().some((line) => line.msg === "redis connection restored")).to.equal(true);
  });

  it("when PostgreSQL stops, then requests needing it get 503, /health stays 200, the process stays up and recovers when it returns", async () => {
    const { postgres } = testEnv();
    postgres.stop();
    try {
      await waitFor(
        "/ready to report database:false",
        async () => (await ready(server)).status === 503,
      );
      expect((await ready(server)).body.checks).to.deep.equal({
        database: false,
        redis: true,
        storage: true,
      });
      const health = await fetch(server.url("/health"));
      expect(health.status).to.equal(200);
      const list = await fetch(server.url("/v1/systems"), { headers: key() });
      expect(list.status).to.equal(503);
      expect(list.headers.get("retry-after")).to.equal("5");
      const body = (await list.json()) as { error: { code: string; message: string } };
      expect(body.error.code).to.equal("service_unavailable");
      expect(body.error.message).to.equal("The database is unavailable; try again shortly.");
      expect(server.running).to.equal(true);
    } finally {
      postgres.start();
    }
    await waitFor("/ready to recover", async () => (await ready(server)).status === 200);
    const list = await fetch(server.url("/v1/systems"), { headers: key() });
    expect(list.status).to.equal(200);
  });
});
