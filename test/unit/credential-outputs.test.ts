import { describe, expect, it } from "vitest";
import { credentialOutputs, isLoopbackRegistry, shellQuote } from "../../src/admin/credential-outputs";

describe("credential outputs", () => {
  const outputs = credentialOutputs("registry.example.com", "12345678|ci-puller", "tok-en_123", { namespace: "ci", secretName: "acme-pull" });

  it("quotes the username for shells (| is a pipe) and sends the token on stdin, not on podman's command line", () => {
    expect(outputs.podmanLogin).toBe("printf '%s\\n' 'tok-en_123' | podman login --password-stdin -u '12345678|ci-puller' registry.example.com");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("skips TLS verification only for a loopback registry (the local dev server's self-signed certificate)", () => {
    for (const host of ["127.0.0.1:8787", "127.1.2.3", "localhost:8787", "LOCALHOST", "[::1]:8787"]) {
      expect(isLoopbackRegistry(host), host).toBe(true);
      expect(credentialOutputs(host, "12345678|a", "t", { namespace: "ci", secretName: "s" }).podmanLogin).toContain(" podman login --tls-verify=false --password-stdin ");
    }
    for (const host of ["registry.example.com", "127.0.0.1.example.com", "localhost.example.com", "10.0.0.1:5000", "[::2]", "1127.0.0.1"]) {
      expect(isLoopbackRegistry(host), host).toBe(false);
    }
    expect(outputs.podmanLogin).not.toContain("tls-verify");
  });

  it("the auth file entry decodes to the credentials", () => {
    expect(atob(outputs.authJson.auths["registry.example.com"]!.auth)).toBe("12345678|ci-puller:tok-en_123");
  });

  it("the Kubernetes Secret's .dockerconfigjson decodes to the same auth file", () => {
    expect(outputs.kubernetesSecret).toContain("type: kubernetes.io/dockerconfigjson");
    expect(outputs.kubernetesSecret).toContain("  name: acme-pull\n  namespace: ci\n");
    const encoded = /\.dockerconfigjson: (\S+)/.exec(outputs.kubernetesSecret)![1]!;
    expect(JSON.parse(atob(encoded))).toEqual(outputs.authJson);
  });

  it("kubectl and oc commands", () => {
    expect(outputs.kubectlCommand).toBe(
      "kubectl create secret docker-registry acme-pull --namespace=ci --docker-server=registry.example.com --docker-username='12345678|ci-puller' --docker-password='tok-en_123'",
    );
    expect(outputs.ocCommand.startsWith("oc create secret docker-registry acme-pull")).toBe(true);
  });
});
