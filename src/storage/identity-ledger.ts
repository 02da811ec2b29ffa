/** The identity ledger: the single consistent writer of namespaces, users, service accounts and grants. */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";

export class IdentityLedger extends DurableObject<Env> {}
