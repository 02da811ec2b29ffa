/**
 * The Durable Object bindings of Env (wrangler.toml `[[durable_objects.bindings]]`): the consistent writers
 * whose state is published to REGISTRY_KV. Declared here, beside their classes, and merged into the Env of
 * config/env.ts (TypeScript declaration merging), so that config/ never imports storage/.
 */
import type { BlobIndex } from "./blob-index";
import type { IdentityLedger } from "./identity-ledger";
import type { RepositoryLedger } from "./repository-ledger";

declare module "../config/env" {
  interface Env {
    REPOSITORY_LEDGER: DurableObjectNamespace<RepositoryLedger>;
    BLOB_INDEX: DurableObjectNamespace<BlobIndex>;
    IDENTITY_LEDGER: DurableObjectNamespace<IdentityLedger>;
  }
}
