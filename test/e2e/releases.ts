// API releases for the end-to-end tier: the real build, a second release of the same code (a
// different archive, so a new release id), and a release whose instances never become ready.
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packRelease } from "../../provisioning/release";
import type { ReleaseValues } from "../../provisioning/values";

function copyOf(apiDir: string, label: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), `keel-release-${label}-`)), "api");
  cpSync(apiDir, dir, { recursive: true });
  return dir;
}

/** The same API, packed with a marker file: a new release id for a rolling deploy. */
export async function nextRelease(apiDir: string, label: string): Promise<ReleaseValues> {
  const dir = copyOf(apiDir, label);
  writeFileSync(join(dir, "RELEASE"), `${label}\n`);
  return packRelease(dir, join(dir, ".."));
}

/** Instances that listen but answer 503 to everything, /ready included: never ready. */
const NEVER_READY = `"use strict";
const http = require("node:http");
const body = JSON.stringify({ error: { code: "unavailable", message: "never ready", requestId: "-" } });
const server = http.createServer((req, res) => {
  res.writeHead(503, { "content-type": "application/json" });
  res.end(body);
});
server.listen(Number(process.env.PORT), process.env.HOST);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

export async function neverReadyRelease(apiDir: string): Promise<ReleaseValues> {
  const dir = copyOf(apiDir, "never-ready");
  writeFileSync(join(dir, "server.js"), NEVER_READY);
  return packRelease(dir, join(dir, ".."));
}
