// Structured JSON logs (pino) to stdout, where journald collects them. Secrets are redacted
// wherever they could appear: credentials in headers, passwords and keys in bodies or errors.
import pino from "pino";
import type { LogLevel } from "./config";

export type Logger = pino.Logger;

const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  "password",
  "*.password",
  "apiKey",
  "*.apiKey",
  "key",
  "*.key",
  "accessToken",
  "*.accessToken",
  "secretAccessKey",
  "*.secretAccessKey",
];

/** A pino logger writing JSON lines to `destination` (stdout by default). */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "keel-api" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
