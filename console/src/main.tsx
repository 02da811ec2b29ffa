/**
 * The edge-registry web console (README "Console"): Preact pages over the admin, account and session APIs.
 * What a page shows is what the API answers; what the signed-in user may not do is refused by the API and
 * shown as an error (the API's authorization is the only one).
 */
import { render, type ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import {
  ApiError,
  SESSION_PATH,
  allPages,
  api,
  repositoryPath,
  segment,
  setCsrfToken,
  whenUnauthorized,
  type AuditEvent,
  type Credentials,
  type Grant,
  type IssuedToken,
  type Namespace,
  type PullablePage,
  type PullableRepository,
  type PullableTag,
  type PullableTagsPage,
  type RefreshToken,
  type ServiceAccount,
  type Session,
  type TagMove,
} from "./api";

const PAGES = [
  ["namespaces", "Namespaces"],
  ["service-accounts", "Service accounts"],
  ["grants", "Grants"],
  ["audit", "Audit log"],
  ["account", "My account"],
] as const;
type Page = (typeof PAGES)[number][0];

function pageFromHash(): Page {
  const name = location.hash.replace(/^#\/?/, "");
  return (PAGES.find(([id]) => id === name)?.[0] ?? "namespaces") as Page;
}

const message = (error: unknown) => (error instanceof ApiError || error instanceof Error ? error.message : String(error));

/** Runs an action, showing its error (or success note) in the page's status line. */
function useAction() {
  const [status, setStatus] = useState<{ kind: "error" | "ok"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (action: () => Promise<string | void>) => {
    setBusy(true);
    setStatus(null);
    try {
      const done = await action();
      if (done) setStatus({ kind: "ok", text: done });
    } catch (error) {
      setStatus({ kind: "error", text: message(error) });
    } finally {
      setBusy(false);
    }
  }, []);
  return { status, busy, run };
}

/** The status line: always present (no layout shift), announced to screen readers. */
function Status({ status }: { status: { kind: "error" | "ok"; text: string } | null }) {
  return (
    <p class={`status ${status?.kind ?? ""}`} role={status?.kind === "error" ? "alert" : "status"} data-testid="status">
      {status?.text ?? " "}
    </p>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [page, setPage] = useState<Page>(pageFromHash());

  useEffect(() => {
    whenUnauthorized(() => setSession(null));
    api<Session>("GET", SESSION_PATH)
      .then((current) => {
        setCsrfToken(current.csrfToken);
        setSession(current);
      })
      .catch(() => setSession(null));
    const onHash = () => setPage(pageFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) {
    return (
      <SignIn
        onSignedIn={(signedIn) => {
          setCsrfToken(signedIn.csrfToken);
          setSession(signedIn);
        }}
      />
    );
  }
  const signOut = async () => {
    try {
      await api("DELETE", SESSION_PATH);
    } finally {
      setCsrfToken("");
      setSession(null);
    }
  };
  return (
    <>
      <header>
        <strong class="brand">edge-registry</strong>
        <nav aria-label="Console pages">
          {PAGES.map(([id, title]) => (
            <a href={`#/${id}`} aria-current={page === id ? "page" : undefined}>
              {title}
            </a>
          ))}
        </nav>
        <span class="who">
          {session.username}
          {session.registryAdmin ? " (registry administrator)" : ""}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {page === "namespaces" && <NamespacesPage />}
        {page === "service-accounts" && <ServiceAccountsPage session={session} />}
        {page === "grants" && <GrantsPage />}
        {page === "audit" && <AuditPage session={session} />}
        {page === "account" && <AccountPage session={session} />}
      </main>
    </>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const { status, busy, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    void run(async () => {
      onSignedIn(await api<Session>("POST", SESSION_PATH, { username: form.get("username"), password: form.get("password") }));
    });
  };
  return (
    <main class="sign-in">
      <h1>Sign in to edge-registry</h1>
      <form onSubmit={submit}>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <Status status={status} />
      </form>
      <p class="hint">For web users. Service accounts sign in with podman, skopeo or docker, not here.</p>
    </main>
  );
}

// ---- namespaces, repositories, tags ----

/**
 * The namespaces the user administers (all of them for a registry administrator): GET /admin/v1/namespaces.
 * A user who administers none is answered 403 there; it sees the namespaces of the repositories it may pull
 * (GET /account/v1/repositories), without visibility settings.
 */
function NamespacesPage() {
  const [namespaces, setNamespaces] = useState<Namespace[] | null>(null);
  const [administers, setAdministers] = useState(false);
  const [pullable, setPullable] = useState<PullableRepository[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const { status, busy, run } = useAction();
  const load = () =>
    run(async () => {
      const repositories = allPages<PullablePage>("/account/v1/repositories").then((pages) => pages.flatMap((page) => page.repositories));
      try {
        setNamespaces((await api<{ namespaces: Namespace[] }>("GET", "/admin/v1/namespaces")).namespaces);
        setAdministers(true);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 403)) throw error;
        const names = [...new Set((await repositories).map((repository) => repository.name.split("/")[0]!))].sort();
        setNamespaces(names.map((name) => ({ name, public: false, organizationId: "", createdAt: "" })));
        setAdministers(false);
      }
      setPullable(await repositories);
    });
  useEffect(() => void load(), []);
  const setPublic = (name: string, isPublic: boolean) =>
    run(async () => {
      await api("PATCH", `/admin/v1/namespaces/${segment(name)}`, { public: isPublic });
      await load();
      return `${name} is now ${isPublic ? "public" : "private"}`;
    });
  return (
    <section aria-labelledby="namespaces-title">
      <h1 id="namespaces-title">Namespaces</h1>
      <p class="hint">{administers ? "The namespaces you administer." : "The namespaces of the repositories you may pull."}</p>
      <Status status={status} />
      <DataTable columns={["Namespace", "Visibility", "Actions"]}>
      {(namespaces ?? []).map((namespace) => (
        <tr key={namespace.name}>
          <td>{namespace.name}</td>
          <td>{administers ? (namespace.public ? "public" : "private") : "—"}</td>
          <td class="actions">
            <button type="button" onClick={() => setOpen(open === namespace.name ? null : namespace.name)} aria-expanded={open === namespace.name}>
              Repositories of {namespace.name}
            </button>
            {administers && (
              <button type="button" disabled={busy} onClick={() => setPublic(namespace.name, !namespace.public)}>
                Make {namespace.name} {namespace.public ? "private" : "public"}
              </button>
            )}
          </td>
        </tr>
      ))}
      </DataTable>
      {namespaces?.length === 0 && <p>No namespaces yet.</p>}
      {open && pullable && (
        <Repositories
          namespace={open}
          administers={administers}
          repositories={pullable.filter((repository) => repository.name.startsWith(`${open}/`))}
          key={open}
        />
      )}
    </section>
  );
}

/** A namespace's repositories the user may pull (the account API's listing), with the actions it holds on each. */
function Repositories({ namespace, administers, repositories }: { namespace: string; administers: boolean; repositories: PullableRepository[] }) {
  const [open, setOpen] = useState<string | null>(null);
  const { status, busy, run } = useAction();
  const setPublic = (name: string, isPublic: boolean) =>
    run(async () => {
      await api("PATCH", `/admin/v1/repositories/${repositoryPath(name)}`, { public: isPublic });
      return `${name} is now ${isPublic ? "public" : "private"}`;
    });
  return (
    <section aria-labelledby="repositories-title">
      <h2 id="repositories-title">Repositories in {namespace}</h2>
      <Status status={status} />
      <p class="hint">
        The registry's catalog is eventually consistent: a repository pushed in the last minute may not be listed yet (reload the page).
      </p>
      <DataTable columns={["Repository", "Your access", "Actions"]}>
      {repositories.map((repository) => (
        <tr key={repository.name}>
          <td>{repository.name}</td>
          <td>{repository.actions.join(", ")}</td>
          <td class="actions">
            <button type="button" onClick={() => setOpen(open === repository.name ? null : repository.name)} aria-expanded={open === repository.name}>
              Tags of {repository.name}
            </button>
            {administers && (
              <>
                <button type="button" disabled={busy} onClick={() => setPublic(repository.name, true)}>
                  Make {repository.name} public
                </button>
                <button type="button" disabled={busy} onClick={() => setPublic(repository.name, false)}>
                  Make {repository.name} private
                </button>
              </>
            )}
          </td>
        </tr>
      ))}
      </DataTable>
      {repositories.length === 0 && <p>No repositories in {namespace} you may pull.</p>}
      {open && <Tags repository={open} administers={administers} key={open} />}
    </section>
  );
}

/**
 * A repository's tags with digest, media type and size (GET /account/v1/repositories/<name>/tags, all pages);
 * the push time and pusher come from the tag history (an admin API route: its namespace's administrators), so
 * a user who only pulls sees "—" there.
 */
function Tags({ repository, administers }: { repository: string; administers: boolean }) {
  const [tags, setTags] = useState<PullableTag[] | null>(null);
  const [pushes, setPushes] = useState<Map<string, TagMove>>(new Map());
  const { status, run } = useAction();
  useEffect(() => {
    void run(async () => {
      const pages = await allPages<PullableTagsPage>(`/account/v1/repositories/${repositoryPath(repository)}/tags`);
      setTags(pages.flatMap((page) => page.tags));
      if (!administers) return;
      const history = await api<{ moves: TagMove[] }>("GET", `/admin/v1/repositories/${repositoryPath(repository)}/tags/history?limit=1000`);
      const latest = new Map<string, TagMove>();
      for (const move of history.moves) {
        const seen = latest.get(move.tag);
        if (!seen || seen.time < move.time) latest.set(move.tag, move);
      }
      setPushes(latest);
    });
  }, [repository]);
  return (
    <section aria-labelledby="tags-title">
      <h3 id="tags-title">Tags of {repository}</h3>
      <Status status={status} />
      <DataTable columns={["Tag", "Digest", "Size", "Pushed", "By"]}>
      {(tags ?? []).map((tag) => {
        // The history's newest move of this tag is its push time only when it moved the tag to this digest.
        const push = pushes.get(tag.name);
        const pushed = push && push.to === tag.digest ? push : undefined;
        return (
          <tr key={tag.name}>
            <td>{tag.name}</td>
            <td>
              <code>{tag.digest ?? "—"}</code>
            </td>
            <td>{tag.size === null ? (tag.mediaType?.includes("index") || tag.mediaType?.includes("list") ? "index" : "—") : formatBytes(tag.size)}</td>
            <td>{pushed ? formatTime(pushed.time) : "—"}</td>
            <td>{pushed?.actor ?? "—"}</td>
          </tr>
        );
      })}
      </DataTable>
      {tags?.length === 0 && <p>No tags.</p>}
    </section>
  );
}

// ---- service accounts ----

function ServiceAccountsPage({ session }: { session: Session }) {
  const [accounts, setAccounts] = useState<ServiceAccount[] | null>(null);
  const [issued, setIssued] = useState<IssuedToken | null>(null);
  const { status, busy, run } = useAction();
  const load = () => run(async () => setAccounts((await api<{ serviceAccounts: ServiceAccount[] }>("GET", "/admin/v1/service-accounts")).serviceAccounts));
  useEffect(() => void load(), []);
  const path = (account: ServiceAccount) => `/admin/v1/service-accounts/${segment(account.username)}`;

  const create = (event: Event) => {
    event.preventDefault();
    const formElement = event.currentTarget as HTMLFormElement;
    const form = new FormData(formElement);
    void run(async () => {
      const namespace = String(form.get("namespace"));
      const role = String(form.get("role"));
      const expires = String(form.get("expires") ?? "");
      const created = await api<IssuedToken>("POST", "/admin/v1/service-accounts", {
        namespace,
        name: form.get("name"),
        description: form.get("description"),
        grants: role === "none" ? [] : [{ namespace, role }],
        ...(expires ? { expiresAt: new Date(`${expires}T00:00:00Z`).toISOString() } : {}),
      });
      setIssued(created);
      formElement.reset();
      await load();
      return `Created ${created.username}`;
    });
  };
  const rotate = (account: ServiceAccount) =>
    run(async () => {
      const input = document.getElementById(`overlap-${account.username}`) as HTMLInputElement | null;
      const overlapSeconds = Number(input?.value || "0") * 60;
      setIssued(await api<IssuedToken>("POST", `${path(account)}/rotate`, { overlapSeconds }));
      await load();
      return `Rotated ${account.username}; the previous token works for ${overlapSeconds / 60} more minutes`;
    });
  const setDisabled = (account: ServiceAccount, disabled: boolean) =>
    run(async () => {
      await api("PATCH", path(account), { disabled });
      await load();
      return `${account.username} ${disabled ? "disabled" : "enabled"}`;
    });
  const remove = (account: ServiceAccount) =>
    run(async () => {
      if (!confirm(`Delete ${account.username}? Clients using its token stop working.`)) return;
      await api("DELETE", path(account));
      await load();
      return `Deleted ${account.username}`;
    });

  return (
    <section aria-labelledby="sa-title">
      <h1 id="sa-title">Service accounts</h1>
      <Status status={status} />
      {issued && <IssuedCredentials issued={issued} onDone={() => setIssued(null)} />}
      <form class="inline" onSubmit={create} aria-labelledby="sa-create-title">
        <h2 id="sa-create-title">Create a service account</h2>
        <label for="sa-namespace">Namespace</label>
        <input id="sa-namespace" name="namespace" required defaultValue={session.grants.find((grant) => grant.role === "admin")?.target.name ?? ""} />
        <label for="sa-name">Name</label>
        <input id="sa-name" name="name" required pattern="[a-z0-9][a-z0-9._\-]*[a-z0-9]" title="lowercase letters, digits, . _ -" />
        <label for="sa-description">Description</label>
        <input id="sa-description" name="description" />
        <label for="sa-role">Access to the namespace</label>
        <select id="sa-role" name="role" defaultValue="read">
          <option value="read">read (pull)</option>
          <option value="write">write (push and pull)</option>
          <option value="none">none</option>
        </select>
        <label for="sa-expires">Expires (optional)</label>
        <input id="sa-expires" name="expires" type="date" />
        <button type="submit" disabled={busy}>
          Create
        </button>
      </form>
      <DataTable columns={["Service account", "State", "Access", "Expires", "Last used", "Actions"]}>
      {(accounts ?? []).map((account) => (
        <tr key={account.username} data-account={account.username}>
          <td>
            {account.username}
            {account.description && <div class="muted">{account.description}</div>}
          </td>
          <td>
            {account.state}
            {account.previousTokenValidUntil && <div class="muted">previous token until {formatTime(account.previousTokenValidUntil)}</div>}
          </td>
          <td>{grantsText(account.grants)}</td>
          <td>{account.expiresAt ? formatTime(account.expiresAt) : "never"}</td>
          <td>{account.lastUsedAt ? formatTime(account.lastUsedAt) : "never"}</td>
          <td class="actions">
            <label for={`overlap-${account.username}`}>Overlap (minutes)</label>
            <input id={`overlap-${account.username}`} type="number" min="0" max="10080" defaultValue="60" class="narrow" />
            <button type="button" disabled={busy} onClick={() => rotate(account)}>
              Rotate {account.username}
            </button>
            <button type="button" disabled={busy} onClick={() => setDisabled(account, !account.disabled)}>
              {account.disabled ? "Enable" : "Disable"} {account.username}
            </button>
            <button type="button" disabled={busy} onClick={() => remove(account)} class="danger">
              Delete {account.username}
            </button>
          </td>
        </tr>
      ))}
      </DataTable>
      {accounts?.length === 0 && <p>No service accounts yet.</p>}
    </section>
  );
}

/** The token, once: each output exactly as the API returned it, with a copy button. */
function IssuedCredentials({ issued, onDone }: { issued: IssuedToken; onDone: () => void }) {
  const c: Credentials = issued.credentials;
  const outputs: [string, string, string][] = [
    ["podman-login", "podman login", c.podmanLogin],
    ["auth-json", "auth.json (docker / podman / skopeo)", JSON.stringify(c.authJson, null, 2)],
    ["kubernetes-secret", "Kubernetes Secret (kubectl apply -f -)", c.kubernetesSecret],
    ["kubectl-command", "kubectl", c.kubectlCommand],
    ["openshift-command", "OpenShift (oc); then link it: oc secrets link default <secret name> --for=pull", c.ocCommand],
  ];
  return (
    <section class="issued" aria-labelledby="issued-title">
      <h2 id="issued-title">Token for {issued.username}</h2>
      <p>
        <strong>Shown once.</strong> Copy what you need now; the registry keeps only a hash of it.
      </p>
      {outputs.map(([id, title, text]) => (
        <div class="output" key={id}>
          <div class="output-head">
            <span id={`${id}-title`}>{title}</span>
            <CopyButton text={text} label={`Copy ${title.split(" (")[0]}`} />
          </div>
          <pre id={id} aria-labelledby={`${id}-title`} tabIndex={0}>
            {text}
          </pre>
        </div>
      ))}
      <button type="button" onClick={onDone}>
        Done: I have copied the token
      </button>
    </section>
  );
}

function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(text);
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return (
    <button type="button" onClick={copy} aria-label={label} class="copy">
      {copied ? "Copied" : "Copy"}
    </button>
  );
}

// ---- grants ----

function GrantsPage() {
  const [kind, setKind] = useState<"users" | "service-accounts">("users");
  const [name, setName] = useState("");
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const { status, busy, run } = useAction();
  const base = () => `/admin/v1/${kind}/${segment(name)}/grants`;
  const load = () => run(async () => setGrants((await api<{ grants: Grant[] }>("GET", base())).grants));
  const add = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const targetKind = String(form.get("target-kind"));
    void run(async () => {
      await api("PUT", base(), { [targetKind]: form.get("target"), role: form.get("role") });
      await load();
      return "Grant set";
    });
  };
  const remove = (grant: Grant) =>
    run(async () => {
      await api("DELETE", base(), { [grant.target.kind]: grant.target.name });
      await load();
      return "Grant removed";
    });
  return (
    <section aria-labelledby="grants-title">
      <h1 id="grants-title">Grants</h1>
      <Status status={status} />
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          void load();
        }}
      >
        <label for="grants-kind">Principal</label>
        <select id="grants-kind" value={kind} onChange={(event) => setKind((event.currentTarget as HTMLSelectElement).value as typeof kind)}>
          <option value="users">web user</option>
          <option value="service-accounts">service account</option>
        </select>
        <label for="grants-name">Name</label>
        <input id="grants-name" value={name} required onInput={(event) => setName((event.currentTarget as HTMLInputElement).value)} />
        <button type="submit" disabled={busy}>
          Show grants
        </button>
      </form>
      {grants && (
        <>
          <DataTable columns={["Target", "Role", "Actions"]}>
          {grants.map((grant) => (
            <tr key={`${grant.target.kind}:${grant.target.name}`}>
              <td>
                {grant.target.kind} {grant.target.name}
              </td>
              <td>{grant.role}</td>
              <td>
                <button type="button" disabled={busy} onClick={() => remove(grant)}>
                  Remove {grant.role} on {grant.target.name}
                </button>
              </td>
            </tr>
          ))}
          </DataTable>
          <form class="inline" onSubmit={add}>
            <label for="grant-target-kind">On</label>
            <select id="grant-target-kind" name="target-kind">
              <option value="namespace">namespace</option>
              <option value="repository">repository</option>
            </select>
            <label for="grant-target">Name</label>
            <input id="grant-target" name="target" required />
            <label for="grant-role">Role</label>
            <select id="grant-role" name="role">
              <option value="read">read</option>
              <option value="write">write</option>
              <option value="admin">admin</option>
            </select>
            <button type="submit" disabled={busy}>
              Set grant
            </button>
          </form>
        </>
      )}
    </section>
  );
}

// ---- audit ----

/**
 * The audit log: all of it for a registry administrator; a namespace administrator reads the events of a
 * namespace it administers (`namespace=`, which starts on the first it holds the admin role on).
 */
function AuditPage({ session }: { session: Session }) {
  const initialNamespace = session.registryAdmin ? "" : (session.grants.find((grant) => grant.role === "admin" && grant.target.kind === "namespace")?.target.name ?? "");
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [query, setQuery] = useState<URLSearchParams>(new URLSearchParams({ limit: "100", ...(initialNamespace ? { namespace: initialNamespace } : {}) }));
  const { status, busy, run } = useAction();
  const load = (params: URLSearchParams, append: boolean) =>
    run(async () => {
      const page = await api<{ events: AuditEvent[]; cursor: string | null }>("GET", `/admin/v1/audit?${params}`);
      setEvents((previous) => (append && previous ? [...previous, ...page.events] : page.events));
      setCursor(page.cursor);
    });
  useEffect(() => void load(query, false), []);
  const filter = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const params = new URLSearchParams({ limit: "100" });
    for (const field of ["namespace", "actor", "action"]) {
      const value = String(form.get(field) ?? "").trim();
      if (value) params.set(field, value);
    }
    const since = String(form.get("since") ?? "");
    if (since) params.set("since", new Date(since).toISOString());
    setQuery(params);
    void load(params, false);
  };
  const more = () => {
    const params = new URLSearchParams(query);
    params.set("cursor", cursor!);
    void load(params, true);
  };
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form class="inline" onSubmit={filter}>
        <label for="audit-namespace">Namespace{session.registryAdmin ? " (optional)" : ""}</label>
        <input id="audit-namespace" name="namespace" defaultValue={initialNamespace} required={!session.registryAdmin} />
        <label for="audit-actor">Actor</label>
        <input id="audit-actor" name="actor" />
        <label for="audit-action">Action</label>
        <input id="audit-action" name="action" placeholder="e.g. service-account.rotate" list="audit-actions" />
        <datalist id="audit-actions">
          {["service-account.create", "service-account.rotate", "service-account.update", "service-account.delete", "grant.set", "grant.revoke", "auth.failure"].map((action) => (
            <option value={action} />
          ))}
        </datalist>
        <label for="audit-since">Since</label>
        <input id="audit-since" name="since" type="datetime-local" />
        <button type="submit" disabled={busy}>
          Filter
        </button>
      </form>
      <Status status={status} />
      <DataTable columns={["Time", "Actor", "Action", "Target", "Detail"]}>
      {(events ?? []).map((event, index) => (
        <tr key={`${event.time}-${index}`}>
          <td>{formatTime(event.time)}</td>
          <td>{event.actor}</td>
          <td>{event.action}</td>
          <td>{event.target ?? ""}</td>
          <td>{event.detail ?? ""}</td>
        </tr>
      ))}
      </DataTable>
      {events?.length === 0 && <p>No events match.</p>}
      {cursor && (
        <button type="button" disabled={busy} onClick={more}>
          Older events
        </button>
      )}
    </section>
  );
}

// ---- the user's own account ----

function AccountPage({ session }: { session: Session }) {
  const [tokens, setTokens] = useState<RefreshToken[] | null>(null);
  const { status, busy, run } = useAction();
  const load = () => run(async () => setTokens((await api<{ refreshTokens: RefreshToken[] }>("GET", "/account/v1/refresh-tokens")).refreshTokens));
  useEffect(() => void load(), []);
  const change = (event: Event) => {
    event.preventDefault();
    const formElement = event.currentTarget as HTMLFormElement;
    const form = new FormData(formElement);
    void run(async () => {
      if (form.get("password") !== form.get("confirm")) throw new Error("the two passwords differ");
      await api("PUT", "/account/v1/password", { password: form.get("password") });
      formElement.reset();
      // A new password ends every session and refresh token of the user, this one included.
      return "Password changed. Your sessions and refresh tokens have ended; sign in again.";
    });
  };
  const revoke = (token: RefreshToken) =>
    run(async () => {
      await api("DELETE", `/account/v1/refresh-tokens/${segment(token.id)}`);
      await load();
      return "Revoked";
    });
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">My account: {session.username}</h1>
      <Status status={status} />
      <form class="inline" onSubmit={change} aria-labelledby="password-title">
        <h2 id="password-title">Change password</h2>
        <label for="new-password">New password (at least 12 characters)</label>
        <input id="new-password" name="password" type="password" minLength={12} autocomplete="new-password" required />
        <label for="confirm-password">Repeat it</label>
        <input id="confirm-password" name="confirm" type="password" minLength={12} autocomplete="new-password" required />
        <button type="submit" disabled={busy}>
          Change password
        </button>
      </form>
      <h2>Refresh tokens and console sessions</h2>
      <DataTable columns={["Kind", "Client", "Issued", "Actions"]}>
      {(tokens ?? []).map((token) => (
        <tr key={token.id}>
          <td>{token.service === "web console session" ? "console session" : `refresh token (${token.service})`}</td>
          <td>{token.clientId}</td>
          <td>{formatTime(token.createdAt)}</td>
          <td>
            <button type="button" disabled={busy} onClick={() => revoke(token)}>
              Revoke {token.id}
            </button>
          </td>
        </tr>
      ))}
      </DataTable>
    </section>
  );
}

/** A table with a header row of column names; `children` are its body rows. */
function DataTable({ columns, children }: { columns: string[]; children: ComponentChildren }) {
  return (
    <table>
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col">{column}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

// ---- formatting ----

function grantsText(grants: Grant[]): ComponentChildren {
  return grants.length === 0 ? "none" : grants.map((grant) => `${grant.role} on ${grant.target.name}`).join(", ");
}

function formatTime(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

render(<App />, document.getElementById("app")!);
