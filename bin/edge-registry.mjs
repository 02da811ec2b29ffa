#!/usr/bin/env node
// @ts-check
// edge-registry: the admin CLI for a local or deployed registry (README "Admin CLI").
// Talks to /admin/v1 with a registry administrator's (or namespace administrator's) Basic credentials.
//
// Strict by design (issue 15): every command declares its options and arguments; an unknown option, a missing
// value, a stray argument, a duration without a unit or a malformed time exits 2 with that command's usage
// before anything is sent. The response shapes come from src/http/admin-api-types.ts, the admin API's own types.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError, booleanArgument, countArgument, durationSeconds, loosePositionals, parseStrict, sizeBytes, timeArgument } from "./lib/cli-args.mjs";
import { httpsRequest, jsonBody } from "./lib/https-request.mjs";
import { canPrompt, promptSecret, readStdinSecret } from "./lib/secret-input.mjs";
import { isPushCommand, pushCommand } from "./push.mjs";

/** @typedef {import("../src/http/admin-api-types").ServiceAccountView} ServiceAccountView */
/** @typedef {import("../src/http/admin-api-types").IssuedCredentials} IssuedCredentials */
/** @typedef {import("../src/http/admin-api-types").GrantView} GrantView */
/** @typedef {import("../src/http/admin-api-types").UserView} UserView */
/** @typedef {import("../src/http/admin-api-types").NamespaceView} NamespaceView */
/** @typedef {import("../src/http/admin-api-types").AuditPageView} AuditPageView */
/** @typedef {import("../src/http/admin-api-types").WebhookView} WebhookView */
/** @typedef {import("../src/http/admin-api-types").CreatedWebhookView} CreatedWebhookView */
/** @typedef {import("../src/http/admin-api-types").WebhookListView} WebhookListView */
/** @typedef {import("../src/http/admin-api-types").WebhookDeliveriesView} WebhookDeliveriesView */
/** @typedef {import("../src/model/trust-policy").TrustPolicy} TrustPolicyView */
/** @typedef {import("./lib/cli-args.mjs").OptionSpecs} OptionSpecs */

const GLOBAL_USAGE = `global options (anywhere on the line; or environment variables):
  --registry URL        registry URL (EDGE_REGISTRY_URL; default https://127.0.0.1:8787)
  --user NAME           administrator (EDGE_REGISTRY_USER; default admin)
  --password-stdin      read the administrator's password from stdin (else EDGE_REGISTRY_PASSWORD, --password,
                        .dev.vars in the current directory for a loopback registry, or a hidden prompt)
  --insecure            skip TLS verification (EDGE_REGISTRY_INSECURE=1; implied for a loopback registry)
  --json                print JSON instead of tables
  -h, --help            usage (of a command: edge-registry COMMAND --help)`;

/** @type {OptionSpecs} */
const GLOBAL_OPTIONS = {
  registry: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  "password-stdin": { type: "boolean" },
  insecure: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

const OUTPUT_FORMATS = ["summary", "token", "login", "auth-json", "k8s-secret", "kubectl", "oc", "json"];
const string = /** @type {const} */ ({ type: "string" });
const flag = /** @type {const} */ ({ type: "boolean" });
const many = /** @type {const} */ ({ type: "string", multiple: true });
/** @type {OptionSpecs} */
const CREDENTIAL_OPTIONS = { output: { type: "string", short: "o" }, "k8s-namespace": string, "secret-name": string };

class ApiError extends Error {
  /** @param {string} message @param {number} status */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

class UnreachableError extends Error {}

/**
 * @typedef {object} Call
 * @property {string[]} args the command's arguments (count checked)
 * @property {Record<string, any>} options the command's options (names checked; values checked by the command)
 * @property {(method: string, path: string, body?: unknown) => Promise<any>} api an /admin/v1 call
 * @property {<T extends object>(value: unknown, rows: T[], columns: (keyof T & string)[]) => void} print column names checked against the rows' type (the admin API's, src/http/admin-api-types.ts)
 * @property {boolean} json
 * @property {() => Promise<string>} newPassword the new password of a web user (stdin or hidden prompt)
 */

/**
 * @typedef {object} Command
 * @property {string} usage  the synopsis after `edge-registry`
 * @property {string} [help] what it does and what its options mean
 * @property {string[]} args argument names; `NAME?` is optional
 * @property {OptionSpecs} [options]
 * @property {(call: Call) => Promise<void> | void} run
 */

const enc = encodeURIComponent;
const grantText = (/** @type {GrantView[] | undefined} */ grants) => (grants ?? []).map((g) => `${g.role}@${g.target.name}`).join(",") || "-";
/** Repository (ns/app) or namespace (ns) routes. */
const targetPath = (/** @type {string} */ target) => `${target.includes("/") ? "/repositories" : "/namespaces"}/${target}`;

/** `NS=ROLE` / `REPO=ROLE` of --grant / --repo-grant. @param {string} text @param {"namespace" | "repository"} kind */
function parseGrant(text, kind) {
  const [name, role, extra] = text.split("=");
  if (!name || !role || extra !== undefined) throw new UsageError(`--${kind === "namespace" ? "grant" : "repo-grant"} ${JSON.stringify(text)}: expected ${kind === "namespace" ? "NAMESPACE" : "REPOSITORY"}=ROLE (ROLE read, write or admin)`);
  if (!["read", "write", "admin"].includes(role)) throw new UsageError(`--grant ${JSON.stringify(text)}: the role must be read, write or admin`);
  return { [kind]: name, role };
}

/** --namespace NS or --repository REPO, exactly one. @param {Record<string, any>} options */
function grantTarget(options) {
  if (options.namespace && options.repository) throw new UsageError("give --namespace NS or --repository REPO, not both");
  if (options.namespace) return { namespace: options.namespace };
  if (options.repository) return { repository: options.repository };
  throw new UsageError("give --namespace NS or --repository REPO");
}

/** @param {string} kind */
function principalKind(kind) {
  if (kind !== "users" && kind !== "service-accounts") throw new UsageError(`expected users or service-accounts, got ${JSON.stringify(kind)}`);
  return kind;
}

/** @param {string | undefined} format */
function checkOutputFormat(format) {
  if (format !== undefined && !OUTPUT_FORMATS.includes(format)) throw new UsageError(`--output ${JSON.stringify(format)}: expected one of ${OUTPUT_FORMATS.join(", ")}`);
}

/**
 * Prints what a create or rotate returned, in the format asked for.
 * @param {IssuedCredentials} result @param {string | undefined} format @param {boolean} json
 */
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
      return void process.stdout.write(c.kubernetesSecret);
    case "kubectl":
      return console.log(c.kubectlCommand);
    case "oc":
      return console.log(c.ocCommand);
    default:
      console.log(`service account: ${result.username}${result.quayName ? ` (also ${result.quayName})` : ""}`);
      console.log(`token (shown once): ${result.token}`);
      if (result.previousTokenValidUntil) console.log(`previous token valid until: ${result.previousTokenValidUntil}`);
      console.log(`\n  ${c.podmanLogin}\n`);
      console.log("other formats: --output auth-json | k8s-secret | kubectl | oc | token | login | json");
  }
}

/** @param {Call} call @param {string} path */
async function pagedMoves(call, path) {
  /** @type {any[]} */
  const moves = [];
  const query = new URLSearchParams();
  const [repository, tag] = /** @type {[string, string | undefined]} */ (call.args[0].split(":"));
  if (tag) query.set("tag", tag);
  if (call.options.limit !== undefined) query.set("limit", String(countArgument(call.options.limit, "--limit", 1, 1000)));
  let page;
  do {
    page = await call.api("GET", `/repositories/${repository}/${path}?${query}`);
    moves.push(...page.moves);
    if (page.cursor) query.set("cursor", page.cursor);
  } while (call.options.all && page.cursor);
  if (page.cursor) console.error("more moves: add --all");
  return moves;
}

/**
 * `users disable NAME`, `service-accounts enable ACCOUNT`, …: a PATCH of `disabled`.
 * @param {"users" | "service-accounts"} kind @param {string} argument @param {boolean} disabled @param {string[]} columns
 * @returns {Command}
 */
function setDisabled(kind, argument, disabled, columns) {
  return {
    usage: `${kind} ${disabled ? "disable" : "enable"} ${argument}`,
    args: [argument],
    async run(call) {
      const record = await call.api("PATCH", `/${kind}/${enc(call.args[0])}`, { disabled });
      call.print(record, [record], columns);
    },
  };
}

/** @type {Record<string, Command>} */
const COMMANDS = {
  "namespaces list": {
    usage: "namespaces list",
    args: [],
    async run(call) {
      /** @type {{ namespaces: NamespaceView[] }} */
      const { namespaces } = await call.api("GET", "/namespaces");
      call.print(namespaces, namespaces, ["name", "organizationId", "public", "createdAt"]);
    },
  },
  "namespaces create": {
    usage: "namespaces create NAME [--public]",
    args: ["NAME"],
    options: { public: flag },
    async run(call) {
      /** @type {NamespaceView} */
      const record = await call.api("POST", "/namespaces", { name: call.args[0], public: Boolean(call.options.public) });
      call.print(record, [record], ["name", "organizationId", "public"]);
    },
  },
  "namespaces show": {
    usage: "namespaces show NAME",
    args: ["NAME"],
    async run(call) {
      /** @type {NamespaceView} */
      const record = await call.api("GET", `/namespaces/${enc(call.args[0])}`);
      call.print(record, [record], ["name", "organizationId", "public", "createdAt"]);
    },
  },
  "namespaces set-public": {
    usage: "namespaces set-public NAME true|false",
    args: ["NAME", "VALUE"],
    async run(call) {
      const record = await call.api("PATCH", `/namespaces/${enc(call.args[0])}`, { public: booleanArgument(call.args[1], "VALUE") });
      call.print(record, [record], ["name", "public"]);
    },
  },
  "namespaces delete": {
    usage: "namespaces delete NAME [--force]",
    help: "--force also deletes its repositories",
    args: ["NAME"],
    options: { force: flag },
    async run(call) {
      await call.api("DELETE", `/namespaces/${enc(call.args[0])}${call.options.force ? "?force=true" : ""}`);
      console.log(`deleted namespace ${call.args[0]}${call.options.force ? " and its repositories" : ""}`);
    },
  },
  "namespaces usage": {
    usage: "namespaces usage NAME",
    args: ["NAME"],
    async run(call) {
      const usage = await call.api("GET", `/namespaces/${enc(call.args[0])}/usage`);
      if (call.json) return console.log(JSON.stringify(usage, null, 2));
      console.log(
        `namespace ${usage.namespace}: ${usage.usedBytes} bytes stored (deduplicated, ${usage.blobs} blobs), ${usage.logicalBytes} logical bytes, ` +
          `${usage.reservedBytes} reserved by uploads in progress; quota ${usage.quotaBytes ?? "none"}`,
      );
      console.log(table(usage.repositories, ["name", "storedBytes", "logicalBytes", "blobs", "manifests"]));
    },
  },
  "namespaces quota": {
    usage: "namespaces quota NAME (SIZE | --clear)",
    help: "a quota refuses pushes past it; SIZE e.g. 10GiB, 500MB",
    args: ["NAME", "SIZE?"],
    options: { clear: flag },
    async run(call) {
      const [name, size] = call.args;
      if (call.options.clear === (size !== undefined)) throw new UsageError("give SIZE or --clear (one of them)");
      if (call.options.clear) {
        await call.api("DELETE", `/namespaces/${enc(name)}/quota`);
        return console.log(`namespace ${name} has no quota`);
      }
      const usage = await call.api("PUT", `/namespaces/${enc(name)}/quota`, { bytes: sizeBytes(/** @type {string} */ (size)) });
      if (call.json) return console.log(JSON.stringify(usage, null, 2));
      console.log(`namespace ${name}: quota ${usage.quotaBytes} bytes; ${usage.usedBytes} bytes stored`);
    },
  },
  "repositories usage": {
    usage: "repositories usage REPO",
    args: ["REPO"],
    async run(call) {
      const usage = await call.api("GET", `/repositories/${call.args[0]}/usage`);
      call.print(usage, [usage], ["name", "storedBytes", "logicalBytes", "blobs", "manifests"]);
    },
  },
  "repositories set-public": {
    usage: "repositories set-public REPO true|false",
    args: ["REPO", "VALUE"],
    async run(call) {
      const record = await call.api("PATCH", `/repositories/${call.args[0]}`, { public: booleanArgument(call.args[1], "VALUE") });
      call.print(record, [record], ["name", "public"]);
    },
  },
  "repositories delete": {
    usage: "repositories delete REPO",
    args: ["REPO"],
    async run(call) {
      const { deleted } = await call.api("DELETE", `/repositories/${call.args[0]}`);
      if (call.json) return console.log(JSON.stringify(deleted, null, 2));
      console.log(
        `deleted repository ${call.args[0]}: ${deleted.tags} tags, ${deleted.manifests} manifests, ${deleted.blobLinks} blob links, ` +
          `${deleted.uploads} upload sessions (blob bytes are freed by garbage collection)`,
      );
    },
  },
  "tags history": {
    usage: "tags history REPO[:TAG] [--limit N] [--all]",
    help: "tag moves within the retention window, newest first",
    args: ["REPO[:TAG]"],
    options: { limit: string, all: flag },
    async run(call) {
      const moves = await pagedMoves(call, "tags/history");
      call.print(moves, moves, ["time", "tag", "from", "to", "actor"]);
    },
  },
  "tags restore": {
    usage: "tags restore REPO:TAG --to (DIGEST | TIME | DURATION)",
    help: "e.g. --to sha256:…, --to 2026-05-01T12:00:00Z, --to 2h (two hours ago)",
    args: ["REPO:TAG"],
    options: { to: string },
    async run(call) {
      const [repository, tag, extra] = call.args[0].split(":");
      if (!repository || !tag || extra !== undefined) throw new UsageError("tags restore needs REPO:TAG");
      const to = call.options.to;
      if (!to) throw new UsageError("--to DIGEST, TIME or a duration ago (2h, 3d) is required");
      const body = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(to) ? { digest: to } : { time: timeArgument(to, "--to") };
      const result = await call.api("POST", `/repositories/${repository}/tags/${enc(tag)}/restore`, body);
      if (call.json) return console.log(JSON.stringify(result, null, 2));
      console.log(result.changed ? `${repository}:${tag} restored to ${result.digest} (was ${result.previous ?? "absent"})` : `${repository}:${tag} already points at ${result.digest}`);
    },
  },
  "tags purge-history": {
    usage: "tags purge-history REPO [--before (TIME | DURATION)]",
    help: "forget tag moves (no restore to them; frees kept manifests); --before 30d: moves older than 30 days",
    args: ["REPO"],
    options: { before: string },
    async run(call) {
      const body = call.options.before !== undefined ? { before: timeArgument(call.options.before, "--before") } : {};
      const { purged } = await call.api("DELETE", `/repositories/${call.args[0]}/tags/history`, body);
      if (call.json) return console.log(JSON.stringify(purged, null, 2));
      console.log(`forgot ${purged.moves} tag moves of ${call.args[0]} and ${purged.manifests} manifests kept for restores`);
    },
  },
  "immutable-tags list": {
    usage: "immutable-tags list TARGET",
    help: "TARGET is a repository (ns/app) or a namespace (ns)",
    args: ["TARGET"],
    async run(call) {
      const isRepository = call.args[0].includes("/");
      const result = await call.api("GET", `${targetPath(call.args[0])}/immutable-tags`);
      const rows = [
        ...(result.rules ?? []).map((/** @type {object} */ rule) => ({ ...rule, scope: isRepository ? "repository" : "namespace" })),
        ...(result.namespaceRules ?? []).map((/** @type {object} */ rule) => ({ ...rule, scope: "namespace" })),
      ];
      call.print(result, rows, ["pattern", "scope", "createdBy", "createdAt"]);
    },
  },
  "immutable-tags add": {
    usage: "immutable-tags add TARGET PATTERN",
    help: "PATTERN is a tag glob such as v* or release-?",
    args: ["TARGET", "PATTERN"],
    async run(call) {
      await call.api("POST", `${targetPath(call.args[0])}/immutable-tags`, { pattern: call.args[1] });
      console.log(`tags of ${call.args[0]} matching ${call.args[1]} are immutable`);
    },
  },
  "immutable-tags remove": {
    usage: "immutable-tags remove TARGET PATTERN",
    args: ["TARGET", "PATTERN"],
    async run(call) {
      await call.api("DELETE", `${targetPath(call.args[0])}/immutable-tags`, { pattern: call.args[1] });
      console.log(`removed rule ${call.args[1]} from ${call.args[0]}`);
    },
  },
  "retention list": {
    usage: "retention list REPO",
    args: ["REPO"],
    async run(call) {
      const { rules } = await call.api("GET", `/repositories/${call.args[0]}/retention`);
      call.print(rules, rules, ["pattern", "keepNewest", "expireAfterSeconds", "createdBy", "createdAt"]);
    },
  },
  "retention add": {
    usage: "retention add REPO PATTERN [--keep N] [--expire-after DURATION]",
    help: "keep the newest N matching tags and/or expire them after a duration (e.g. 30d)",
    args: ["REPO", "PATTERN"],
    options: { keep: string, "expire-after": string },
    async run(call) {
      const { keep, "expire-after": expireAfter } = call.options;
      if (keep === undefined && expireAfter === undefined) throw new UsageError("give --keep N and/or --expire-after DURATION");
      const body = {
        pattern: call.args[1],
        ...(keep !== undefined ? { keepNewest: countArgument(keep, "--keep", 0) } : {}),
        ...(expireAfter !== undefined ? { expireAfterSeconds: durationSeconds(expireAfter, "--expire-after") } : {}),
      };
      const { rules } = await call.api("POST", `/repositories/${call.args[0]}/retention`, body);
      call.print(rules, rules, ["pattern", "keepNewest", "expireAfterSeconds"]);
    },
  },
  "retention remove": {
    usage: "retention remove REPO PATTERN",
    args: ["REPO", "PATTERN"],
    async run(call) {
      await call.api("DELETE", `/repositories/${call.args[0]}/retention`, { pattern: call.args[1] });
      console.log(`removed retention rule ${call.args[1]} from ${call.args[0]}`);
    },
  },
  "retention run": {
    usage: "retention run REPO [--dry-run]",
    args: ["REPO"],
    options: { "dry-run": flag },
    async run(call) {
      const { removed } = await call.api("POST", `/repositories/${call.args[0]}/retention/run`, { dryRun: Boolean(call.options["dry-run"]) });
      call.print(removed, removed, ["tag", "digest", "reason"]);
    },
  },
  "untagged-retention show": {
    usage: "untagged-retention show TARGET",
    help: "TARGET ns/app or ns",
    args: ["TARGET"],
    async run(call) {
      const result = await call.api("GET", `${targetPath(call.args[0])}/untagged-retention`);
      if (call.json) return console.log(JSON.stringify(result, null, 2));
      const seconds = result.effectiveExpireAfterSeconds ?? result.expireAfterSeconds;
      console.log(`${call.args[0]}: ${seconds === null ? "untagged manifests are kept" : `untagged manifests are removed after ${seconds}s`}`);
    },
  },
  "untagged-retention set": {
    usage: "untagged-retention set TARGET DURATION",
    help: "remove manifests untagged for longer than DURATION (e.g. 7d)",
    args: ["TARGET", "DURATION"],
    async run(call) {
      const seconds = durationSeconds(call.args[1], "DURATION");
      await call.api("PUT", `${targetPath(call.args[0])}/untagged-retention`, { expireAfterSeconds: seconds });
      console.log(`${call.args[0]}: untagged manifests are removed after ${seconds}s`);
    },
  },
  "untagged-retention clear": {
    usage: "untagged-retention clear TARGET",
    args: ["TARGET"],
    async run(call) {
      await call.api("DELETE", `${targetPath(call.args[0])}/untagged-retention`);
      console.log(`${call.args[0]}: no untagged-manifest retention`);
    },
  },
  "untagged-retention run": {
    usage: "untagged-retention run REPO [--dry-run]",
    args: ["REPO"],
    options: { "dry-run": flag },
    async run(call) {
      const { removed } = await call.api("POST", `/repositories/${call.args[0]}/untagged-retention/run`, { dryRun: Boolean(call.options["dry-run"]) });
      call.print(removed, removed, ["digest", "untaggedSince", "retentionSeconds"]);
    },
  },
  gc: {
    usage: "gc [--dry-run] [--grace DURATION] [--repository REPO]",
    help: "garbage-collect blob bytes no manifest references (default grace GC_GRACE_HOURS, 24h); --dry-run reports\nthe count and bytes the run would free; run again while it reports more",
    args: [],
    options: { "dry-run": flag, grace: string, repository: string },
    async run(call) {
      const body = {
        dryRun: Boolean(call.options["dry-run"]),
        ...(call.options.grace !== undefined ? { gracePeriodSeconds: durationSeconds(call.options.grace, "--grace") } : {}),
        ...(call.options.repository ? { repository: call.options.repository } : {}),
      };
      const report = await call.api("POST", "/gc", body);
      if (call.json) return console.log(JSON.stringify(report, null, 2));
      console.log(`${report.dryRun ? "would free" : "freed"} ${report.blobs} blobs (${report.bytes} bytes); ${report.links} unreferenced links in ${report.repositories} repositories`);
      if (report.more) console.log("more links remain: run again");
    },
  },

  "users list": {
    usage: "users list",
    args: [],
    async run(call) {
      /** @type {{ users: UserView[] }} */
      const { users } = await call.api("GET", "/users");
      call.print(users, users.map((u) => ({ ...u, grants: grantText(u.grants) })), ["username", "registryAdmin", "disabled", "grants", "lastUsedAt", "createdAt"]);
    },
  },
  "users show": {
    usage: "users show NAME",
    args: ["NAME"],
    async run(call) {
      /** @type {UserView} */
      const user = await call.api("GET", `/users/${enc(call.args[0])}`);
      call.print(user, [{ ...user, grants: grantText(user.grants) }], ["username", "registryAdmin", "disabled", "grants", "lastUsedAt"]);
    },
  },
  "users create": {
    usage: "users create NAME [--admin] [--new-password-stdin]",
    help: "the new user's password: from stdin with --new-password-stdin, else asked with a hidden prompt on a terminal",
    args: ["NAME"],
    options: { admin: flag, "new-password-stdin": flag },
    async run(call) {
      const password = await call.newPassword();
      /** @type {UserView} */
      const user = await call.api("POST", "/users", { username: call.args[0], password, registryAdmin: Boolean(call.options.admin) });
      call.print(user, [user], ["username", "registryAdmin", "createdAt"]);
    },
  },
  "users set-password": {
    usage: "users set-password NAME [--new-password-stdin]",
    help: "the new password: from stdin with --new-password-stdin, else asked with a hidden prompt on a terminal",
    args: ["NAME"],
    options: { "new-password-stdin": flag },
    async run(call) {
      await call.api("PUT", `/users/${enc(call.args[0])}/password`, { password: await call.newPassword() });
      console.log(`password of ${call.args[0]} set; their refresh tokens were revoked`);
    },
  },
  "users disable": setDisabled("users", "NAME", true, ["username", "disabled"]),
  "users enable": setDisabled("users", "NAME", false, ["username", "disabled"]),
  "users delete": {
    usage: "users delete NAME",
    args: ["NAME"],
    async run(call) {
      await call.api("DELETE", `/users/${enc(call.args[0])}`);
      console.log(`deleted user ${call.args[0]}`);
    },
  },
  "users refresh-tokens": {
    usage: "users refresh-tokens NAME",
    args: ["NAME"],
    async run(call) {
      const { refreshTokens } = await call.api("GET", `/users/${enc(call.args[0])}/refresh-tokens`);
      call.print(refreshTokens, refreshTokens, ["id", "clientId", "service", "createdAt"]);
    },
  },
  "users revoke-refresh-token": {
    usage: "users revoke-refresh-token NAME ID",
    args: ["NAME", "ID"],
    async run(call) {
      await call.api("DELETE", `/users/${enc(call.args[0])}/refresh-tokens/${enc(call.args[1])}`);
      console.log(`revoked refresh token ${call.args[1]}`);
    },
  },

  "service-accounts list": {
    usage: "service-accounts list [--namespace NS]",
    help: "--namespace: only the accounts of that namespace",
    args: [],
    options: { namespace: string },
    async run(call) {
      /** @type {{ serviceAccounts: ServiceAccountView[] }} */
      const { serviceAccounts } = await call.api("GET", "/service-accounts");
      const namespace = call.options.namespace;
      const shown = namespace === undefined ? serviceAccounts : serviceAccounts.filter((sa) => sa.namespace === namespace);
      call.print(shown, shown.map((sa) => ({ ...sa, grants: grantText(sa.grants) })), ["username", "state", "grants", "expiresAt", "lastUsedAt", "createdBy", "createdAt"]);
    },
  },
  "service-accounts show": {
    usage: "service-accounts show ACCOUNT",
    help: "ACCOUNT is ORGID|NAME or NAMESPACE+NAME",
    args: ["ACCOUNT"],
    async run(call) {
      /** @type {ServiceAccountView} */
      const sa = await call.api("GET", `/service-accounts/${enc(call.args[0])}`);
      call.print(sa, [{ ...sa, grants: grantText(sa.grants) }], ["username", "state", "description", "grants", "expiresAt", "lastUsedAt", "rotatedAt", "previousTokenValidUntil", "createdBy"]);
    },
  },
  "service-accounts create": {
    usage:
      "service-accounts create NAMESPACE NAME [--description D] [--grant NS=ROLE]... [--repo-grant REPO=ROLE]...\n" +
      "                        [--expires-in DURATION] [-o|--output FORMAT] [--k8s-namespace NS] [--secret-name N]",
    help: `--expires-in 90d: the account stops working then; --output: ${OUTPUT_FORMATS.join(", ")}`,
    args: ["NAMESPACE", "NAME"],
    options: { description: string, grant: many, "repo-grant": many, "expires-in": string, ...CREDENTIAL_OPTIONS },
    async run(call) {
      const { options } = call;
      checkOutputFormat(options.output);
      const body = {
        namespace: call.args[0],
        name: call.args[1],
        description: options.description,
        grants: [...(options.grant ?? []).map((/** @type {string} */ g) => parseGrant(g, "namespace")), ...(options["repo-grant"] ?? []).map((/** @type {string} */ g) => parseGrant(g, "repository"))],
        expiresAt: options["expires-in"] !== undefined ? new Date(Date.now() + durationSeconds(options["expires-in"], "--expires-in") * 1000).toISOString() : undefined,
        kubernetesNamespace: options["k8s-namespace"],
        secretName: options["secret-name"],
      };
      printCredentials(await call.api("POST", "/service-accounts", body), options.output, call.json);
    },
  },
  "service-accounts rotate": {
    usage: "service-accounts rotate ACCOUNT [--overlap DURATION] [-o|--output FORMAT] [--k8s-namespace NS] [--secret-name N]",
    help: `--overlap 1h: the previous token keeps working that long (default: it stops now); --output: ${OUTPUT_FORMATS.join(", ")}`,
    args: ["ACCOUNT"],
    options: { overlap: string, ...CREDENTIAL_OPTIONS },
    async run(call) {
      const { options } = call;
      // Checked before the rotation: a format refused afterwards would lose the new token.
      checkOutputFormat(options.output);
      const body = {
        overlapSeconds: options.overlap !== undefined ? durationSeconds(options.overlap, "--overlap") : 0,
        kubernetesNamespace: options["k8s-namespace"],
        secretName: options["secret-name"],
      };
      printCredentials(await call.api("POST", `/service-accounts/${enc(call.args[0])}/rotate`, body), options.output, call.json);
    },
  },
  "service-accounts disable": setDisabled("service-accounts", "ACCOUNT", true, ["username", "state"]),
  "service-accounts enable": setDisabled("service-accounts", "ACCOUNT", false, ["username", "state"]),
  "service-accounts set-expiry": {
    usage: "service-accounts set-expiry ACCOUNT (TIME | DURATION | never)",
    help: "TIME is ISO 8601; DURATION (30d) counts from now",
    args: ["ACCOUNT", "EXPIRY"],
    async run(call) {
      const expiry = call.args[1] === "never" ? null : timeArgument(call.args[1], "EXPIRY", 1);
      const sa = await call.api("PATCH", `/service-accounts/${enc(call.args[0])}`, { expiresAt: expiry });
      call.print(sa, [sa], ["username", "state", "expiresAt"]);
    },
  },
  "service-accounts delete": {
    usage: "service-accounts delete ACCOUNT",
    args: ["ACCOUNT"],
    async run(call) {
      await call.api("DELETE", `/service-accounts/${enc(call.args[0])}`);
      console.log(`deleted service account ${call.args[0]}; its tokens stop working`);
    },
  },
  "service-accounts trust list": {
    usage: "service-accounts trust list ACCOUNT",
    args: ["ACCOUNT"],
    async run(call) {
      const { trustPolicies } = await call.api("GET", `/service-accounts/${enc(call.args[0])}/trust-policies`);
      call.print(trustPolicies, policyRows(trustPolicies), POLICY_COLUMNS);
    },
  },
  "service-accounts trust add": {
    usage:
      "service-accounts trust add ACCOUNT --issuer URL --audience AUD... --subject PATTERN [--claim NAME=PATTERN]...\n" +
      "                           [--algorithm RS256|ES256]... [--max-token-age DURATION] [--replay-window DURATION] [--description D]",
    help: "workload identity federation: OIDC tokens (GitHub Actions, GitLab CI, Kubernetes) the policy accepts log in as\nACCOUNT with its grants; PATTERN is exact or a glob (*)",
    args: ["ACCOUNT"],
    options: { issuer: string, audience: many, subject: string, claim: many, algorithm: many, "max-token-age": string, "replay-window": string, description: string },
    async run(call) {
      const { options } = call;
      if (!options.issuer || !options.audience?.length || !options.subject) throw new UsageError("trust add needs --issuer, --audience and --subject");
      /** @type {Record<string, string>} */
      const claims = {};
      for (const text of options.claim ?? []) {
        const at = text.indexOf("=");
        if (at <= 0) throw new UsageError(`--claim ${JSON.stringify(text)}: expected NAME=PATTERN`);
        claims[text.slice(0, at)] = text.slice(at + 1);
      }
      const body = {
        issuer: options.issuer,
        audiences: options.audience,
        subject: options.subject,
        ...(options.claim?.length ? { claims } : {}),
        ...(options.algorithm?.length ? { algorithms: options.algorithm } : {}),
        ...(options["max-token-age"] !== undefined ? { maxTokenAgeSeconds: durationSeconds(options["max-token-age"], "--max-token-age") } : {}),
        ...(options["replay-window"] !== undefined ? { replayWindowSeconds: durationSeconds(options["replay-window"], "--replay-window") } : {}),
        ...(options.description ? { description: options.description } : {}),
      };
      /** @type {TrustPolicyView} */
      const policy = await call.api("PUT", `/service-accounts/${enc(call.args[0])}/trust-policies`, body);
      call.print(policy, policyRows([policy]).map((row) => ({ ...row, index: "new" })), POLICY_COLUMNS);
    },
  },
  "service-accounts trust remove": {
    usage: "service-accounts trust remove ACCOUNT (ID | INDEX | --all)",
    args: ["ACCOUNT", "ID?"],
    options: { all: flag },
    async run(call) {
      const [user, ref] = call.args;
      if ((ref === undefined) === !call.options.all) throw new UsageError("give a policy id or index, or --all (one of them)");
      const base = `/service-accounts/${enc(user)}/trust-policies`;
      await call.api("DELETE", ref !== undefined ? `${base}/${enc(ref)}` : base);
      console.log(ref !== undefined ? `removed trust policy ${ref} of ${user}` : `removed every trust policy of ${user}`);
    },
  },

  "grants list": {
    usage: "grants list (users|service-accounts) NAME",
    args: ["KIND", "NAME"],
    async run(call) {
      /** @type {{ grants: GrantView[] }} */
      const { grants } = await call.api("GET", `/${principalKind(call.args[0])}/${enc(call.args[1])}/grants`);
      call.print(grants, grants.map((g) => ({ kind: g.target.kind, target: g.target.name, role: g.role })), ["kind", "target", "role"]);
    },
  },
  "grants add": {
    usage: "grants add (users|service-accounts) NAME (--namespace NS | --repository REPO) --role (read|write|admin)",
    args: ["KIND", "NAME"],
    options: { namespace: string, repository: string, role: string },
    async run(call) {
      const role = call.options.role;
      if (!["read", "write", "admin"].includes(role)) throw new UsageError(role === undefined ? "--role is required" : `--role ${JSON.stringify(role)}: expected read, write or admin`);
      /** @type {GrantView} */
      const grant = await call.api("PUT", `/${principalKind(call.args[0])}/${enc(call.args[1])}/grants`, { ...grantTarget(call.options), role });
      call.print(grant, [{ kind: grant.target.kind, target: grant.target.name, role: grant.role }], ["kind", "target", "role"]);
    },
  },
  "grants remove": {
    usage: "grants remove (users|service-accounts) NAME (--namespace NS | --repository REPO)",
    args: ["KIND", "NAME"],
    options: { namespace: string, repository: string },
    async run(call) {
      await call.api("DELETE", `/${principalKind(call.args[0])}/${enc(call.args[1])}/grants`, grantTarget(call.options));
      console.log("grant removed");
    },
  },

  "webhooks list": {
    usage: "webhooks list NAMESPACE",
    help: 'signed CloudEvents on pushes and deletes (README "Notifications"); never shows a secret',
    args: ["NAMESPACE"],
    async run(call) {
      /** @type {WebhookListView} */
      const { webhooks } = await call.api("GET", `/namespaces/${enc(call.args[0])}/webhooks`);
      const rows = webhooks.map((hook) => ({ ...hook, events: hook.events.join(",") }));
      call.print(webhooks, rows, ["id", "url", "repository", "events", "createdBy"]);
    },
  },
  "webhooks show": {
    usage: "webhooks show NAMESPACE ID",
    args: ["NAMESPACE", "ID"],
    async run(call) {
      /** @type {WebhookView} */
      const hook = await call.api("GET", `/namespaces/${enc(call.args[0])}/webhooks/${enc(call.args[1])}`);
      call.print(hook, [{ ...hook, events: hook.events.join(",") }], ["id", "url", "repository", "events", "createdBy", "createdAt"]);
    },
  },
  "webhooks create": {
    usage: "webhooks create NAMESPACE URL [--event TYPE]... [--repository REPO]",
    help: "prints the signing secret once; TYPE: manifest.pushed tag.moved manifest.deleted tag.deleted\nrepository.deleted tag.expired manifest.expired (default: all)",
    args: ["NAMESPACE", "URL"],
    options: { event: many, repository: string },
    async run(call) {
      const events = call.options.event ?? [];
      const body = { url: call.args[1], ...(events.length > 0 ? { events } : {}), ...(call.options.repository ? { repository: call.options.repository } : {}) };
      /** @type {CreatedWebhookView} */
      const hook = await call.api("POST", `/namespaces/${enc(call.args[0])}/webhooks`, body);
      if (call.json) return console.log(JSON.stringify(hook, null, 2));
      console.log(`webhook ${hook.id} → ${hook.url} (${hook.events.join(", ")})`);
      console.log(`signing secret (shown once; verify deliveries with it, README "Notifications"):\n${hook.secret}`);
    },
  },
  "webhooks delete": {
    usage: "webhooks delete NAMESPACE ID",
    args: ["NAMESPACE", "ID"],
    async run(call) {
      await call.api("DELETE", `/namespaces/${enc(call.args[0])}/webhooks/${enc(call.args[1])}`);
      console.log(`deleted webhook ${call.args[1]} of ${call.args[0]}`);
    },
  },
  "webhooks deliveries": {
    usage: "webhooks deliveries NAMESPACE ID [--limit N]",
    help: "the delivery log, newest first: status (delivered, retrying, dead), attempts, last error",
    args: ["NAMESPACE", "ID"],
    options: { limit: string },
    async run(call) {
      const query = call.options.limit !== undefined ? `?limit=${countArgument(call.options.limit, "--limit", 1, 200)}` : "";
      /** @type {WebhookDeliveriesView} */
      const { deliveries } = await call.api("GET", `/namespaces/${enc(call.args[0])}/webhooks/${enc(call.args[1])}/deliveries${query}`);
      call.print(deliveries, deliveries, ["updatedAt", "repository", "sequence", "type", "status", "attempts", "httpStatus", "lastError"]);
    },
  },

  audit: {
    usage: "audit [--since TIME] [--until TIME] [--actor NAME] [--action ACTION] [--limit N] [--cursor C] [--all] [--namespace NS]",
    help: "admin changes, newest first (--limit 10: the newest ten); failed logins with --action auth.failure;\nTIME is ISO 8601 or a duration ago (--since 1h); --namespace NS: that namespace's changes (what its administrators may read)",
    args: [],
    options: { since: string, until: string, actor: string, action: string, limit: string, cursor: string, all: flag, namespace: string },
    async run(call) {
      const { options } = call;
      // Newest first, a page at a time (the API answers a `cursor` while more events match); --all follows it.
      const query = new URLSearchParams();
      if (options.since !== undefined) query.set("since", timeArgument(options.since, "--since"));
      if (options.until !== undefined) query.set("until", timeArgument(options.until, "--until"));
      if (options.limit !== undefined) query.set("limit", String(countArgument(options.limit, "--limit", 1, 1000)));
      // --namespace: a namespace administrator reads its namespace's events (the whole log is for registry administrators).
      for (const name of ["actor", "action", "cursor", "namespace"]) if (options[name] !== undefined) query.set(name, options[name]);
      /** @type {AuditPageView["events"]} */
      const events = [];
      /** @type {AuditPageView} */
      let page;
      do {
        page = await call.api("GET", `/audit?${query}`);
        events.push(...page.events);
        if (page.cursor) query.set("cursor", page.cursor);
      } while (options.all && page.cursor);
      if (page.cursor) console.error(`more events: add --cursor ${page.cursor} (or --all)`);
      call.print(events, events, ["time", "actor", "action", "target", "detail"]);
    },
  },
  // Imports and mirrors (README "Import", "Mirror"): registry administrators on the admin API, administrators of
  // the namespace on the account API (same paths). --username with --upstream-password-stdin: the upstream's.
  import: {
    usage:
      "import SOURCE REPOSITORY[:TAG] [--all-tags | --tags REGEX] [--platform OS/ARCH]... [--scheduled [--every 1h]]\n" +
      "       [--username U --upstream-password-stdin]",
    help:
      "copy images from another registry: SOURCE is host[:port]/repository[:tag] (http:// only for a loopback registry\n" +
      "with ALLOW_INSECURE_UPSTREAMS); --all-tags or --tags REGEX (whole tag) instead of one tag; --platform keeps\n" +
      "those platforms of an index; --scheduled re-imports tags that moved upstream every --every (default 1h);\n" +
      "the upstream's password is read from stdin and stored encrypted",
    args: ["SOURCE", "REPOSITORY[:TAG]"],
    options: { "all-tags": flag, tags: string, platform: many, scheduled: flag, every: string, username: string, "upstream-password-stdin": flag },
    async run(call) {
      const [source, target] = /** @type {[string, string]} */ (call.args);
      const colon = target.lastIndexOf(":");
      const [repository, tag] = colon > target.lastIndexOf("/") ? [target.slice(0, colon), target.slice(colon + 1)] : [target, undefined];
      if (call.options.every !== undefined && !call.options.scheduled) throw new UsageError("--every goes with --scheduled");
      const body = {
        source,
        ...(tag !== undefined ? { tag } : {}),
        ...(call.options["all-tags"] ? { allTags: true } : {}),
        ...(call.options.tags !== undefined ? { tagPattern: call.options.tags } : {}),
        ...(call.options.platform?.length ? { platforms: call.options.platform } : {}),
        ...(call.options.scheduled ? { scheduled: true, ...(call.options.every !== undefined ? { everySeconds: durationSeconds(call.options.every, "--every") } : {}) } : {}),
        ...upstreamCredentials(call),
      };
      const record = await call.api("POST", `/repositories/${repository}/imports`, body);
      printImport(call, record);
      if (record.state === "failed") throw new ApiError(`import failed: ${record.lastError}`, 0);
    },
  },
  "import status": {
    usage: "import status REPOSITORY",
    help: "the repository's source, state, per-tag digest, time and error, and the next scheduled run",
    args: ["REPOSITORY"],
    async run(call) {
      printImport(call, await call.api("GET", `/repositories/${call.args[0]}/imports`));
    },
  },
  "import stop": {
    usage: "import stop REPOSITORY",
    help: "no more imports into REPOSITORY; what was imported stays",
    args: ["REPOSITORY"],
    async run(call) {
      await call.api("DELETE", `/repositories/${call.args[0]}/imports`);
      console.log(`${call.args[0]}: no longer imported (imported images stay)`);
    },
  },
  "mirrors set": {
    usage: "mirrors set NAMESPACE UPSTREAM [--revalidate 5m] [--username U --upstream-password-stdin]",
    help: "pull-through mirror: NAMESPACE/<path> serves UPSTREAM's <path>, fetched on first pull and re-checked after --revalidate",
    args: ["NAMESPACE", "UPSTREAM"],
    options: { revalidate: string, username: string, "upstream-password-stdin": flag },
    async run(call) {
      const [namespace, upstream] = /** @type {[string, string]} */ (call.args);
      const revalidate = call.options.revalidate !== undefined ? { revalidateSeconds: durationSeconds(call.options.revalidate, "--revalidate") } : {};
      const record = await call.api("PUT", `/namespaces/${enc(namespace)}/mirror`, { upstream, ...revalidate, ...upstreamCredentials(call) });
      call.print(record, [record], ["namespace", "upstream", "revalidateSeconds"]);
    },
  },
  "mirrors show": {
    usage: "mirrors show NAMESPACE",
    args: ["NAMESPACE"],
    async run(call) {
      const record = await call.api("GET", `/namespaces/${enc(call.args[0])}/mirror`);
      call.print(record, [record], ["namespace", "upstream", "revalidateSeconds"]);
    },
  },
  "mirrors remove": {
    usage: "mirrors remove NAMESPACE",
    help: "NAMESPACE is no longer a mirror; mirrored images stay",
    args: ["NAMESPACE"],
    async run(call) {
      await call.api("DELETE", `/namespaces/${enc(call.args[0])}/mirror`);
      console.log(`namespace ${call.args[0]} is no longer a mirror (mirrored images stay)`);
    },
  },
};

/** The upstream registry's credentials: --username with the password from stdin (--upstream-password-stdin). @param {Call} call */
function upstreamCredentials(call) {
  const { username } = call.options;
  const fromStdin = Boolean(call.options["upstream-password-stdin"]);
  if ((username === undefined) !== !fromStdin) throw new UsageError("--username and --upstream-password-stdin go together");
  if (fromStdin && call.options["password-stdin"]) throw new UsageError("--password-stdin and --upstream-password-stdin both read stdin: give the administrator's password with EDGE_REGISTRY_PASSWORD");
  return username === undefined ? {} : { username, password: readStdinSecret() };
}

/** @param {Call} call @param {any} record */
function printImport(call, record) {
  if (call.json) return console.log(JSON.stringify(record, null, 2));
  const source = record.source;
  const what = source.tag ?? (source.tagPattern ? `tags matching ${source.tagPattern}` : "all tags");
  console.log(
    `${record.repository} <- ${source.registry}/${source.repository} (${what}): ${record.state}` +
      (record.scheduled ? `, every ${record.everySeconds}s` : "") +
      (record.nextRunAt ? `, next run ${record.nextRunAt}` : ""),
  );
  if (record.lastError) console.log(`last error: ${record.lastError}`);
  if (record.pendingTags.length > 0) console.log(`pending: ${record.pendingTags.length} tags (continued by the cron trigger)`);
  /** @type {{ tag: string, digest?: string, importedAt?: string, error?: string }[]} */
  const rows = Object.entries(record.tags).map(([tag, status]) => ({ tag, .../** @type {object} */ (status) }));
  if (rows.length > 0) console.log(table(rows, ["tag", "digest", "importedAt", "error"]));
}

/** @type {("index" | keyof TrustPolicyView)[]} */
const POLICY_COLUMNS = ["index", "id", "issuer", "audiences", "subject", "claims", "algorithms", "maxTokenAgeSeconds", "replayWindowSeconds"];
/** @param {TrustPolicyView[]} policies */
const policyRows = (policies) =>
  policies.map((p, index) => ({
    index,
    ...p,
    audiences: p.audiences.join(","),
    claims: Object.entries(p.claims ?? {}).map(([name, pattern]) => `${name}=${pattern}`).join(",") || "-",
    algorithms: (p.algorithms ?? []).join(","),
  }));

/** @param {object[]} rows @param {string[]} columns */
function table(rows, columns) {
  if (rows.length === 0) return "(none)";
  const cell = (/** @type {Record<string, unknown>} */ row, /** @type {string} */ column) => (row[column] === undefined || row[column] === null ? "-" : String(row[column]));
  const cells = rows.map((row) => columns.map((column) => cell(/** @type {Record<string, unknown>} */ (row), column)));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => /** @type {string} */ (row[index]).length)));
  const line = (/** @type {string[]} */ values) => values.map((value, index) => value.padEnd(/** @type {number} */ (widths[index]))).join("  ").trimEnd();
  return [line(columns.map((column) => column.toUpperCase())), ...cells.map(line)].join("\n");
}

/** The usage of one command (what a mistake in it prints). @param {Command} command */
const commandUsage = (command) => `usage: edge-registry ${command.usage}${command.help ? `\n${command.help.replace(/^/gm, "  ")}` : ""}`;

function fullUsage() {
  const groups = Object.values(COMMANDS).map((command) => `  ${command.usage.replace(/\n/g, "\n  ")}`);
  return [
    "usage: edge-registry [global options] COMMAND [arguments]",
    "",
    GLOBAL_USAGE,
    "",
    "commands (edge-registry COMMAND --help for each one's options):",
    ...groups,
    "  push SOURCE REPOSITORY[:TAG] [--chunk-size SIZE] [--parallel N] [--tls-verify=false] ...   (edge-registry push --help)",
    "",
    "ACCOUNT (a service account) is ORGID|NAME or NAMESPACE+NAME; DURATION takes a unit (90s, 15m, 24h, 30d);",
    "TIME is ISO 8601 (2026-05-01T12:00:00Z) or, where it says so, a duration ago or from now.",
    "exit codes: 0 success, 1 the registry refused, 2 usage error, 3 could not reach the registry",
  ].join("\n");
}

/** Every option any command knows, to find the command words before the command is known. */
const ALL_OPTIONS = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((command) => command.options ?? {}));

/** The command the line names (longest match of its first words) and the words that named it. @param {string[]} argv */
function findCommand(argv) {
  const words = loosePositionals(argv, ALL_OPTIONS);
  for (const count of [3, 2, 1]) {
    const key = words.slice(0, count).join(" ");
    const command = COMMANDS[key];
    if (command && words.length >= count) return { key, command };
  }
  return { key: words.slice(0, 2).join(" "), command: undefined };
}

const isLoopback = (/** @type {URL} */ url) => /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/.test(url.hostname);

/** The registry and the administrator's credentials. @param {Record<string, any>} options */
async function connection(options) {
  const registry = new URL(options.registry ?? process.env.EDGE_REGISTRY_URL ?? "https://127.0.0.1:8787");
  const user = options.user ?? process.env.EDGE_REGISTRY_USER ?? "admin";
  /** @type {string | undefined} */
  let password = options["password-stdin"] ? readStdinSecret() : (options.password ?? process.env.EDGE_REGISTRY_PASSWORD);
  const devVars = join(process.cwd(), ".dev.vars");
  if (password === undefined && isLoopback(registry) && existsSync(devVars)) {
    password = /^BOOTSTRAP_ADMIN_PASSWORD='([^']*)'$/m.exec(readFileSync(devVars, "utf8"))?.[1];
  }
  if (password === undefined && canPrompt()) password = await promptSecret(`password of ${user} at ${registry.host}: `);
  if (!password) throw new UsageError("no password: use --password-stdin, set EDGE_REGISTRY_PASSWORD, or run on a terminal to be asked");
  const insecure = Boolean(options.insecure) || process.env.EDGE_REGISTRY_INSECURE === "1" || isLoopback(registry);
  return { registry, user, password, insecure };
}

/** @param {Awaited<ReturnType<typeof connection>>} conn @param {string} method @param {string} path @param {unknown} [body] */
async function request(conn, method, path, body) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let response;
  try {
    response = await httpsRequest(new URL(path, conn.registry), {
      method,
      auth: `${conn.user}:${conn.password}`,
      rejectUnauthorized: !conn.insecure,
      headers: payload !== undefined ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {},
      ...(payload !== undefined ? { body: payload } : {}),
    });
  } catch (error) {
    throw new UnreachableError(/** @type {Error} */ (error).message);
  }
  const json = jsonBody(response.body);
  if (response.status >= 400) {
    const error = json?.error;
    throw new ApiError(error?.code ? `${error.code}: ${error.message}` : `HTTP ${response.status}`, response.status);
  }
  return json;
}

/** @param {string[]} argv */
async function run(argv) {
  // `push` is a registry client, not an admin API call: its own options and credentials (bin/push.mjs).
  if (isPushCommand(argv)) return pushCommand(argv);
  const { key, command } = findCommand(argv);
  if (!command) {
    const { values, positionals } = parseStrict(argv, GLOBAL_OPTIONS, fullUsage());
    if (positionals.length === 0) {
      if (values.help) return console.log(fullUsage());
      throw new UsageError("no command given", fullUsage());
    }
    const group = Object.values(COMMANDS).filter((c) => c.usage.startsWith(`${positionals[0]} `)).map((c) => `  edge-registry ${c.usage.split("\n")[0]}`);
    const message = group.length && positionals.length === 1 ? `${key} needs a subcommand` : `unknown command: ${key}`;
    throw new UsageError(message, group.length ? `usage:\n${group.join("\n")}` : fullUsage());
  }
  const usage = commandUsage(command);
  const { values: options, positionals } = parseStrict(argv, { ...GLOBAL_OPTIONS, ...command.options }, usage);
  if (options.help) return console.log(`${usage}\n\n${GLOBAL_USAGE}`);
  const args = positionals.slice(key.split(" ").length);
  const required = command.args.filter((name) => !name.endsWith("?"));
  if (args.length < required.length) throw new UsageError(`missing ${required.slice(args.length).join(" ")}`, usage);
  if (args.length > command.args.length) throw new UsageError(`unexpected argument ${JSON.stringify(args[command.args.length])}`, usage);
  if (options.password !== undefined) console.error("edge-registry: warning: --password puts the password in the process list and shell history; prefer --password-stdin or EDGE_REGISTRY_PASSWORD");
  if (options["password-stdin"] && options["new-password-stdin"]) throw new UsageError("--password-stdin and --new-password-stdin both read stdin: give the administrator's password with EDGE_REGISTRY_PASSWORD", usage);

  /** @type {Awaited<ReturnType<typeof connection>> | undefined} */
  let conn;
  /** An /admin/v1 call; the connection (and a password prompt, if any) only once the command line is valid. @param {string} method @param {string} path @param {unknown} [body] */
  const api = async (method, path, body) => request((conn ??= await connection(options)), method, `/admin/v1${path}`, body);
  /** @type {Call} */
  const call = {
    args,
    options,
    api,
    json: Boolean(options.json),
    print: (value, rows, columns) => console.log(options.json ? JSON.stringify(value, null, 2) : table(rows, columns)),
    async newPassword() {
      if (options["new-password-stdin"]) return readStdinSecret();
      if (!canPrompt()) throw new UsageError("no password for the user: pass --new-password-stdin (reads it from stdin), or run on a terminal to be asked", usage);
      const first = await promptSecret(`new password of ${args[0]}: `);
      const again = await promptSecret("again: ");
      if (first !== again) throw new UsageError("the two passwords differ", usage);
      return first;
    },
  };
  try {
    await command.run(call);
  } catch (error) {
    // A value a command refused (a duration without a unit, a malformed time): shown with that command's usage.
    if (error instanceof UsageError && error.usage === undefined) error.usage = usage;
    throw error;
  }
}

try {
  await run(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`edge-registry: ${error.message}${error.usage ? `\n${error.usage}` : "\n(see edge-registry --help)"}`);
    process.exit(2);
  }
  if (error instanceof ApiError) {
    console.error(`edge-registry: ${error.message}`);
    process.exit(1);
  }
  if (error instanceof UnreachableError) {
    console.error(`edge-registry: cannot reach the registry: ${error.message}`);
    process.exit(3);
  }
  throw error;
}
