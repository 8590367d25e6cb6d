// Floors for api-throughput's targets: bare Express 5 plus only what a target cannot do without,
// in a process of its own, so that a ratio the API cannot reach shows as one the floor cannot
// reach either. GET /health: Keel's security headers and CORS policy (the API's own middleware),
// nothing else. GET /systems: the API's list query (same SQL, same row shape) over one pg pool;
// no authentication, rate limit, logging or metrics.
// Usage (api-throughput.ts starts it): PORT=… DATABASE_URL=… ORG_ID=… node --import tsx bench/floors.ts
import express from "express";
import pg from "pg";
import { corsPolicy, securityHeaders } from "../api/src/middleware/security";
import { CURSOR_COLUMN } from "../api/src/routes/pagination";
import { Page } from "../api/src/routes/schemas";
import { SYSTEM_COLUMNS, presentSystem, type SystemRow } from "../api/src/routes/systems";

// The list's query as fetchPage builds it for the first page of the default size.
const PAGE_SIZE = Page.parse({}).limit;
const LIST = `select ${SYSTEM_COLUMNS.map((column) => `"${column}"`).join(", ")}, ${CURSOR_COLUMN}
  from "systems" where "org_id" = $1 order by "created_at" desc, "id" desc limit $2`;

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const pool = new pg.Pool({ connectionString: env("DATABASE_URL"), max: 10 });
const orgId = env("ORG_ID");
const app = express();
app.disable("x-powered-by");
app.get("/health", ...securityHeaders(), corsPolicy([]), (_req, res) => {
  res.set("Cache-Control", "no-store").json({ status: "ok" });
});
app.get("/systems", async (_req, res) => {
  const { rows } = await pool.query<SystemRow>(LIST, [orgId, PAGE_SIZE + 1]);
  res.json({ items: rows.slice(0, PAGE_SIZE).map(presentSystem), nextCursor: null });
});
app.listen(Number(env("PORT")), "127.0.0.1");
