// @ts-check
// Secrets for the CLI: read from stdin when asked (`--password-stdin`), or with a hidden prompt on a terminal.
// Never from a silent wait on stdin, never echoed.
import { readFileSync } from "node:fs";

/** All of stdin, without its final newline (as `printf '%s\n' secret | …` or `<<<` send it). */
export function readStdinSecret() {
  return readFileSync(0, "utf8").replace(/\r?\n$/, "");
}

/** True when a prompt can be shown and answered: stdin and stderr are terminals. */
export function canPrompt() {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/**
 * Asks for a secret on the terminal without echoing it (raw mode: each key is read, none is printed).
 * Ctrl+C or Ctrl+D on an empty line aborts (rejects).
 * @param {string} prompt
 * @returns {Promise<string>}
 */
export function promptSecret(prompt) {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  input.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let secret = "";
    /** @param {boolean} ok */
    const finish = (ok) => {
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
      process.stderr.write("\n");
      if (ok) resolve(secret);
      else reject(new Error("aborted"));
    };
    /** @param {string} chunk */
    const onData = (chunk) => {
      for (const char of chunk) {
        if (char === "\r" || char === "\n") return finish(true);
        if (char === "\u0003" || (char === "\u0004" && secret === "")) return finish(false);
        if (char === "\u007f" || char === "\b") secret = [...secret].slice(0, -1).join("");
        else if (char >= " ") secret += char;
      }
    };
    input.on("data", onData);
  });
}
