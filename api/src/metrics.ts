// Prometheus metrics on a registry owned by one app (no global registry): request counts and
// latency histograms by method, route and status, the process's default metrics and, when given a
// probe, whether each dependency is reachable, measured at every scrape.
import type { Request, RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ReadinessChecks } from "./readiness";

export interface Metrics {
  readonly registry: Registry;
  readonly middleware: RequestHandler;
}

// The route pattern, never the raw URL: ids and unknown paths must not explode the label set.
function routeLabel(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === "string" ? route.path : "unmatched";
}

/** Checks every dependency now; each check time-boxed (app.ts passes checkReadiness). */
export type DependencyProbe = () => Promise<ReadinessChecks>;

const DEPENDENCIES: readonly (keyof ReadinessChecks)[] = ["database", "redis", "storage"];

/**
 * keel_dependency_up{dependency}: 1 reachable, 0 not, from a probe run while the registry is
 * collected, so a scrape reports the dependencies as they are now. Scrapes that overlap share
 * one run of the probe; a probe that fails reports every dependency down.
 */
function dependencyGauge(registry: Registry, probe: DependencyProbe): void {
  let running: Promise<ReadinessChecks> | undefined;
  const current = (): Promise<ReadinessChecks> => {
    running ??= probe()
      .catch(() => ({ database: false, redis: false, storage: false }))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  new Gauge({
    name: "keel_dependency_up",
    help: "Whether a dependency answered its readiness check during this scrape (1) or not (0).",
    labelNames: ["dependency"] as const,
    registers: [registry],
    async collect() {
      const checks = await current();
      for (const dependency of DEPENDENCIES) this.set({ dependency }, checks[dependency] ? 1 : 0);
    },
  });
}

export function createMetrics(options: { readonly dependencies?: DependencyProbe } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  if (options.dependencies !== undefined) dependencyGauge(registry, options.dependencies);
  const labelNames = ["method", "route", "status"] as const;
  const requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests answered, by method, route and status.",
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time to answer HTTP requests, by method, route and status.",
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // The series of one method, route and status, looked up once: prom-client validates and hashes
  // a label set on every call otherwise. Routes are patterns, so the map stays small.
  const series = new Map<
    string,
    {
      requests: ReturnType<typeof requests.labels>;
      duration: ReturnType<typeof duration.labels>;
    }
  >();
  const seriesOf = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let found = series.get(key);
    if (found === undefined) {
      const labels = [method, route, String(status)];
      found = { requests: requests.labels(...labels), duration: duration.labels(...labels) };
      series.set(key, found);
    }
    return found;
  };
  const middleware: RequestHandler = (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once("finish", () => {
      const one = seriesOf(req.method, routeLabel(req), res.statusCode);
      one.requests.inc();
      one.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
  return { registry, middleware };
}
