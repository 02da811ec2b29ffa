/**
 * A service account's trust policy (SECURITY.md "Workload identity federation"): which OIDC tokens may
 * stand in for the account's token. Parsed and matched in auth/oidc-policy.ts; stored with the account.
 */
/** OIDC Core §3.1.3.7 / RFC 7518 §3.1: asymmetric signatures only; `none` and HMAC are never accepted. */
export const FEDERATION_ALGORITHMS = ["RS256", "ES256"] as const;
export type FederationAlgorithm = (typeof FEDERATION_ALGORITHMS)[number];

export interface TrustPolicy {
  /** Server-made id (8 hex), for the admin API's PUT/DELETE of one policy. */
  id: string;
  description?: string;
  /** The exact `iss` (OIDC Discovery §4.3: it must equal the discovery document's `issuer`). */
  issuer: string;
  /** The token's `aud` must contain one of these (RFC 7519 §4.1.3). */
  audiences: string[];
  /** `sub`, exact or a glob (`*` matches any run of characters). */
  subject: string;
  /** Further claims, exact or glob, by name; `a/b` reaches `b` inside object claim `a` (e.g. `kubernetes.io/namespace`). */
  claims?: Record<string, string>;
  /** Accepted signature algorithms (default both). */
  algorithms: FederationAlgorithm[];
  /** Tokens issued (`iat`) longer ago are refused, whatever their `exp` (default 3600). */
  maxTokenAgeSeconds: number;
  /**
   * How long after its first use a token may be presented again (podman login, then push with the stored
   * password); never past its `exp`. 0: each token is accepted once.
   */
  replayWindowSeconds: number;
}
