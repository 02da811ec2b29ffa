/**
 * Trust policies of workload identity federation (SECURITY.md "Workload identity federation"): which OIDC
 * tokens may stand in for a service account's token at the token endpoint. A policy names one issuer, the
 * audiences it accepts, a subject rule and optional claim rules; a token that satisfies every rule of one
 * policy logs in as the account, with the account's own grants and nothing more.
 */

import { FEDERATION_ALGORITHMS, type FederationAlgorithm, type TrustPolicy } from "../model/trust-policy";

export const MAX_TRUST_POLICIES = 10;
export const MAX_AUDIENCES = 5;
export const MAX_CLAIM_RULES = 10;
const MAX_URL_LENGTH = 256;
const MAX_PATTERN_LENGTH = 256;
const MAX_CLAIM_NAME_LENGTH = 64;
const MAX_DESCRIPTION_LENGTH = 200;
export const DEFAULT_MAX_TOKEN_AGE_SECONDS = 3600;
const MAX_MAX_TOKEN_AGE_SECONDS = 24 * 3600;
export const DEFAULT_REPLAY_WINDOW_SECONDS = 300;
/** The fields a policy body may hold (admin API; anything else is refused). */
export const TRUST_POLICY_FIELDS = ["description", "issuer", "audiences", "subject", "claims", "algorithms", "maxTokenAgeSeconds", "replayWindowSeconds"] as const;

/** A policy body that breaks a rule; the message is safe to return (built from constants and validated values). */
export class TrustPolicyError extends Error {
  override name = "TrustPolicyError";
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Whether `url` may be an issuer or a JWKS location: `https://` without credentials, query or fragment;
 * `http://` only on loopback and only when ALLOW_INSECURE_OIDC_ISSUERS allows it (local development, tests).
 */
export function issuerUrlProblem(value: string, allowInsecure: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not a URL";
  }
  if (url.username || url.password || url.search || url.hash) return "must not hold credentials, a query or a fragment";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && allowInsecure && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return allowInsecure ? "must be https:// (or http:// on 127.0.0.1 or localhost)" : "must be https://";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function boundedString(value: unknown, field: string, max: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max) throw new TrustPolicyError(`${field} must be a non-empty string of at most ${max} characters`);
  // Control characters have no place in issuers, audiences or patterns, and would end up in audit details.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new TrustPolicyError(`${field} must not contain control characters`);
  return value;
}

function integerIn(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw new TrustPolicyError(`${field} must be an integer from ${min} to ${max}`);
  return value;
}

/** A pattern of only `*` would trust every subject of the issuer (for a CI issuer: every repository on it). */
function subjectPattern(value: unknown): string {
  const subject = boundedString(value, "subject", MAX_PATTERN_LENGTH);
  if (/^\**$/.test(subject)) throw new TrustPolicyError("subject must name something: a pattern of only * would trust every subject of the issuer");
  return subject;
}

/** Validates an admin API policy body (fields already restricted to TRUST_POLICY_FIELDS) into a policy with `id`. */
export function parseTrustPolicy(body: Record<string, unknown>, id: string, allowInsecure: boolean): TrustPolicy {
  const unknownField = Object.keys(body).find((key) => !(TRUST_POLICY_FIELDS as readonly string[]).includes(key));
  if (unknownField !== undefined) throw new TrustPolicyError(`trust policy holds an unknown field ${JSON.stringify(unknownField.slice(0, 40))}; allowed: ${TRUST_POLICY_FIELDS.join(", ")}`);
  const issuer = boundedString(body.issuer, "issuer", MAX_URL_LENGTH);
  const problem = issuerUrlProblem(issuer, allowInsecure);
  if (problem) throw new TrustPolicyError(`issuer ${problem}`);
  if (!Array.isArray(body.audiences) || body.audiences.length === 0 || body.audiences.length > MAX_AUDIENCES) {
    throw new TrustPolicyError(`audiences must be an array of 1 to ${MAX_AUDIENCES} strings`);
  }
  const audiences = [...new Set(body.audiences.map((audience) => boundedString(audience, "each audience", MAX_URL_LENGTH)))];
  const subject = subjectPattern(body.subject);
  let claims: Record<string, string> | undefined;
  if (body.claims !== undefined) {
    if (!isRecord(body.claims)) throw new TrustPolicyError("claims must be an object of claim name → exact value or glob");
    const entries = Object.entries(body.claims);
    if (entries.length > MAX_CLAIM_RULES) throw new TrustPolicyError(`claims may hold at most ${MAX_CLAIM_RULES} rules`);
    claims = {};
    for (const [name, pattern] of entries) {
      boundedString(name, "each claim name", MAX_CLAIM_NAME_LENGTH);
      // The registered claims have their own rules; a claim rule cannot loosen or duplicate them.
      if (["iss", "aud", "sub", "exp", "nbf", "iat", "jti"].includes(name)) throw new TrustPolicyError(`claim ${name} is checked by its own rule (issuer, audiences, subject, token age)`);
      claims[name] = boundedString(pattern, `claim ${name.slice(0, 40)}`, MAX_PATTERN_LENGTH);
    }
    if (entries.length === 0) claims = undefined;
  }
  let algorithms: FederationAlgorithm[] = [...FEDERATION_ALGORITHMS];
  if (body.algorithms !== undefined) {
    if (!Array.isArray(body.algorithms) || body.algorithms.length === 0 || !body.algorithms.every((alg) => (FEDERATION_ALGORITHMS as readonly unknown[]).includes(alg))) {
      throw new TrustPolicyError(`algorithms must be a non-empty array of ${FEDERATION_ALGORITHMS.join(", ")}`);
    }
    algorithms = [...new Set(body.algorithms as FederationAlgorithm[])];
  }
  const maxTokenAgeSeconds = integerIn(body.maxTokenAgeSeconds, "maxTokenAgeSeconds", 60, MAX_MAX_TOKEN_AGE_SECONDS, DEFAULT_MAX_TOKEN_AGE_SECONDS);
  // A window longer than the token may live would never apply; 0 = single use.
  const replayWindowSeconds = integerIn(body.replayWindowSeconds, "replayWindowSeconds", 0, maxTokenAgeSeconds, Math.min(DEFAULT_REPLAY_WINDOW_SECONDS, maxTokenAgeSeconds));
  const description = body.description === undefined ? undefined : boundedString(body.description, "description", MAX_DESCRIPTION_LENGTH);
  return {
    id,
    ...(description !== undefined ? { description } : {}),
    issuer,
    audiences,
    subject,
    ...(claims ? { claims } : {}),
    algorithms,
    maxTokenAgeSeconds,
    replayWindowSeconds,
  };
}

/**
 * Glob match: `*` matches any run of characters (`/` and `:` included, as AWS's StringLike does for the
 * same tokens), everything else is literal. Linear-time greedy matching with one backtrack point, so a
 * hostile pattern or value cannot make it slow (no regular expression is built from either).
 */
export function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes("*")) return pattern === value;
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = v;
    } else if (star !== -1) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/**
 * A claim's value as text for matching: strings as they are, booleans and numbers as JSON (`true`, `42`);
 * objects, arrays and absent claims match nothing. `a/b` is tried as one claim name first, then as `b`
 * inside object claim `a`.
 */
export function claimText(claims: Record<string, unknown>, name: string): string | undefined {
  let value: unknown = claims[name];
  if (value === undefined && name.includes("/")) {
    value = claims;
    for (const part of name.split("/")) value = isRecord(value) ? value[part] : undefined;
  }
  if (typeof value === "string") return value;
  if (typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) return JSON.stringify(value);
  return undefined;
}

/** The first rule of `policy` the verified claims break (for the audit log), or undefined when all hold. */
export function policyMismatch(policy: TrustPolicy, claims: Record<string, unknown>, alg: string, nowSeconds: number): string | undefined {
  if (!(policy.algorithms as string[]).includes(alg)) return `algorithm ${alg} not allowed`;
  const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!audiences.some((audience) => typeof audience === "string" && policy.audiences.includes(audience))) return "audience not allowed";
  if (typeof claims.sub !== "string" || !globMatch(policy.subject, claims.sub)) return "subject does not match";
  for (const [name, pattern] of Object.entries(policy.claims ?? {})) {
    const text = claimText(claims, name);
    if (text === undefined || !globMatch(pattern, text)) return `claim ${name} does not match`;
  }
  // A maximum token age bounds what a leaked long-lived token is worth, whatever its own `exp` says.
  if (typeof claims.iat !== "number" || nowSeconds - claims.iat > policy.maxTokenAgeSeconds) return "token older than maxTokenAgeSeconds";
  return undefined;
}
