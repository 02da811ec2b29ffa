/**
 * The one place that builds `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3; distribution's
 * token accesscontroller). Clients parse one challenge per header (containers/image), so exactly one
 * header is set, and `insufficient_scope` names exactly one scope (containers/image retries only then).
 */
export type ChallengeError = "invalid_token" | "insufficient_scope";

export interface Challenge {
  realm: string;
  service: string;
  /** Formatted scope, e.g. `repository:acme/app:pull`. */
  scope?: string;
  error?: ChallengeError;
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

export function formatChallenge(challenge: Challenge): string {
  const params = [`realm=${quote(challenge.realm)}`, `service=${quote(challenge.service)}`];
  if (challenge.scope) params.push(`scope=${quote(challenge.scope)}`);
  if (challenge.error) params.push(`error=${quote(challenge.error)}`);
  return `Bearer ${params.join(",")}`;
}
