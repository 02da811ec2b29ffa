/**
 * The registry token endpoint: GET (distribution docs spec/auth/token.md) and the OAuth2 POST form
 * (spec/auth/oauth.md), which containerd and docker 29 try first.
 */
import { ANONYMOUS, actionsOn, grantedAccess, type Principal } from "./access-model";
import { parseBasicAuthorization } from "./basic-auth";
import type { AuthenticatedIdentity } from "./credentials";
import type { GuardedLogin, GuardedLoginResult } from "./guarded-login";
import { BOOTSTRAP_ADMIN_USERNAME } from "./identity-grammar";
import type { LastUsedTracker } from "./last-used";
import type { RefreshTokens } from "./refresh-tokens";
import type { AuditLog } from "../storage/audit-log";
import type { RegistryTokens } from "./registry-token";
import { formatScope, parseScopes, type RequestedScope } from "./scope";
import type { Visibility } from "./visibility";
import { readBodyLimited } from "../http/body";
import { jsonResponse } from "../http/headers";
import { TokenEndpointError } from "../http/oauth-errors";

/** Longest form body the POST accepts. */
const MAX_FORM_BYTES = 16 * 1024;
const INVALID_CREDENTIALS = "invalid username or password";
/**
 * Most repositories a token request may name whose visibility must be read (pull asked for, not held
 * through a grant): each costs up to two KV reads, so an anonymous request of 64 scopes would cost 128.
 * Clients name one or two (a pull; a push with a cross-repository mount).
 */
export const MAX_VISIBILITY_LOOKUPS = 16;

export interface TokenEndpointDeps {
  serviceName: string;
  login: GuardedLogin;
  tokens: RegistryTokens;
  visibility: Visibility;
  refreshTokens: RefreshTokens;
  lastUsed: LastUsedTracker;
  audit: AuditLog;
}

/** Runs work after the response is sent (ctx.waitUntil). */
export type Background = (work: Promise<unknown>) => void;

interface Issued {
  token: string;
  expiresIn: number;
  issuedAt: string;
  scope: string;
}

export class TokenEndpoint {
  constructor(private readonly deps: TokenEndpointDeps) {}

  async get(request: Request, background: Background): Promise<Response> {
    const query = new URL(request.url).searchParams;
    const service = this.checkService(query.get("service"));
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
    const identity = basic ? await this.authenticate(request, basic.username, basic.secret, background) : undefined;
    if (!identity && scopes.length === 0) {
      throw new TokenEndpointError(401, "unauthorized", "authentication required");
    }
    const clientId = query.get("client_id") ?? "";
    const issued = await this.issue(identity, scopes, clientId);
    // token.md: `refresh_token` only when offline_token=true, and only web users get one.
    const refreshToken = query.get("offline_token") === "true" ? await this.maybeRefreshToken(identity, service, clientId) : undefined;
    return jsonResponse({
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    });
  }

  async post(request: Request, background: Background): Promise<Response> {
    const form = await readForm(request);
    const service = this.checkService(form.get("service"));
    const clientId = form.get("client_id") ?? "";
    const offline = form.get("access_type") === "offline";
    const grantType = form.get("grant_type");
    let identity: AuthenticatedIdentity;
    let refreshToken: string | undefined;
    if (grantType === "password") {
      const username = form.get("username");
      const password = form.get("password");
      if (!username || !password) throw new TokenEndpointError(400, "invalid_request", "username and password are required");
      identity = await this.authenticate(request, username, password, background);
      if (offline) refreshToken = await this.maybeRefreshToken(identity, service, clientId);
    } else if (grantType === "refresh_token") {
      const presented = form.get("refresh_token");
      if (!presented) throw new TokenEndpointError(400, "invalid_request", "refresh_token is required");
      // Throttled and audited like a wrong password (per client address: a refresh token names no account).
      const redeemed = await this.deps.login.redeem(request, () => this.deps.refreshTokens.redeem(presented, service));
      throwIfThrottled(redeemed);
      if (!redeemed.ok) throw new TokenEndpointError(401, "invalid_grant", "invalid or revoked refresh token");
      identity = redeemed.identity;
      // oauth.md: with a refresh_token grant, access_type=offline returns the same token, never a new one.
      if (offline) refreshToken = presented;
    } else {
      throw new TokenEndpointError(400, "unsupported_grant_type", `grant_type ${JSON.stringify(grantType ?? "")} is not supported`);
    }
    const issued = await this.issue(identity, parseScopes(form.getAll("scope")), clientId);
    return jsonResponse({
      access_token: issued.token,
      token: issued.token,
      scope: issued.scope,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    });
  }

  private checkService(service: string | null): string {
    // The audience comes from configuration; an unknown service is refused rather than echoed into `aud`.
    if (service !== null && service !== this.deps.serviceName) {
      throw new TokenEndpointError(400, "invalid_request", `unknown service ${JSON.stringify(service.slice(0, 100))}`);
    }
    return this.deps.serviceName;
  }

  private async authenticate(request: Request, username: string, secret: string, background: Background): Promise<AuthenticatedIdentity> {
    // Any username reaches the guarded check: one outside both identity grammars is refused there before a
    // storage key is built, and is throttled and audited like any failure.
    const result = await this.deps.login.login(request, username, secret, "token endpoint");
    throwIfThrottled(result);
    // Bad credentials are an error, never a silent downgrade to an anonymous token.
    if (!result.ok) throw new TokenEndpointError(401, "invalid_grant", INVALID_CREDENTIALS);
    const touched = this.deps.lastUsed.touch(result.identity.id);
    if (touched) background(touched);
    return result.identity;
  }

  private async maybeRefreshToken(identity: AuthenticatedIdentity | undefined, service: string, clientId: string) {
    if (!identity || identity.principal.kind !== "user" || identity.subject === BOOTSTRAP_ADMIN_USERNAME) return undefined;
    return this.deps.refreshTokens.issue(identity.subject, service, clientId);
  }

  private async issue(identity: AuthenticatedIdentity | undefined, scopes: RequestedScope[], clientId: string): Promise<Issued> {
    const principal = identity?.principal ?? ANONYMOUS;
    // The work of a request is bounded by what the caller holds: repositories it holds pull on need no read.
    const lookups = new Set(pullsNotHeld(principal, scopes));
    if (lookups.size > MAX_VISIBILITY_LOOKUPS) {
      throw new TokenEndpointError(400, "invalid_scope", `at most ${MAX_VISIBILITY_LOOKUPS} repositories not granted to the caller may be requested at once`);
    }
    const publicRepositories = await this.deps.visibility.publicAmong(lookups);
    const access = grantedAccess(principal, scopes, (name) => publicRepositories.has(name));
    const issued = await this.deps.tokens.issue(identity?.subject ?? "", access);
    const scope = access.filter((entry) => entry.actions.length > 0).map(formatScope).join(" ");
    // Successful issuance goes to structured logs (never the token itself), not to KV.
    console.log(JSON.stringify({ event: "token_issued", sub: identity?.subject ?? "", scope, client_id: clientId.slice(0, 100) }));
    return { token: issued.token, expiresIn: issued.expiresIn, issuedAt: new Date(issued.issuedAt * 1000).toISOString(), scope };
  }
}

/** OCI spec and containers/image: a throttled attempt answers 429 with Retry-After. */
function throwIfThrottled(result: GuardedLoginResult): void {
  if (!result.ok && result.throttled) {
    throw new TokenEndpointError(429, "too_many_requests", "too many failed logins; retry later", {
      "Retry-After": String(result.retryAfterSeconds),
    });
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
