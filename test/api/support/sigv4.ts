// An independent AWS Signature V4 check of presigned URLs (query authentication), used where
// s3rver does not verify V4 signatures itself: it tells whether a request with the given
// headers would match the URL's signature at a store that does (R2, S3).
import { createHash, createHmac } from "node:crypto";

const encode = (value: string): string =>
  encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac("sha256", key).update(data, "utf8").digest();

export function presignedRequestIsValid(
  presignedUrl: string,
  method: string,
  headers: Record<string, string>,
  secretAccessKey: string,
): boolean {
  const url = new URL(presignedUrl);
  const query = [...url.searchParams.entries()].filter(([name]) => name !== "X-Amz-Signature");
  const canonicalQuery = query
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .sort()
    .join("&");
  const lower = Object.fromEntries(
    Object.entries({ ...headers, host: url.host }).map(([name, value]) => [
      name.toLowerCase(),
      value.trim(),
    ]),
  );
  const signedHeaders = (url.searchParams.get("X-Amz-SignedHeaders") ?? "").split(";");
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${lower[name] ?? ""}\n`).join("");
  const canonicalRequest = [
    method,
    url.pathname
      .split("/")
      .map((segment) => encode(decodeURIComponent(segment)))
      .join("/"),
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(";"),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const [, date, region, service] = (url.searchParams.get("X-Amz-Credential") ?? "").split("/");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    url.searchParams.get("X-Amz-Date"),
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  let key: Buffer = hmac(`AWS4${secretAccessKey}`, date ?? "");
  for (const part of [region ?? "", service ?? "", "aws4_request"]) key = hmac(key, part);
  return hmac(key, stringToSign).toString("hex") === url.searchParams.get("X-Amz-Signature");
}
