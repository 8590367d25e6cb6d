// Systems and the evidence files attached to them. An evidence row is "pending" until its
// upload has been verified (size and SHA-256), then "complete".
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("systems", (t) => {
    t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
    t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.text("name").notNullable();
    t.text("purpose").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["org_id", "created_at", "id"]);
  });

  await knex.schema.createTable("evidence", (t) => {
    t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
    t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.uuid("system_id").notNullable().references("id").inTable("systems").onDelete("CASCADE");
    t.text("filename").notNullable();
    t.text("content_type").notNullable();
    t.bigInteger("size").notNullable();
    t.text("sha256").notNullable();
    t.text("object_key").notNullable().unique();
    t.text("status").notNullable().defaultTo("pending");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("completed_at", { useTz: true }).nullable();
    t.index(["system_id", "created_at", "id"]);
  });
  await knex.raw(
    "ALTER TABLE evidence ADD CONSTRAINT evidence_status_check CHECK (status IN ('pending', 'complete'))",
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("evidence");
  await knex.schema.dropTable("systems");
}
