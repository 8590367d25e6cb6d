// The audit trail: one row per mutating request (audit.<action>), naming who did what, to what,
// under which request id. Append-only; kept apart from the tenants' own events so that no client
// can write an audit row.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("audit_events", (t) => {
    t.bigIncrements("id");
    t.timestamp("ts", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.uuid("org_id").nullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.text("action").notNullable();
    t.text("actor_type").notNullable();
    t.text("actor_id").nullable();
    t.text("target_type").nullable();
    t.text("target_id").nullable();
    t.text("request_id").nullable();
    t.text("ip").nullable();
    t.jsonb("details").nullable();
    t.index(["org_id", "ts"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("audit_events");
}
