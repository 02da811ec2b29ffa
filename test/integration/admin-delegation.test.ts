/**
 * Delegated administration (issue 15): every admin route, called by each role — a registry administrator, the
 * namespace's administrator, another namespace's administrator, a write grantee, a service account holding
 * the `admin` role, an anonymous caller and an invalid credential — answers what the route's role
 * (src/admin/route-roles.ts) says; then what the roles see, the confinement of service accounts' grants, the
 * namespace audit and the account API's listing of what a caller may pull.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTE_ROLES } from "../../src/admin/route-roles";
import { adminCall, adminToken, basic, call, createNamespace, createServiceAccount, createUser, pushImage, uniqueName } from "../helpers/registry";

const PASSWORD = "a long enough password";

type Caller = "registry admin" | "namespace admin" | "other namespace's admin" | "write grantee" | "service account with the admin role" | "anonymous" | "invalid credential";
const CALLERS: Caller[] = ["registry admin", "namespace admin", "other namespace's admin", "write grantee", "service account with the admin role", "anonymous", "invalid credential"];

/** Who a route admits: registry administrators; and the namespace's administrators; and any namespace's (answers narrowed). */
type Who = "registry" | "namespace" | "any-admin";

interface Fixture {
  /** Namespace administered by alice (the namespace admin); bob writes to it; robot holds `admin` on it. */
  a: string;
  /** Namespace administered by carol (the other namespace's admin). */
  b: string;
  alice: string;
  bob: string;
  carol: string;
  robot: { username: string; token: string };
  /** `<a>/app`, holding `v1`. */
  repo: string;
  digest: string;
}

let fx: Fixture;

function authorization(caller: Caller): Record<string, string> {
  switch (caller) {
    case "registry admin":
      return { Authorization: basic("admin", env.BOOTSTRAP_ADMIN_PASSWORD) };
    case "namespace admin":
      return { Authorization: basic(fx.alice, PASSWORD) };
    case "other namespace's admin":
      return { Authorization: basic(fx.carol, PASSWORD) };
    case "write grantee":
      return { Authorization: basic(fx.bob, PASSWORD) };
    case "service account with the admin role":
      return { Authorization: basic(fx.robot.username, fx.robot.token) };
    case "anonymous":
      return {};
    case "invalid credential":
      // A service-account name that does not exist (a token check costs an HMAC, not a password hash; a wrong
      // service-account token never locks an account, and no client address is sent to be throttled).
      return { Authorization: basic("99999999|nobody", "not-a-token") };
  }
}

function callAs(caller: Caller, method: string, path: string, body?: unknown, base = "/admin/v1"): Promise<Response> {
  return call(`${base}${path}`, {
    method,
    headers: { ...authorization(caller), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function expectOk(response: Response, status = 200): Promise<Response> {
  if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${await response.text()}`);
  return response;
}

const sa = (username: string) => `/service-accounts/${encodeURIComponent(username)}`;

// ---- fresh objects for the routes that change or remove what they act on ----

/** A namespace alice administers. */
async function aliceNamespace(): Promise<string> {
  const name = (await createNamespace()).name;
  await expectOk(await adminCall("PUT", `/users/${fx.alice}/grants`, { namespace: name, role: "admin" }));
  return name;
}

async function freshUser(): Promise<string> {
  const name = uniqueName("u");
  await createUser(name, PASSWORD);
  return name;
}

async function freshAccount(grants: { namespace?: string; repository?: string; role: "read" | "write" | "admin" }[] = []): Promise<string> {
  return (await createServiceAccount(fx.a, uniqueName("sa"), grants)).username;
}

const POLICY = { issuer: "https://token.actions.githubusercontent.com", audiences: ["https://registry.test"], subject: "repo:acme/app:ref:refs/heads/main" };

async function accountWithPolicy(): Promise<string> {
  const username = await freshAccount();
  await expectOk(await adminCall("PUT", `${sa(username)}/trust-policies`, POLICY), 201);
  return username;
}

/** A webhook of `ns` made by the registry administrator, and the request on it (`suffix` after its path). */
async function webhookOf(ns: string, suffix: string, ok: number) {
  const created = await expectOk(await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/x" }), 201);
  const { id } = (await created.json()) as { id: string };
  return { path: `/namespaces/${ns}/webhooks/${id}${suffix}`, ok, namespace: ns };
}

const MIRROR = { upstream: "https://registry.example.com" };

/** `ns` made a mirror by the registry administrator (no upstream is asked until a pull). */
async function mirrorOf(ns: string, ok: number) {
  await expectOk(await adminCall("PUT", `/namespaces/${ns}/mirror`, MIRROR));
  return { path: `/namespaces/${ns}/mirror`, ok, namespace: ns };
}

interface Row {
  route: string;
  label?: string;
  who: Who;
  /** The request (against fresh objects where the call changes state), the answer when admitted, the namespace acted on. */
  setup: () => Promise<{ path: string; body?: unknown; ok: number; namespace?: string }>;
}

const method = (row: Row) => row.route.split(" ")[0]!;

/** Every admin route (ROUTE_ROLES' keys), each with its request. */
const ROWS: Row[] = [
  { route: "GET /audit", label: "the whole log", who: "registry", setup: async () => ({ path: "/audit", ok: 200 }) },
  { route: "GET /audit", label: "namespace=", who: "namespace", setup: async () => ({ path: `/audit?namespace=${fx.a}`, ok: 200, namespace: fx.a }) },
  { route: "GET /namespaces", who: "any-admin", setup: async () => ({ path: "/namespaces", ok: 200 }) },
  { route: "POST /namespaces", who: "registry", setup: async () => ({ path: "/namespaces", body: { name: uniqueName("new") }, ok: 201 }) },
  { route: "GET /namespaces/:name", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}`, ok: 200, namespace: fx.a }) },
  { route: "PATCH /namespaces/:name", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}`, body: { public: false }, ok: 200, namespace: fx.a }) },
  { route: "DELETE /namespaces/:name", who: "registry", setup: async () => ({ path: `/namespaces/${await aliceNamespace()}`, ok: 204 }) },
  { route: "GET /namespaces/:name/immutable-tags", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}/immutable-tags`, ok: 200, namespace: fx.a }) },
  {
    route: "POST /namespaces/:name/immutable-tags",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      return { path: `/namespaces/${ns}/immutable-tags`, body: { pattern: "v*" }, ok: 201, namespace: ns };
    },
  },
  {
    route: "DELETE /namespaces/:name/immutable-tags",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      await expectOk(await adminCall("POST", `/namespaces/${ns}/immutable-tags`, { pattern: "v*" }), 201);
      return { path: `/namespaces/${ns}/immutable-tags`, body: { pattern: "v*" }, ok: 204, namespace: ns };
    },
  },
  { route: "GET /namespaces/:name/usage", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}/usage`, ok: 200, namespace: fx.a }) },
  { route: "PUT /namespaces/:name/quota", who: "registry", setup: async () => ({ path: `/namespaces/${fx.a}/quota`, body: { bytes: 1e12 }, ok: 200 }) },
  { route: "DELETE /namespaces/:name/quota", who: "registry", setup: async () => ({ path: `/namespaces/${fx.a}/quota`, ok: 204 }) },
  { route: "GET /repositories/:name+/usage", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/usage`, ok: 200, namespace: fx.a }) },
  { route: "GET /namespaces/:name/untagged-retention", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}/untagged-retention`, ok: 200, namespace: fx.a }) },
  {
    route: "PUT /namespaces/:name/untagged-retention",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      return { path: `/namespaces/${ns}/untagged-retention`, body: { expireAfterSeconds: 86400 }, ok: 200, namespace: ns };
    },
  },
  {
    route: "DELETE /namespaces/:name/untagged-retention",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      return { path: `/namespaces/${ns}/untagged-retention`, ok: 204, namespace: ns };
    },
  },
  { route: "POST /repositories/:name+/untagged-retention/run", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/untagged-retention/run`, body: { dryRun: true }, ok: 200, namespace: fx.a }) },
  { route: "GET /repositories/:name+/untagged-retention", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/untagged-retention`, ok: 200, namespace: fx.a }) },
  { route: "PUT /repositories/:name+/untagged-retention", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/untagged-retention`, body: { expireAfterSeconds: 864000 }, ok: 200, namespace: fx.a }) },
  { route: "DELETE /repositories/:name+/untagged-retention", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/untagged-retention`, ok: 204, namespace: fx.a }) },
  { route: "GET /repositories/:name+/tags/history", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/tags/history`, ok: 200, namespace: fx.a }) },
  { route: "DELETE /repositories/:name+/tags/history", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/tags/history`, body: { before: "2000-01-01T00:00:00Z" }, ok: 200, namespace: fx.a }) },
  { route: "POST /repositories/:name+/tags/:tag/restore", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/tags/v1/restore`, body: { digest: fx.digest }, ok: 200, namespace: fx.a }) },
  { route: "GET /repositories/:name+/retention", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/retention`, ok: 200, namespace: fx.a }) },
  { route: "POST /repositories/:name+/retention/run", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/retention/run`, body: { dryRun: true }, ok: 200, namespace: fx.a }) },
  {
    route: "POST /repositories/:name+/retention",
    who: "namespace",
    setup: async () => ({ path: `/repositories/${uniqueRepo()}/retention`, body: { pattern: "pr-*", keepNewest: 5 }, ok: 201, namespace: fx.a }),
  },
  {
    route: "DELETE /repositories/:name+/retention",
    who: "namespace",
    setup: async () => {
      const repo = uniqueRepo();
      await expectOk(await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "pr-*", keepNewest: 5 }), 201);
      return { path: `/repositories/${repo}/retention`, body: { pattern: "pr-*" }, ok: 204, namespace: fx.a };
    },
  },
  { route: "GET /repositories/:name+/immutable-tags", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/immutable-tags`, ok: 200, namespace: fx.a }) },
  { route: "POST /repositories/:name+/immutable-tags", who: "namespace", setup: async () => ({ path: `/repositories/${uniqueRepo()}/immutable-tags`, body: { pattern: "v*" }, ok: 201, namespace: fx.a }) },
  {
    route: "DELETE /repositories/:name+/immutable-tags",
    who: "namespace",
    setup: async () => {
      const repo = uniqueRepo();
      await expectOk(await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "v*" }), 201);
      return { path: `/repositories/${repo}/immutable-tags`, body: { pattern: "v*" }, ok: 204, namespace: fx.a };
    },
  },
  { route: "PATCH /repositories/:name+", who: "namespace", setup: async () => ({ path: `/repositories/${uniqueRepo()}`, body: { public: false }, ok: 200, namespace: fx.a }) },
  {
    route: "DELETE /repositories/:name+",
    who: "namespace",
    setup: async () => {
      const repo = uniqueRepo();
      await pushImage(repo, "v1", await adminToken(repo));
      return { path: `/repositories/${repo}`, ok: 200, namespace: fx.a };
    },
  },
  { route: "POST /gc", who: "registry", setup: async () => ({ path: "/gc", body: { dryRun: true }, ok: 200 }) },
  { route: "GET /users", who: "registry", setup: async () => ({ path: "/users", ok: 200 }) },
  { route: "POST /users", who: "registry", setup: async () => ({ path: "/users", body: { username: uniqueName("new"), password: PASSWORD }, ok: 201 }) },
  { route: "GET /users/:name", who: "registry", setup: async () => ({ path: `/users/${fx.bob}`, ok: 200 }) },
  { route: "PATCH /users/:name", who: "registry", setup: async () => ({ path: `/users/${await freshUser()}`, body: { disabled: true }, ok: 200 }) },
  { route: "DELETE /users/:name", who: "registry", setup: async () => ({ path: `/users/${await freshUser()}`, ok: 204 }) },
  { route: "PUT /users/:name/password", who: "registry", setup: async () => ({ path: `/users/${await freshUser()}/password`, body: { password: `${PASSWORD}!` }, ok: 204 }) },
  { route: "GET /users/:name/refresh-tokens", who: "registry", setup: async () => ({ path: `/users/${fx.bob}/refresh-tokens`, ok: 200 }) },
  // Admitted, the handler answers: bob holds no such token.
  { route: "DELETE /users/:name/refresh-tokens/:id", who: "registry", setup: async () => ({ path: `/users/${fx.bob}/refresh-tokens/AAAAAAAAAAAAAAAA`, ok: 404 }) },
  { route: "GET /service-accounts", who: "any-admin", setup: async () => ({ path: "/service-accounts", ok: 200 }) },
  {
    route: "POST /service-accounts",
    who: "namespace",
    setup: async () => ({ path: "/service-accounts", body: { namespace: fx.a, name: uniqueName("new"), grants: [{ namespace: fx.a, role: "read" }] }, ok: 201, namespace: fx.a }),
  },
  { route: "GET /service-accounts/:name", who: "namespace", setup: async () => ({ path: sa(fx.robot.username), ok: 200, namespace: fx.a }) },
  { route: "PATCH /service-accounts/:name", who: "namespace", setup: async () => ({ path: sa(await freshAccount()), body: { description: "changed" }, ok: 200, namespace: fx.a }) },
  { route: "POST /service-accounts/:name/rotate", who: "namespace", setup: async () => ({ path: `${sa(await freshAccount())}/rotate`, body: { overlapSeconds: 60 }, ok: 200, namespace: fx.a }) },
  { route: "DELETE /service-accounts/:name", who: "namespace", setup: async () => ({ path: sa(await freshAccount()), ok: 204, namespace: fx.a }) },
  { route: "GET /service-accounts/:name/trust-policies", who: "namespace", setup: async () => ({ path: `${sa(fx.robot.username)}/trust-policies`, ok: 200, namespace: fx.a }) },
  { route: "PUT /service-accounts/:name/trust-policies", who: "namespace", setup: async () => ({ path: `${sa(await freshAccount())}/trust-policies`, body: POLICY, ok: 201, namespace: fx.a }) },
  { route: "DELETE /service-accounts/:name/trust-policies", who: "namespace", setup: async () => ({ path: `${sa(await accountWithPolicy())}/trust-policies`, ok: 204, namespace: fx.a }) },
  { route: "GET /service-accounts/:name/trust-policies/:policy", who: "namespace", setup: async () => ({ path: `${sa(await accountWithPolicy())}/trust-policies/0`, ok: 200, namespace: fx.a }) },
  {
    route: "PUT /service-accounts/:name/trust-policies/:policy",
    who: "namespace",
    setup: async () => ({ path: `${sa(await accountWithPolicy())}/trust-policies/0`, body: { ...POLICY, subject: "repo:acme/app:*" }, ok: 200, namespace: fx.a }),
  },
  { route: "DELETE /service-accounts/:name/trust-policies/:policy", who: "namespace", setup: async () => ({ path: `${sa(await accountWithPolicy())}/trust-policies/0`, ok: 204, namespace: fx.a }) },
  { route: "GET /:kind/:name/grants", label: "a user's", who: "any-admin", setup: async () => ({ path: `/users/${fx.bob}/grants`, ok: 200 }) },
  { route: "GET /:kind/:name/grants", label: "a service account's", who: "namespace", setup: async () => ({ path: `${sa(fx.robot.username)}/grants`, ok: 200, namespace: fx.a }) },
  { route: "PUT /:kind/:name/grants", label: "a user's", who: "namespace", setup: async () => ({ path: `/users/${await freshUser()}/grants`, body: { namespace: fx.a, role: "read" }, ok: 200, namespace: fx.a }) },
  {
    route: "PUT /:kind/:name/grants",
    label: "a service account's",
    who: "namespace",
    setup: async () => ({ path: `${sa(await freshAccount())}/grants`, body: { repository: fx.repo, role: "read" }, ok: 200, namespace: fx.a }),
  },
  {
    route: "DELETE /:kind/:name/grants",
    label: "a user's",
    who: "namespace",
    setup: async () => {
      const user = await freshUser();
      await expectOk(await adminCall("PUT", `/users/${user}/grants`, { namespace: fx.a, role: "read" }));
      return { path: `/users/${user}/grants`, body: { namespace: fx.a }, ok: 204, namespace: fx.a };
    },
  },
  {
    route: "DELETE /:kind/:name/grants",
    label: "a service account's",
    who: "namespace",
    setup: async () => ({ path: `${sa(await freshAccount([{ namespace: fx.a, role: "read" }]))}/grants`, body: { namespace: fx.a }, ok: 204, namespace: fx.a }),
  },
  // Notifications, imports and the mirror (settings of a namespace or repository).
  { route: "GET /namespaces/:name/webhooks", who: "namespace", setup: async () => ({ path: `/namespaces/${fx.a}/webhooks`, ok: 200, namespace: fx.a }) },
  {
    route: "POST /namespaces/:name/webhooks",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      return { path: `/namespaces/${ns}/webhooks`, body: { url: "https://hooks.example/x" }, ok: 201, namespace: ns };
    },
  },
  { route: "GET /namespaces/:name/webhooks/:id", who: "namespace", setup: async () => webhookOf(await aliceNamespace(), "", 200) },
  { route: "DELETE /namespaces/:name/webhooks/:id", who: "namespace", setup: async () => webhookOf(await aliceNamespace(), "", 204) },
  { route: "GET /namespaces/:name/webhooks/:id/deliveries", who: "namespace", setup: async () => webhookOf(await aliceNamespace(), "/deliveries", 200) },
  // A source that is no image reference: refused (400) once the role admits the caller, before any upstream is asked.
  { route: "POST /repositories/:name+/imports", who: "namespace", setup: async () => ({ path: `/repositories/${uniqueRepo()}/imports`, body: { source: "not a reference" }, ok: 400, namespace: fx.a }) },
  { route: "GET /repositories/:name+/imports", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/imports`, ok: 404, namespace: fx.a }) },
  { route: "DELETE /repositories/:name+/imports", who: "namespace", setup: async () => ({ path: `/repositories/${fx.repo}/imports`, ok: 404, namespace: fx.a }) },
  {
    route: "PUT /namespaces/:name/mirror",
    who: "namespace",
    setup: async () => {
      const ns = await aliceNamespace();
      return { path: `/namespaces/${ns}/mirror`, body: MIRROR, ok: 200, namespace: ns };
    },
  },
  { route: "GET /namespaces/:name/mirror", who: "namespace", setup: async () => mirrorOf(await aliceNamespace(), 200) },
  { route: "DELETE /namespaces/:name/mirror", who: "namespace", setup: async () => mirrorOf(await aliceNamespace(), 204) },
];

function uniqueRepo(): string {
  return `${fx.a}/${uniqueName("r")}`;
}

/** Whether `caller` is admitted to a route of `who`. */
function admitted(who: Who, caller: Caller): boolean {
  if (caller === "registry admin") return true;
  if (caller === "namespace admin") return who !== "registry";
  if (caller === "other namespace's admin") return who === "any-admin";
  return false;
}

beforeAll(async () => {
  const a = (await createNamespace()).name;
  const b = (await createNamespace()).name;
  const alice = uniqueName("alice");
  const bob = uniqueName("bob");
  const carol = uniqueName("carol");
  await createUser(alice, PASSWORD, [{ namespace: a, role: "admin" }]);
  await createUser(carol, PASSWORD, [{ namespace: b, role: "admin" }]);
  await createUser(bob, PASSWORD, [{ namespace: a, role: "write" }, { repository: `${b}/lib`, role: "read" }]);
  const robot = await createServiceAccount(a, "robot", [{ namespace: a, role: "admin" }]);
  const repo = `${a}/app`;
  const { digest } = await pushImage(repo, "v1", await adminToken(repo));
  fx = { a, b, alice, bob, carol, robot, repo, digest };
  // Three password hashes and a push: longer than the default hook timeout on a loaded machine.
}, 60_000);

describe("every admin route, for each role", () => {
  it("the table covers every route of ROUTE_ROLES", () => {
    const routes = new Set(Object.keys(ROUTE_ROLES).filter((key) => key !== "ALL *"));
    expect(new Set(ROWS.map((row) => row.route))).toEqual(routes);
  });

  // A refused call changes nothing, so the refused callers share one setup per row; an admitted one gets its own.
  const shared = new Map<Row, ReturnType<Row["setup"]>>();
  const setupFor = (row: Row, caller: Caller) => {
    if (admitted(row.who, caller)) return row.setup();
    if (!shared.has(row)) shared.set(row, row.setup());
    return shared.get(row)!;
  };
  const cases = ROWS.flatMap((row) => CALLERS.map((caller) => [`${row.route}${row.label ? ` (${row.label})` : ""} as ${caller}`, row, caller] as const));
  it.each(cases)("%s", async (_name, row, caller) => {
    const { path, body, ok, namespace } = await setupFor(row, caller);
    const response = await callAs(caller, method(row), path, body);
    const text = await response.text();
    if (caller === "anonymous" || caller === "invalid credential") {
      expect(response.status, text).toBe(401);
      expect(JSON.parse(text).error.code).toBe("unauthorized");
      return;
    }
    if (admitted(row.who, caller)) {
      expect(response.status, text).toBe(ok);
      return;
    }
    expect(response.status, text).toBe(403);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    const { error } = JSON.parse(text) as { error: { code: string; message: string } };
    expect(error.code).toBe("forbidden");
    // The refusal names what is missing: the registry role, or the admin role on this namespace.
    if (row.who === "registry") expect(error.message).toContain("registry administrator");
    else if (caller === "other namespace's admin") expect(error.message).toContain(`admin role on namespace "${namespace}"`);
    else expect(error.message).toContain("admin role on a namespace");
  });
});

describe("what each role sees", () => {
  it("lists hold only the namespaces a namespace administrator administers", async () => {
    const names = async (caller: Caller) =>
      ((await (await expectOk(await callAs(caller, "GET", "/namespaces"))).json()) as { namespaces: { name: string }[] }).namespaces.map((n) => n.name);
    expect(await names("namespace admin")).toContain(fx.a);
    expect(await names("namespace admin")).not.toContain(fx.b);
    expect(await names("other namespace's admin")).toEqual([fx.b]);
    expect(await names("registry admin")).toEqual(expect.arrayContaining([fx.a, fx.b]));

    const accounts = async (caller: Caller) =>
      ((await (await expectOk(await callAs(caller, "GET", "/service-accounts"))).json()) as { serviceAccounts: { username: string; namespace: string }[] }).serviceAccounts;
    expect((await accounts("namespace admin")).map((account) => account.username)).toContain(fx.robot.username);
    expect((await accounts("namespace admin")).every((account) => account.namespace !== fx.b)).toBe(true);
    expect((await accounts("other namespace's admin")).map((account) => account.username)).not.toContain(fx.robot.username);

    // A user's grants: each namespace administrator sees those in its namespace only.
    const grants = async (caller: Caller) => ((await (await expectOk(await callAs(caller, "GET", `/users/${fx.bob}/grants`))).json()) as { grants: unknown[] }).grants;
    expect(await grants("namespace admin")).toEqual([{ target: { kind: "namespace", name: fx.a }, role: "write" }]);
    expect(await grants("other namespace's admin")).toEqual([{ target: { kind: "repository", name: `${fx.b}/lib` }, role: "read" }]);
    expect(await grants("registry admin")).toHaveLength(2);
  });

  it("a namespace administrator creates a service account and grants in its namespace; another namespace is refused", async () => {
    const created = await expectOk(
      await callAs("namespace admin", "POST", "/service-accounts", { namespace: fx.a, name: "deployer", grants: [{ namespace: fx.a, role: "write" }] }),
      201,
    );
    const account = (await created.json()) as { username: string; token: string; createdBy: string };
    expect(account.createdBy).toBe(fx.alice);
    // Its token works on /v2/ within the namespace.
    const token = await call(`/token?service=edge-registry&scope=repository:${fx.repo}:pull,push`, { headers: { Authorization: basic(account.username, account.token) } });
    expect(token.status).toBe(200);

    const refused = await callAs("namespace admin", "POST", "/service-accounts", { namespace: fx.b, name: "intruder", grants: [] });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(`admin role on namespace "${fx.b}"`);
    // A user's grant: within alice's namespace yes, in carol's no.
    const user = await freshUser();
    await expectOk(await callAs("namespace admin", "PUT", `/users/${user}/grants`, { repository: fx.repo, role: "read" }));
    expect((await callAs("namespace admin", "PUT", `/users/${user}/grants`, { namespace: fx.b, role: "read" })).status).toBe(403);
    // A user may hold grants in several namespaces, each given by that namespace's administrator.
    await expectOk(await callAs("other namespace's admin", "PUT", `/users/${user}/grants`, { namespace: fx.b, role: "read" }));
    expect(((await (await adminCall("GET", `/users/${user}/grants`)).json()) as { grants: unknown[] }).grants).toHaveLength(2);
  });

  it("a service account's grants stay inside its namespace, whoever asks (400)", async () => {
    for (const caller of ["registry admin", "namespace admin"] as const) {
      const create = await callAs(caller, "POST", "/service-accounts", { namespace: fx.a, name: uniqueName("x"), grants: [{ repository: `${fx.b}/lib`, role: "read" }] });
      expect(create.status).toBe(400);
      const { error } = (await create.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("invalid_request");
      expect(error.message).toContain(`outside namespace "${fx.a}"`);
      const grant = await callAs(caller, "PUT", `${sa(fx.robot.username)}/grants`, { namespace: fx.b, role: "read" });
      expect(grant.status).toBe(400);
    }
    const { grants } = (await (await adminCall("GET", `${sa(fx.robot.username)}/grants`)).json()) as { grants: unknown[] };
    expect(grants).toEqual([{ target: { kind: "namespace", name: fx.a }, role: "admin" }]);
  });

  it("revoking a namespace administrator's role ends its administration at once", async () => {
    const ns = await aliceNamespace();
    await expectOk(await callAs("namespace admin", "GET", `/namespaces/${ns}`));
    await expectOk(await adminCall("DELETE", `/users/${fx.alice}/grants`, { namespace: ns }), 204);
    expect((await callAs("namespace admin", "GET", `/namespaces/${ns}`)).status).toBe(403);
  });

  it("a namespace administrator reads its namespace's audit, and nothing else", async () => {
    const name = uniqueName("audited");
    await expectOk(await callAs("namespace admin", "POST", "/service-accounts", { namespace: fx.a, name, grants: [] }), 201);
    await expectOk(await callAs("other namespace's admin", "PATCH", `/namespaces/${fx.b}`, { public: false }));
    const events = async (caller: Caller, namespace: string) =>
      ((await (await expectOk(await callAs(caller, "GET", `/audit?namespace=${namespace}&limit=1000`))).json()) as { events: { action: string; target?: string }[] }).events;
    const own = await events("namespace admin", fx.a);
    expect(own.some((event) => event.action === "service-account.create" && event.target?.endsWith(`|${name}`))).toBe(true);
    expect(own.some((event) => event.action === "grant.set")).toBe(true);
    expect(own.every((event) => !event.action.startsWith("user.") && event.target !== fx.b)).toBe(true);
    expect((await events("other namespace's admin", fx.b)).some((event) => event.action === "namespace.update" && event.target === fx.b)).toBe(true);
    expect((await events("other namespace's admin", fx.b)).some((event) => event.target?.endsWith(`|${name}`))).toBe(false);
    expect((await callAs("namespace admin", "GET", `/audit?namespace=${fx.b}`)).status).toBe(403);
  });
});

describe("the account API: what a caller may pull", () => {
  const list = async (caller: Caller, query = "") => {
    const response = await expectOk(await callAs(caller, "GET", `/repositories${query}`, undefined, "/account/v1"));
    return (await response.json()) as { repositories: { name: string; actions: string[] }[]; next: string | null };
  };

  it("lists the repositories a caller's grants and public visibility allow, with its actions, a page at a time", async () => {
    // Public from its creation: a repository made public later is seen so within KV's propagation (the
    // production-KV project models that delay), which is not what this test is about.
    const publicRepo = `${(await createNamespace(uniqueName("pub"), true)).name}/app`;
    const privateRepo = `${fx.b}/${uniqueName("priv")}`;
    await pushImage(publicRepo, "v1", await adminToken(publicRepo));
    await pushImage(privateRepo, "v1", await adminToken(privateRepo));

    // Follows `next` to the end: every page bounded, none repeating a name.
    const all = async (caller: Caller) => {
      const seen: { name: string; actions: string[] }[] = [];
      let query = "?n=2";
      for (let pages = 0; pages < 500; pages++) {
        const page = await list(caller, query);
        expect(page.repositories.length).toBeLessThanOrEqual(2);
        seen.push(...page.repositories);
        if (page.next === null) return seen;
        query = page.next.slice(page.next.indexOf("?"));
      }
      throw new Error("no end of pages");
    };
    const bob = await all("write grantee");
    expect(new Set(bob.map((r) => r.name)).size).toBe(bob.length);
    expect(bob.find((r) => r.name === fx.repo)?.actions).toEqual(["pull", "push"]);
    expect(bob.find((r) => r.name === publicRepo)?.actions).toEqual(["pull"]);
    expect(bob.map((r) => r.name)).not.toContain(privateRepo);
    const robot = await all("service account with the admin role");
    expect(robot.find((r) => r.name === fx.repo)?.actions).toEqual(["delete", "pull", "push"]);
    expect(robot.map((r) => r.name)).not.toContain(privateRepo);
    const admin = await all("registry admin");
    expect(admin.map((r) => r.name)).toEqual(expect.arrayContaining([fx.repo, publicRepo, privateRepo]));

    // Tags: digest and size for a repository the caller may pull; 404 for one it may not, as for none.
    const tags = await expectOk(await callAs("write grantee", "GET", `/repositories/${fx.repo}/tags?n=10`, undefined, "/account/v1"));
    const body = (await tags.json()) as { tags: { name: string; digest: string; size: number | null }[]; next: string | null };
    expect(body.tags).toEqual([{ name: "v1", digest: fx.digest, mediaType: "application/vnd.oci.image.manifest.v1+json", size: expect.any(Number) }]);
    expect(body.next).toBeNull();
    expect((await callAs("write grantee", "GET", `/repositories/${privateRepo}/tags`, undefined, "/account/v1")).status).toBe(404);
    expect((await callAs("write grantee", "GET", `/repositories/${fx.b}/missing/tags`, undefined, "/account/v1")).status).toBe(404);
    await expectOk(await callAs("write grantee", "GET", `/repositories/${publicRepo}/tags`, undefined, "/account/v1"));
  });

  it.each([
    ["?n=0", 400],
    ["?n=101", 400],
    ["?n=x", 400],
    ["?page=2", 400],
    ["?last=acme", 400],
    ["?cursor=not-a-cursor-this-api-gave", 400],
    [`?cursor=${"0".repeat(64)}.forged`, 400],
  ])("refuses %s", async (query, status) => {
    expect((await callAs("write grantee", "GET", `/repositories${query}`, undefined, "/account/v1")).status).toBe(status);
  });

  it("needs a credential", async () => {
    expect((await callAs("anonymous", "GET", "/repositories", undefined, "/account/v1")).status).toBe(401);
    expect((await callAs("invalid credential", "GET", `/repositories/${fx.repo}/tags`, undefined, "/account/v1")).status).toBe(401);
  });
});
