// Evidence in an S3-compatible bucket. Uploads are presigned PUTs whose signature covers
// x-amz-checksum-sha256, so the client must send the declared checksum and R2 refuses a body
// that does not match it. With a custom endpoint (R2, s3rver) addressing is path-style, and the
// SDK's default CRC checksums are off: they break stores other than AWS. Every call carries a
// deadline (STORAGE_DEADLINES): a hung store fails the call, answered 503, instead of hanging the
// request; the SDK's own log lines go through our logger, as JSON.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { StorageConfig } from "../config";
import { STORAGE_DEADLINES } from "../deadlines";
import type { Logger } from "../logger";
import {
  StorageUnavailableError,
  contentDisposition,
  sha256Base64ToHex,
  sha256HexToBase64,
  type DownloadRequest,
  type EvidenceStore,
  type PresignedUpload,
  type StoredObject,
  type UploadRequest,
} from "./evidence-store";

type S3Config = Extract<StorageConfig, { kind: "s3" }>;

/** No object is ever stored under it: evidence keys start with "evidence/". */
const READINESS_PREFIX = "keel-readiness-probe/";

// A single-part upload's checksum is the SHA-256 of the object; a multipart one ends in "-<parts>".
const FULL_OBJECT_CHECKSUM = /^[A-Za-z0-9+/]{43}=$/;

function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404;
}

export class S3EvidenceStore implements EvidenceStore {
  readonly kind = "s3";
  private readonly client: S3Client;

  constructor(
    private readonly config: S3Config,
    logger: Logger,
  ) {
    const sdkLogger = logger.child({ component: "aws-sdk" });
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.endpoint !== undefined,
      credentials: {
        accessKeyId: config.accessKeyId,
        secretAccessKey: config.secretAccessKey,
      },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 2,
      requestHandler: {
        connectionTimeout: STORAGE_DEADLINES.connectMs,
        requestTimeout: STORAGE_DEADLINES.operationMs,
        socketTimeout: STORAGE_DEADLINES.operationMs,
        throwOnRequestTimeout: true,
        logger: sdkLogger,
      },
      // The SDK logs every call with its input, at info level, and every failed one at error
      // level, an expected 404 included: only worth it when debugging. The failures that matter
      // are logged by the request that met them (a 503 with its cause).
      logger: {
        debug: (...content: unknown[]) => sdkLogger.debug({ content }, "aws-sdk"),
        info: (...content: unknown[]) => sdkLogger.debug({ content }, "aws-sdk"),
        warn: (...content: unknown[]) => sdkLogger.warn({ content }, "aws-sdk warning"),
        error: (...content: unknown[]) => sdkLogger.debug({ content }, "aws-sdk failure"),
      },
    });
  }

  /** The deadline of one store operation, as an abort signal for the SDK and body streams. */
  private static deadline(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(STORAGE_DEADLINES.operationMs) };
  }

  async presignUpload(request: UploadRequest): Promise<PresignedUpload> {
    const checksum = sha256HexToBase64(request.sha256Hex);
    const command = new PutObjectCommand({
      Bucket: this.config.bucket,
      Key: request.key,
      ContentType: request.contentType,
      ChecksumSHA256: checksum,
    });
    const url = await getSignedUrl(this.client, command, {
      expiresIn: request.expiresInSeconds,
      // Signed as headers (not query parameters) so the client must send exactly these.
      signableHeaders: new Set(["content-type", "x-amz-checksum-sha256"]),
      unhoistableHeaders: new Set(["x-amz-checksum-sha256"]),
    });
    return {
      url,
      method: "PUT",
      headers: { "Content-Type": request.contentType, "x-amz-checksum-sha256": checksum },
    };
  }

  presignDownload(request: DownloadRequest): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.config.bucket,
      Key: request.key,
      ResponseContentDisposition: contentDisposition(request.filename),
      ResponseContentType: request.contentType,
    });
    return getSignedUrl(this.client, command, { expiresIn: request.expiresInSeconds });
  }

  async head(key: string): Promise<StoredObject | null> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.config.bucket, Key: key, ChecksumMode: "ENABLED" }),
        S3EvidenceStore.deadline(),
      );
      const checksum = head.ChecksumSHA256;
      return {
        size: head.ContentLength ?? 0,
        sha256Hex:
          checksum !== undefined && FULL_OBJECT_CHECKSUM.test(checksum)
            ? sha256Base64ToHex(checksum)
            : null,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw new StorageUnavailableError("HeadObject", error);
    }
  }

  async hashObject(key: string): Promise<string> {
    try {
      const deadline = S3EvidenceStore.deadline();
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: key }),
        deadline,
      );
      const hash = createHash("sha256");
      await pipeline(object.Body as Readable, hash, { signal: deadline.abortSignal });
      return hash.digest("hex");
    } catch (error) {
      throw new StorageUnavailableError("GetObject", error);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key }),
        S3EvidenceStore.deadline(),
      );
    } catch (error) {
      throw new StorageUnavailableError("DeleteObject", error);
    }
  }

  /**
   * Readiness: lists a prefix that holds no object. R2's bucket-scoped "Object Read & Write"
   * tokens may list objects but not use HeadBucket; an empty listing is also never truncated.
   */
  async check(signal: AbortSignal): Promise<void> {
    await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.config.bucket,
        Prefix: READINESS_PREFIX,
        MaxKeys: 1,
      }),
      { abortSignal: signal },
    );
  }

  close(): void {
    this.client.destroy();
  }
}
