// The audit trail: every mutating request records audit.<action> with who (user, API key,
// anonymous caller or the system), what, and the request id, in the same transaction as the
// change it describes where there is one.
import type { Request } from "express";
import type { Knex } from "knex";
import { requestIdOf } from "./middleware/http-logger";

export interface Actor {
  readonly type: "user" | "api_key" | "anonymous" | "system";
  readonly id: string | null;
}

export interface AuditEntry {
  /** Without the "audit." prefix, e.g. "system.create". */
  readonly action: string;
  readonly orgId: string | null;
  readonly target?: { readonly type: string; readonly id: string };
  readonly details?: Readonly<Record<string, unknown>>;
  /** Defaults to the authenticated caller. */
  readonly actor?: Actor;
}

function actorOf(req: Request): Actor {
  const credential = req.credential;
  if (credential?.state !== "valid") return { type: "anonymous", id: null };
  const principal = credential.principal;
  return principal.kind === "user"
    ? { type: "user", id: principal.userId }
    : { type: "api_key", id: principal.keyId };
}

export async function recordAudit(
  db: Knex | Knex.Transaction,
  req: Request | null,
  entry: AuditEntry,
): Promise<void> {
  const actor = entry.actor ?? (req === null ? { type: "system", id: null } : actorOf(req));
  await db("audit_events").insert({
    org_id: entry.orgId,
    action: `audit.${entry.action}`,
    actor_type: actor.type,
    actor_id: actor.id,
    target_type: entry.target?.type ?? null,
    target_id: entry.target?.id ?? null,
    request_id: req === null ? null : requestIdOf(req),
    ip: req?.ip ?? null,
    details: entry.details === undefined ? null : JSON.stringify(entry.details),
  });
}
