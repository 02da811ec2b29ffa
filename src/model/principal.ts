/**
 * Principals: who may hold grants and log in. Two kinds, spelled once here: web users and service accounts
 * (`anonymous` holds nothing and has no id). A principal id names one principal wherever it is stored (the
 * identity ledger's rows, `lastused:` and `login-device:` keys; docs/storage-schema.md): `user/<username>`
 * or `sa/<org id>|<name>`.
 */
export type PrincipalKind = "user" | "service-account";

export type PrincipalId = `user/${string}` | `sa/${string}`;

const USER_ID_PREFIX = "user/";
const SERVICE_ACCOUNT_ID_PREFIX = "sa/";

/** The id of each kind of principal, by its username. */
export const principalIds = {
  user: (username: string): PrincipalId => `${USER_ID_PREFIX}${username}`,
  serviceAccount: (username: string): PrincipalId => `${SERVICE_ACCOUNT_ID_PREFIX}${username}`,
  /** Every service account of the namespace with this organization id has an id starting so. */
  serviceAccountsOfOrganization: (organizationId: string): string => `${SERVICE_ACCOUNT_ID_PREFIX}${organizationId}|`,
};

export function principalKindOf(id: PrincipalId): PrincipalKind {
  return id.startsWith(USER_ID_PREFIX) ? "user" : "service-account";
}

/** The username an id names. */
export function principalUsername(id: PrincipalId): string {
  return id.slice(id.indexOf("/") + 1);
}

export type AccountState = "active" | "disabled" | "expired";

/**
 * Whether an account may log in: a disabled one may not, nor a service account past its `expiresAt` (web
 * users have no expiry). The one statement of the rule, for the admin API's view and every login.
 */
export function accountState(account: { disabled: boolean; expiresAt?: string }, now = new Date()): AccountState {
  if (account.disabled) return "disabled";
  if (account.expiresAt !== undefined && now >= new Date(account.expiresAt)) return "expired";
  return "active";
}
