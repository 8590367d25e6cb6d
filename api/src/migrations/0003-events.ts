// Time-series events. When the timescaledb extension is installed in this database (provisioning
// creates it as the superuser; this role cannot), events becomes a hypertable partitioned on ts;
// otherwise it stays a plain table. The API's queries (date_bin) work on both.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("events", (t) => {
    t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.timestamp("ts", { useTz: true }).notNullable();
    t.text("type").notNullable();
    t.double("value").nullable();
    t.jsonb("attributes").nullable();
    t.timestamp("received_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw("CREATE INDEX events_org_type_ts ON events (org_id, type, ts DESC)");
  await knex.raw("CREATE INDEX events_org_ts ON events (org_id, ts DESC)");

  const installed = await knex.raw<{ rows: unknown[] }>(
    "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
  );
  if (installed.rows.length > 0) {
    await knex.raw(
      "SELECT create_hypertable('events', 'ts', chunk_time_interval => INTERVAL '7 days')",
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("events");
}
