import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createLogger } from "../../api/src/logger";
import { createMetrics } from "../../api/src/metrics";
import type { ReadinessChecks } from "../../api/src/readiness";
import { createRedis } from "../../api/src/redis";
import { isLoopback } from "../../api/src/routes/operations";
import { S3EvidenceStore } from "../../api/src/storage/s3-store";
import { createAccount, testApp, type ErrorBody } from "./support/app";
import { blackHole } from "./support/black-hole";
import { BUCKET, S3_KEY } from "./support/environment";
import { startS3Process } from "./support/freeze";
import { sleep, waitFor } from "./support/ports";
import { TestRedis } from "./support/redis";

/** The keel_dependency_up samples of an exposition, in order. */
function dependencyLines(text: string): string[] {
  return text.split("\n").filter((line) => line.startsWith("keel_dependency_up{"));
}

const up = (database: 0 | 1, redis: 0 | 1, storage: 0 | 1): string[] => [
  `keel_dependency_up{dependency="database"} ${database}`,
  `keel_dependency_up{dependency="redis"} ${redis}`,
  `keel_dependency_up{dependency="storage"} ${storage}`,
];

function s3Store(endpoint: string): S3EvidenceStore {
  return new S3EvidenceStore(
    {
      kind: "s3",
      endpoint,
      region: "auto",
      bucket: BUCKET,
      accessKeyId: S3_KEY,
      secretAccessKey: S3_KEY,
    },
    createLogger("silent"),
  );
}

async function scrape(app: Express): Promise<string[]> {
  return dependencyLines((await request(app).get("/metrics").expect(200)).text);
}

describe("/metrics", () => {
  let app: Express;
  before(() => {
    app = testApp();
  });

  it("when asked from this machine without a proxy header, then Prometheus text with request counts, latencies and process metrics", async () => {
    const account = await createAccount(app);
    await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    await request(app).get("/no/such/path").expect(404);
    const response = await request(app).get("/metrics").expect(200);
    expect(response.type).to.equal("text/plain");
    const text = response.text;
    expect(text).to.match(
      /http_requests_total\{method="GET",route="\/v1\/systems",status="200"\} [1-9]/,
    );
    expect(text).to.match(
      /http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/,
    );
    expect(text).to.contain(
      'http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/systems",status="200"}',
    );
    expect(text).to.match(/^process_cpu_user_seconds_total /m);
    expect(text).to.match(/^nodejs_eventloop_lag_seconds /m);
    expect(text).not.to.contain("/no/such/path");
  });

  it("when one route answers with two statuses, then each status is its own series with its exact count", async () => {
    const fresh = testApp();
    const account = await createAccount(fresh);
    for (let i = 0; i < 3; i++) {
      await request(fresh).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    }
    await request(fresh).get("/v1/systems").expect(401);
    const text = (await request(fresh).get("/metrics").expect(200)).text;
    const series = 'method="GET",route="/v1/systems",status=';
    expect(text).to.contain(`http_requests_total{${series}"200"} 3\n`);
    expect(text).to.contain(`http_requests_total{${series}"401"} 1\n`);
    expect(text).to.contain(`http_request_duration_seconds_count{${series}"200"} 3\n`);
    expect(text).to.contain(`http_request_duration_seconds_count{${series}"401"} 1\n`);
  });

  it("when the request came through the proxy, then 404 exactly like an unknown route", async () => {
    for (const header of ["X-Forwarded-For", "X-Real-IP", "Forwarded"]) {
      const response = await request(app).get("/metrics").set(header, "203.0.113.9").expect(404);
      const error = (response.body as ErrorBody).error;
      expect(error.code).to.equal("not_found");
      expect(error.message).to.equal("No route for GET /metrics.");
      expect(response.text).not.to.contain("http_requests_total");
    }
  });

  it("when the peer address is checked, then only 127.0.0.0/8 and ::1 (also IPv4-mapped) count as loopback", () => {
    for (const address of ["127.0.0.1", "127.10.0.3", "::1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(address), address).to.equal(true);
    }
    for (const address of [
      "10.0.0.1",
      "192.168.1.5",
      "::ffff:10.0.0.1",
      "2001:db8::1",
      "fe80::1",
      "",
      undefined,
    ]) {
      expect(isLoopback(address), String(address)).to.equal(false);
    }
  });

  describe("keel_dependency_up", () => {
    it("when every dependency answers, then /metrics reports each one up", async () => {
      const response = await request(app).get("/metrics").expect(200);
      expect(response.text).to.contain("# TYPE keel_dependency_up gauge\n");
      expect(dependencyLines(response.text)).to.deep.equal(up(1, 1, 1));
    });

    it("when Redis is stopped, then the next scrape reports it 0 while the others stay 1", async () => {
      const server = new TestRedis();
      await server.start();
      const redis = createRedis(server.url, createLogger("silent"));
      try {
        const ownApp = testApp({ redis });
        await waitFor("the Redis client to connect", () => redis.status === "ready");
        expect(await scrape(ownApp)).to.deep.equal(up(1, 1, 1));
        await server.stop();
        expect(await scrape(ownApp)).to.deep.equal(up(1, 0, 1));
      } finally {
        redis.disconnect();
        await server.destroy();
      }
    });

    it("when storage is stopped, then the next scrape reports it 0 while the others stay 1", async () => {
      const dir = mkdtempSync(join(tmpdir(), "keel-metrics-s3-"));
      const s3 = await startS3Process(dir, BUCKET);
      const store = s3Store(s3.endpoint);
      let stopped = false;
      try {
        const ownApp = testApp({ store });
        expect(await scrape(ownApp)).to.deep.equal(up(1, 1, 1));
        await s3.stop();
        stopped = true;
        expect(await scrape(ownApp)).to.deep.equal(up(1, 1, 0));
      } finally {
        store.close();
        if (!stopped) await s3.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("when storage hangs, then the scrape still answers within the time box and reports it 0", async function () {
      this.timeout(5_000);
      const hole = await blackHole();
      const store = s3Store(`http://127.0.0.1:${hole.port}`);
      try {
        const started = Date.now();
        expect(await scrape(testApp({ store }))).to.deep.equal(up(1, 1, 0));
        expect(Date.now() - started).to.be.within(900, 1_800);
      } finally {
        store.close();
        await hole.close();
      }
    });

    it("when scrapes overlap, then they share one run of the checks, each reporting its outcome", async () => {
      let runs = 0;
      let release: (checks: ReadinessChecks) => void = () => undefined;
      const outcome = new Promise<ReadinessChecks>((resolve) => (release = resolve));
      const { registry } = createMetrics({
        dependencies: () => {
          runs += 1;
          return outcome;
        },
      });
      const scrapes = Promise.all([registry.metrics(), registry.metrics()]);
      await waitFor("the first scrape to run the checks", () => runs > 0);
      await sleep(100); // The second scrape reaches the gauge meanwhile.
      release({ database: true, redis: false, storage: true });
      for (const text of await scrapes) expect(dependencyLines(text)).to.deep.equal(up(1, 0, 1));
      expect(runs).to.equal(1);
      expect(dependencyLines(await registry.metrics())).to.deep.equal(up(1, 0, 1));
      expect(runs).to.equal(2);
    });

    it("when no probe is given, then there is no keel_dependency_up at all", async () => {
      expect(await createMetrics().registry.metrics()).not.to.contain("keel_dependency_up");
    });
  });
});
