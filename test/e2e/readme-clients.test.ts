/**
 * The README's client configuration, checked where it cannot run here (no cluster, no Cloudflare account): the
 * Kubernetes manifests and the containerd hosts.toml parse and say what the text says, the JSON given to
 * `kubectl patch` parses, and the pull secret the CLI prints (piped to `kubectl apply` / `oc apply` in the
 * README) is a valid Secret whose credentials log in to the running Worker.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { adminPassword, registryHost, registryUrl, run, tempDir } from "./support";

const PROJECT = join(__dirname, "..", "..");
const README = readFileSync(join(PROJECT, "README.md"), "utf8");
/** The README's section `## title`, up to the next `## `. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  expect(start, `README section ${title}`).toBeGreaterThan(0);
  const end = README.indexOf("\n## ", start + 4);
  return README.slice(start, end < 0 ? undefined : end);
}
/** Fenced blocks of a language in a text. */
const blocks = (text: string, language: string) => [...text.matchAll(new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g"))].map((match) => match[1]!);

describe("README: Clients", () => {
  const clients = section("Clients");

  it("the Kubernetes ServiceAccount carries the pull secret the command before it creates, and the Pod runs as it", () => {
    const shell = blocks(clients, "sh").find((block) => block.includes("kind: ServiceAccount"))!;
    const secretName = /--secret-name (\S+)/.exec(shell)![1]!;
    const k8sNamespace = /--k8s-namespace (\S+)/.exec(shell)![1]!;
    const manifest = /<<'EOF'\n([\s\S]*?)\nEOF/.exec(shell)![1]!;
    const documents = parseAllDocuments(manifest).map((document) => {
      expect(document.errors).toEqual([]);
      return document.toJS() as { kind: string; metadata: { name: string; namespace: string }; imagePullSecrets?: { name: string }[]; spec?: any };
    });
    const [account, pod] = documents;
    expect(account).toMatchObject({ apiVersion: "v1", kind: "ServiceAccount", metadata: { namespace: k8sNamespace }, imagePullSecrets: [{ name: secretName }] });
    expect(pod).toMatchObject({ apiVersion: "v1", kind: "Pod", metadata: { namespace: k8sNamespace }, spec: { serviceAccountName: account!.metadata.name } });
    expect(pod!.spec.containers[0].image).toMatch(/^registry\.example\.com\/acme\/app:v1$/);
    const patch = /kubectl patch serviceaccount default -n (\S+) -p '([^']+)'/.exec(clients)!;
    expect(patch[1]).toBe(k8sNamespace);
    expect(JSON.parse(patch[2]!)).toEqual({ imagePullSecrets: [{ name: secretName }] });
  });

  it("the containerd hosts.toml parses and names the registry as server and host, for pull and resolve", () => {
    const [hosts] = blocks(clients, "toml");
    const config = parseToml(hosts!) as { server: string; host: Record<string, { capabilities: string[] }> };
    expect(config.server).toBe("https://registry.example.com");
    expect(config.host["https://registry.example.com"]!.capabilities).toEqual(["pull", "resolve"]);
    expect(hosts).toContain("# /etc/containerd/certs.d/registry.example.com/hosts.toml");
  });

  it("OpenShift: the per-project secret is the one linked; the global pull secret is merged from the CLI's auth file", () => {
    const [perProject, global] = blocks(clients, "sh").filter((block) => block.includes("oc "));
    const secretName = /--secret-name (\S+)/.exec(perProject!)![1]!;
    const project = /--k8s-namespace (\S+)/.exec(perProject!)![1]!;
    expect(perProject).toContain(`oc secrets link default ${secretName} --for=pull -n ${project}`);
    expect(global).toContain("-o auth-json > registry-auth.json");
    expect(global).toContain("--from-file=.dockerconfigjson=merged-pull-secret.json");
  });
});

describe("README: the pull secret it pipes to kubectl apply / oc apply", () => {
  it("is a kubernetes.io/dockerconfigjson Secret in the namespace asked for, whose credentials log in", () => {
    const env = { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: adminPassword() };
    const cli = (args: string[]) => run("node", [join(PROJECT, "bin", "edge-registry.mjs"), ...args], { env });
    const ns = `readme${Date.now().toString(36)}`;
    expect(cli(["namespaces", "create", ns]).code).toBe(0);
    const printed = cli(["service-accounts", "create", ns, "cluster-pull", "--grant", `${ns}=read`, "--k8s-namespace", "apps", "--secret-name", "acme-pull", "-o", "k8s-secret"]);
    expect(printed.code, printed.stderr).toBe(0);
    const secret = parseYaml(printed.stdout) as { apiVersion: string; kind: string; type: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(secret).toMatchObject({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/dockerconfigjson", metadata: { name: "acme-pull", namespace: "apps" } });
    const config = JSON.parse(Buffer.from(secret.data[".dockerconfigjson"]!, "base64").toString()) as { auths: Record<string, { auth: string }> };
    const [username, ...token] = Buffer.from(config.auths[registryHost()]!.auth, "base64").toString().split(":");
    const login = run("podman", ["login", "--tls-verify=false", "--authfile", join(tempDir("readme-k8s"), "auth.json"), "-u", username!, "--password-stdin", registryHost()], { input: token.join(":") });
    expect(login.code, login.stderr).toBe(0);
  });
});
