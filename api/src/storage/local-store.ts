// Evidence on local disk (EVIDENCE_LOCAL_DIR), for development. The API signs its own expiring
// URLs (HMAC-SHA256) and serves them itself: PUT receives the bytes, refusing a body larger than
// declared (413) or whose SHA-256 differs from the signed x-amz-checksum-sha256 (400), as R2
// does. Like R2 it keeps the verified checksum (in <object>.sha256) and reports it on head().
import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync } from "node:fs";
import { access, constants, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ApiError } from "../errors";
import {
  sha256Base64ToHex,
  sha256HexToBase64,
  type DownloadRequest,
  type EvidenceStore,
  type PresignedUpload,
  type StoredObject,
  type UploadRequest,
} from "./evidence-store";

export const LOCAL_EVIDENCE_PATH = "/v1/local-evidence";

const KEY_PATTERN = /^evidence\/[0-9a-f-]{36}\/[0-9a-f-]{36}$/;
const CHECKSUM_SUFFIX = ".sha256";

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === "ENOENT";

async function readOptional(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

type Query = Record<string, unknown>;

export interface SignedUpload {
  readonly key: string;
  readonly size: number;
  readonly sha256Base64: string;
  readonly contentType: string;
}

export interface SignedDownload {
  readonly key: string;
  readonly filename: string;
  readonly contentType: string;
}

const forbiddenUrl = (): ApiError =>
  new ApiError(403, "invalid_signature", "The link is invalid or has expired.");

function field(query: Query, name: string): string {
  const value = query[name];
  if (typeof value !== "string") throw forbiddenUrl();
  return value;
}

export class LocalEvidenceStore implements EvidenceStore {
  readonly kind = "local";
  private readonly dir: string;
  private readonly signingKey: Buffer;

  constructor(dir: string, secret: string) {
    this.dir = resolve(dir);
    // A key of its own, derived from JWT_SECRET: these signatures never verify as tokens.
    this.signingKey = createHmac("sha256", secret).update("keel:local-evidence-urls").digest();
    mkdirSync(join(this.dir, ".incoming"), { recursive: true });
  }

  presignUpload(request: UploadRequest): Promise<PresignedUpload> {
    const sha256Base64 = sha256HexToBase64(request.sha256Hex);
    const params = {
      key: request.key,
      expires: String(this.expiry(request.expiresInSeconds)),
      size: String(request.size),
      sha256: sha256Base64,
      type: request.contentType,
    };
    return Promise.resolve({
      url: this.url(request.origin, "PUT", params),
      method: "PUT",
      headers: { "Content-Type": request.contentType, "x-amz-checksum-sha256": sha256Base64 },
    });
  }

  presignDownload(request: DownloadRequest): Promise<string> {
    const params = {
      key: request.key,
      expires: String(this.expiry(request.expiresInSeconds)),
      filename: request.filename,
      type: request.contentType,
    };
    return Promise.resolve(this.url(request.origin, "GET", params));
  }

  /** The upload a signed URL allows, checked against the request's headers. */
  verifyUpload(query: Query, headers: { checksum?: string; contentType?: string }): SignedUpload {
    const params = this.verified("PUT", query, ["key", "expires", "size", "sha256", "type"]);
    if (headers.checksum !== params.sha256 || headers.contentType !== params.type) {
      throw new ApiError(
        403,
        "invalid_signature",
        "Send the Content-Type and x-amz-checksum-sha256 headers returned with the upload URL.",
      );
    }
    return {
      key: params.key,
      size: Number(params.size),
      sha256Base64: params.sha256,
      contentType: params.type,
    };
  }

  verifyDownload(query: Query): SignedDownload {
    const params = this.verified("GET", query, ["key", "expires", "filename", "type"]);
    return { key: params.key, filename: params.filename, contentType: params.type };
  }

  /** Stores the body of an upload, all or nothing. */
  async receive(upload: SignedUpload, body: Readable): Promise<void> {
    const incoming = join(this.dir, ".incoming", randomUUID());
    const hash = createHash("sha256");
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > upload.size) {
          callback(
            new ApiError(413, "payload_too_large", "The body is larger than the declared size."),
          );
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(incoming, { mode: 0o640 }));
      if (received !== upload.size) {
        throw new ApiError(400, "incomplete_body", "The body is shorter than the declared size.");
      }
      if (hash.digest("hex") !== sha256Base64ToHex(upload.sha256Base64)) {
        throw new ApiError(400, "bad_digest", "The body does not match x-amz-checksum-sha256.");
      }
      const target = this.path(upload.key);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(`${target}${CHECKSUM_SUFFIX}`, sha256Base64ToHex(upload.sha256Base64));
      await rename(incoming, target);
    } finally {
      await rm(incoming, { force: true });
    }
  }

  /** A stream of the object's bytes and its size, or null when it does not exist. */
  async open(key: string): Promise<{ stream: Readable; size: number } | null> {
    const object = await this.head(key);
    if (object === null) return null;
    return { stream: createReadStream(this.path(key)), size: object.size };
  }

  async head(key: string): Promise<StoredObject | null> {
    const path = this.path(key);
    try {
      const info = await stat(path);
      return { size: info.size, sha256Hex: await readOptional(`${path}${CHECKSUM_SUFFIX}`) };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async hashObject(key: string): Promise<string> {
    const hash = createHash("sha256");
    await pipeline(createReadStream(this.path(key)), hash);
    return hash.digest("hex");
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    await rm(path, { force: true });
    await rm(`${path}${CHECKSUM_SUFFIX}`, { force: true });
  }

  async check(): Promise<void> {
    await access(this.dir, constants.R_OK | constants.W_OK);
  }

  close(): void {
    // Nothing to release.
  }

  private expiry(seconds: number): number {
    return Math.floor(Date.now() / 1000) + seconds;
  }

  private path(key: string): string {
    if (!KEY_PATTERN.test(key)) throw forbiddenUrl();
    const path = resolve(this.dir, key);
    if (!path.startsWith(this.dir + sep)) throw forbiddenUrl();
    return path;
  }

  private sign(method: string, params: Record<string, string>): string {
    const canonical = [method, ...Object.keys(params).map((name) => `${name}=${params[name]}`)];
    return createHmac("sha256", this.signingKey).update(canonical.join("\n")).digest("base64url");
  }

  private url(origin: string, method: string, params: Record<string, string>): string {
    const search = new URLSearchParams({ ...params, signature: this.sign(method, params) });
    return `${origin}${LOCAL_EVIDENCE_PATH}?${search.toString()}`;
  }

  private verified<K extends string>(
    method: string,
    query: Query,
    names: readonly K[],
  ): Record<K, string> {
    const params = {} as Record<K, string>;
    for (const name of names) params[name] = field(query, name);
    const expected = Buffer.from(this.sign(method, params));
    const given = Buffer.from(field(query, "signature"));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw forbiddenUrl();
    }
    if (Number(field(query, "expires")) < Date.now() / 1000) throw forbiddenUrl();
    return params;
  }
}
