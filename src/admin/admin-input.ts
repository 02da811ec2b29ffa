/** Reading and validating admin API request bodies. */
import { ROLES, type GrantTarget, type Role } from "../auth/access-model";
import { isValidNamespace } from "../auth/identity-grammar";
import { readBodyLimited } from "../http/body";
import { AdminApiError } from "../http/api-errors";
import { isValidRepositoryName } from "../registry/reference";

const MAX_ADMIN_BODY_BYTES = 64 * 1024;
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

export function badRequest(message: string): AdminApiError {
  return new AdminApiError(400, "invalid_request", message);
}

export async function readJson(request: Request): Promise<Record<string, unknown>> {
  const bytes = await readBodyLimited(request, MAX_ADMIN_BODY_BYTES);
  if (!bytes) throw new AdminApiError(413, "invalid_request", "request body too large");
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw badRequest("request body must be a JSON object");
  }
}

export function optionalString(body: Record<string, unknown>, field: string, maxLength = 512): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length > maxLength) throw badRequest(`${field} must be a string of at most ${maxLength} characters`);
  return value;
}

export function requiredString(body: Record<string, unknown>, field: string, maxLength = 512): string {
  const value = optionalString(body, field, maxLength);
  if (value === undefined) throw badRequest(`${field} is required`);
  return value;
}

export function optionalBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw badRequest(`${field} must be true or false`);
  return value;
}

export function optionalInteger(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function password(body: Record<string, unknown>): string {
  const value = requiredString(body, "password", MAX_PASSWORD_LENGTH);
  if (value.length < MIN_PASSWORD_LENGTH) throw badRequest(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  return value;
}

/** `{"namespace":"acme","role":"read"}` or `{"repository":"acme/app","role":"write"}`. */
export function grant(body: Record<string, unknown>, withRole: boolean): { target: GrantTarget; role: Role } {
  const namespace = optionalString(body, "namespace");
  const repository = optionalString(body, "repository");
  if ((namespace === undefined) === (repository === undefined)) throw badRequest("give exactly one of namespace or repository");
  if (namespace !== undefined && !isValidNamespace(namespace)) throw badRequest("invalid namespace name");
  if (repository !== undefined && (!isValidRepositoryName(repository) || !repository.includes("/"))) {
    throw badRequest("repository must be a valid name of the form <namespace>/<path>");
  }
  const target: GrantTarget = namespace !== undefined ? { kind: "namespace", name: namespace } : { kind: "repository", name: repository! };
  const role = body.role;
  if (withRole && !ROLES.includes(role as Role)) throw badRequest(`role must be one of ${ROLES.join(", ")}`);
  return { target, role: role as Role };
}
