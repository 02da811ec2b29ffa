/** Reading and validating admin API request bodies. */
import { ROLES, type GrantTarget, type Role } from "../model/grants";
import { isValidNamespace } from "../auth/identity-grammar";
import { readBodyLimited } from "../http/body";
import { AdminApiError } from "../http/api-errors";
import { isValidRepositoryName } from "../oci/reference";

const MAX_ADMIN_BODY_BYTES = 64 * 1024;
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

export function badRequest(message: string): AdminApiError {
  return new AdminApiError(400, "invalid_request", message);
}

/** The fields each route's JSON body may hold, declared in the route table (routes/admin-router.ts). */
const declaredFields = new WeakMap<Request, readonly string[]>();
/** Bodies already read and validated, by request. */
const readBodies = new WeakMap<Request, Record<string, unknown>>();

/** Declares the body fields a request's route accepts; any other field is refused with 400. */
export function declareBodyFields(request: Request, fields: readonly string[]): void {
  declaredFields.set(request, fields);
}

/** `application/json` (with or without parameters). */
export function isJsonContentType(value: string | null): boolean {
  return (value ?? "").split(";")[0]!.trim().toLowerCase() === "application/json";
}

/**
 * Whether a request carries body bytes: "none" (no body, or `Content-Length: 0`), "some" (a positive
 * `Content-Length`, as browsers always declare), or "unknown" (a stream of undeclared length).
 */
export function bodyPresence(request: Request): "none" | "some" | "unknown" {
  if (request.body === null) return "none";
  const declared = request.headers.get("Content-Length");
  if (declared === null) return "unknown";
  return Number(declared) === 0 ? "none" : "some";
}

/**
 * The JSON object body of a request whose route declared its fields: `Content-Type: application/json`
 * (a form or text/plain body is what a cross-site HTML form can send), at most 64 KiB, no unknown field.
 * A request without a body needs no Content-Type: it is refused for the missing object (400), not 415.
 */
export async function readJson(request: Request): Promise<Record<string, unknown>> {
  // Read once: a route's role may need a field (admin/route-roles.ts) before its handler reads the body.
  const read = readBodies.get(request);
  if (read) return read;
  const fields = declaredFields.get(request);
  // A route that reads a body without declaring its fields is a bug, not a client error.
  if (!fields) throw new Error("admin route reads a JSON body without declaring its fields");
  const json = isJsonContentType(request.headers.get("Content-Type"));
  if (!json && bodyPresence(request) === "some") {
    throw new AdminApiError(415, "unsupported_media_type", "request bodies must be application/json");
  }
  const bytes = await readBodyLimited(request, MAX_ADMIN_BODY_BYTES);
  if (!bytes) throw new AdminApiError(413, "invalid_request", "request body too large");
  if (bytes.length === 0) throw badRequest("request body must be a JSON object");
  if (!json) throw new AdminApiError(415, "unsupported_media_type", "request bodies must be application/json");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) as unknown;
  } catch {
    throw badRequest("request body must be a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badRequest("request body must be a JSON object");
  const body = onlyFields(value as Record<string, unknown>, fields, "request body");
  readBodies.set(request, body);
  return body;
}

/** `body` when it holds no field outside `allowed`; else 400 naming the first unknown field (cut, quoted). */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[], what: string): Record<string, unknown> {
  const unknown = Object.keys(body).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw badRequest(`${what} holds an unknown field ${JSON.stringify(unknown.slice(0, 40))}; allowed: ${allowed.join(", ") || "none"}`);
  }
  return body;
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

export const GRANT_TARGET_FIELDS = ["namespace", "repository"] as const;
export const GRANT_FIELDS = [...GRANT_TARGET_FIELDS, "role"] as const;

/** `{"namespace":"acme","role":"read"}` or `{"repository":"acme/app","role":"write"}`. */
export function grant(body: Record<string, unknown>, withRole: boolean): { target: GrantTarget; role: Role } {
  onlyFields(body, withRole ? GRANT_FIELDS : GRANT_TARGET_FIELDS, "grant");
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
