import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { expect } from "chai";
import { createDatabase } from "../../api/src/database";
import { createLogger } from "../../api/src/logger";
import { migrateLatest } from "../../api/src/migrations/runner";
import { apiEnv } from "./support/app";
import { testEnv } from "./support/environment";
import { waitFor } from "./support/ports";
import { runDist, ServerProcess, startServer } from "./support/server";

async function migratedDatabase(name: string): Promise<string> {
  const url = await testEnv().postgres.createDatabase(name);
  const db = createDatabase({ url, logger: createLogger("silent") });
  try {
    await migrateLatest(db, url);
  } finally {
    await db.destroy();
  }
  return url;
}

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });

describe("the built server (black box)", () => {
  it("when the environment is bad, then it refuses to start, naming every bad variable", async () => {
    const env = apiEnv({
      JWT_SECRET: "short-secret-value",
      FRONTEND_ORIGINS: "*",
      DATABASE_URL: undefined,
    });
    const server = new ServerProcess(runDist("server.js", env), 0);
    const exit = await server.exited;
    expect(exit.code).to.equal(78);
    expect(server.stderr).to.contain("invalid configuration, refusing to start");
    expect(server.stderr).to.contain("JWT_SECRET: must be at least 32 characters long");
    expect(server.stderr).to.contain('FRONTEND_ORIGINS: must not contain "*" in production');
    expect(server.stderr).to.contain("DATABASE_URL: is required");
    expect(server.stderr).not.to.contain("short-secret-value");
  });

  it("when started, then /health and /ready answer 200 and every log line is JSON with a request id", async () => {
    const server = await startServer();
    try {
      const health = await fetch(server.url("/health"));
      expect(health.status).to.equal(200);
      expect(await health.json()).to.deep.equal({ status: "ok" });
      const ready = await fetch(server.url("/ready"), { headers: { "X-Request-ID": "probe-1" } });
      expect(ready.status).to.equal(200);
      expect(await ready.json()).to.deep.equal({
        status: "ready",
        checks: { database: true, redis: true, storage: true },
      });
      expect(ready.headers.get("x-request-id")).to.equal("probe-1");
      await waitFor("the /ready log line", () =>
        server.logs().some((line) => line.requestId === "probe-1"),
      );
      const line = server.logs().find((entry) => entry.requestId === "probe-1");
      expect(line).to.deep.include({ level: "info", service: "keel-api" });
      expect(server.logs().some((entry) => entry.msg === "listening")).to.equal(true);
    } finally {
      expect((await server.stop()).code).to.equal(0);
    }
  });

  it("when the schema has not been migrated, then it exits at once telling to run migrate.js", async () => {
    const url = await testEnv().postgres.createDatabase("server_unmigrated");
    const server = await startServer({ DATABASE_URL: url }, { waitUntilHealthy: false });
    const exit = await server.exited;
    expect(exit.code).to.equal(1);
    expect(server.stderr).to.contain("the database schema is not up to date");
    expect(server.stderr).to.contain("run migrate.js");
  });

  it("when BOOTSTRAP_API_KEY changes across a restart, then the old key stops working and the new one works", async () => {
    const url = await migratedDatabase("server_rotation");
    const oldKey = `old-bootstrap-${"o".repeat(32)}`;
    const newKey = `new-bootstrap-${"n".repeat(32)}`;
    const first = await startServer({ DATABASE_URL: url, BOOTSTRAP_API_KEY: oldKey });
    const before = await fetch(first.url("/v1/systems"), { headers: { "X-API-Key": oldKey } });
    expect(before.status).to.equal(200);
    expect((await first.stop()).code).to.equal(0);

    const second = await startServer({ DATABASE_URL: url, BOOTSTRAP_API_KEY: newKey });
    try {
      const stale = await fetch(second.url("/v1/systems"), { headers: { "X-API-Key": oldKey } });
      expect(stale.status).to.equal(403);
      const fresh = await fetch(second.url("/v1/systems"), { headers: { "X-API-Key": newKey } });
      expect(fresh.status).to.equal(200);
    } finally {
      await second.stop();
    }
  });

  it("when several instances start at once, then all come up and there is one default org with one bootstrap key", async () => {
    const url = await migratedDatabase("server_concurrent");
    const servers = await Promise.all([1, 2, 3].map(() => startServer({ DATABASE_URL: url })));
    try {
      const counts = await testEnv().postgres.admin("server_concurrent", async (client) => {
        const orgs = await client.query("SELECT id FROM orgs WHERE is_default");
        const keys = await client.query("SELECT id FROM api_keys WHERE is_bootstrap");
        return [orgs.rowCount, keys.rowCount];
      });
      expect(counts).to.deep.equal([1, 1]);
      for (const server of servers) {
        const response = await fetch(server.url("/v1/systems"), {
          headers: { Authorization: `Bearer ${testEnv().bootstrapApiKey}` },
        });
        expect(response.status).to.equal(200);
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  it("when SIGTERM arrives during a request, then it stops accepting, finishes the request and exits 0", async () => {
    const server = await startServer();
    const body = JSON.stringify({ name: "in flight", purpose: "graceful shutdown" });
    const half = Math.floor(body.length / 2);
    let sending: ReturnType<typeof httpRequest> | undefined;
    let response: Promise<{ status: number; text: string }> | undefined;
    const continued = new Promise<void>((resolve) => {
      const req = httpRequest(server.url("/v1/systems"), {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Content-Length": String(Buffer.byteLength(body)),
          "X-API-Key": testEnv().bootstrapApiKey,
          Expect: "100-continue",
        },
      });
      req.once("continue", () => resolve());
      response = new Promise((done, fail) => {
        req.once("response", (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
          res.once("end", () => done({ status: res.statusCode ?? 0, text }));
        });
        req.once("error", fail);
      });
      sending = req;
    });

    // The server has read the request head: the request is in flight.
    await continued;
    sending?.write(body.slice(0, half));
    server.child.kill("SIGTERM");
    await waitFor("the listener to close", () => refused(server.port));
    expect(server.running).to.equal(true);

    sending?.end(body.slice(half));
    const answer = await response;
    expect(answer?.status).to.equal(201);
    expect(JSON.parse(answer?.text ?? "{}")).to.include({ name: "in flight" });
    const exit = await server.exited;
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(server.logs().some((line) => line.msg === "stopped")).to.equal(true);
  });

  it("when SIGINT arrives while idle, then it exits 0", async () => {
    const server = await startServer();
    expect(await server.stop("SIGINT")).to.deep.equal({ code: 0, signal: null });
  });
});
