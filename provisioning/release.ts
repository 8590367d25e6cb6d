// The API release archive: dist/api packed as a gzip'd tar whose bytes depend only on the
// files' paths, contents and executable bits, so the same build always gets the same id.
import { createHash } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as tar from "tar";
import { buildApi } from "../api/build";
import type { ReleaseValues } from "./values";

/** Sets every directory to 0755 and every file to 0644 or 0755; returns the sorted paths. */
function normalise(root: string, dir = root): string[] {
  const entries: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) {
      chmodSync(path, 0o755);
      entries.push(relative(root, path), ...normalise(root, path));
    } else {
      chmodSync(path, stat.mode & 0o100 ? 0o755 : 0o644);
      entries.push(relative(root, path));
    }
  }
  return entries;
}

/**
 * Packs `sourceDir` (the built API) into `outDir/api-<id>.tar.gz`, where id is the first 16
 * hex digits of the archive's SHA-256. The server checks that prefix before unpacking.
 */
export async function packRelease(sourceDir: string, outDir: string): Promise<ReleaseValues> {
  const entries = normalise(sourceDir);
  if (!entries.includes("server.js") || !entries.includes("migrate.js")) {
    throw new Error(`${sourceDir} holds no server.js and migrate.js: run \`npm run build:api\``);
  }
  const staging = join(outDir, `.api-release-${process.pid}.tar.gz`);
  await tar.create(
    {
      file: staging,
      cwd: sourceDir,
      gzip: { level: 9 },
      portable: true,
      mtime: new Date(0),
      noDirRecurse: true,
    },
    entries,
  );
  const id = createHash("sha256").update(readFileSync(staging)).digest("hex").slice(0, 16);
  const archive = join(outDir, `api-${id}.tar.gz`);
  renameSync(staging, archive);
  return { id, archive };
}

/** Builds the API into dist/api and packs it: what `pulumi up` ships. */
export async function buildRelease(repoRoot: string): Promise<ReleaseValues> {
  const apiDir = join(repoRoot, "dist", "api");
  await buildApi(apiDir);
  return packRelease(apiDir, join(repoRoot, "dist"));
}
