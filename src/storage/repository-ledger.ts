/** The repository ledger: one Durable Object per repository, the single writer of its state. */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";

export class RepositoryLedger extends DurableObject<Env> {}
