/** Grammar of web usernames, service-account names and namespaces. None may contain ':' (see storage/keys.ts). */
import { isValidRepositoryName } from "../oci/reference";

/** The bootstrap administrator, whose password is the BOOTSTRAP_ADMIN_PASSWORD secret; no KV user may take it. */
export const BOOTSTRAP_ADMIN_USERNAME = "admin";

const USERNAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const SERVICE_ACCOUNT_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const SERVICE_ACCOUNT_USERNAME = /^([0-9]{8})\|([a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?)$/;

export function isValidUsername(name: string): boolean {
  return USERNAME.test(name);
}

export function isValidServiceAccountName(name: string): boolean {
  return SERVICE_ACCOUNT_NAME.test(name);
}

/** `12345678|ci-puller` → organization id and name (registry.redhat.io's form). */
export function parseServiceAccountUsername(username: string): { organizationId: string; name: string } | undefined {
  const match = SERVICE_ACCOUNT_USERNAME.exec(username);
  return match ? { organizationId: match[1]!, name: match[2]! } : undefined;
}

/** `acme+ci-puller`: Quay's robot-account form, namespace then name; a namespace never holds `+` (OCI name grammar). */
const QUAY_SERVICE_ACCOUNT_NAME = /^([^+]{1,64})\+([a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?)$/;

/** `acme+ci-puller` → namespace and name (Quay's form, accepted wherever a service account is named). */
export function parseQuayServiceAccountName(text: string): { namespace: string; name: string } | undefined {
  const match = QUAY_SERVICE_ACCOUNT_NAME.exec(text);
  return match && isValidNamespace(match[1]!) ? { namespace: match[1]!, name: match[2]! } : undefined;
}

/** Either spelling of a service account: `<org id>|<name>` or `<namespace>+<name>`. */
export function isServiceAccountName(text: string): boolean {
  return parseServiceAccountUsername(text) !== undefined || parseQuayServiceAccountName(text) !== undefined;
}

/** A namespace is one repository-name component. */
export function isValidNamespace(name: string): boolean {
  return !name.includes("/") && name.length <= 64 && isValidRepositoryName(name);
}
