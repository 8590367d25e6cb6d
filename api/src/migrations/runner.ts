// Applying migrations and checking the schema. Runs are serialised with a PostgreSQL advisory
// lock, so two migrate.js started at once (or twice in a row) both succeed: the second waits,
// then finds nothing pending. knex's own migration lock stays in place underneath.
import pg from "pg";
import type { Database } from "../database";
import { MIGRATION_NAMES, migrationSource } from "./index";

const MIGRATIONS_TABLE = "knex_migrations";

const migratorConfig = {
  migrationSource,
  tableName: MIGRATIONS_TABLE,
  // An older release may run against a newer schema after a rollback: migrations it does not
  // know are not an error.
  disableMigrationsListValidation: true,
};

/** Applies every pending migration; returns the names applied by this run. */
export async function migrateLatest(db: Database, databaseUrl: string): Promise<string[]> {
  const lock = new pg.Client({
    connectionString: databaseUrl,
    application_name: "keel-migrate-lock",
    connectionTimeoutMillis: 5_000,
  });
  // A dropped connection also rejects the pending query; this only keeps the event handled.
  lock.on("error", () => undefined);
  await lock.connect();
  try {
    await lock.query("SET lock_timeout = '5min'");
    await lock.query("SELECT pg_advisory_lock(hashtext('keel:migrations'))");
    const [, applied] = (await db.migrate.latest(migratorConfig)) as [number, string[]];
    return applied;
  } finally {
    // Ending the session releases the advisory lock.
    await lock.end();
  }
}

/** Names of the migrations this release knows that the database has not applied. */
export async function pendingMigrations(db: Database): Promise<string[]> {
  if (!(await db.schema.hasTable(MIGRATIONS_TABLE))) return [...MIGRATION_NAMES];
  const rows = await db<{ name: string }>(MIGRATIONS_TABLE).select("name");
  const applied = new Set(rows.map((row) => row.name));
  return MIGRATION_NAMES.filter((name) => !applied.has(name));
}
