// API releases for the end-to-end tier: the real build, a second release of the same code (a
// different archive, so a new release id), a release whose instances never become ready, and
// one that becomes ready but fails a third of the API's requests, and one that answers slowly.
import { cpSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
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

/**
 * The real API, except that every third request under /v1/ is answered 500 before the API sees
 * it. /health and /ready are untouched, so every instance becomes ready.
 */
const FAILS_A_THIRD = `"use strict";
const http = require("node:http");
let requests = 0;
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === "request" && req.url.startsWith("/v1/") && ++requests % 3 === 0) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "internal", message: "injected", requestId: "-" } }));
    return true;
  }
  return emit.apply(this, arguments);
};
require("./api-server.js");
`;

/** The real API behind `wrapper`, a server.js that loads it as ./api-server.js. */
function wrappedRelease(apiDir: string, label: string, wrapper: string): Promise<ReleaseValues> {
  const dir = copyOf(apiDir, label);
  renameSync(join(dir, "server.js"), join(dir, "api-server.js"));
  writeFileSync(join(dir, "server.js"), wrapper);
  return packRelease(dir, join(dir, ".."));
}

export function failingThirdRelease(apiDir: string): Promise<ReleaseValues> {
  return wrappedRelease(apiDir, "fails-a-third", FAILS_A_THIRD);
}

/** The real API, except that every request under /v1/ waits 400 ms before the API sees it. */
const SLOW = `"use strict";
const http = require("node:http");
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === "request" && req.url.startsWith("/v1/")) {
    setTimeout(() => emit.call(this, event, req, res), 400);
    return true;
  }
  return emit.apply(this, arguments);
};
require("./api-server.js");
`;

export function slowRelease(apiDir: string): Promise<ReleaseValues> {
  return wrappedRelease(apiDir, "slow", SLOW);
}
