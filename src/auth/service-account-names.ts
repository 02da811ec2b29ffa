/**
 * The two spellings of a service account: `<org id>|<name>` (registry.redhat.io's, the stored username) and
 * `<namespace>+<name>` (Quay's robot accounts). Both are accepted wherever an account is named (token endpoint,
 * admin API, CLI); everything past this point sees the stored username only.
 */
import type { IdentityStore } from "../storage/identity-store";
import { parseQuayServiceAccountName, parseServiceAccountUsername } from "./identity-grammar";

/**
 * The stored username an account name stands for: itself for `<org id>|<name>`, the namespace's organization id
 * and the name for `<namespace>+<name>`; undefined when it is neither spelling or names no namespace.
 */
export async function canonicalServiceAccountUsername(identities: Pick<IdentityStore, "getNamespace">, text: string): Promise<string | undefined> {
  if (parseServiceAccountUsername(text)) return text;
  const quay = parseQuayServiceAccountName(text);
  if (!quay) return undefined;
  const namespace = await identities.getNamespace(quay.namespace);
  return namespace ? `${namespace.organizationId}|${quay.name}` : undefined;
}
