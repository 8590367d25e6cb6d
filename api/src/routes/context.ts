import type { ApiKeyCache } from "../auth/api-key-cache";
import type { LoginLockout } from "../auth/lockout";
import type { TokenSigner } from "../auth/tokens";
import type { Config } from "../config";
import type { Database } from "../database";
import type { Logger } from "../logger";
import type { RedisClient } from "../redis";
import type { EvidenceStore } from "../storage/evidence-store";

/** What route handlers may use; built once per app by createApp. */
export interface RouteContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Database;
  readonly redis: RedisClient;
  readonly store: EvidenceStore;
  readonly apiKeys: ApiKeyCache;
  readonly signer: TokenSigner;
  readonly lockout: LoginLockout;
}
