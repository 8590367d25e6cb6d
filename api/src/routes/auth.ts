// Registration and login. Passwords are hashed with argon2id; five failed logins for one email
// lock it for 15 minutes (429 with Retry-After). Unknown emails cost the same argon2 work and
// count towards a lockout too, so responses do not reveal which emails exist.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { hashPassword, verifyPassword } from "../auth/passwords";
import { ACCESS_TOKEN_SECONDS } from "../auth/tokens";
import { recordAudit } from "../audit";
import { ApiError, conflict, tooManyRequests } from "../errors";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";
import { name } from "./schemas";

const Email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, "must be at most 254 characters")
  .pipe(z.email("must be an email address"))
  .meta({ format: "email" });

const RegisterBody = z
  .strictObject({
    email: Email,
    password: z
      .string()
      .min(12, "must be at least 12 characters long")
      .max(1024, "must be at most 1024 characters long"),
    orgName: name(200),
  })
  .meta({ id: "RegisterRequest" });

const RegisterResponse = z
  .object({
    user: z.object({ id: z.uuid(), email: z.string(), orgId: z.uuid() }),
    org: z.object({ id: z.uuid(), name: z.string() }),
  })
  .meta({ id: "RegisterResponse" });

const LoginBody = z
  .strictObject({ email: Email, password: z.string().min(1).max(1024) })
  .meta({ id: "LoginRequest" });

const LoginResponse = z
  .object({
    accessToken: z.string(),
    tokenType: z.literal("Bearer"),
    expiresIn: z.number().int(),
  })
  .meta({ id: "LoginResponse" });

interface UserRow {
  id: string;
  org_id: string;
  email: string;
  password_hash: string;
}

const isUniqueViolation = (error: unknown): boolean =>
  (error as { code?: unknown }).code === "23505";

const lockedMessage = (ms: number): string =>
  `Too many failed logins for this email; try again in ${Math.ceil(ms / 60_000)} minutes.`;

export function authRoutes(ctx: RouteContext): RouteDefinition[] {
  const { db, lockout, signer } = ctx;
  // Verified against when the email is unknown, so that both cases cost the same.
  let decoyHash: Promise<string> | undefined;
  const decoy = (): Promise<string> =>
    (decoyHash ??= hashPassword(randomBytes(24).toString("base64url")));

  const register = defineRoute({
    method: "post",
    path: "/v1/auth/register",
    operationId: "register",
    summary: "Create an org and its first user",
    description:
      "Creates an organisation and its first user. The password (12 to 1024 characters) is stored as an argon2id hash. An email is registered once, in any letter case.",
    tag: "auth",
    auth: "none",
    expensive: true,
    body: RegisterBody,
    responses: {
      201: { description: "The user and org were created.", schema: RegisterResponse },
      409: { description: "The email is already registered." },
    },
    handler: async ({ req, res, body }) => {
      const passwordHash = await hashPassword(body.password);
      try {
        const created = await db.transaction(async (trx) => {
          const [org] = await trx<{ id: string; name: string }>("orgs")
            .insert({ name: body.orgName })
            .returning(["id", "name"]);
          if (org === undefined) throw new Error("insert returned no row");
          const [user] = await trx<UserRow>("users")
            .insert({ org_id: org.id, email: body.email, password_hash: passwordHash })
            .returning(["id", "email"]);
          if (user === undefined) throw new Error("insert returned no row");
          await recordAudit(trx, req, {
            action: "auth.register",
            orgId: org.id,
            actor: { type: "user", id: user.id },
            target: { type: "user", id: user.id },
          });
          return { org, user };
        });
        res.status(201).json({
          user: { id: created.user.id, email: created.user.email, orgId: created.org.id },
          org: created.org,
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw conflict("email_taken", "An account with this email already exists.");
        }
        throw error;
      }
    },
  });

  const login = defineRoute({
    method: "post",
    path: "/v1/auth/login",
    operationId: "login",
    summary: "Exchange email and password for a 15-minute access token",
    description:
      "Returns a 15-minute access token (JWT, HS256) for the user. Five failed logins for one email lock it for 15 minutes (429 login_locked with Retry-After), whether the email exists or not.",
    tag: "auth",
    auth: "none",
    expensive: true,
    body: LoginBody,
    responses: {
      200: { description: "Logged in.", schema: LoginResponse },
      401: { description: "The email or password is wrong." },
    },
    handler: async ({ req, res, body }) => {
      const lockedMs = await lockout.lockedForMs(body.email);
      if (lockedMs > 0) throw tooManyRequests(lockedMessage(lockedMs), lockedMs, "login_locked");

      const user = await db<UserRow>("users")
        .where({ email: body.email })
        .first("id", "org_id", "password_hash");
      const passwordOk = await verifyPassword(
        user?.password_hash ?? (await decoy()),
        body.password,
      );
      if (user === undefined || !passwordOk) {
        const lockMs = await lockout.recordFailure(body.email);
        await recordAudit(db, req, {
          action: "auth.login_failed",
          orgId: user?.org_id ?? null,
          target: user === undefined ? undefined : { type: "user", id: user.id },
          details: { locked: lockMs > 0 },
        });
        if (lockMs > 0) throw tooManyRequests(lockedMessage(lockMs), lockMs, "login_locked");
        throw new ApiError(401, "invalid_credentials", "The email or password is wrong.");
      }

      await lockout.reset(body.email);
      await recordAudit(db, req, {
        action: "auth.login",
        orgId: user.org_id,
        actor: { type: "user", id: user.id },
        target: { type: "user", id: user.id },
      });
      res.json({
        accessToken: await signer.sign({ userId: user.id, orgId: user.org_id }),
        tokenType: "Bearer",
        expiresIn: ACCESS_TOKEN_SECONDS,
      });
    },
  });

  return [register, login];
}
