/** BENCHMARKS.md is written by several bench modes; each replaces only its own `## ` section. */

/**
 * `markdown` with the section under `heading` replaced by `section` (appended when absent).
 * @param {string} markdown
 * @param {string} heading
 * @param {string} section
 * @returns {string}
 */
export function withSection(markdown, heading, section) {
  const start = markdown.indexOf(`${heading}\n`);
  if (start < 0) return `${markdown.trimEnd()}\n\n${section}`;
  const next = markdown.indexOf("\n## ", start + 1);
  return `${markdown.slice(0, start)}${section}${next < 0 ? "" : `\n${markdown.slice(next + 1)}`}`;
}

/**
 * The section under `heading` in `markdown`, or "" when absent.
 * @param {string} markdown
 * @param {string} heading
 * @returns {string}
 */
export function sectionOf(markdown, heading) {
  const start = markdown.indexOf(`${heading}\n`);
  if (start < 0) return "";
  const next = markdown.indexOf("\n## ", start + 1);
  return next < 0 ? markdown.slice(start) : markdown.slice(start, next + 1);
}
