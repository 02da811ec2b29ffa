#!/usr/bin/env node
// edge-registry: the admin CLI for a local or deployed registry (README "Admin CLI").
// Talks to /admin/v1 with a registry administrator's Basic credentials.
import { existsSync, readFileSync } from "node:fs";
import https from "node:https";
import http from "node:http";
import { join } from "node:path";
import { isPushCommand, pushCommand } from "./push.mjs";

const USAGE = `usage: edge-registry [global options] <command> [arguments]

global options (or environment variables):
  --registry URL        registry URL (EDGE_REGISTRY_URL; default https://127.0.0.1:8787)
  --user NAME           administrator (EDGE_REGISTRY_USER; default admin)
  --password SECRET     password (EDGE_REGISTRY_PASSWORD); --password-stdin reads it from stdin;
                        for a loopback registry, .dev.vars in the current directory is used when unset
  --insecure            skip TLS verification (EDGE_REGISTRY_INSECURE=1; implied for 127.0.0.1/localhost)
  --json                print JSON instead of tables

commands:
  namespaces list | create NAME [--public] | show NAME | set-public NAME true|false | delete NAME [--force]
        | usage NAME | quota NAME (SIZE|--clear)      storage use; a quota refuses pushes past it (SIZE e.g. 10GiB, 500MB)
  repositories set-public NAME true|false | delete NAME | usage NAME
  tags history REPO[:TAG] [--limit N] [--all]        tag moves within the retention window, newest first
  tags restore REPO:TAG --to (DIGEST|TIME|AGO)        e.g. --to sha256:…, --to 2026-05-01T12:00:00Z, --to 2h
  tags purge-history REPO [--before TIME]             forget tag moves (no restore to them; frees kept manifests)
  immutable-tags list TARGET | add TARGET PATTERN | remove TARGET PATTERN
        TARGET is a repository (ns/app) or a namespace (ns); PATTERN a tag glob such as v* or release-?
  retention list REPO | add REPO PATTERN [--keep N] [--expire-after DURATION] | remove REPO PATTERN
        | run REPO [--dry-run]      keep the newest N matching tags and/or expire them after a duration
  untagged-retention show TARGET | set TARGET DURATION | clear TARGET | run REPO [--dry-run]
        remove manifests untagged for longer than DURATION (TARGET ns/app or ns; off by default)
  gc [--dry-run] [--grace DURATION] [--repository REPO]
        garbage-collect blob bytes no manifest references (default grace GC_GRACE_HOURS, 24h); --dry-run
        reports the count and bytes the run would free; run again while it reports more
  users list | show NAME | create NAME [--admin] [--new-password P] | disable NAME | enable NAME
        | set-password NAME [--new-password P] | delete NAME | refresh-tokens NAME | revoke-refresh-token NAME ID
  service-accounts list | show USER
        | create NAMESPACE NAME [--description D] [--grant NS=ROLE]... [--repo-grant REPO=ROLE]...
                                [--expires-in 30d] [--output FORMAT] [--k8s-namespace NS] [--secret-name N]
        | rotate USER [--overlap 1h] [--output FORMAT] [--k8s-namespace NS] [--secret-name N]
        | disable USER | enable USER | set-expiry USER (TIME|never) | delete USER
  service-accounts trust list USER
        | add USER --issuer URL --audience AUD... --subject PATTERN [--claim NAME=PATTERN]...
              [--algorithm RS256|ES256]... [--max-token-age 1h] [--replay-window 5m] [--description D]
        | remove USER (ID|INDEX|--all)
        workload identity federation: OIDC tokens (GitHub Actions, GitLab CI, Kubernetes) the policy accepts
        log in as USER with its grants; PATTERN is exact or a glob (*)
  grants list (users|service-accounts) NAME
        | add (users|service-accounts) NAME (--namespace NS | --repository REPO) --role (read|write|admin)
        | remove (users|service-accounts) NAME (--namespace NS | --repository REPO)
  audit [--since TIME] [--until TIME] [--actor NAME] [--action ACTION] [--limit N] [--cursor C] [--all] [--namespace NS]
        admin changes, newest first; failed logins with --action auth.failure
  push SOURCE REPOSITORY[:TAG] [--chunk-size SIZE] [--parallel N] [--tls-verify=false] ...
        push an image (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE) in chunks within the
        registry's request body limit, as any account that may push; see edge-registry push --help

--output FORMAT (create and rotate): summary (default), token, login, auth-json, k8s-secret, kubectl, oc, json
exit codes: 0 success, 1 the registry refused, 2 usage error, 3 could not reach the registry`;

class UsageError extends Error {}
class ApiError extends Error {}

const BOOLEAN_FLAGS = new Set(["public", "admin", "insecure", "json", "password-stdin", "help", "all", "dry-run", "force", "clear"]);
const REPEATED_FLAGS = new Set(["grant", "repo-grant", "audience", "claim", "algorithm"]);

function parseArgs(argv) {
  const flags = { grant: [], "repo-grant": [], audience: [], claim: [], algorithm: [] };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (BOOLEAN_FLAGS.has(name)) {
      flags[name] = inline === undefined ? true : inline !== "false";
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (REPEATED_FLAGS.has(name)) flags[name].push(value);
    else flags[name] = value;
  }
  return { flags, positional };
}

/** `30d`, `12h`, `15m`, `90s` or plain seconds → seconds. */
function durationSeconds(text) {
  const match = /^(\d+)([smhd]?)$/.exec(text);
  if (!match) throw new UsageError(`not a duration: ${text} (use e.g. 90s, 15m, 12h, 30d)`);
  return Number(match[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}

/** `10GiB`, `500MB`, `2.5GB`, `1048576` → bytes (KB/MB/GB/TB powers of 1000, KiB/MiB/GiB/TiB powers of 1024). */
function sizeBytes(text) {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$/i.exec(text);
  if (!match) throw new UsageError(`not a size: ${text} (use e.g. 500MB, 10GiB or a number of bytes)`);
  const unit = (match[2] ?? "B").toUpperCase();
  const power = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0]];
  return Math.round(Number(match[1]) * (unit.includes("I") ? 1024 : 1000) ** power);
}

function readStdin() {
  return readFileSync(0, "utf8").replace(/\r?\n$/, "");
}

function isLoopback(url) {
  return ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

function connection(flags) {
  const registry = new URL(flags.registry ?? process.env.EDGE_REGISTRY_URL ?? "https://127.0.0.1:8787");
  const user = flags.user ?? process.env.EDGE_REGISTRY_USER ?? "admin";
  let password = flags["password-stdin"] ? readStdin() : (flags.password ?? process.env.EDGE_REGISTRY_PASSWORD);
  if (password === undefined && isLoopback(registry) && existsSync(join(process.cwd(), ".dev.vars"))) {
    password = /^BOOTSTRAP_ADMIN_PASSWORD='([^']*)'$/m.exec(readFileSync(join(process.cwd(), ".dev.vars"), "utf8"))?.[1];
  }
  if (!password) throw new UsageError("no password: pass --password, --password-stdin or set EDGE_REGISTRY_PASSWORD");
  const insecure = Boolean(flags.insecure) || process.env.EDGE_REGISTRY_INSECURE === "1" || isLoopback(registry);
  return { registry, user, password, insecure };
}

function request(conn, method, path, body) {
  const url = new URL(path, conn.registry);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const transport = url.protocol === "http:" ? http : https;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method,
        auth: `${conn.user}:${conn.password}`,
        rejectUnauthorized: !conn.insecure,
        agent: false,
        headers: payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          if (res.statusCode >= 400) {
            const error = json?.error;
            reject(Object.assign(new ApiError(error?.code ? `${error.code}: ${error.message}` : `HTTP ${res.statusCode}`), { status: res.statusCode }));
          } else resolve(json);
        });
      },
    );
    req.on("error", (error) => reject(Object.assign(error, { unreachable: true })));
    req.end(payload);
  });
}

function table(rows, columns) {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((row) => columns.map((column) => (row[column] === undefined || row[column] === null ? "-" : String(row[column]))));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => row[index].length)));
  const line = (values) => values.map((value, index) => value.padEnd(widths[index])).join("  ").trimEnd();
  return [line(columns.map((column) => column.toUpperCase())), ...cells.map(line)].join("\n");
}

const grantText = (grants) => (grants ?? []).map((g) => `${g.role}@${g.target.name}`).join(",") || "-";

function parseGrant(text, kind) {
  const [name, role] = text.split("=");
  if (!name || !role) throw new UsageError(`grant must be NAME=ROLE, got ${text}`);
  return { [kind]: name, role };
}

function grantTarget(flags) {
  if (flags.namespace) return { namespace: flags.namespace };
  if (flags.repository) return { repository: flags.repository };
  throw new UsageError("give --namespace NS or --repository REPO");
}

const enc = encodeURIComponent;

/** Prints what a create or rotate returned, in the format asked for. */
function printCredentials(result, format, json) {
  if (json || format === "json") return console.log(JSON.stringify(result, null, 2));
  const c = result.credentials;
  switch (format ?? "summary") {
    case "token":
      return console.log(result.token);
    case "login":
      return console.log(c.podmanLogin);
    case "auth-json":
      return console.log(JSON.stringify(c.authJson, null, 2));
    case "k8s-secret":
      return process.stdout.write(c.kubernetesSecret);
    case "kubectl":
      return console.log(c.kubectlCommand);
    case "oc":
      return console.log(c.ocCommand);
    case "summary":
      console.log(`service account: ${result.username}`);
      console.log(`token (shown once): ${result.token}`);
      if (result.previousTokenValidUntil) console.log(`previous token valid until: ${result.previousTokenValidUntil}`);
      console.log(`\n  ${c.podmanLogin}\n`);
      console.log("other formats: --output auth-json | k8s-secret | kubectl | oc | token");
      return;
    default:
      throw new UsageError(`unknown --output ${format}`);
  }
}

async function run(argv) {
  // `push` is a registry client, not an admin API call: its own options and credentials (bin/push.mjs).
  if (isPushCommand(argv)) return pushCommand(argv);
  const { flags, positional } = parseArgs(argv);
  if (flags.help || positional.length === 0) {
    console.log(USAGE);
    return;
  }
  const [group, action, ...args] = positional;
  const conn = connection(flags);
  const api = (method, path, body) => request(conn, method, `/admin/v1${path}`, body);
  // Reads a namespace administrator may make too: the admin API (registry administrators), else the account API.
  const adminRead = (path) =>
    api("GET", path).catch((error) => {
      if (error instanceof ApiError && error.status === 403) return request(conn, "GET", `/account/v1${path}`);
      throw error;
    });
  const print = (value, rows, columns) => console.log(flags.json ? JSON.stringify(value, null, 2) : table(rows, columns));
  const need = (count) => {
    if (args.length < count) throw new UsageError(`${group} ${action} needs ${count} argument(s); see --help`);
  };
  const bool = (text) => {
    if (text !== "true" && text !== "false") throw new UsageError(`expected true or false, got ${text}`);
    return text === "true";
  };

  switch (`${group} ${action ?? ""}`.trim()) {
    case "namespaces list": {
      const { namespaces } = await api("GET", "/namespaces");
      return print(namespaces, namespaces, ["name", "organizationId", "public", "createdAt"]);
    }
    case "namespaces create": {
      need(1);
      const record = await api("POST", "/namespaces", { name: args[0], public: Boolean(flags.public) });
      return print(record, [record], ["name", "organizationId", "public"]);
    }
    case "namespaces show": {
      need(1);
      const record = await api("GET", `/namespaces/${enc(args[0])}`);
      return print(record, [record], ["name", "organizationId", "public", "createdAt"]);
    }
    case "namespaces set-public": {
      need(2);
      const record = await api("PATCH", `/namespaces/${enc(args[0])}`, { public: bool(args[1]) });
      return print(record, [record], ["name", "public"]);
    }
    case "namespaces delete":
      need(1);
      await api("DELETE", `/namespaces/${enc(args[0])}${flags.force ? "?force=true" : ""}`);
      return console.log(`deleted namespace ${args[0]}${flags.force ? " and its repositories" : ""}`);
    case "namespaces usage": {
      need(1);
      const usage = await adminRead(`/namespaces/${enc(args[0])}/usage`);
      if (flags.json) return console.log(JSON.stringify(usage, null, 2));
      console.log(
        `namespace ${usage.namespace}: ${usage.usedBytes} bytes stored (deduplicated, ${usage.blobs} blobs), ${usage.logicalBytes} logical bytes, ` +
          `${usage.reservedBytes} reserved by uploads in progress; quota ${usage.quotaBytes ?? "none"}`,
      );
      return console.log(table(usage.repositories, ["name", "storedBytes", "logicalBytes", "blobs", "manifests"]));
    }
    case "namespaces quota": {
      need(1);
      if (flags.clear) {
        await api("DELETE", `/namespaces/${enc(args[0])}/quota`);
        return console.log(`namespace ${args[0]} has no quota`);
      }
      need(2);
      const usage = await api("PUT", `/namespaces/${enc(args[0])}/quota`, { bytes: sizeBytes(args[1]) });
      if (flags.json) return console.log(JSON.stringify(usage, null, 2));
      return console.log(`namespace ${args[0]}: quota ${usage.quotaBytes} bytes; ${usage.usedBytes} bytes stored`);
    }
    case "repositories usage": {
      need(1);
      const usage = await adminRead(`/repositories/${args[0]}/usage`);
      return print(usage, [usage], ["name", "storedBytes", "logicalBytes", "blobs", "manifests"]);
    }
    case "repositories delete": {
      need(1);
      const { deleted } = await api("DELETE", `/repositories/${args[0]}`);
      if (flags.json) return console.log(JSON.stringify(deleted, null, 2));
      return console.log(
        `deleted repository ${args[0]}: ${deleted.tags} tags, ${deleted.manifests} manifests, ${deleted.blobLinks} blob links, ` +
          `${deleted.uploads} upload sessions (blob bytes are freed by garbage collection)`,
      );
    }
    case "tags history": {
      need(1);
      const [repository, tag] = args[0].split(":");
      const query = new URLSearchParams();
      if (tag) query.set("tag", tag);
      if (flags.limit) query.set("limit", flags.limit);
      const moves = [];
      let page;
      do {
        page = await api("GET", `/repositories/${repository}/tags/history?${query}`);
        moves.push(...page.moves);
        if (page.cursor) query.set("cursor", page.cursor);
      } while (flags.all && page.cursor);
      if (page.cursor) console.error("more moves: add --all");
      return print(moves, moves, ["time", "tag", "from", "to", "actor"]);
    }
    case "tags restore": {
      need(1);
      const [repository, tag] = args[0].split(":");
      if (!tag) throw new UsageError("tags restore needs REPO:TAG");
      const to = flags.to;
      if (!to) throw new UsageError("--to DIGEST, TIME or a duration ago (2h, 3d) is required");
      const body = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(to)
        ? { digest: to }
        : { time: /^\d+[smhd]$/.test(to) ? new Date(Date.now() - durationSeconds(to) * 1000).toISOString() : to };
      const result = await api("POST", `/repositories/${repository}/tags/${enc(tag)}/restore`, body);
      if (flags.json) return console.log(JSON.stringify(result, null, 2));
      return console.log(result.changed ? `${repository}:${tag} restored to ${result.digest} (was ${result.previous ?? "absent"})` : `${repository}:${tag} already points at ${result.digest}`);
    }
    case "tags purge-history": {
      need(1);
      const { purged } = await api("DELETE", `/repositories/${args[0]}/tags/history`, flags.before ? { before: flags.before } : {});
      if (flags.json) return console.log(JSON.stringify(purged, null, 2));
      return console.log(`forgot ${purged.moves} tag moves of ${args[0]} and ${purged.manifests} manifests kept for restores`);
    }
    case "retention list": {
      need(1);
      const { rules } = await api("GET", `/repositories/${args[0]}/retention`);
      return print(rules, rules, ["pattern", "keepNewest", "expireAfterSeconds", "createdBy", "createdAt"]);
    }
    case "retention add": {
      need(2);
      const body = {
        pattern: args[1],
        ...(flags.keep !== undefined ? { keepNewest: Number(flags.keep) } : {}),
        ...(flags["expire-after"] !== undefined ? { expireAfterSeconds: durationSeconds(flags["expire-after"]) } : {}),
      };
      const { rules } = await api("POST", `/repositories/${args[0]}/retention`, body);
      return print(rules, rules, ["pattern", "keepNewest", "expireAfterSeconds"]);
    }
    case "retention remove":
      need(2);
      await api("DELETE", `/repositories/${args[0]}/retention`, { pattern: args[1] });
      return console.log(`removed retention rule ${args[1]} from ${args[0]}`);
    case "retention run": {
      need(1);
      const { removed } = await api("POST", `/repositories/${args[0]}/retention/run`, { dryRun: Boolean(flags["dry-run"]) });
      return print(removed, removed, ["tag", "digest", "reason"]);
    }
    case "untagged-retention show": {
      need(1);
      const result = await api("GET", `${args[0].includes("/") ? "/repositories" : "/namespaces"}/${args[0]}/untagged-retention`);
      if (flags.json) return console.log(JSON.stringify(result, null, 2));
      const seconds = result.effectiveExpireAfterSeconds ?? result.expireAfterSeconds;
      return console.log(`${args[0]}: ${seconds === null ? "untagged manifests are kept" : `untagged manifests are removed after ${seconds}s`}`);
    }
    case "untagged-retention set": {
      need(2);
      const path = `${args[0].includes("/") ? "/repositories" : "/namespaces"}/${args[0]}/untagged-retention`;
      await api("PUT", path, { expireAfterSeconds: durationSeconds(args[1]) });
      return console.log(`${args[0]}: untagged manifests are removed after ${durationSeconds(args[1])}s`);
    }
    case "untagged-retention clear": {
      need(1);
      await api("DELETE", `${args[0].includes("/") ? "/repositories" : "/namespaces"}/${args[0]}/untagged-retention`);
      return console.log(`${args[0]}: no untagged-manifest retention`);
    }
    case "untagged-retention run": {
      need(1);
      const { removed } = await api("POST", `/repositories/${args[0]}/untagged-retention/run`, { dryRun: Boolean(flags["dry-run"]) });
      return print(removed, removed, ["digest", "untaggedSince", "retentionSeconds"]);
    }
    case "gc": {
      const body = {
        dryRun: Boolean(flags["dry-run"]),
        ...(flags.grace !== undefined ? { gracePeriodSeconds: durationSeconds(flags.grace) } : {}),
        ...(flags.repository ? { repository: flags.repository } : {}),
      };
      const report = await api("POST", "/gc", body);
      if (flags.json) return console.log(JSON.stringify(report, null, 2));
      const verb = report.dryRun ? "would free" : "freed";
      console.log(`${verb} ${report.blobs} blobs (${report.bytes} bytes); ${report.links} unreferenced links in ${report.repositories} repositories`);
      if (report.more) console.log("more links remain: run again");
      return;
    }
    case "immutable-tags list": {
      need(1);
      const isRepository = args[0].includes("/");
      const result = await api("GET", `${isRepository ? "/repositories" : "/namespaces"}/${args[0]}/immutable-tags`);
      const rows = [
        ...(result.rules ?? []).map((rule) => ({ ...rule, scope: isRepository ? "repository" : "namespace" })),
        ...(result.namespaceRules ?? []).map((rule) => ({ ...rule, scope: "namespace" })),
      ];
      return print(result, rows, ["pattern", "scope", "createdBy", "createdAt"]);
    }
    case "immutable-tags add":
    case "immutable-tags remove": {
      need(2);
      const path = `${args[0].includes("/") ? "/repositories" : "/namespaces"}/${args[0]}/immutable-tags`;
      await api(action === "add" ? "POST" : "DELETE", path, { pattern: args[1] });
      return console.log(action === "add" ? `tags of ${args[0]} matching ${args[1]} are immutable` : `removed rule ${args[1]} from ${args[0]}`);
    }
    case "repositories set-public": {
      need(2);
      const record = await api("PATCH", `/repositories/${args[0]}`, { public: bool(args[1]) });
      return print(record, [record], ["name", "public"]);
    }

    case "users list": {
      const { users } = await api("GET", "/users");
      return print(users, users.map((u) => ({ ...u, grants: grantText(u.grants) })), ["username", "registryAdmin", "disabled", "grants", "lastUsedAt", "createdAt"]);
    }
    case "users show": {
      need(1);
      const user = await api("GET", `/users/${enc(args[0])}`);
      return print(user, [{ ...user, grants: grantText(user.grants) }], ["username", "registryAdmin", "disabled", "grants", "lastUsedAt"]);
    }
    case "users create": {
      need(1);
      const password = flags["new-password"] ?? readStdin();
      const user = await api("POST", "/users", { username: args[0], password, registryAdmin: Boolean(flags.admin) });
      return print(user, [user], ["username", "registryAdmin", "createdAt"]);
    }
    case "users disable":
    case "users enable": {
      need(1);
      const user = await api("PATCH", `/users/${enc(args[0])}`, { disabled: action === "disable" });
      return print(user, [user], ["username", "disabled"]);
    }
    case "users set-password":
      need(1);
      await api("PUT", `/users/${enc(args[0])}/password`, { password: flags["new-password"] ?? readStdin() });
      return console.log(`password of ${args[0]} set; their refresh tokens were revoked`);
    case "users delete":
      need(1);
      await api("DELETE", `/users/${enc(args[0])}`);
      return console.log(`deleted user ${args[0]}`);
    case "users refresh-tokens": {
      need(1);
      const { refreshTokens } = await api("GET", `/users/${enc(args[0])}/refresh-tokens`);
      return print(refreshTokens, refreshTokens, ["id", "clientId", "service", "createdAt"]);
    }
    case "users revoke-refresh-token":
      need(2);
      await api("DELETE", `/users/${enc(args[0])}/refresh-tokens/${enc(args[1])}`);
      return console.log(`revoked refresh token ${args[1]}`);

    case "service-accounts list": {
      const { serviceAccounts } = await api("GET", "/service-accounts");
      return print(
        serviceAccounts,
        serviceAccounts.map((sa) => ({ ...sa, grants: grantText(sa.grants) })),
        ["username", "state", "grants", "expiresAt", "lastUsedAt", "createdBy", "createdAt"],
      );
    }
    case "service-accounts show": {
      need(1);
      const sa = await api("GET", `/service-accounts/${enc(args[0])}`);
      return print(sa, [{ ...sa, grants: grantText(sa.grants) }], ["username", "state", "description", "grants", "expiresAt", "lastUsedAt", "rotatedAt", "previousTokenValidUntil", "createdBy"]);
    }
    case "service-accounts create": {
      need(2);
      const body = {
        namespace: args[0],
        name: args[1],
        description: flags.description,
        grants: [...flags.grant.map((g) => parseGrant(g, "namespace")), ...flags["repo-grant"].map((g) => parseGrant(g, "repository"))],
        expiresAt: flags["expires-in"] ? new Date(Date.now() + durationSeconds(flags["expires-in"]) * 1000).toISOString() : undefined,
        kubernetesNamespace: flags["k8s-namespace"],
        secretName: flags["secret-name"],
      };
      return printCredentials(await api("POST", "/service-accounts", body), flags.output, flags.json);
    }
    case "service-accounts rotate": {
      need(1);
      const body = {
        overlapSeconds: flags.overlap ? durationSeconds(flags.overlap) : 0,
        kubernetesNamespace: flags["k8s-namespace"],
        secretName: flags["secret-name"],
      };
      return printCredentials(await api("POST", `/service-accounts/${enc(args[0])}/rotate`, body), flags.output, flags.json);
    }
    case "service-accounts disable":
    case "service-accounts enable": {
      need(1);
      const sa = await api("PATCH", `/service-accounts/${enc(args[0])}`, { disabled: action === "disable" });
      return print(sa, [sa], ["username", "state"]);
    }
    case "service-accounts set-expiry": {
      need(2);
      const sa = await api("PATCH", `/service-accounts/${enc(args[0])}`, { expiresAt: args[1] === "never" ? null : args[1] });
      return print(sa, [sa], ["username", "state", "expiresAt"]);
    }
    case "service-accounts delete":
      need(1);
      await api("DELETE", `/service-accounts/${enc(args[0])}`);
      return console.log(`deleted service account ${args[0]}; its tokens stop working`);

    case "service-accounts trust": {
      const [sub, user, ref] = args;
      if (!user) throw new UsageError("service-accounts trust (list|add|remove) USER …; see --help");
      const base = `/service-accounts/${enc(user)}/trust-policies`;
      const policyRows = (policies) =>
        policies.map((p, index) => ({
          index,
          ...p,
          audiences: p.audiences.join(","),
          claims: Object.entries(p.claims ?? {}).map(([name, pattern]) => `${name}=${pattern}`).join(",") || "-",
          algorithms: p.algorithms.join(","),
        }));
      const columns = ["index", "id", "issuer", "audiences", "subject", "claims", "algorithms", "maxTokenAgeSeconds", "replayWindowSeconds"];
      if (sub === "list") {
        const { trustPolicies } = await api("GET", base);
        return print(trustPolicies, policyRows(trustPolicies), columns);
      }
      if (sub === "add") {
        if (!flags.issuer || flags.audience.length === 0 || !flags.subject) throw new UsageError("trust add needs --issuer, --audience and --subject");
        const claims = {};
        for (const text of flags.claim) {
          const at = text.indexOf("=");
          if (at <= 0) throw new UsageError(`--claim ${text}: expected NAME=PATTERN`);
          claims[text.slice(0, at)] = text.slice(at + 1);
        }
        const body = {
          issuer: flags.issuer,
          audiences: flags.audience,
          subject: flags.subject,
          ...(flags.claim.length ? { claims } : {}),
          ...(flags.algorithm.length ? { algorithms: flags.algorithm } : {}),
          ...(flags["max-token-age"] ? { maxTokenAgeSeconds: durationSeconds(flags["max-token-age"]) } : {}),
          ...(flags["replay-window"] ? { replayWindowSeconds: durationSeconds(flags["replay-window"]) } : {}),
          ...(flags.description ? { description: flags.description } : {}),
        };
        const policy = await api("PUT", base, body);
        return print(policy, policyRows([policy]).map((row) => ({ ...row, index: "new" })), columns);
      }
      if (sub === "remove") {
        if (!ref && !flags.all) throw new UsageError("trust remove needs a policy id or index, or --all");
        await api("DELETE", ref ? `${base}/${enc(ref)}` : base);
        return console.log(ref ? `removed trust policy ${ref} of ${user}` : `removed every trust policy of ${user}`);
      }
      throw new UsageError(`unknown service-accounts trust command ${sub}; see --help`);
    }

    case "grants list": {
      need(2);
      const { grants } = await api("GET", `/${args[0]}/${enc(args[1])}/grants`);
      return print(grants, grants.map((g) => ({ kind: g.target.kind, target: g.target.name, role: g.role })), ["kind", "target", "role"]);
    }
    case "grants add": {
      need(2);
      if (!flags.role) throw new UsageError("--role is required");
      const grant = await api("PUT", `/${args[0]}/${enc(args[1])}/grants`, { ...grantTarget(flags), role: flags.role });
      return print(grant, [{ kind: grant.target.kind, target: grant.target.name, role: grant.role }], ["kind", "target", "role"]);
    }
    case "grants remove":
      need(2);
      await api("DELETE", `/${args[0]}/${enc(args[1])}/grants`, grantTarget(flags));
      return console.log("grant removed");

    case "audit": {
      // Newest first, a page at a time (the API answers a `cursor` while more events match); --all follows it.
      const query = new URLSearchParams();
      // --namespace: a namespace administrator reads its namespace's events (the whole log is for registry administrators).
      for (const name of ["since", "until", "actor", "action", "limit", "cursor", "namespace"]) if (flags[name]) query.set(name, flags[name]);
      const events = [];
      let page;
      do {
        page = await api("GET", `/audit?${query}`);
        events.push(...page.events);
        if (page.cursor) query.set("cursor", page.cursor);
      } while (flags.all && page.cursor);
      if (page.cursor) console.error(`more events: add --cursor ${page.cursor} (or --all)`);
      return print(events, events, ["time", "actor", "action", "target", "detail"]);
    }
    default:
      throw new UsageError(`unknown command: ${positional.join(" ")}`);
  }
}

try {
  await run(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`edge-registry: ${error.message}\n(see edge-registry --help)`);
    process.exit(2);
  }
  if (error instanceof ApiError) {
    console.error(`edge-registry: ${error.message}`);
    process.exit(1);
  }
  if (error.unreachable) {
    console.error(`edge-registry: cannot reach the registry: ${error.message}`);
    process.exit(3);
  }
  throw error;
}
