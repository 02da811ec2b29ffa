/**
 * The registry token endpoint: GET (distribution docs spec/auth/token.md) and the OAuth2 POST form
 * (spec/auth/oauth.md), which containerd and docker 29 try first.
 */
import { ANONYMOUS, actionsOn, grantedAccess, type Principal } from "./access-model";
import { parseBasicAuthorization } from "./basic-auth";
import type { AuthenticatedIdentity } from "./credentials";
import type { GuardedLogin, GuardedLoginResult } from "./guarded-login";
import { looksLikeJwt } from "./federation";
import { BOOTSTRAP_ADMIN_USERNAME, isServiceAccountName } from "./identity-grammar";
import type { LastUsedTracker } from "./last-used";
import type { RefreshTokens } from "./refresh-tokens";
import type { RegistryTokens } from "./registry-token";
import { formatScope, parseScopes, type RequestedScope } from "./scope";
import type { Visibility } from "./visibility";
import { readBodyLimited } from "../http/body";
import { jsonResponse } from "../http/headers";
import { TokenEndpointError } from "../http/oauth-errors";

/** Longest form body the POST accepts. */
const MAX_FORM_BYTES = 16 * 1024;
const INVALID_CREDENTIALS = "invalid username or password";
/** RFC 8693 §2.1 and §3: the token-exchange grant and the token types this endpoint takes and issues. */
const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TOKEN_TYPES = ["urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:jwt"];
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
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
    } else if (grantType === TOKEN_EXCHANGE_GRANT) {
      return this.exchange(request, form, clientId, background);
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

  /**
   * RFC 8693 token exchange: an OIDC ID token (`subject_token`, type id_token or jwt) for a registry token of
   * the service account named by `account` (the token protocol's parameter for the account acted as), as
   * when the ID token is the Basic password. The refusal is the ordinary invalid-credentials 401, whatever
   * rule failed (the rule goes to the audit log); no refresh token is ever issued (RFC 8693 §2.2.1: optional).
   */
  private async exchange(request: Request, form: URLSearchParams, clientId: string, background: Background): Promise<Response> {
    const subjectToken = form.get("subject_token");
    const subjectTokenType = form.get("subject_token_type");
    const account = form.get("account");
    if (!subjectToken || !subjectTokenType || !account) {
      throw new TokenEndpointError(400, "invalid_request", "subject_token, subject_token_type and account are required");
    }
    if (!SUBJECT_TOKEN_TYPES.includes(subjectTokenType)) {
      throw new TokenEndpointError(400, "invalid_request", `subject_token_type must be one of ${SUBJECT_TOKEN_TYPES.join(", ")}`);
    }
    const requested = form.get("requested_token_type");
    if (requested !== null && requested !== ACCESS_TOKEN_TYPE) {
      throw new TokenEndpointError(400, "invalid_request", `requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    // RFC 8693 §1.1: delegation (an actor token) is not offered; impersonation of the account is the whole exchange.
    if (form.has("actor_token")) throw new TokenEndpointError(400, "invalid_request", "actor_token is not supported");
    if (!isServiceAccountName(account)) throw new TokenEndpointError(400, "invalid_request", "account must name a service account (<org id>|<name> or <namespace>+<name>)");
    // Only an ID token may be exchanged: the account's own token must not arrive through this grant.
    if (!looksLikeJwt(subjectToken)) throw new TokenEndpointError(400, "invalid_request", "subject_token is not a JWT");
    const identity = await this.authenticate(request, account, subjectToken, background);
    if (!identity.federated) throw new TokenEndpointError(401, "invalid_grant", INVALID_CREDENTIALS);
    const issued = await this.issue(identity, parseScopes(form.getAll("scope")), clientId);
    return jsonResponse({
      access_token: issued.token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "Bearer",
      token: issued.token,
      scope: issued.scope,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
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
    // Only here may an OIDC token stand in for a service account's token (workload identity federation).
    const result = await this.deps.login.login(request, username, secret, "token endpoint", { background });
    throwIfThrottled(result);
    // Bad credentials are an error, never a silent downgrade to an anonymous token.
    if (!result.ok) throw new TokenEndpointError(401, "invalid_grant", INVALID_CREDENTIALS);
    const touched = this.deps.lastUsed.touch(result.identity.id);
    if (touched) background(touched);
    return result.identity;
  }

  private async maybeRefreshToken(identity: AuthenticatedIdentity | undefined, service: string, clientId: string) {
    // Federated logins never get one (their token is the OIDC token, short-lived by design).
    if (!identity || identity.federated || identity.principal.kind !== "user" || identity.subject === BOOTSTRAP_ADMIN_USERNAME) return undefined;
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
    console.log(
      JSON.stringify({
        event: "token_issued",
        sub: identity?.subject ?? "",
        scope,
        client_id: clientId.slice(0, 100),
        // Which trust policy admitted a federated login, and the workload's own subject (never its token).
        ...(identity?.federated ? { oidc: { iss: identity.federated.issuer, sub: identity.federated.subject.slice(0, 200), policy: identity.federated.policyId } } : {}),
      }),
    );
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
