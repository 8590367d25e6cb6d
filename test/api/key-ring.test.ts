// Rotation of the key that signs access tokens: tokens name their key (kid), and the ring of
// keys the api step keeps (JWT_KEYS_FILE) lets a rotated key verify its tokens for one more
// token lifetime, so no user is logged out, and never after.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { SignJWT, decodeProtectedHeader } from "jose";
import request from "supertest";
import {
  ACCESS_TOKEN_SECONDS,
  KeyRingFile,
  keyId,
  parseKeyRing,
} from "../../api/src/auth/key-ring";
import { TokenSigner } from "../../api/src/auth/tokens";
import { createAccount, testApp } from "./support/app";

const OLD = `old-jwt-key-${"o".repeat(40)}`;
const NEW = `new-jwt-key-${"n".repeat(40)}`;
const CLAIMS = { userId: "8a4c1e9e-0000-4000-8000-000000000001", orgId: "org" };
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const noReloadError = (error: unknown): void => {
  throw error;
};

describe("access-token keys and their rotation", () => {
  let dir: string;
  let ringPath: string;
  const writeRing = (...lines: string[]): void =>
    writeFileSync(ringPath, `# Managed by Keel: JWT keys\n${lines.join("\n")}\n`);
  const ring = (): KeyRingFile => new KeyRingFile(ringPath, noReloadError);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "keel-ring-"));
    ringPath = join(dir, "jwt-keys");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("when a token is signed, then its header names the key by an id that is not the key", async () => {
    const token = await new TokenSigner(NEW).sign(CLAIMS);
    const kid = decodeProtectedHeader(token).kid;
    expect(kid).to.equal(keyId(NEW));
    expect(kid).to.match(/^[\w-]{16}$/);
    expect(NEW).not.to.include(String(kid));
  });

  it("when the key was rotated less than a token lifetime ago, then a token of the previous key is still accepted", async () => {
    const token = await new TokenSigner(OLD).sign(CLAIMS);
    writeRing(`${nowSeconds() - ACCESS_TOKEN_SECONDS + 60} ${OLD}`, `- ${NEW}`);
    expect(await new TokenSigner(NEW, ring()).verify(token)).to.deep.equal(CLAIMS);
  });

  it("when the previous key was retired a token lifetime ago, then its tokens are refused though not expired", async () => {
    const token = await new TokenSigner(OLD).sign(CLAIMS);
    writeRing(`${nowSeconds() - ACCESS_TOKEN_SECONDS} ${OLD}`, `- ${NEW}`);
    expect(await new TokenSigner(NEW, ring()).verify(token)).to.equal(null);
  });

  it("when a key is still in use (no retirement time), then its tokens are accepted", async () => {
    const token = await new TokenSigner(OLD).sign(CLAIMS);
    writeRing(`- ${OLD}`, `- ${NEW}`);
    expect(await new TokenSigner(NEW, ring()).verify(token)).to.deep.equal(CLAIMS);
  });

  it("when an instance not yet restarted meets a token of the new key, then it reads the ring again at once and accepts it", async () => {
    writeRing(`- ${OLD}`);
    const stillOld = new TokenSigner(OLD, ring());
    const token = await new TokenSigner(NEW).sign(CLAIMS);
    expect(await stillOld.verify(token)).to.equal(null);
    writeRing(`- ${OLD}`, `- ${NEW}`);
    expect(await stillOld.verify(token)).to.deep.equal(CLAIMS);
  });

  it("when the ring retires a key while the API runs, then within a second its tokens are refused", async () => {
    const token = await new TokenSigner(OLD).sign(CLAIMS);
    writeRing(`- ${OLD}`, `- ${NEW}`);
    const signer = new TokenSigner(NEW, ring());
    expect(await signer.verify(token)).to.deep.equal(CLAIMS);
    writeRing(`${nowSeconds() - ACCESS_TOKEN_SECONDS - 1} ${OLD}`, `- ${NEW}`);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await signer.verify(token)).to.equal(null);
  });

  it("when a token that was accepted expires, then the same signer refuses it", async () => {
    const expiresAt = nowSeconds() + 2;
    const token = await new SignJWT({ org: CLAIMS.orgId })
      .setProtectedHeader({ alg: "HS256", kid: keyId(NEW) })
      .setSubject(CLAIMS.userId)
      .setIssuer("keel")
      .setAudience("keel-api")
      .setExpirationTime(expiresAt)
      .sign(new TextEncoder().encode(NEW));
    const signer = new TokenSigner(NEW);
    expect(await signer.verify(token)).to.deep.equal(CLAIMS);
    expect(await signer.verify(token)).to.deep.equal(CLAIMS);
    await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 + 50 - Date.now()));
    expect(await signer.verify(token)).to.equal(null);
  });

  it("when a token names a key the ring does not hold, then it is refused", async () => {
    writeRing(`- ${NEW}`);
    const forged = await new SignJWT({ org: "org" })
      .setProtectedHeader({ alg: "HS256", kid: keyId(OLD) })
      .setSubject(CLAIMS.userId)
      .setIssuer("keel")
      .setAudience("keel-api")
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(OLD));
    expect(await new TokenSigner(NEW, ring()).verify(forged)).to.equal(null);
  });

  it("when a token carries no kid (a release before key ids signed it), then JWT_SECRET verifies it", async () => {
    const legacy = await new SignJWT({ org: CLAIMS.orgId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(CLAIMS.userId)
      .setIssuer("keel")
      .setAudience("keel-api")
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(NEW));
    expect(await new TokenSigner(NEW).verify(legacy)).to.deep.equal(CLAIMS);
    expect(await new TokenSigner(OLD).verify(legacy)).to.equal(null);
  });

  it("when the ring file is malformed, then reading it fails naming the line, never the key", () => {
    expect(() => parseKeyRing(`- ${NEW}\nsoon ${OLD}\n`)).to.throw(/line 2/);
    try {
      parseKeyRing(`soon ${OLD}\n`);
    } catch (error) {
      expect((error as Error).message).not.to.include(OLD);
    }
    writeRing(`yesterday ${OLD}`);
    expect(() => ring()).to.throw(/jwt-keys: line 2/);
  });

  it("when a user logged in before a rotation calls an instance on the new key, then the request succeeds", async () => {
    const before = testApp({ env: { JWT_SECRET: OLD } });
    const account = await createAccount(before);
    writeRing(`${nowSeconds()} ${OLD}`, `- ${NEW}`);
    const after = testApp({ env: { JWT_SECRET: NEW, JWT_KEYS_FILE: ringPath } });
    await request(after)
      .get("/v1/systems")
      .set("Authorization", `Bearer ${account.token}`)
      .expect(200);
    // Without the ring, the same instance would log the user out.
    await request(testApp({ env: { JWT_SECRET: NEW } }))
      .get("/v1/systems")
      .set("Authorization", `Bearer ${account.token}`)
      .expect(403);
  });
});
