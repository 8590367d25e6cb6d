// Start-up duties that need the migrated schema: refuse to run against a schema that is missing
// or behind, and ensure the "default" org with the operator's BOOTSTRAP_API_KEY. The key upsert
// is idempotent and safe when several instances start at once; a changed key replaces the old
// one (which stops working at once), while an unchanged key that was revoked stays revoked.
import { displayPrefix, hashApiKey } from "./auth/api-keys";
import { recordAudit } from "./audit";
import type { Database } from "./database";
import { pendingMigrations } from "./migrations/runner";

export class SchemaNotReadyError extends Error {
  constructor(readonly pending: readonly string[]) {
    super(
      `the database schema is not up to date (pending migrations: ${pending.join(", ")}); ` +
        "run migrate.js before starting the API",
    );
    this.name = "SchemaNotReadyError";
  }
}

export async function assertSchemaReady(db: Database): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length > 0) throw new SchemaNotReadyError(pending);
}

export interface BootstrapResult {
  readonly orgId: string;
  readonly keyId: string;
  /** The key was created or replaced by this call. */
  readonly keyChanged: boolean;
  /** An operator revoked this key through the API; it stays revoked until it is rotated. */
  readonly keyRevoked: boolean;
}

export async function ensureDefaultOrg(db: Database, apiKey: string): Promise<BootstrapResult> {
  const keyHash = hashApiKey(apiKey);
  return db.transaction(async (trx) => {
    await trx.raw(
      `INSERT INTO orgs (name, is_default) VALUES ('default', true)
       ON CONFLICT (is_default) WHERE is_default DO NOTHING`,
    );
    const org = await trx<{ id: string; is_default: boolean }>("orgs")
      .where({ is_default: true })
      .first("id");
    if (org === undefined) throw new Error("the default org vanished during start-up");
    const before = await trx<{ key_hash: string; is_bootstrap: boolean }>("api_keys")
      .where({ is_bootstrap: true })
      .first("key_hash");
    const result = await trx.raw<{ rows: { id: string; revoked_at: Date | null }[] }>(
      `INSERT INTO api_keys (org_id, name, prefix, key_hash, is_bootstrap)
       VALUES (?, 'bootstrap', ?, ?, true)
       ON CONFLICT (is_bootstrap) WHERE is_bootstrap DO UPDATE SET
         org_id = EXCLUDED.org_id,
         prefix = EXCLUDED.prefix,
         key_hash = EXCLUDED.key_hash,
         created_at = CASE WHEN api_keys.key_hash = EXCLUDED.key_hash
                           THEN api_keys.created_at ELSE now() END,
         revoked_at = CASE WHEN api_keys.key_hash = EXCLUDED.key_hash
                           THEN api_keys.revoked_at ELSE NULL END
       RETURNING id, revoked_at`,
      [org.id, displayPrefix(apiKey), keyHash],
    );
    const row = result.rows[0];
    if (row === undefined) throw new Error("the bootstrap key upsert returned no row");
    const keyChanged = before?.key_hash !== keyHash;
    if (keyChanged) {
      await recordAudit(trx, null, {
        action: before === undefined ? "api_key.bootstrap_create" : "api_key.bootstrap_rotate",
        orgId: org.id,
        target: { type: "api_key", id: row.id },
      });
    }
    return { orgId: org.id, keyId: row.id, keyChanged, keyRevoked: row.revoked_at !== null };
  });
}
