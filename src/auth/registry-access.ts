/**
 * Authorization of /v2/ requests against the bearer token's `access` claim. Access needed per request
 * follows distribution's appendAccessRecords: GET/HEAD → pull; POST/PUT/PATCH → pull and push;
 * DELETE → delete; a mount also needs pull on `from`; the catalog needs registry:catalog:*.
 */
import { accessAllows } from "./access-model";
import type { RegistryTokens, VerifiedToken } from "./registry-token";
import { formatScope, type AccessEntry } from "./scope";
import { formatChallenge, type ChallengeError } from "../http/challenge";
import { RegistryError } from "../http/oci-errors";

export function requiredAccess(method: string, repository: string, mountFrom?: string): AccessEntry[] {
  switch (method) {
    case "GET":
    case "HEAD":
      return [{ type: "repository", name: repository, actions: ["pull"] }];
    case "DELETE":
      return [{ type: "repository", name: repository, actions: ["delete"] }];
    default: {
      const needs: AccessEntry[] = [{ type: "repository", name: repository, actions: ["pull", "push"] }];
      if (mountFrom !== undefined && mountFrom !== repository) {
        needs.push({ type: "repository", name: mountFrom, actions: ["pull"] });
      }
      return needs;
    }
  }
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
      const allowed = entry.actions.every((action) => accessAllows(token.access, entry.type, entry.name, action));
      if (!allowed) throw this.challenge(realm, entry, "insufficient_scope");
    }
    return token;
  }

  private challenge(realm: string, scope: AccessEntry | undefined, error?: ChallengeError): RegistryError {
    const header = formatChallenge({
      realm,
      service: this.service,
      scope: scope ? formatScope(scope) : undefined,
      error,
    });
    const detail = scope ? scope.actions.map((action) => ({ Type: scope.type, Name: scope.name, Action: action })) : undefined;
    return new RegistryError("UNAUTHORIZED", { detail, headers: { "WWW-Authenticate": header } });
  }
}
