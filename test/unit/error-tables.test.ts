/**
 * The error tables and the one error→response place (routes/error-response.ts): every code has a status,
 * every surface renders every kind of error it can meet in its own format with a status from its table,
 * and anything unexpected is a logged 500.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/config/config";
import { ADMIN_ERRORS, AdminApiError, adminRefusal, type AdminErrorCode } from "../../src/http/api-errors";
import { allowsStatus, type ErrorTable } from "../../src/http/error-table";
import { OAUTH_ERRORS, TokenEndpointError, type OAuthErrorCode } from "../../src/http/oauth-errors";
import { OCI_ERRORS, RegistryError, type OciErrorCode } from "../../src/http/oci-errors";
import { RequestLimitError, errorToResponse, surfaceOf, type Surface } from "../../src/routes/error-response";

const TABLES: [string, ErrorTable][] = [
  ["OCI", OCI_ERRORS],
  ["OAuth", OAUTH_ERRORS],
  ["admin", ADMIN_ERRORS],
];

describe.each(TABLES)("the %s table", (_name, table) => {
  it.each(Object.keys(table))("%s has an error status, and other statuses only where listed", (code) => {
    const entry = table[code]!;
    expect(Number.isInteger(entry.status)).toBe(true);
    expect(entry.status).toBeGreaterThanOrEqual(400);
    expect(entry.status).toBeLessThan(600);
    for (const other of entry.otherStatuses ?? []) {
      expect(other).toBeGreaterThanOrEqual(400);
      expect(other).toBeLessThan(600);
      expect(other).not.toBe(entry.status);
    }
    expect(allowsStatus(table, code, entry.status)).toBe(true);
    expect(allowsStatus(table, code, 418)).toBe(false);
  });
});

const PATHS: Record<Surface, string> = { oci: "/v2/acme/app/manifests/v1", oauth: "/token", admin: "/admin/v1/users" };

/** The code and status a response carries, read in the format of its surface (and only that one). */
async function read(surface: Surface, response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as Record<string, unknown>;
  if (surface === "oci") {
    const [error] = body.errors as { code: string; message: string; detail: unknown }[];
    expect(Object.keys(body)).toEqual(["errors"]);
    return { status: response.status, code: error!.code, message: error!.message };
  }
  if (surface === "oauth") {
    expect(Object.keys(body).sort()).toEqual(["error", "error_description"]);
    return { status: response.status, code: body.error as string, message: body.error_description as string };
  }
  const error = body.error as { code: string; message: string };
  expect(Object.keys(body)).toEqual(["error"]);
  return { status: response.status, code: error.code, message: error.message };
}

const tableOf: Record<Surface, ErrorTable> = { oci: OCI_ERRORS, oauth: OAUTH_ERRORS, admin: ADMIN_ERRORS };

/** One error of each code of a surface's own type, at its own status. */
function ownErrors(surface: Surface): Error[] {
  if (surface === "oci") return (Object.keys(OCI_ERRORS) as OciErrorCode[]).map((code) => new RegistryError(code));
  if (surface === "oauth") return (Object.keys(OAUTH_ERRORS) as OAuthErrorCode[]).map((code) => new TokenEndpointError(OAUTH_ERRORS[code].status as never, code, "d"));
  return (Object.keys(ADMIN_ERRORS) as AdminErrorCode[]).map((code) => new AdminApiError(ADMIN_ERRORS[code].status as never, code, "m"));
}

describe("the surface is chosen by the path", () => {
  it.each([
    ["/v2/", "oci"],
    ["/v2", "oci"],
    ["/v2/acme/app/blobs/uploads/", "oci"],
    ["/token", "oauth"],
    ["/admin/v1/users", "admin"],
    ["/account/v1/password", "admin"],
    ["/blob-data/blobs/x", "admin"],
    ["/.well-known/jwks.json", "admin"],
    ["/v2x", "admin"],
    ["/tokens", "admin"],
  ])("%s → %s", (path, surface) => expect(surfaceOf(path)).toBe(surface));
});

describe.each(["oci", "oauth", "admin"] as Surface[])("the %s surface", (surface) => {
  const request = (method = "GET") => new Request(`https://registry.example${PATHS[surface]}`, { method });
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  afterEach(() => logged.mockClear());

  it("renders each code of its own table at the table's status, unlogged", async () => {
    for (const error of ownErrors(surface)) {
      const { status, code } = await read(surface, errorToResponse(error, request(), surface));
      expect(tableOf[surface][code]?.status, code).toBe(status);
    }
    expect(logged).not.toHaveBeenCalled();
  });

  it.each([414, 431] as const)("renders a request over the limits (%i) in its own format", async (limit) => {
    const { status, code, message } = await read(surface, errorToResponse(new RequestLimitError(limit, "too big"), request(), surface));
    expect(status).toBe(limit);
    expect(allowsStatus(tableOf[surface], code, status)).toBe(true);
    expect(message).toBe("too big");
    expect(logged).not.toHaveBeenCalled();
  });

  it("renders a missing configuration as a logged 503 in its own format", async () => {
    const { status, code, message } = await read(surface, errorToResponse(new ConfigError("SECRET_PEPPER is missing"), request(), surface));
    expect(status).toBe(503);
    expect(allowsStatus(tableOf[surface], code, status)).toBe(true);
    expect(message).not.toContain("SECRET_PEPPER");
    expect(JSON.parse(logged.mock.calls[0]![0] as string)).toMatchObject({ event: "config_error", path: PATHS[surface] });
  });

  const strangers: [string, unknown][] = [
    ["a TypeError", new TypeError("secret internals")],
    ["a thrown string", "secret internals"],
    ["another surface's error", surface === "admin" ? new RegistryError("NAME_INVALID", { message: "secret internals" }) : new AdminApiError(404, "not_found", "secret internals")],
  ];
  it.each(strangers)("answers %s with a logged 500 in its own format, without internals", async (_label, error) => {
    const { status, code, message } = await read(surface, errorToResponse(error, request(), surface));
    expect(status).toBe(500);
    expect(tableOf[surface][code]?.status).toBe(500);
    expect(message).not.toContain("secret internals");
    expect(JSON.parse(logged.mock.calls[0]![0] as string)).toMatchObject({ event: "unhandled_error", method: "GET", path: PATHS[surface] });
  });
});

describe("HEAD on /v2/", () => {
  it("carries the error's status and no body", async () => {
    const response = errorToResponse(new RegistryError("MANIFEST_UNKNOWN"), new Request("https://registry.example/v2/a/b/manifests/x", { method: "HEAD" }), "oci");
    expect(response.status).toBe(404);
    expect(await response.text()).toBe("");
  });
});

describe("storage refusals in the admin format", () => {
  it.each([
    [400, "invalid_request"],
    [404, "not_found"],
    [409, "conflict"],
  ])("%i → %s", (status, code) => {
    const error = adminRefusal(status, "m");
    expect(error).toBeInstanceOf(AdminApiError);
    expect((error as AdminApiError).code).toBe(code);
    expect((error as AdminApiError).status).toBe(status);
  });
  it("a status no code has is not dressed as one (it is logged as a bug)", () => {
    expect(adminRefusal(418, "m")).not.toBeInstanceOf(AdminApiError);
  });
});
