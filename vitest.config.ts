import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
// @ts-expect-error: plain ESM helper shared with `npm start`
import { generateSecrets } from "./scripts/local-secrets.mjs";
// @ts-expect-error: plain ESM build script, also wrangler.toml's [build] command
import { buildConsole } from "./scripts/build-console.mjs";

/** The unit and integration suites run twice: on miniflare's strongly consistent KV, and on the production-KV model. */
const WORKERS_SUITE = ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"];
/**
 * How long a location of the production-KV model caches a read (production: 60 s). Lowered for the workers
 * suite so that the two-location tests can wait for convergence; still far longer than any test's requests.
 */
const WORKERS_PRODUCTION_KV_TTL_MS = 5_000;
/** A local OIDC issuer on 127.0.0.1 for the federation tests; ALLOW_INSECURE_OIDC_ISSUERS lets policies name it. */
const OIDC_ISSUER_SETUP = "test/support/oidc-issuer-setup.ts";
/** Room for a test that waits for the rate limiters' next window (test/helpers/registry.ts withinOneRateWindow). */
const WORKERS_TEST_TIMEOUT_MS = 60_000;
/** The e2e suite keeps production's 60 s: real clients' operations span seconds. */
const E2E_PRODUCTION_KV_TTL_MS = 60_000;

export default defineConfig(async () => {
  // wrangler.toml's [assets] directory must exist for every project (the workers pool reads the config too).
  await buildConsole();
  // Fresh secrets per run, the same way `npm start` makes them; tests read them from `env`.
  const secrets = (await generateSecrets()) as Record<string, string>;
  // Every issued token is logged (a production audit trail); in tests that is only noise.
  const onConsoleLog = (log: string) => !log.includes('"event":"token_issued"');
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              main: "./src/index.ts",
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: { bindings: { ...secrets, TOKEN_LIFETIME_SECONDS: "300", ALLOW_INSECURE_OIDC_ISSUERS: "true" } },
            }),
          ],
          test: { name: "workers", include: WORKERS_SUITE, onConsoleLog, globalSetup: [OIDC_ISSUER_SETUP], testTimeout: WORKERS_TEST_TIMEOUT_MS },
        },
        {
          // The same suite with REGISTRY_KV behaving as production KV does (test/support/production-kv.ts):
          // reads and misses cached per location, no read-your-writes, one write per second per key. Tests
          // reach location B through `callAt("b", …)` (test/helpers/registry.ts); their own `env.REGISTRY_KV`
          // stays the raw binding (the hostile-input corpus snapshots storage through it).
          plugins: [
            cloudflareTest({
              main: "./test/support/production-kv-worker.ts",
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { ...secrets, TOKEN_LIFETIME_SECONDS: "300", PRODUCTION_KV_TTL_MS: String(WORKERS_PRODUCTION_KV_TTL_MS), ALLOW_INSECURE_OIDC_ISSUERS: "true" },
              },
            }),
          ],
          test: { name: "workers-production-kv", include: WORKERS_SUITE, onConsoleLog, globalSetup: [OIDC_ISSUER_SETUP], testTimeout: WORKERS_TEST_TIMEOUT_MS },
        },
        {
          test: {
            name: "e2e",
            include: ["test/e2e/**/*.test.ts"],
            environment: "node",
            globalSetup: ["test/e2e/global-setup.ts"],
            // The real clients run against the production-KV model, as production caches (60 s): 127.0.0.1 is
            // location A, localhost location B (test/e2e/global-setup.ts).
            provide: { productionKvTtlMs: E2E_PRODUCTION_KV_TTL_MS },
            testTimeout: 180_000,
            hookTimeout: 120_000,
            fileParallelism: false,
          },
        },
        {
          // The same client suite on miniflare's strongly consistent KV (`npx vitest run --project e2e-plain`).
          test: {
            name: "e2e-plain",
            include: ["test/e2e/**/*.test.ts"],
            environment: "node",
            globalSetup: ["test/e2e/global-setup.ts"],
            testTimeout: 180_000,
            hookTimeout: 120_000,
            fileParallelism: false,
          },
        },
        {
          test: {
            name: "stress",
            include: ["test/stress/**/*.test.ts"],
            environment: "node",
            globalSetup: ["test/e2e/global-setup.ts"],
            testTimeout: 600_000,
            hookTimeout: 300_000,
          },
        },
      ],
    },
  };
});
