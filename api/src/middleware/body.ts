// JSON request bodies: at most 1 MB (413), well-formed (400), sent as JSON (415). Parsed values
// are then screened for what PostgreSQL or the validators cannot take safely: nesting deeper
// than 32 levels, NUL characters and unpaired UTF-16 surrogates (400, never a 500).
import express, { type RequestHandler } from "express";
import { ApiError } from "../errors";

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_DEPTH = 32;
const JSON_TYPES = ["application/json", "application/*+json"];

// A surrogate without its partner.
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers["content-length"];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

const requireJson: RequestHandler = (req, _res, next) => {
  if (hasBody(req.headers) && req.is(JSON_TYPES) === false) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "Send the request body as JSON (Content-Type: application/json).",
    );
  }
  next();
};

/** Why `value` cannot be accepted, or null. Iterative, so any depth is safe to inspect. */
function unsafeJsonReason(value: unknown): string | null {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item === undefined) break;
    if (typeof item.value === "string") {
      if (item.value.includes("\u0000") || UNPAIRED_SURROGATE.test(item.value)) {
        return "a string contains a NUL character or an unpaired surrogate";
      }
      continue;
    }
    if (item.value === null || typeof item.value !== "object") continue;
    if (item.depth >= MAX_DEPTH) return `nesting is deeper than ${MAX_DEPTH} levels`;
    const entries = Array.isArray(item.value)
      ? (item.value as unknown[])
      : Object.entries(item.value).flat();
    for (const child of entries) stack.push({ value: child, depth: item.depth + 1 });
  }
  return null;
}

const rejectUnsafeJson: RequestHandler = (req, _res, next) => {
  const reason = unsafeJsonReason(req.body);
  if (reason !== null) {
    throw new ApiError(400, "invalid_body", `The request body cannot be accepted: ${reason}.`);
  }
  next();
};

export function jsonBody(): RequestHandler[] {
  return [
    requireJson,
    express.json({ limit: MAX_BODY_BYTES, strict: true, type: JSON_TYPES }),
    rejectUnsafeJson,
  ];
}
