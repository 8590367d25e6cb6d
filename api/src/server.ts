// The API process: validate the environment, check the schema, ensure the bootstrap org and
// key, listen on HOST:PORT. On SIGTERM/SIGINT it stops accepting, lets in-flight requests
// finish, closes its pools and exits 0.
import { createServer, type Server } from "node:http";
import { createApp } from "./app";
import { ApiKeyCache } from "./auth/api-key-cache";
import { assertSchemaReady, ensureDefaultOrg } from "./bootstrap";
import { EXIT_CONFIG, formatConfigErrors, loadConfig } from "./config";
import { createDatabase, describeDatabase, isDatabaseUnavailable, type Database } from "./database";
import { createLogger, type Logger } from "./logger";
import { createRedis } from "./redis";
import { createEvidenceStore } from "./storage/create-store";

const DATABASE_WAIT_MS = 30_000;
/** In-flight requests get this long after SIGTERM; then remaining connections are cut. */
const DRAIN_TIMEOUT_MS = 20_000;
const CLOSE_TIMEOUT_MS = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// At boot the database may still be starting: wait for it a little, then give up loudly.
async function waitForDatabase(db: Database, logger: Logger, url: string): Promise<void> {
  const deadline = Date.now() + DATABASE_WAIT_MS;
  for (;;) {
    try {
      await db.raw("SELECT 1");
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() > deadline) {
        throw new Error(`cannot reach the database at ${describeDatabase(url)}`, { cause: error });
      }
      logger.warn({ err: error }, "database not reachable yet; retrying");
      await sleep(1_000);
    }
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function fail(logger: Logger, error: unknown, message: string): never {
  logger.fatal({ err: error }, message);
  const reason = error instanceof Error ? error.message : String(error);
  process.stderr.write(`keel-api: ${message}: ${reason}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const loaded = loadConfig(process.env);
  if (!loaded.ok) {
    process.stderr.write(`${formatConfigErrors("keel-api", loaded.errors)}\n`);
    process.exit(EXIT_CONFIG);
  }
  const config = loaded.config;
  const logger = createLogger(config.logLevel);
  // Node's warnings become log lines too, instead of free text on stderr.
  process.removeAllListeners("warning");
  process.on("warning", (warning) => {
    logger.warn({ warning: { name: warning.name, message: warning.message } }, "process warning");
  });
  process.on("uncaughtException", (error) => fail(logger, error, "uncaught exception"));
  process.on("unhandledRejection", (error) => fail(logger, error, "unhandled promise rejection"));

  const db = createDatabase({ url: config.databaseUrl, logger });
  try {
    await waitForDatabase(db, logger, config.databaseUrl);
    await assertSchemaReady(db);
    const boot = await ensureDefaultOrg(db, config.bootstrapApiKey);
    logger.info(
      { orgId: boot.orgId, keyId: boot.keyId, keyChanged: boot.keyChanged },
      "bootstrap org ready",
    );
    if (boot.keyRevoked) {
      logger.warn("BOOTSTRAP_API_KEY was revoked through the API; rotate it to use it again");
    }
  } catch (error) {
    await db.destroy();
    fail(logger, error, "start-up failed");
  }

  const redis = createRedis(config.redisUrl, logger);
  const subscriber = redis.duplicate();
  const apiKeys = new ApiKeyCache(db, redis, subscriber, logger);
  const store = createEvidenceStore(config, logger);
  const app = createApp({ config, logger, db, redis, store, apiKeys });

  let stopping = false;
  // While stopping, every response asks the client to close its connection.
  const server = createServer((req, res) => {
    if (stopping) res.setHeader("Connection", "close");
    app(req, res);
  });
  server.keepAliveTimeout = 65_000; // longer than nginx's upstream keepalive_timeout (60 s)
  server.headersTimeout = 66_000;
  server.requestTimeout = 5 * 60_000;
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    fail(logger, error, `cannot listen on ${config.host}:${config.port}`);
  }
  logger.info({ host: config.host, port: config.port, storage: store.kind }, "listening");

  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: no new connections, draining in-flight requests");
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections are closed as soon as they fall idle.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    const deadline = setTimeout(() => {
      logger.warn("drain timeout: closing the remaining connections");
      server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    await closed;
    clearInterval(sweep);
    clearTimeout(deadline);
    // Should closing the pools hang (a dependency that stopped answering), do not hang with it.
    setTimeout(() => {
      logger.error("closing the pools timed out");
      process.exit(1);
    }, CLOSE_TIMEOUT_MS).unref();
    subscriber.disconnect();
    redis.disconnect();
    store.close();
    await db.destroy();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", (signal) => void shutdown(signal));
  process.on("SIGINT", (signal) => void shutdown(signal));
}

void main();
