/**
 * Authorization of /v2/ requests against the bearer token's `access` claim. Access needed per request
 * follows distribution's appendAccessRecords: GET/HEAD → pull; POST/PUT/PATCH → pull and push;
 * DELETE → delete; the catalog needs registry:catalog:*. A mount's pull on `from` is not required up
 * front: the mount happens only where tokenAllows grants it, else an ordinary upload starts (spec.md end-11).
 */
import { accessAllows } from "./access-model";
import type { RegistryTokens, VerifiedToken } from "./registry-token";
import { formatScope, type AccessEntry } from "./scope";
import { formatChallenge, type ChallengeError } from "../http/challenge";
import { RegistryError } from "../http/oci-errors";

export function requiredAccess(method: string, repository: string): AccessEntry[] {
  switch (method) {
    case "GET":
    case "HEAD":
      return [{ type: "repository", name: repository, actions: ["pull"] }];
    case "DELETE":
      return [{ type: "repository", name: repository, actions: ["delete"] }];
    default:
      return [{ type: "repository", name: repository, actions: ["pull", "push"] }];
  }
}

/** Whether a verified token grants every action of `entry`. */
export function tokenAllows(token: VerifiedToken, entry: AccessEntry): boolean {
  return entry.actions.every((action) => accessAllows(token.access, entry.type, entry.name, action));
}

export const CATALOG_ACCESS: AccessEntry = { type: "registry", name: "catalog", actions: ["*"] };

export class RegistryAccess {
  constructor(
    private readonly tokens: RegistryTokens,
    private readonly service: string,
  ) {}

  /**
   * The verified token, or a 401 challenge (naming `scope` where given): without a bearer token, or with
   * an invalid or expired one (`error="invalid_token"`, so containerd fetches a new one).
   */
  async authenticate(request: Request, realm: string, scope?: AccessEntry): Promise<VerifiedToken> {
    const header = request.headers.get("Authorization");
    if (header === null || !/^bearer\s/i.test(header)) throw this.challenge(realm, scope);
    const verified = await this.tokens.verify(header.replace(/^bearer\s+/i, "").trim());
    if (!verified) throw this.challenge(realm, scope, "invalid_token");
    return verified;
  }

  /** Checks every needed entry; a 401 naming exactly one scope when something is missing. */
  async authorize(request: Request, realm: string, needed: AccessEntry[]): Promise<VerifiedToken> {
    const token = await this.authenticate(request, realm, needed[0]);
    for (const entry of needed) {
      const missing = entry.actions.filter((action) => !accessAllows(token.access, entry.type, entry.name, action));
      if (missing.length > 0) throw this.challenge(realm, entry, "insufficient_scope", missingAccessMessage(entry, missing));
    }
    return token;
  }

  private challenge(realm: string, scope: AccessEntry | undefined, error?: ChallengeError, message?: string): RegistryError {
    const header = formatChallenge({
      realm,
      service: this.service,
      scope: scope ? formatScope(scope) : undefined,
      error,
    });
    const detail = scope ? scope.actions.map((action) => ({ Type: scope.type, Name: scope.name, Action: action })) : undefined;
    return new RegistryError("UNAUTHORIZED", { message, detail, headers: { "WWW-Authenticate": header } });
  }
}

/** What a client prints to its user on insufficient_scope: the access needed and not granted. */
function missingAccessMessage(entry: AccessEntry, missing: string[]): string {
  const actions = missing.map((action) => `"${action}"`).join(" and ");
  return `access to ${entry.type} "${entry.name}" requires ${actions}; the token does not grant ${missing.length === 1 ? "it" : "them"}`;
}
