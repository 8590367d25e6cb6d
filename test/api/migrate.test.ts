import { expect } from "chai";
import { createDatabase } from "../../api/src/database";
import { createLogger } from "../../api/src/logger";
import { migrationSource } from "../../api/src/migrations";
import { migrateLatest } from "../../api/src/migrations/runner";
import { testEnv } from "./support/environment";
import { freePort } from "./support/ports";
import { runMigrate } from "./support/server";

const EXPECTED = [
  "0001-organisations-users-api-keys",
  "0002-systems-evidence",
  "0003-events",
  "0004-audit-events",
  "0005-event-totals",
];

async function appliedMigrations(database: string): Promise<string[]> {
  return testEnv().postgres.admin(database, async (client) => {
    const result = await client.query<{ name: string }>(
      "SELECT name FROM knex_migrations ORDER BY id",
    );
    return result.rows.map((row) => row.name);
  });
}

describe("migrate.js", () => {
  it("when run on an empty database as a non-superuser role, then it applies every migration and exits 0", async () => {
    const url = await testEnv().postgres.createDatabase("migrate_fresh");
    const superuser = await testEnv().postgres.admin("postgres", async (client) => {
      const result = await client.query<{ rolsuper: boolean }>(
        "SELECT rolsuper FROM pg_roles WHERE rolname = 'keel'",
      );
      return result.rows[0]?.rolsuper;
    });
    expect(superuser).to.equal(false);

    const result = await runMigrate({ DATABASE_URL: url });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.contain("applied 5 migration(s)");
    expect(await appliedMigrations("migrate_fresh")).to.deep.equal(EXPECTED);
  });

  it("when run a second time, then it changes nothing and exits 0", async () => {
    const url = await testEnv().postgres.createDatabase("migrate_twice");
    expect((await runMigrate({ DATABASE_URL: url })).code).to.equal(0);
    const second = await runMigrate({ DATABASE_URL: url });
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.contain("schema already up to date");
    expect(await appliedMigrations("migrate_twice")).to.deep.equal(EXPECTED);
  });

  it("when two runs start at once, then both exit 0 and each migration is applied once", async () => {
    const url = await testEnv().postgres.createDatabase("migrate_concurrent");
    const results = await Promise.all([
      runMigrate({ DATABASE_URL: url }),
      runMigrate({ DATABASE_URL: url }),
    ]);
    for (const result of results) expect(result.code, result.stderr).to.equal(0);
    expect(await appliedMigrations("migrate_concurrent")).to.deep.equal(EXPECTED);
  });

  it("when events exist before migration 0005, then it fills in their per-minute and per-hour totals and later inserts keep them", async () => {
    const url = await testEnv().postgres.createDatabase("migrate_event_minutes");
    const db = createDatabase({ url, logger: createLogger("silent") });
    try {
      for (let step = 0; step < 4; step++) await db.migrate.up({ migrationSource });
      const [org] = await db("orgs").insert({ name: "before" }).returning<{ id: string }[]>("id");
      const event = (ts: string, value: number | null) => ({
        org_id: org?.id,
        type: "t",
        ts,
        value,
      });
      await db("events").insert([
        event("2030-01-01T00:00:10Z", 1.5),
        event("2030-01-01T00:00:50Z", null),
        event("2030-01-01T00:01:00Z", 2),
      ]);
      expect(await migrateLatest(db, url)).to.deep.equal(["0005-event-totals"]);
      await db("events").insert(event("2030-01-01T00:01:59.999Z", 0.25));
      const totals = async (table: string) =>
        (
          (await db(table).orderBy("start")) as {
            start: Date;
            events: string;
            valued: string;
            value_sum: string;
          }[]
        ).map((r) => [r.start.toISOString(), r.events, r.valued, r.value_sum]);
      expect(await totals("event_minutes")).to.deep.equal([
        ["2030-01-01T00:00:00.000Z", "2", "1", "1.5"],
        ["2030-01-01T00:01:00.000Z", "2", "2", "2.25"],
      ]);
      expect(await totals("event_hours")).to.deep.equal([
        ["2030-01-01T00:00:00.000Z", "4", "3", "3.75"],
      ]);
    } finally {
      await db.destroy();
    }
  });

  it("when timescaledb is installed in the database, then events is a hypertable, else a plain table", async () => {
    const { postgres } = testEnv();
    const kind = await postgres.admin("keel", async (client) => {
      const extension = await client.query(
        "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
      );
      if (extension.rowCount === 0) {
        const table = await client.query<{ relkind: string }>(
          "SELECT relkind FROM pg_class WHERE relname = 'events'",
        );
        return table.rows[0]?.relkind === "r" ? "plain" : "missing";
      }
      const hypertable = await client.query(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'",
      );
      return hypertable.rowCount === 1 ? "hypertable" : "plain";
    });
    expect(kind).to.equal(postgres.timescale ? "hypertable" : "plain");
  });

  it("when the database cannot be reached, then it exits 1 naming where it looked, without the password", async () => {
    const port = await freePort();
    const result = await runMigrate({
      DATABASE_URL: `postgres://keel:hunter2-password@127.0.0.1:${port}/keel`,
    });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.contain(`cannot reach the database at 127.0.0.1:${port}/keel`);
    expect(result.stderr + result.stdout).not.to.contain("hunter2-password");
  });

  it("when DATABASE_URL is missing, then it refuses to start (exit 78) and names it", async () => {
    const result = await runMigrate({ JWT_SECRET: "x" });
    expect(result.code).to.equal(78);
    expect(result.stderr).to.contain("DATABASE_URL: is required");
    expect(result.stderr).not.to.contain("JWT_SECRET");
  });
});
