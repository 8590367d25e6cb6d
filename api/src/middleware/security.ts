// Security headers on every response (helmet), and CORS for FRONTEND_ORIGINS only: any other
// origin gets no Access-Control-Allow-Origin, so browsers keep its pages out. With no origins
// (an API without a browser front end) no response carries any Access-Control-* header.
import cors from "cors";
import type { RequestHandler } from "express";
import helmet from "helmet";

export function securityHeaders(): RequestHandler[] {
  return [
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          imgSrc: ["'self'", "data:"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          frameAncestors: ["'none'"],
        },
      },
      frameguard: { action: "deny" },
      referrerPolicy: { policy: "no-referrer" },
      // HSTS belongs to the TLS endpoint (nginx); X-XSS-Protection is obsolete.
      strictTransportSecurity: false,
      xXssProtection: false,
    }),
    (_req, res, next) => {
      res.setHeader("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
      next();
    },
  ];
}

export function corsPolicy(origins: readonly string[] | "*"): RequestHandler {
  const allowed = origins === "*" ? null : new Set(origins);
  return cors({
    origin: (origin, callback) => {
      callback(null, origin !== undefined && (allowed === null || allowed.has(origin)));
    },
    methods: ["GET", "POST", "PUT", "DELETE"],
    allowedHeaders: ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
    exposedHeaders: ["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy"],
    maxAge: 600,
  });
}
