import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
// @ts-expect-error: plain ESM helper shared with `npm start`
import { generateSecrets } from "./scripts/local-secrets.mjs";

export default defineConfig(async () => {
  // Fresh secrets per run, the same way `npm start` makes them; tests read them from `env`.
  const secrets = (await generateSecrets()) as Record<string, string>;
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              main: "./src/index.ts",
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: { bindings: { ...secrets, TOKEN_LIFETIME_SECONDS: "300" } },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
            // Every issued token is logged (a production audit trail); in tests that is only noise.
            onConsoleLog: (log: string) => !log.includes('"event":"token_issued"'),
          },
        },
        {
          test: {
            name: "e2e",
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
