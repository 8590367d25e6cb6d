import type { Config } from "../config";
import type { Logger } from "../logger";
import type { EvidenceStore } from "./evidence-store";
import { LocalEvidenceStore } from "./local-store";
import { S3EvidenceStore } from "./s3-store";

export function createEvidenceStore(config: Config, logger: Logger): EvidenceStore {
  return config.storage.kind === "local"
    ? new LocalEvidenceStore(config.storage.dir, config.jwtSecret)
    : new S3EvidenceStore(config.storage, logger);
}
