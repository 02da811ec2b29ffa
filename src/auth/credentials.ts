/**
 * Checks a username and secret: service accounts (`<org id>|<name>` + random token, HMAC under the
 * pepper), web users (PBKDF2 password) and the bootstrap admin (a secret). Every path costs about the
 * same whether or not the account exists, and every comparison is constant-time.
 */
import type { Principal } from "./access-model";
import { BOOTSTRAP_ADMIN_USERNAME, parseServiceAccountUsername } from "./identity-grammar";
import type { Hmac, PasswordHasher } from "../crypto/secrets";
import type { IdentityStore } from "../storage/identity-store";

export interface AuthenticatedIdentity {
  /** The token subject: the username. */
  subject: string;
  principal: Principal;
}

export class CredentialVerifier {
  constructor(
    private readonly identities: IdentityStore,
    private readonly tokenHmac: Hmac,
    private readonly passwords: PasswordHasher,
    private readonly bootstrapAdminPassword: string | undefined,
  ) {}

  async authenticate(username: string, secret: string): Promise<AuthenticatedIdentity | undefined> {
    if (parseServiceAccountUsername(username)) return this.serviceAccount(username, secret);
    if (username === BOOTSTRAP_ADMIN_USERNAME) return this.bootstrapAdmin(secret);
    return this.webUser(username, secret);
  }

  private async serviceAccount(username: string, token: string): Promise<AuthenticatedIdentity | undefined> {
    const record = await this.identities.getServiceAccount(username);
    // An unknown account still pays for one HMAC, against a hash that matches nothing.
    const matches = await this.tokenHmac.verifyHex(token, record?.tokenHash ?? "0".repeat(64));
    if (!record || !matches || record.disabled) return undefined;
    return { subject: username, principal: { kind: "service-account", registryAdmin: false, grants: record.grants } };
  }

  private async bootstrapAdmin(password: string): Promise<AuthenticatedIdentity | undefined> {
    const expected = this.bootstrapAdminPassword;
    const matches = await this.tokenHmac.verifyHex(password, await this.tokenHmac.signHex(expected ?? crypto.randomUUID()));
    if (!expected || !matches) return undefined;
    return { subject: BOOTSTRAP_ADMIN_USERNAME, principal: { kind: "user", registryAdmin: true, grants: [] } };
  }

  private async webUser(username: string, password: string): Promise<AuthenticatedIdentity | undefined> {
    const record = await this.identities.getUser(username);
    if (!record) {
      await this.passwords.burn(password);
      return undefined;
    }
    const matches = await this.passwords.verify(password, record.password);
    if (!matches || record.disabled) return undefined;
    return { subject: username, principal: { kind: "user", registryAdmin: record.registryAdmin, grants: record.grants } };
  }
}
