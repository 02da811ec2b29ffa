/**
 * Identity records written to KV before the identity ledger existed keep working: the ledger imports them
 * at its first use (storage is per test file, so this file's ledger starts empty, its KV holding only what
 * `beforeAll` writes, as a deployment from before the ledger would).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { Hmac, PasswordHasher } from "../../src/crypto/secrets";
import type { NamespaceRecord, ServiceAccountRecord, UserRecord } from "../../src/storage/identity-store";
import { SERVICE, adminCall, basic, call, createNamespace, identityLedger, untilIdentityPublished } from "../helpers/registry";

const PASSWORD = "a legacy password of some length";
const TOKEN = "legacy-service-account-token-0000000000000";
const LEGACY_ORG = "31415926";
/** A namespace deleted before the fix of issue 10 defect 3, whose account and grants were left behind. */
const DELETED_ORG = "27182818";

let legacyPasswordHash: string;



async function tokenStatus(username: string, secret: string, scope?: string): Promise<number> {
  const query = new URLSearchParams({ service: SERVICE });
  if (scope) query.set("scope", scope);
  return (await call(`/token?${query}`, { headers: { Authorization: basic(username, secret) } })).status;
}

beforeAll(async () => {
  const passwords = new PasswordHasher(await Hmac.create(env.SECRET_PEPPER, "password"));
  const tokens = await Hmac.create(env.SECRET_PEPPER, "credential-token");
  const createdAt = "2026-01-01T00:00:00.000Z";
  const legacy: NamespaceRecord = { name: "legacy", organizationId: LEGACY_ORG, public: false, createdAt };
  const user: UserRecord = {
    username: "olduser",
    password: await passwords.hash(PASSWORD),
    grants: [
      { target: { kind: "namespace", name: "legacy" }, role: "write" },
      { target: { kind: "namespace", name: "removed" }, role: "admin" },
    ],
    registryAdmin: false,
    disabled: false,
    createdAt,
  };
  const account: ServiceAccountRecord = {
    username: `${LEGACY_ORG}|ci`,
    namespace: "legacy",
    description: "",
    tokenHash: await tokens.signHex(TOKEN),
    grants: [{ target: { kind: "namespace", name: "legacy" }, role: "read" }],
    disabled: false,
    createdAt,
    createdBy: "admin",
  };
  legacyPasswordHash = user.password.hash;
  const orphan: ServiceAccountRecord = { ...account, username: `${DELETED_ORG}|ci`, namespace: "removed", grants: [{ target: { kind: "namespace", name: "removed" }, role: "write" }] };
  // Exactly what the KV-only IdentityStore wrote.
  await env.REGISTRY_KV.put(`org:${LEGACY_ORG}`, "legacy");
  await env.REGISTRY_KV.put("ns:legacy", JSON.stringify(legacy));
  await env.REGISTRY_KV.put("user:olduser", JSON.stringify(user));
  await env.REGISTRY_KV.put(`sa:${account.username}`, JSON.stringify(account));
  await env.REGISTRY_KV.put(`sa:${orphan.username}`, JSON.stringify(orphan));
});

describe("records from before the identity ledger", () => {
  it("log in from KV and are imported into the ledger at its first use, with what the namespace-deletion defect left repaired", async () => {
    expect(await tokenStatus(`${LEGACY_ORG}|ci`, TOKEN, "repository:legacy/app:pull")).toBe(200);
    expect(await tokenStatus("olduser", PASSWORD, "repository:legacy/app:push")).toBe(200);

    const namespaces = (await (await adminCall("GET", "/namespaces")).json()) as { namespaces: NamespaceRecord[] };
    expect(namespaces.namespaces).toContainEqual({ name: "legacy", organizationId: LEGACY_ORG, public: false, createdAt: "2026-01-01T00:00:00.000Z" });
    const users = (await (await adminCall("GET", "/users")).json()) as { users: { username: string }[] };
    expect(users.users.map((user) => user.username)).toContain("olduser");
    const accounts = (await (await adminCall("GET", "/service-accounts")).json()) as { serviceAccounts: { username: string }[] };
    expect(accounts.serviceAccounts.map((account) => account.username)).toEqual([`${LEGACY_ORG}|ci`]);

    // The grant on the namespace that no longer exists is gone; the account of it is deleted and unpublished.
    const grants = (await (await adminCall("GET", "/users/olduser/grants")).json()) as { grants: unknown[] };
    expect(grants.grants).toEqual([{ target: { kind: "namespace", name: "legacy" }, role: "write" }]);
    expect((await adminCall("GET", `/service-accounts/${encodeURIComponent(`${DELETED_ORG}|ci`)}`)).status).toBe(404);
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get(`sa:${DELETED_ORG}|ci`)) === null);
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get<UserRecord>("user:olduser", "json"))?.grants.length === 1);
    expect(await tokenStatus(`${DELETED_ORG}|ci`, TOKEN)).toBe(401);
  });

  it("are edited through the ledger like any record: a grant change keeps the stored password", async () => {
    const ns = (await createNamespace()).name;
    expect((await adminCall("PUT", "/users/olduser/grants", { namespace: ns, role: "read" })).status).toBe(200);
    expect(await tokenStatus("olduser", PASSWORD, `repository:${ns}/app:pull`)).toBe(200);
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get<UserRecord>("user:olduser", "json"))?.grants.length === 2);
    expect((await env.REGISTRY_KV.get<UserRecord>("user:olduser", "json"))?.password.hash).toBe(legacyPasswordHash);
  });

  it("their organization ids stay reserved, and deleting their namespace ends their accounts", async () => {
    const taken = await adminCall("POST", "/namespaces", { name: "legacy" });
    expect(taken.status).toBe(409);
    expect((await adminCall("DELETE", "/namespaces/legacy")).status).toBe(204);
    expect(await tokenStatus(`${LEGACY_ORG}|ci`, TOKEN)).toBe(401);
    const grants = (await (await adminCall("GET", "/users/olduser/grants")).json()) as { grants: { target: { name: string } }[] };
    expect(grants.grants.map((grant) => grant.target.name)).not.toContain("legacy");
    const ledgerKnowsId = await identityLedger().isOrganizationIdTaken(LEGACY_ORG);
    expect(ledgerKnowsId).toBe(true);
  });
});
