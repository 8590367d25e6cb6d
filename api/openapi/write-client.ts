// `tsx api/openapi/write-client.ts`: writes the client types (see client-types.ts).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLIENT_TYPES_FILE, clientTypes } from "./client-types";

async function main(): Promise<void> {
  writeFileSync(join(__dirname, "..", "..", CLIENT_TYPES_FILE), await clientTypes());
}

void main();
