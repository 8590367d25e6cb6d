// Where evidence files live: an S3-compatible bucket (R2 in production, s3rver in tests) or, for
// development, a local directory served by the API itself. Clients upload and download directly
// with presigned, expiring URLs; the API only signs, inspects and deletes.

/** The store cannot be reached or refused a request it should accept; answered 503. */
export class StorageUnavailableError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`evidence storage: ${operation} failed`, { cause });
    this.name = "StorageUnavailableError";
  }
}

export interface UploadRequest {
  readonly key: string;
  readonly contentType: string;
  readonly size: number;
  readonly sha256Hex: string;
  /** scheme://host the client reached the API at (used by the local store's URLs). */
  readonly origin: string;
  readonly expiresInSeconds: number;
}

export interface DownloadRequest {
  readonly key: string;
  readonly filename: string;
  readonly contentType: string;
  readonly origin: string;
  readonly expiresInSeconds: number;
}

export interface PresignedUpload {
  readonly url: string;
  readonly method: "PUT";
  /** Headers the client must send with the PUT, exactly as given. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface StoredObject {
  readonly size: number;
  /** The SHA-256 of the whole object (hex) when the store keeps one. */
  readonly sha256Hex: string | null;
}

export interface EvidenceStore {
  readonly kind: "s3" | "local";
  presignUpload(request: UploadRequest): Promise<PresignedUpload>;
  presignDownload(request: DownloadRequest): Promise<string>;
  /** The object's size and stored checksum, or null when there is no such object. */
  head(key: string): Promise<StoredObject | null>;
  /** SHA-256 (hex) of the object's bytes, read as a stream. */
  hashObject(key: string): Promise<string>;
  delete(key: string): Promise<void>;
  /** Resolves when the store is reachable and usable; rejects otherwise. */
  check(signal: AbortSignal): Promise<void>;
  close(): void;
}

/** Content-Disposition for a download: an ASCII fallback plus the exact name (RFC 6266). */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** Base64 of a SHA-256 digest, as in x-amz-checksum-sha256. */
export function sha256HexToBase64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

export function sha256Base64ToHex(base64: string): string {
  return Buffer.from(base64, "base64").toString("hex");
}

export type VerifyResult =
  { readonly ok: true } | { readonly ok: false; readonly reason: "missing" | "size" | "checksum" };

/**
 * Checks an uploaded object against the declared size and SHA-256: with the store's own
 * checksum where it keeps one, else by hashing the object as a stream.
 */
export async function verifyObject(
  store: EvidenceStore,
  key: string,
  expected: { readonly size: number; readonly sha256Hex: string },
): Promise<VerifyResult> {
  const object = await store.head(key);
  if (object === null) return { ok: false, reason: "missing" };
  if (object.size !== expected.size) return { ok: false, reason: "size" };
  const actual = object.sha256Hex ?? (await store.hashObject(key));
  return actual === expected.sha256Hex ? { ok: true } : { ok: false, reason: "checksum" };
}
