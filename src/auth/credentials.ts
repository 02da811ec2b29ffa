/**
 * Checks a username and secret: service accounts (`<org id>|<name>` or `<namespace>+<name>` + random token, HMAC under the
 * pepper), web users (PBKDF2 password) and the bootstrap admin (a secret). Every path costs about the
 * same whether or not the account exists, and every comparison is constant-time.
 */
import type { Principal } from "./access-model";
import { looksLikeJwt, type FederationVerifier } from "./federation";
import { BOOTSTRAP_ADMIN_USERNAME, isServiceAccountName, isValidUsername } from "./identity-grammar";
import { canonicalServiceAccountUsername } from "./service-account-names";
import type { Hmac, PasswordHasher } from "../crypto/secrets";
import type { IdentityStore, ServiceAccountRecord, UserRecord } from "../storage/identity-store";
import { accountState, principalIds, type PrincipalId } from "../model/principal";

/** A hash no token matches, compared against when there is nothing stored, to keep timing uniform. */
const NO_HASH = "0".repeat(64);

/** Whether a record confirmed with the ledger is the one the login already checked (JSON of the same writer). */
function sameRecord(confirmed: object | null, checked: object): boolean {
  return confirmed !== null && JSON.stringify(confirmed) === JSON.stringify(checked);
}

export interface AuthenticatedIdentity {
  /** The token subject: the username. */
  subject: string;
  /** The grant holder, for last-used tracking and refresh tokens. */
  id: PrincipalId;
  principal: Principal;
  /** Set when an OIDC token stood in for the service account's token (workload identity federation). */
  federated?: { issuer: string; subject: string; policyId: string };
}

/** Why a credential was refused, for the audit log only; clients always see one generic error. */
export type RefusalReason = "invalid-username" | "unknown-account" | "wrong-secret" | "disabled" | "expired" | "federation-refused";

/** `detail` says which rule refused a federated token (audit log only, never the caller). */
export type AuthenticationResult = { ok: true; identity: AuthenticatedIdentity } | { ok: false; reason: RefusalReason; detail?: string };

/**
 * Where an OIDC token may stand in for a service-account token: only the token endpoint passes this
 * (the admin and account APIs never accept federated logins). `background` runs work after the answer.
 */
export interface FederationContext {
  background: (work: Promise<unknown>) => void;
}

export class CredentialVerifier {
  constructor(
    private readonly identities: IdentityStore,
    private readonly tokenHmac: Hmac,
    private readonly passwords: PasswordHasher,
    private readonly bootstrapAdminPassword: string | undefined,
    private readonly federation?: FederationVerifier,
  ) {}

  /** Checks a username and secret; a refusal carries its reason (for the audit log only). */
  async check(username: string, secret: string, now = new Date(), federation?: FederationContext): Promise<AuthenticationResult> {
    if (isServiceAccountName(username)) {
      // `acme+ci` logs in as the stored `<org id>|ci`; a namespace that does not exist costs what an unknown account costs.
      const stored = await canonicalServiceAccountUsername(this.identities, username);
      return stored ? this.serviceAccount(stored, secret, now, federation) : this.serviceAccountToken(username, null, secret, now);
    }
    if (username === BOOTSTRAP_ADMIN_USERNAME) return this.bootstrapAdmin(secret);
    if (isValidUsername(username)) return this.webUser(username, secret);
    // Neither identity grammar: no storage key is built from it (KV keys stop at 512 bytes); it costs
    // what an unknown user costs.
    await this.passwords.burn(secret);
    return { ok: false, reason: "invalid-username" };
  }

  private async serviceAccount(username: string, token: string, now: Date, federation?: FederationContext): Promise<AuthenticationResult> {
    const record = await this.identities.getServiceAccountForLogin(username);
    // Federation: a JWT-shaped secret for an account with trust policies (a service-account token never has that shape).
    if (federation && this.federation && record?.trustPolicies?.length && looksLikeJwt(token)) {
      return this.federated(username, record, token, now, federation);
    }
    const result = await this.serviceAccountToken(username, record, token, now);
    if (result.ok || !record) return result;
    // The record came from KV or the login cache and may predate a rotation or a re-enable (platform.md §1:
    // no read-your-writes, up to 60 s elsewhere): a refusal stands only if the ledger's record agrees.
    const confirmed = await this.identities.confirmServiceAccountForLogin(username);
    return sameRecord(confirmed, record) ? result : this.serviceAccountToken(username, confirmed, token, now);
  }

  private async serviceAccountToken(username: string, record: ServiceAccountRecord | null, token: string, now: Date): Promise<AuthenticationResult> {
    // The comparison always runs (an unknown account against a hash that matches nothing), so timing does
    // not tell whether the account exists. The previous token is checked only during a rotation overlap:
    // whether one is open is not secret, and it keeps the common path at one HMAC.
    const current = await this.tokenHmac.verifyHex(token, record?.tokenHash ?? NO_HASH);
    if (!record) return { ok: false, reason: "unknown-account" };
    const overlapOpen = record.previousTokenHash !== undefined && record.previousTokenExpiresAt !== undefined && now < new Date(record.previousTokenExpiresAt);
    const previous = !current && overlapOpen && (await this.tokenHmac.verifyHex(token, record.previousTokenHash!));
    if (!current && !previous) return { ok: false, reason: "wrong-secret" };
    const state = accountState(record, now);
    if (state !== "active") return { ok: false, reason: state };
    const principal: Principal = { kind: "service-account", registryAdmin: false, grants: record.grants };
    return { ok: true, identity: { subject: username, id: principalIds.serviceAccount(username), principal } };
  }

  /** An OIDC token standing in for the account's token: the account's own grants, never more (SECURITY.md). */
  private async federated(username: string, record: ServiceAccountRecord, token: string, now: Date, federation: FederationContext): Promise<AuthenticationResult> {
    // The account's state first: a disabled or expired account costs no key fetch.
    const state = accountState(record, now);
    if (state !== "active") return { ok: false, reason: state, detail: "federated token" };
    const result = await this.federation!.verify(record.trustPolicies!, token, federation.background);
    if (!result.ok) return { ok: false, reason: "federation-refused", detail: result.reason };
    const principal: Principal = { kind: "service-account", registryAdmin: false, grants: record.grants };
    return {
      ok: true,
      identity: { subject: username, id: principalIds.serviceAccount(username), principal, federated: { issuer: result.issuer, subject: result.subject, policyId: result.policy.id } },
    };
  }

  private async bootstrapAdmin(password: string): Promise<AuthenticationResult> {
    const expected = this.bootstrapAdminPassword;
    const matches = await this.tokenHmac.verifyHex(password, await this.tokenHmac.signHex(expected ?? crypto.randomUUID()));
    if (!expected || !matches) return { ok: false, reason: expected ? "wrong-secret" : "unknown-account" };
    const principal: Principal = { kind: "user", registryAdmin: true, grants: [] };
    return { ok: true, identity: { subject: BOOTSTRAP_ADMIN_USERNAME, id: principalIds.user(BOOTSTRAP_ADMIN_USERNAME), principal } };
  }

  private async webUser(username: string, password: string): Promise<AuthenticationResult> {
    const record = await this.identities.getUserForLogin(username);
    if (!record) {
      await this.passwords.burn(password);
      return { ok: false, reason: "unknown-account" };
    }
    const result = await this.userPassword(record, password);
    if (result.ok) return result;
    // As for service accounts: a new password or a re-enable works at once, whatever KV still says.
    const confirmed = await this.identities.confirmUserForLogin(username);
    if (!confirmed || sameRecord(confirmed, record)) return confirmed ? result : { ok: false, reason: "unknown-account" };
    return this.userPassword(confirmed, password);
  }

  private async userPassword(record: UserRecord, password: string): Promise<AuthenticationResult> {
    if (!(await this.passwords.verify(password, record.password))) return { ok: false, reason: "wrong-secret" };
    if (record.disabled) return { ok: false, reason: "disabled" };
    return { ok: true, identity: this.userIdentity(record) };
  }

  /** The identity of a web user record (also used when a refresh token stands in for the password). */
  userIdentity(record: UserRecord): AuthenticatedIdentity {
    const principal: Principal = { kind: "user", registryAdmin: record.registryAdmin, grants: record.grants };
    return { subject: record.username, id: principalIds.user(record.username), principal };
  }
}
