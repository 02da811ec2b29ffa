/**
 * The identity ledger (issue 11 item 4, issue 10 defect 3): identities written through one Durable Object,
 * published to KV for the token endpoint, with a KV miss falling back to the ledger.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CredentialVerifier } from "../../src/auth/credentials";
import { Hmac, PasswordHasher } from "../../src/crypto/secrets";
import { type IdentityLedger } from "../../src/storage/identity-ledger";
import { IdentityRefusedError, IdentityStore, type ServiceAccountRecord, type UserRecord } from "../../src/storage/identity-store";
import { SERVICE, adminCall, basic, call, createNamespace, createServiceAccount, createUser, uniqueName, identityLedger, untilIdentityPublished } from "../helpers/registry";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const PASSWORD = "a long enough password";

/** A store as another isolate has it: its own caches, nothing written through it. */
const otherIsolate = () => new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER).forEdge();

async function tokenStatus(username: string, secret: string, scope?: string): Promise<number> {
  const query = new URLSearchParams({ service: SERVICE });
  if (scope) query.set("scope", scope);
  return (await call(`/token?${query}`, { headers: { Authorization: basic(username, secret) } })).status;
}

/** The actions a token request for `scope` is granted. */
async function grantedActions(username: string, secret: string, repository: string): Promise<string[]> {
  const response = await call(`/token?service=${SERVICE}&scope=repository:${repository}:pull,push,delete`, { headers: { Authorization: basic(username, secret) } });
  expect(response.status).toBe(200);
  const { token } = (await response.json()) as { token: string };
  const claims = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { access: { actions: string[] }[] };
  return [...(claims.access[0]?.actions ?? [])].sort();
}


function outboxKeys(): Promise<{ key: string; attempts: number }[]> {
  return runInDurableObject(identityLedger(), (_instance, state) =>
    state.storage.sql.exec<{ key: string; attempts: number }>("SELECT key, attempts FROM outbox ORDER BY key").toArray(),
  );
}

/** Records every KV write the ledger publishes (key, completion time); `fail` makes matching puts throw. */
async function instrumentPublication(fail: (key: string) => boolean = () => false): Promise<{ writes: { key: string; at: number }[]; restore: () => Promise<void> }> {
  const writes: { key: string; at: number }[] = [];
  await runInDurableObject(identityLedger(), (instance) => {
    const ledger = instance as IdentityLedger;
    ledger.kv = new Proxy(ledger.kv, {
      get(target, property) {
        if (property === "put" || property === "delete") {
          return async (key: string, ...rest: unknown[]) => {
            if (property === "put" && fail(key)) throw new Error("injected KV failure");
            const result = await (target[property] as (...args: unknown[]) => Promise<void>).call(target, key, ...rest);
            writes.push({ key, at: Date.now() });
            return result;
          };
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  });
  return {
    writes,
    restore: () =>
      runInDurableObject(identityLedger(), (instance) => {
        (instance as IdentityLedger).kv = env.REGISTRY_KV;
      }),
  };
}

describe("identity ledger: creation is visible at once", () => {
  it("a cached miss never refuses a just-created service account; a lost KV record is served by the ledger and re-published", async () => {
    const ns = (await createNamespace()).name;
    const name = uniqueName("ci");
    const elsewhere = otherIsolate();
    const { organizationId } = (await (await adminCall("GET", `/namespaces/${ns}`)).json()) as { organizationId: string };
    // Another isolate looks the account up before it exists, and caches the miss.
    expect(await elsewhere.getServiceAccountForLogin(`${organizationId}|${name}`)).toBeNull();
    const account = await createServiceAccount(ns, name, [{ namespace: ns, role: "write" }]);
    expect((await elsewhere.getServiceAccountForLogin(account.username))?.username).toBe(account.username);

    // KV loses the record (or serves a miss): logins still work, through the ledger.
    await env.REGISTRY_KV.delete(`sa:${account.username}`);
    expect(await otherIsolate().getServiceAccountForLogin(account.username)).toMatchObject({ username: account.username, namespace: ns });
    expect(await tokenStatus(account.username, account.token, `repository:${ns}/app:push`)).toBe(200);
    // The ledger wrote the record back to KV, same value shape as before.
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get(`sa:${account.username}`)) !== null);
    const published = await env.REGISTRY_KV.get<ServiceAccountRecord>(`sa:${account.username}`, "json");
    expect(published).toMatchObject({ username: account.username, namespace: ns, grants: [{ target: { kind: "namespace", name: ns }, role: "write" }], disabled: false });
    expect(typeof published?.tokenHash).toBe("string");
  });

  it("a just-created web user logs in although KV has no record of it", async () => {
    const ns = (await createNamespace()).name;
    const username = uniqueName("u");
    expect(await otherIsolate().getUserForLogin(username)).toBeNull();
    await createUser(username, PASSWORD, [{ namespace: ns, role: "read" }]);
    await env.REGISTRY_KV.delete(`user:${username}`);
    const record = await otherIsolate().getUserForLogin(username);
    expect(record?.grants).toEqual([{ target: { kind: "namespace", name: ns }, role: "read" }]);
    expect(await grantedActions(username, PASSWORD, `${ns}/app`)).toEqual(["pull"]);
  });
});

describe("identity ledger: concurrent edits", () => {
  it("8 parallel grant edits on one user all survive, in the ledger and in KV, with KV writes of the key a second apart", async () => {
    const namespaces = await Promise.all(Array.from({ length: 8 }, () => createNamespace()));
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    const publication = await instrumentPublication();
    try {
      const responses = await Promise.all(namespaces.map((ns) => adminCall("PUT", `/users/${username}/grants`, { namespace: ns.name, role: "write" })));
      expect(responses.map((response) => response.status)).toEqual(Array(8).fill(200));
      const { grants } = (await (await adminCall("GET", `/users/${username}/grants`)).json()) as { grants: { target: { name: string } }[] };
      expect(grants.map((grant) => grant.target.name).sort()).toEqual(namespaces.map((ns) => ns.name).sort());
      for (const ns of namespaces) expect(await grantedActions(username, PASSWORD, `${ns.name}/app`)).toEqual(["pull", "push"]);
      await untilIdentityPublished(async () => (await env.REGISTRY_KV.get<UserRecord>(`user:${username}`, "json"))?.grants.length === 8);
      const times = publication.writes.filter((write) => write.key === `user:${username}`).map((write) => write.at);
      expect(times.length).toBeGreaterThan(0);
      // platform.md §1: at most one write per second per key.
      for (let index = 1; index < times.length; index++) expect(times[index]! - times[index - 1]!).toBeGreaterThanOrEqual(1000);
    } finally {
      await publication.restore();
    }
  });

  it("two administrators editing one record from the same read: different fields merge, the same field is refused (409)", async () => {
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    const first = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    const second = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    const [readByFirst, readBySecond] = await Promise.all([first.getUser(username), second.getUser(username)]);
    await first.putUser({ ...readByFirst!, disabled: true });
    await second.putUser({ ...readBySecond!, registryAdmin: true });
    expect(await first.getUser(username)).toMatchObject({ disabled: true, registryAdmin: true });

    const [a, b] = await Promise.all([first.getUser(username), second.getUser(username)]);
    await first.putUser({ ...a!, password: { ...a!.password, hash: "first" } });
    const refused = await second.putUser({ ...b!, password: { ...b!.password, hash: "second" }, registryAdmin: false }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(IdentityRefusedError);
    expect((refused as IdentityRefusedError).status).toBe(409);
    // Nothing of the refused edit applied.
    expect(await first.getUser(username)).toMatchObject({ password: { hash: "first" }, disabled: true, registryAdmin: true });
  });

  it("a grant set between an admin's read and write survives the write (password change keeps it)", async () => {
    const ns = (await createNamespace()).name;
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    const admin = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    const read = await admin.getUser(username);
    expect((await adminCall("PUT", `/users/${username}/grants`, { namespace: ns, role: "admin" })).status).toBe(200);
    await admin.putUser({ ...read!, disabled: true });
    expect((await admin.getUser(username))?.grants).toEqual([{ target: { kind: "namespace", name: ns }, role: "admin" }]);
  });

  it("two rotations of one service account from the same read: the second is refused, so no admin holds a dead token", async () => {
    const ns = (await createNamespace()).name;
    const account = await createServiceAccount(ns, uniqueName("sa"), []);
    const store = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    const [a, b] = await Promise.all([store.getServiceAccount(account.username), store.getServiceAccount(account.username)]);
    await store.putServiceAccount({ ...a!, tokenHash: "1".repeat(64), rotatedAt: new Date().toISOString() });
    await expect(store.putServiceAccount({ ...b!, tokenHash: "2".repeat(64), rotatedAt: new Date(Date.now() + 1).toISOString() })).rejects.toMatchObject({ status: 409 });
    expect((await store.getServiceAccount(account.username))?.tokenHash).toBe("1".repeat(64));
  });

  it("an edit of a record deleted meanwhile does not bring it back", async () => {
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    const store = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    const read = await store.getUser(username);
    expect((await adminCall("DELETE", `/users/${username}`)).status).toBe(204);
    await expect(store.putUser({ ...read!, disabled: true })).rejects.toMatchObject({ status: 404 });
    expect((await adminCall("GET", `/users/${username}`)).status).toBe(404);
  });
});

describe("namespace deletion (issue 10, defect 3)", () => {
  it("ends the namespace's service accounts and every grant naming it; a recreated namespace inherits nothing", async () => {
    const { name: ns, organizationId } = await createNamespace();
    const other = (await createNamespace()).name;
    const ci = await createServiceAccount(ns, "ci", [{ namespace: ns, role: "write" }]);
    expect(ci.username).toBe(`${organizationId}|ci`);
    // A service account's grants stay inside its namespace (admin/admin-access.ts): only users hold grants across namespaces.
    const outsider = await createServiceAccount(other, uniqueName("sa"), [{ namespace: other, role: "read" }]);
    const username = uniqueName("u");
    await createUser(username, PASSWORD, [{ namespace: ns, role: "admin" }, { repository: `${ns}/lib`, role: "read" }, { namespace: other, role: "read" }]);
    expect(await tokenStatus(ci.username, ci.token, `repository:${ns}/app:push`)).toBe(200);

    const deleted = await adminCall("DELETE", `/namespaces/${ns}`);
    expect(deleted.status).toBe(204);
    const recreated = await createNamespace(ns);
    expect(recreated.organizationId).not.toBe(organizationId);

    // The old account: no login, not listed, not found, and no way to push to the new namespace.
    expect(await tokenStatus(ci.username, ci.token)).toBe(401);
    expect(await tokenStatus(ci.username, ci.token, `repository:${ns}/app:pull,push`)).toBe(401);
    expect((await adminCall("GET", `/service-accounts/${encodeURIComponent(ci.username)}`)).status).toBe(404);
    const { serviceAccounts } = (await (await adminCall("GET", "/service-accounts")).json()) as { serviceAccounts: { username: string }[] };
    expect(serviceAccounts.map((account) => account.username)).not.toContain(ci.username);
    expect(serviceAccounts.map((account) => account.username)).toContain(outsider.username);

    // Grants naming the namespace or a repository in it are gone; other namespaces' accounts keep theirs.
    const userGrants = (await (await adminCall("GET", `/users/${username}/grants`)).json()) as { grants: unknown[] };
    expect(userGrants.grants).toEqual([{ target: { kind: "namespace", name: other }, role: "read" }]);
    const outsiderGrants = (await (await adminCall("GET", `/service-accounts/${encodeURIComponent(outsider.username)}/grants`)).json()) as { grants: unknown[] };
    expect(outsiderGrants.grants).toEqual([{ target: { kind: "namespace", name: other }, role: "read" }]);
    expect(await grantedActions(username, PASSWORD, `${ns}/app`)).toEqual([]);
    expect(await grantedActions(outsider.username, outsider.token, `${ns}/app`)).toEqual([]);

    // KV follows: the account's record is unpublished, the user's record republished without the grants.
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get(`sa:${ci.username}`)) === null);
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get<UserRecord>(`user:${username}`, "json"))?.grants.length === 1);
    expect(await otherIsolate().getServiceAccountForLogin(ci.username)).toBeNull();

    // A service account of the new namespace with the old name is a different account.
    const successor = await createServiceAccount(ns, "ci", [{ namespace: ns, role: "read" }]);
    expect(successor.username).toBe(`${recreated.organizationId}|ci`);
    expect(await tokenStatus(ci.username, ci.token)).toBe(401);

    const { events } = (await (await adminCall("GET", `/audit?since=${encodeURIComponent(new Date(Date.now() - 600_000).toISOString())}&limit=1000`)).json()) as {
      events: { action: string; target?: string; detail?: string }[];
    };
    const audit = events.find((event) => event.action === "namespace.delete" && event.target === ns);
    expect(audit?.detail).toBe("with its service accounts and every grant naming it");
  });

  it("a grant on a namespace that does not exist is refused in the admin format", async () => {
    const ns = (await createNamespace()).name;
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    const missing = uniqueName("gone");
    for (const body of [{ namespace: missing, role: "read" }, { repository: `${missing}/app`, role: "write" }]) {
      const response = await adminCall("PUT", `/users/${username}/grants`, body);
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
    }
    const account = await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("sa"), grants: [{ namespace: missing, role: "read" }] });
    // A service account's grant outside its namespace is refused before any lookup (admin/admin-access.ts).
    expect(account.status).toBe(400);
    expect(await account.json()).toMatchObject({ error: { code: "invalid_request" } });
    // Checked again inside the ledger's transaction, where no namespace deletion can interleave.
    const store = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER);
    await expect(store.updateGrant(`user/${username}`, { kind: "namespace", name: missing }, "read")).rejects.toMatchObject({ status: 404 });
    expect((await store.getUser(username))?.grants).toEqual([]);
    // So is a service account whose namespace was deleted after the admin API looked it up.
    const { organizationId } = (await store.getNamespace(ns))!;
    const orphan: ServiceAccountRecord = {
      username: `${organizationId}|${uniqueName("sa")}`,
      namespace: missing,
      description: "",
      tokenHash: "0".repeat(64),
      grants: [],
      disabled: false,
      createdAt: new Date().toISOString(),
      createdBy: "admin",
    };
    await expect(store.putServiceAccount(orphan)).rejects.toMatchObject({ status: 404 });
    expect(await store.getServiceAccount(orphan.username)).toBeNull();
  });
});

describe("publication", () => {
  it("a failed KV write loses no commit: the ledger answers meanwhile and the alarm publishes it", async () => {
    const username = uniqueName("u");
    const publication = await instrumentPublication((key) => key === `user:${username}`);
    try {
      await createUser(username, PASSWORD);
      expect(await env.REGISTRY_KV.get(`user:${username}`)).toBeNull();
      expect(await outboxKeys()).toContainEqual({ key: `user:${username}`, attempts: 1 });
      // The commit stands: the admin API shows it and it logs in (through the ledger).
      expect((await adminCall("GET", `/users/${username}`)).status).toBe(200);
      expect(await otherIsolate().getUserForLogin(username)).not.toBeNull();
      expect(await tokenStatus(username, PASSWORD)).toBe(200);
      // The alarm retries (a second after the failed attempt, which may have landed), and a write that
      // fails again stays queued: one attempt per alarm, no loop.
      await sleep(1100);
      expect(await runDurableObjectAlarm(identityLedger())).toBe(true);
      expect(await outboxKeys()).toContainEqual({ key: `user:${username}`, attempts: 2 });
      expect(await env.REGISTRY_KV.get(`user:${username}`)).toBeNull();
    } finally {
      await publication.restore();
    }
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get(`user:${username}`)) !== null);
    expect(await env.REGISTRY_KV.get<UserRecord>(`user:${username}`, "json")).toMatchObject({ username, grants: [], disabled: false });
    expect((await outboxKeys()).map((row) => row.key)).not.toContain(`user:${username}`);
  });

  it("a second write of a key within a second waits for the alarm", async () => {
    const username = uniqueName("u");
    await createUser(username, PASSWORD);
    expect((await adminCall("PATCH", `/users/${username}`, { disabled: true })).status).toBe(200);
    // The ledger has it at once; KV still holds the creation, written less than a second ago.
    expect((await (await adminCall("GET", `/users/${username}`)).json()) as object).toMatchObject({ disabled: true });
    expect(await env.REGISTRY_KV.get<UserRecord>(`user:${username}`, "json")).toMatchObject({ disabled: false });
    expect((await outboxKeys()).map((row) => row.key)).toContain(`user:${username}`);
    await untilIdentityPublished(async () => (await env.REGISTRY_KV.get<UserRecord>(`user:${username}`, "json"))?.disabled === true);
  });
});

describe("a refusal on a stale record is confirmed with the ledger", () => {
  /** The credential check as another isolate runs it: its own login cache, read before the change. */
  async function otherIsolateVerifier() {
    const tokens = await Hmac.create(env.SECRET_PEPPER, "credential-token");
    const passwords = new PasswordHasher(await Hmac.create(env.SECRET_PEPPER, "password"));
    return new CredentialVerifier(otherIsolate(), tokens, passwords, undefined);
  }

  it("a rotated service-account token works at once where the old record is still cached", async () => {
    const ns = await createNamespace();
    const account = await createServiceAccount(ns.name, "rotating", [{ namespace: ns.name, role: "read" }]);
    const verifier = await otherIsolateVerifier();
    expect((await verifier.check(account.username, account.token)).ok).toBe(true);
    const rotated = (await (await adminCall("POST", `/service-accounts/${encodeURIComponent(account.username)}/rotate`, {})).json()) as { token: string };
    // The isolate's cached record still holds the old token's hash: the new token is refused by it, then
    // accepted once the ledger's record is checked. The old token (no overlap) is refused by both.
    expect((await verifier.check(account.username, rotated.token)).ok).toBe(true);
    expect(await verifier.check(account.username, account.token)).toMatchObject({ ok: false, reason: "wrong-secret" });
  });

  it("a new password works at once where the old record is still cached", async () => {
    const username = uniqueName("pw");
    await createUser(username, PASSWORD);
    const verifier = await otherIsolateVerifier();
    expect((await verifier.check(username, PASSWORD)).ok).toBe(true);
    expect((await adminCall("PUT", `/users/${username}/password`, { password: `${PASSWORD} changed` })).status).toBe(204);
    expect((await verifier.check(username, `${PASSWORD} changed`)).ok).toBe(true);
    expect(await verifier.check(username, PASSWORD)).toMatchObject({ ok: false, reason: "wrong-secret" });
  });
});

describe("a change holds at once in every isolate of the location that made it", () => {
  /** Two isolates of one location (one data-center cache) and one elsewhere; each has its own memory. */
  async function location(name: string) {
    const cache = await caches.open(`identity-test-${name}`);
    const tokens = await Hmac.create(env.SECRET_PEPPER, "credential-token");
    const passwords = new PasswordHasher(await Hmac.create(env.SECRET_PEPPER, "password"));
    const isolate = () => {
      const store = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER, { locationCache: cache });
      return { admin: store, verifier: new CredentialVerifier(store.forEdge(), tokens, passwords, undefined) };
    };
    return { isolate };
  }

  it("a disable made through one isolate refuses the account in the location's other isolates, whose login caches still hold it enabled", async () => {
    const here = await location(uniqueName("loc"));
    const [adminIsolate, edgeIsolate] = [here.isolate(), here.isolate()];
    const ns = await createNamespace();
    const account = await createServiceAccount(ns.name, "revoked", [{ namespace: ns.name, role: "read" }]);
    // The edge isolate caches the enabled record for its logins (LOGIN_RECORD_TTL_MS).
    expect((await edgeIsolate.verifier.check(account.username, account.token)).ok).toBe(true);
    const record = (await adminIsolate.admin.getServiceAccount(account.username))!;
    await adminIsolate.admin.putServiceAccount({ ...record, disabled: true });
    expect(await edgeIsolate.verifier.check(account.username, account.token)).toMatchObject({ ok: false, reason: "disabled" });
    await adminIsolate.admin.putServiceAccount({ ...(await adminIsolate.admin.getServiceAccount(account.username))!, disabled: false });
    expect((await edgeIsolate.verifier.check(account.username, account.token)).ok).toBe(true);
  });

  it("a grant removed through one isolate is gone from the next login in another; a deleted account is refused there", async () => {
    const here = await location(uniqueName("loc"));
    const [adminIsolate, edgeIsolate] = [here.isolate(), here.isolate()];
    const ns = await createNamespace();
    const account = await createServiceAccount(ns.name, "narrowed", [{ namespace: ns.name, role: "write" }]);
    const granted = await edgeIsolate.verifier.check(account.username, account.token);
    expect(granted.ok && granted.identity.principal.grants).toHaveLength(1);
    await adminIsolate.admin.updateGrant(`sa/${account.username}`, { kind: "namespace", name: ns.name }, undefined);
    const narrowed = await edgeIsolate.verifier.check(account.username, account.token);
    expect(narrowed.ok && narrowed.identity.principal.grants).toEqual([]);
    await adminIsolate.admin.deleteServiceAccount(account.username);
    expect(await edgeIsolate.verifier.check(account.username, account.token)).toMatchObject({ ok: false, reason: "unknown-account" });
  });
});
