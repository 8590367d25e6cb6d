// `tsx api/openapi/write.ts <file>`: writes the served OpenAPI document to <file> (for the
// linters in `npm run lint:openapi`).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { servedDocument } from "./document";

const [file] = process.argv.slice(2);
if (file === undefined) {
  console.error("usage: tsx api/openapi/write.ts <file>");
  process.exit(2);
}
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(servedDocument(), null, 2)}\n`);
