import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { toDouble } from "../../api/src/routes/events";
import { createAccount, findRow, testApp, type Account, type ErrorBody } from "./support/app";
import { testEnv } from "./support/environment";

interface Stats {
  type: string | null;
  bucket: string;
  from: string;
  to: string;
  buckets: { start: string; count: number; avg: number | null }[];
}

describe("events", () => {
  let app: Express;
  let account: Account;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
  });

  const ingest = (body: unknown, key = account.apiKey) =>
    request(app)
      .post("/v1/events")
      .set("X-API-Key", key)
      .send(body as object);

  it("when a batch is posted, then 202 and every event is stored in the caller's org, and it is audited", async () => {
    const response = await ingest([
      { type: "cpu.load", ts: "2030-01-01T10:00:00Z", value: 0.5, attributes: { host: "a" } },
      { type: "deploy" },
    ]).expect(202);
    expect(response.body).to.deep.equal({ accepted: 2 });
    const rows = (await testEnv()
      .db("events")
      .where({ org_id: account.orgId })
      .orderBy("type")) as { type: string; ts: Date; value: number | null; attributes: unknown }[];
    expect(rows.map((r) => r.type)).to.deep.equal(["cpu.load", "deploy"]);
    expect(rows[0]).to.deep.include({ value: 0.5, attributes: { host: "a" } });
    expect(rows[0]?.ts.toISOString()).to.equal("2030-01-01T10:00:00.000Z");
    expect(Math.abs((rows[1]?.ts.getTime() ?? 0) - Date.now())).to.be.below(60_000);
    expect(
      await findRow("audit_events", {
        action: "audit.events.ingest",
        request_id: response.get("X-Request-ID"),
      }),
    ).to.deep.include({ org_id: account.orgId, details: { count: 2 } });
  });

  it("when a batch is empty or holds more than 1000 events, then 400", async () => {
    await ingest([]).expect(400);
    const tooMany = Array.from({ length: 1001 }, () => ({ type: "x" }));
    const response = await ingest(tooMany).expect(400);
    expect((response.body as ErrorBody).error.details?.[0]?.message).to.contain("1000");
    await ingest(Array.from({ length: 1000 }, () => ({ type: "bulk" }))).expect(202);
  });

  it("when stats are asked per hour, then each bucket has the count and average of its events", async () => {
    const owner = await createAccount(app);
    await ingest(
      [
        { type: "latency", ts: "2031-05-01T10:05:00Z", value: 10 },
        { type: "latency", ts: "2031-05-01T10:55:00Z", value: 20 },
        { type: "latency", ts: "2031-05-01T12:30:00+02:00", value: 30 },
        { type: "latency", ts: "2031-05-01T11:10:00Z" },
        { type: "other", ts: "2031-05-01T10:15:00Z", value: 1000 },
      ],
      owner.apiKey,
    ).expect(202);
    const response = await request(app)
      .get("/v1/events/stats")
      .query({
        type: "latency",
        bucket: "1h",
        from: "2031-05-01T00:00:00Z",
        to: "2031-05-02T00:00:00Z",
      })
      .set("X-API-Key", owner.apiKey)
      .expect(200);
    const stats = response.body as Stats;
    expect(stats).to.deep.include({
      type: "latency",
      bucket: "1h",
      from: "2031-05-01T00:00:00.000Z",
      to: "2031-05-02T00:00:00.000Z",
    });
    expect(stats.buckets).to.deep.equal([
      // 12:30+02:00 is 10:30Z.
      { start: "2031-05-01T10:00:00.000Z", count: 3, avg: 20 },
      { start: "2031-05-01T11:00:00.000Z", count: 1, avg: null },
    ]);
    const all = await request(app)
      .get("/v1/events/stats")
      .query({ bucket: "1d", from: "2031-05-01T00:00:00Z", to: "2031-05-02T00:00:00Z" })
      .set("X-API-Key", owner.apiKey)
      .expect(200);
    expect((all.body as Stats).buckets).to.deep.equal([
      { start: "2031-05-01T00:00:00.000Z", count: 5, avg: 265 },
    ]);
  });

  it("when another org asks for stats over the same time, then it sees none of these events", async () => {
    const writer = await createAccount(app);
    const reader = await createAccount(app);
    await ingest([{ type: "secret", ts: "2032-01-01T00:30:00Z", value: 1 }], writer.apiKey).expect(
      202,
    );
    const response = await request(app)
      .get("/v1/events/stats")
      .query({ type: "secret", from: "2032-01-01T00:00:00Z", to: "2032-01-02T00:00:00Z" })
      .set("X-API-Key", reader.apiKey)
      .expect(200);
    expect((response.body as Stats).buckets).to.deep.equal([]);
  });

  it("when the stats query is malformed, then 400 names the parameter", async () => {
    const cases: [Record<string, string>, string][] = [
      [{ bucket: "1w" }, "query.bucket"],
      [{ bucket: "0h" }, "query.bucket"],
      [{ from: "yesterday" }, "query.from"],
      [{ from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z" }, "query.from"],
      [{ bucket: "1m", from: "2000-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z" }, "query.bucket"],
      [{ type: "bad type!" }, "query.type"],
    ];
    for (const [query, path] of cases) {
      const response = await request(app)
        .get("/v1/events/stats")
        .query(query)
        .set("X-API-Key", account.apiKey)
        .expect(400);
      const paths = ((response.body as ErrorBody).error.details ?? []).map((d) => d.path);
      expect(paths, JSON.stringify(query)).to.include(path);
    }
  });

  it("when one huge value sits beside a small one (issue 13), then stats still answer 200 with their exact average, with or without type", async () => {
    const owner = await createAccount(app);
    await ingest(
      [
        { type: "T", ts: "1950-01-01T00:00:00.000Z", value: 1e200 },
        { type: "T", ts: "1950-01-01T00:30:00.000Z", value: 1 },
      ],
      owner.apiKey,
    ).expect(202);
    for (const query of [{ type: "T" }, {}]) {
      const response = await request(app)
        .get("/v1/events/stats")
        .query({ ...query, from: "1950-01-01T00:00:00Z", to: "1950-01-02T00:00:00Z" })
        .set("X-API-Key", owner.apiKey)
        .expect(200);
      expect((response.body as Stats).buckets).to.deep.equal([
        { start: "1950-01-01T00:00:00.000Z", count: 2, avg: 5e199 },
      ]);
    }
  });

  it("when huge values are recent, then the default view (the last 24 hours) answers 200 with their average", async () => {
    const owner = await createAccount(app);
    const now = Date.now();
    await ingest(
      [1e308, 1e308, -1e200].map((value, i) => ({
        type: "recent",
        ts: new Date(now - 60_000 - i).toISOString(),
        value,
      })),
      owner.apiKey,
    ).expect(202);
    const response = await request(app)
      .get("/v1/events/stats")
      .query({ bucket: "1d" })
      .set("X-API-Key", owner.apiKey)
      .expect(200);
    // The three are a few milliseconds apart: one daily bucket.
    const [bucket, ...others] = (response.body as Stats).buckets;
    expect(others).to.deep.equal([]);
    expect(bucket?.count).to.equal(3);
    expect(bucket?.avg).to.be.closeTo((1e308 / 3) * 2, 1e293);
  });

  it("when stored values are the largest doubles, infinities or NaN (written past the API), then stats answer 200 with finite averages or null", async () => {
    const owner = await createAccount(app);
    const row = (ts: string, value: number) => ({ org_id: owner.orgId, type: "edge", ts, value });
    await testEnv()
      .db("events")
      .insert([
        row("1960-01-01T00:10:00Z", Number.MAX_VALUE),
        row("1960-01-01T00:20:00Z", Number.MAX_VALUE),
        row("1960-01-01T01:10:00Z", -Number.MAX_VALUE),
        row("1960-01-01T01:20:00Z", -Number.MAX_VALUE),
        row("1960-01-01T02:10:00Z", Infinity),
        row("1960-01-01T02:20:00Z", -Infinity),
        row("1960-01-01T03:10:00Z", NaN),
      ]);
    const response = await request(app)
      .get("/v1/events/stats")
      .query({ type: "edge", from: "1960-01-01T00:00:00Z", to: "1960-01-02T00:00:00Z" })
      .set("X-API-Key", owner.apiKey)
      .expect(200);
    expect((response.body as Stats).buckets.map((bucket) => bucket.avg)).to.deep.equal([
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      null,
      null,
    ]);
  });

  describe("per-minute and per-hour totals", () => {
    // A small deterministic generator, so that a failure names a case that can be replayed.
    function random(seed: number): () => number {
      let state = seed;
      return () => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state / 2 ** 31;
      };
    }

    /** What stats must answer: the same buckets computed from events alone. */
    async function rawStats(orgId: string, query: Record<string, string>) {
      const result = await testEnv().db.raw<{
        rows: { start: Date; count: string; avg: string | null }[];
      }>(
        `SELECT date_bin(?::interval, ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS start,
                count(*) AS count, avg(value::numeric) AS avg
           FROM events
          WHERE org_id = ? AND ts >= ? AND ts < ? ${query.type === undefined ? "" : "AND type = ?"}
          GROUP BY start ORDER BY start`,
        [
          query.interval ?? "",
          orgId,
          new Date(query.from ?? ""),
          new Date(query.to ?? ""),
          ...(query.type === undefined ? [] : [query.type]),
        ],
      );
      return result.rows.map((row) => ({
        start: row.start.toISOString(),
        count: Number(row.count),
        avg: toDouble(row.avg),
      }));
    }

    it("when events arrive through the API and past it, then every stats query answers what a query over events alone answers", async () => {
      const owner = await createAccount(app);
      const next = random(20261203);
      const base = Date.parse("2033-03-01T00:00:00Z");
      const span = 6 * 3_600_000;
      const types = ["a", "b", "c"];
      const event = () => ({
        type: types[Math.floor(next() * types.length)] ?? "a",
        ts: new Date(base + Math.floor(next() * span)).toISOString(),
        value: next() < 0.2 ? null : Math.round((next() - 0.3) * 1e6) / 1000,
      });
      for (let batch = 0; batch < 8; batch++) {
        await ingest(Array.from({ length: 250 }, event), owner.apiKey).expect(202);
      }
      // As an older release or an operator's psql would write them: the trigger adds these.
      await testEnv()
        .db("events")
        .insert(
          Array.from({ length: 200 }, () => {
            const e = event();
            return { org_id: owner.orgId, type: e.type, ts: e.ts, value: e.value };
          }),
        );

      const buckets = [
        ["1m", "1 minutes"],
        ["7m", "7 minutes"],
        ["90m", "90 minutes"],
        ["1h", "1 hours"],
        ["2h", "2 hours"],
        ["1d", "1 days"],
      ] as const;
      for (let round = 0; round < 40; round++) {
        const a = base - 3_600_000 + Math.floor(next() * (span + 7_200_000));
        const b = base - 3_600_000 + Math.floor(next() * (span + 7_200_000));
        const [spec, interval] = buckets[round % buckets.length] ?? buckets[0];
        const query: Record<string, string> = {
          bucket: spec,
          from: new Date(Math.min(a, b)).toISOString(),
          to: new Date(Math.max(a, b) + 1).toISOString(),
          ...(round % 3 === 0 ? {} : { type: types[round % types.length] ?? "a" }),
        };
        const response = await request(app)
          .get("/v1/events/stats")
          .query(query)
          .set("X-API-Key", owner.apiKey)
          .expect(200);
        expect((response.body as Stats).buckets, JSON.stringify(query)).to.deep.equal(
          await rawStats(owner.orgId, { ...query, interval }),
        );
      }
      for (const table of ["event_minutes", "event_hours"]) {
        const [totals] = await testEnv()
          .db(table)
          .where({ org_id: owner.orgId })
          .sum<{ events: string }[]>({ events: "events" });
        expect(Number(totals?.events), table).to.equal(8 * 250 + 200);
      }
    });

    it("when many batches for the same minutes arrive at once, then none waits forever and every event is counted once", async () => {
      const owner = await createAccount(app);
      const batch = (reversed: boolean) => {
        const events = ["x", "y", "z"].flatMap((type) =>
          [0, 1, 2].map((minute) => ({
            type,
            ts: `2034-01-01T00:0${minute}:30Z`,
            value: 1,
          })),
        );
        return reversed ? events.reverse() : events;
      };
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => ingest(batch(i % 2 === 1), owner.apiKey)),
      );
      expect(responses.map((r) => r.status)).to.deep.equal(Array(20).fill(202));
      const totals = async (table: string) =>
        (
          (await testEnv().db(table).where({ org_id: owner.orgId }).orderBy(["type", "start"])) as {
            type: string;
            events: string;
            valued: string;
          }[]
        ).map((r) => [r.type, Number(r.events), Number(r.valued)]);
      expect(await totals("event_minutes")).to.deep.equal(
        ["x", "y", "z"].flatMap((type) => [0, 1, 2].map(() => [type, 20, 20])),
      );
      expect(await totals("event_hours")).to.deep.equal(
        ["x", "y", "z"].map((type) => [type, 60, 60]),
      );
    });
  });
});
