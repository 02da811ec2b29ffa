/**
 * The registry token endpoint: GET (distribution docs spec/auth/token.md) and the OAuth2 POST form
 * (spec/auth/oauth.md), which containerd and docker 29 try first.
 */
import { ANONYMOUS, actionsOn, grantedAccess, type Principal } from "./access-model";
import { MAX_AUTHORIZATION_LENGTH, parseBasicAuthorization } from "./basic-auth";
import type { AuthenticatedIdentity, CredentialVerifier } from "./credentials";
import type { RegistryTokens } from "./registry-token";
import { formatScope, parseScopes, type RequestedScope } from "./scope";
import type { Visibility } from "./visibility";
import { readBodyLimited } from "../http/body";
import { jsonResponse } from "../http/headers";
import { TokenEndpointError } from "../http/oauth-errors";

/** Longest form body the POST accepts. */
const MAX_FORM_BYTES = 16 * 1024;
const INVALID_CREDENTIALS = "invalid username or password";

export interface TokenEndpointDeps {
  serviceName: string;
  credentials: CredentialVerifier;
  tokens: RegistryTokens;
  visibility: Visibility;
}

export class TokenEndpoint {
  constructor(private readonly deps: TokenEndpointDeps) {}

  async get(request: Request): Promise<Response> {
    const query = new URL(request.url).searchParams;
    this.checkService(query.get("service"));
    const header = request.headers.get("Authorization");
    const basic = parseBasicAuthorization(header);
    if (basic === "malformed" || (header !== null && basic === undefined)) {
      throw new TokenEndpointError(401, "invalid_request", "malformed Authorization header");
    }
    const account = query.get("account");
    // token.md: `account` names the Basic user; docker_auth answers a contradiction with 400.
    if (account && basic && account !== basic.username) {
      throw new TokenEndpointError(400, "invalid_request", "account does not match the authenticated user");
    }
    const scopes = parseScopes(query.getAll("scope"));
    const identity = basic ? await this.authenticate(basic.username, basic.secret) : undefined;
    if (!identity && scopes.length === 0) {
      throw new TokenEndpointError(401, "unauthorized", "authentication required");
    }
    const issued = await this.issue(identity, scopes);
    return jsonResponse({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt });
  }

  async post(request: Request): Promise<Response> {
    const form = await readForm(request);
    this.checkService(form.get("service"));
    const grantType = form.get("grant_type");
    if (grantType !== "password") {
      throw new TokenEndpointError(400, "unsupported_grant_type", `grant_type ${JSON.stringify(grantType ?? "")} is not supported`);
    }
    const username = form.get("username");
    const password = form.get("password");
    if (!username || !password) throw new TokenEndpointError(400, "invalid_request", "username and password are required");
    const identity = await this.authenticate(username, password);
    const scopes = parseScopes(form.getAll("scope"));
    const issued = await this.issue(identity, scopes);
    return jsonResponse({
      access_token: issued.token,
      token: issued.token,
      scope: issued.scope,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    });
  }

  private checkService(service: string | null): void {
    // The audience comes from configuration; an unknown service is refused rather than echoed into `aud`.
    if (service !== null && service !== this.deps.serviceName) {
      throw new TokenEndpointError(400, "invalid_request", `unknown service ${JSON.stringify(service.slice(0, 100))}`);
    }
  }

  private async authenticate(username: string, secret: string): Promise<AuthenticatedIdentity> {
    if (username.length > MAX_AUTHORIZATION_LENGTH || secret.length > MAX_AUTHORIZATION_LENGTH) {
      throw new TokenEndpointError(401, "invalid_grant", INVALID_CREDENTIALS);
    }
    const identity = await this.deps.credentials.authenticate(username, secret);
    // Bad credentials are an error, never a silent downgrade to an anonymous token.
    if (!identity) throw new TokenEndpointError(401, "invalid_grant", INVALID_CREDENTIALS);
    return identity;
  }

  private async issue(identity: AuthenticatedIdentity | undefined, scopes: RequestedScope[]) {
    const principal = identity?.principal ?? ANONYMOUS;
    const publicRepositories = await this.deps.visibility.publicAmong(pullsNotHeld(principal, scopes));
    const access = grantedAccess(principal, scopes, (name) => publicRepositories.has(name));
    const issued = await this.deps.tokens.issue(identity?.subject ?? "", access);
    return {
      token: issued.token,
      expiresIn: issued.expiresIn,
      issuedAt: new Date(issued.issuedAt * 1000).toISOString(),
      scope: access.filter((entry) => entry.actions.length > 0).map(formatScope).join(" "),
    };
  }
}

/** Repositories whose visibility matters: pull is requested but not already held through a grant. */
function pullsNotHeld(principal: Principal, scopes: RequestedScope[]): string[] {
  return scopes
    .filter((scope) => scope.type === "repository" && (scope.actions.has("pull") || scope.actions.has("*")))
    .map((scope) => scope.name)
    .filter((name) => !actionsOn(principal, name, false).has("pull"));
}

async function readForm(request: Request): Promise<URLSearchParams> {
  const contentType = request.headers.get("Content-Type") ?? "";
  // containerd sends `application/x-www-form-urlencoded; charset=utf-8`.
  if (contentType.split(";")[0]!.trim().toLowerCase() !== "application/x-www-form-urlencoded") {
    throw new TokenEndpointError(400, "invalid_request", "expected an application/x-www-form-urlencoded body");
  }
  const body = await readBodyLimited(request, MAX_FORM_BYTES);
  if (body === undefined) throw new TokenEndpointError(413, "invalid_request", "form body too large");
  return new URLSearchParams(new TextDecoder().decode(body));
}
