// migrate.js: applies pending migrations and exits 0; exits non-zero with a message naming the
// problem otherwise. Needs only DATABASE_URL. Safe to run twice or concurrently.
import { EXIT_CONFIG, formatConfigErrors, loadMigrateConfig } from "./config";
import { createDatabase, describeDatabase, isDatabaseUnavailable } from "./database";
import { createLogger } from "./logger";
import { migrateLatest } from "./migrations/runner";

async function main(): Promise<void> {
  const loaded = loadMigrateConfig(process.env);
  if (!loaded.ok) {
    process.stderr.write(`${formatConfigErrors("keel-migrate", loaded.errors)}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { databaseUrl, logLevel } = loaded.config;
  const logger = createLogger(logLevel);
  const db = createDatabase({ url: databaseUrl, logger, poolMax: 2 });
  try {
    const applied = await migrateLatest(db, databaseUrl);
    logger.info(
      { applied },
      applied.length > 0 ? `applied ${applied.length} migration(s)` : "schema already up to date",
    );
    process.exitCode = 0;
  } catch (error) {
    const reason = isDatabaseUnavailable(error)
      ? `cannot reach the database at ${describeDatabase(databaseUrl)}`
      : error instanceof Error
        ? error.message
        : String(error);
    logger.fatal({ err: error }, "migration failed");
    process.stderr.write(`keel-migrate: migration failed: ${reason}\n`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}

void main();
