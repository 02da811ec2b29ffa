/** The global blob index: digest → stored bytes, one Durable Object per digest. */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";

export class BlobIndex extends DurableObject<Env> {}
