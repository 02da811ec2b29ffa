/**
 * The console's JSON client: the admin API (/admin/v1), the account API (/account/v1) and the session API
 * (/console/v1), authenticated by the session cookie the browser sends (HttpOnly: this script never sees
 * it). Every state-changing request carries the session's CSRF token; the browser adds `Origin`.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = "";
/** Called on sign-in and whenever the session is read; cleared on sign-out. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Told when any request answers 401 (the session expired or was revoked): the app shows the sign-in form. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

/** Every page of a paged account-API listing: follows `next` (a path) until it is null. */
export async function allPages<P extends { next: string | null }>(first: string): Promise<P[]> {
  const pages: P[] = [];
  for (let path: string | null = first; path !== null; ) {
    const page: P = await api<P>("GET", path);
    pages.push(page);
    path = page.next;
  }
  return pages;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? `${response.status} ${response.statusText}`;
    // A failed sign-in is answered on the form itself.
    if (response.status === 401 && path !== SESSION_PATH) onUnauthorized();
    throw new ApiError(response.status, `${response.status}: ${message}`);
  }
  return parsed as T;
}

import type { AuditEventView, CredentialOutputsView, GrantView, IssuedCredentials, NamespaceView, ServiceAccountView, TagMoveView } from "../../src/http/admin-api-types";

export const SESSION_PATH = "/console/v1/session";

/** A path segment: service-account names hold `|`, repository names `/` (kept: the API's `:name+` routes). */
export const segment = (value: string) => encodeURIComponent(value);
export const repositoryPath = (name: string) => name.split("/").map(encodeURIComponent).join("/");

// What the APIs answer: the admin API's wire types (src/http/admin-api-types.ts, type-only), and the fields the
// pages use of the answers that have none there.
export type Grant = GrantView;
export type Namespace = NamespaceView;
export type TagMove = TagMoveView;
export type ServiceAccount = ServiceAccountView;
export type Credentials = CredentialOutputsView;
export type IssuedToken = IssuedCredentials;
export type AuditEvent = AuditEventView;
export interface Session {
  username: string;
  registryAdmin: boolean;
  grants: Grant[];
  csrfToken: string;
}
/** GET /account/v1/repositories (src/admin/pullable.ts): what the caller may pull, a page at a time. */
export interface PullableRepository {
  name: string;
  actions: string[];
}
export interface PullablePage {
  repositories: PullableRepository[];
  next: string | null;
}
/** GET /account/v1/repositories/<name>/tags: `size` is an image's config and layers as pushed, null for an index. */
export interface PullableTag {
  name: string;
  digest: string | null;
  mediaType: string | null;
  size: number | null;
}
export interface PullableTagsPage {
  name: string;
  tags: PullableTag[];
  next: string | null;
}
/** The credential outputs exactly as the API returns them (src/admin/credential-outputs.ts). */
export interface RefreshToken {
  id: string;
  service: string;
  clientId: string;
  createdAt: string;
}
