import type { Env } from "../src/config/env";

declare global {
  namespace Cloudflare {
    // The test runner's env carries the Worker's bindings and the generated secrets.
    interface Env extends Required<Pick<import("../src/config/env").Env, "SIGNING_KEYS" | "SECRET_PEPPER" | "BOOTSTRAP_ADMIN_PASSWORD">> {
      REGISTRY_KV: KVNamespace;
      REGISTRY_BUCKET: R2Bucket;
      REPOSITORY_LEDGER: import("../src/config/env").Env["REPOSITORY_LEDGER"];
      BLOB_INDEX: import("../src/config/env").Env["BLOB_INDEX"];
      IDENTITY_LEDGER: import("../src/config/env").Env["IDENTITY_LEDGER"];
      NOTIFICATION_HUB: import("../src/config/env").Env["NOTIFICATION_HUB"];
      NOTIFICATION_QUEUE?: import("../src/config/env").Env["NOTIFICATION_QUEUE"];
      /** Set only in the workers-production-kv project: the production-KV model's cache TTL (vitest.config.ts). */
      PRODUCTION_KV_TTL_MS?: string;
    }
    // Types `exports` from "cloudflare:workers" (the Worker's own entry point) in tests.
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
export type { Env };
