// The migrations, imported statically so that esbuild bundles them: knex gets them from this
// source instead of globbing a directory at run time. Names are recorded in knex_migrations and
// must never change; append new migrations at the end.
import type { Knex } from "knex";
import * as organisationsUsersApiKeys from "./0001-organisations-users-api-keys";
import * as systemsEvidence from "./0002-systems-evidence";
import * as events from "./0003-events";
import * as auditEvents from "./0004-audit-events";
import * as eventTotals from "./0005-event-totals";

interface NamedMigration {
  readonly name: string;
  readonly migration: Knex.Migration;
}

const MIGRATIONS: readonly NamedMigration[] = [
  { name: "0001-organisations-users-api-keys", migration: organisationsUsersApiKeys },
  { name: "0002-systems-evidence", migration: systemsEvidence },
  { name: "0003-events", migration: events },
  { name: "0004-audit-events", migration: auditEvents },
  { name: "0005-event-totals", migration: eventTotals },
];

export const MIGRATION_NAMES: readonly string[] = MIGRATIONS.map((m) => m.name);

export const migrationSource: Knex.MigrationSource<NamedMigration> = {
  getMigrations: () => Promise.resolve([...MIGRATIONS]),
  getMigrationName: (m) => m.name,
  getMigration: (m) => Promise.resolve(m.migration),
};
