// Tenants, their users and their API keys. Keys are stored only as a SHA-256 hash; the bootstrap
// key (BOOTSTRAP_API_KEY, managed by the operator) is the single row with is_bootstrap.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("orgs", (t) => {
    t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
    t.text("name").notNullable();
    t.boolean("is_default").notNullable().defaultTo(false);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw("CREATE UNIQUE INDEX orgs_single_default ON orgs (is_default) WHERE is_default");

  await knex.schema.createTable("users", (t) => {
    t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
    t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.text("email").notNullable().unique();
    t.text("password_hash").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["org_id"]);
  });

  await knex.schema.createTable("api_keys", (t) => {
    t.uuid("id").primary().defaultTo(knex.raw("gen_random_uuid()"));
    t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
    t.text("name").notNullable();
    t.text("prefix").notNullable();
    t.text("key_hash").notNullable().unique();
    t.boolean("is_bootstrap").notNullable().defaultTo(false);
    t.uuid("created_by").nullable().references("id").inTable("users").onDelete("SET NULL");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("revoked_at", { useTz: true }).nullable();
    t.index(["org_id", "created_at"]);
  });
  await knex.raw(
    "CREATE UNIQUE INDEX api_keys_single_bootstrap ON api_keys (is_bootstrap) WHERE is_bootstrap",
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("api_keys");
  await knex.schema.dropTable("users");
  await knex.schema.dropTable("orgs");
}
