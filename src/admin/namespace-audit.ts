/**
 * Which audit events concern a namespace, for its administrators (`GET /admin/v1/audit?namespace=`): changes
 * to the namespace, its repositories and their lifecycle, its service accounts, and grants on it or on its
 * repositories. Events about web users, refresh tokens, garbage collection and failed logins span namespaces
 * and are for registry administrators only.
 */
import { namespaceOf } from "../model/grants";
import type { AuditEvent } from "../storage/audit-log";

/** Actions whose target is the namespace (`acme`, `namespace:acme`) or one of its repositories (`acme/app`). */
const NAMESPACE_TARGETED = ["namespace.", "repository.", "immutable-tag.", "untagged-retention.", "retention.", "quota.", "tag.", "tag-history.", "manifest."];

/** A grant's detail ends with its target: `write on namespace acme`, `repository acme/app`. */
const GRANT_TARGET = /(?:^| )(?:namespace|repository) (\S+)$/;

export function concernsNamespace(event: AuditEvent, namespace: string, organizationId: string): boolean {
  const target = event.target ?? "";
  if (NAMESPACE_TARGETED.some((prefix) => event.action.startsWith(prefix))) {
    return target === namespace || target === `namespace:${namespace}` || target.startsWith(`${namespace}/`);
  }
  // Service accounts are named `<organization id>|<name>` after their namespace.
  if (event.action.startsWith("service-account.")) return target.startsWith(`${organizationId}|`);
  if (event.action.startsWith("grant.")) {
    const granted = GRANT_TARGET.exec(event.detail ?? "")?.[1];
    return target.startsWith(`sa/${organizationId}|`) || (granted !== undefined && namespaceOf(granted) === namespace);
  }
  return false;
}
