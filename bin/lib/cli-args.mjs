// @ts-check
// Strict argument parsing for the CLI: node:util parseArgs in strict mode (an unknown option, a missing value or
// a value that looks like an option is an error), plus the value grammars every command shares: durations
// always with a unit, times as ISO 8601 or a duration ago, sizes, counts. A mistake is a UsageError (exit 2).
import { parseArgs } from "node:util";

/** A mistake in the command line: exit 2 with the usage of the command it concerns. */
export class UsageError extends Error {
  /** @param {string} message @param {string} [usage] the usage of the command the mistake is in */
  constructor(message, usage) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** @typedef {{ type: "string" | "boolean", short?: string, multiple?: boolean }} OptionSpec */
/** @typedef {Record<string, OptionSpec>} OptionSpecs */

/**
 * Parses `argv` against `options` (strict) and returns the options and positionals. Errors of node's parser
 * (ERR_PARSE_ARGS_*) become a UsageError carrying `usage`.
 * @param {string[]} argv
 * @param {OptionSpecs} options
 * @param {string} [usage]
 * @returns {{ values: Record<string, any>, positionals: string[] }}
 */
export function parseStrict(argv, options, usage) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    const code = /** @type {{ code?: string }} */ (error).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) throw new UsageError(parserMessage(/** @type {Error} */ (error), code), usage);
    throw error;
  }
}

/**
 * The positionals of `argv` as far as they can be told without knowing the command (unknown options are taken
 * for booleans): enough to find the command words, which come before any of its options' values.
 * @param {string[]} argv
 * @param {OptionSpecs} options every option any command knows
 */
export function loosePositionals(argv, options) {
  return parseArgs({ args: argv, options, strict: false, allowPositionals: true }).positionals;
}

/**
 * node's messages, shortened to their first sentence ("Unknown option '--grnat'. To specify a positional …").
 * @param {Error} error @param {string} code
 */
function parserMessage(error, code) {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1];
  // `--grant --description x`: node takes the next option for a forgotten value.
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option && /ambiguous/.test(error.message)) {
    return `option '${option}' is missing its value (a value starting with '-' is written ${option}=-…)`;
  }
  const first = error.message.split(/\.?\s*\n|\. (?=To specify|Did you forget)/)[0] ?? error.message;
  return first.replace(/\.$/, "").replace(/^Unknown option/, "unknown option").replace(/^Option/, "option");
}

const UNIT_SECONDS = /** @type {const} */ ({ s: 1, m: 60, h: 3600, d: 86400, w: 604800 });

/**
 * `90s`, `15m`, `24h`, `30d`, `2w` → seconds. A bare number is refused: `--overlap 24` could mean seconds or hours.
 * @param {string} text
 * @param {string} what the option or argument, for the message
 */
export function durationSeconds(text, what) {
  const match = /^(\d{1,9})([smhdw])$/.exec(text);
  if (!match) {
    const hint = /^\d+$/.test(text) ? " has no unit" : " is not a duration";
    throw new UsageError(`${what} ${JSON.stringify(text)}${hint}: use a number with a unit, e.g. 90s, 15m, 24h, 30d`);
  }
  return Number(match[1]) * UNIT_SECONDS[/** @type {keyof typeof UNIT_SECONDS} */ (match[2])];
}

/** True when `text` is a duration with a unit (`2h`), as relative times are written. */
export const isDuration = (/** @type {string} */ text) => /^\d{1,9}[smhdw]$/.test(text);

/** ISO 8601: a date, optionally a time and a zone (`2026-05-01`, `2026-05-01T12:00:00Z`, `…+02:00`). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A point in time: ISO 8601, or a duration (`1h`, `7d`) meaning that long ago (`direction` -1) or from now (+1).
 * @param {string} text
 * @param {string} what
 * @param {-1 | 1} [direction]
 * @returns {string} ISO 8601 in UTC
 */
export function timeArgument(text, what, direction = -1, now = Date.now()) {
  if (isDuration(text)) return new Date(now + direction * durationSeconds(text, what) * 1000).toISOString();
  const time = ISO_TIME.test(text) ? new Date(text) : undefined;
  if (!time || Number.isNaN(time.getTime())) {
    const relative = direction < 0 ? "a duration ago (1h, 7d)" : "a duration from now (12h, 30d)";
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a time: use ISO 8601 (2026-05-01T12:00:00Z) or ${relative}`);
  }
  return time.toISOString();
}

/**
 * A whole number from `min` to `max`.
 * @param {string} text @param {string} what
 */
export function countArgument(text, what, min = 1, max = 1_000_000) {
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${what} ${JSON.stringify(text)} must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

/**
 * `10GiB`, `500MB`, `2.5GB`, `1048576` → bytes (KB/MB/GB/TB powers of 1000, KiB/MiB/GiB/TiB powers of 1024).
 * @param {string} text
 */
export function sizeBytes(text) {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$/i.exec(text);
  if (!match) throw new UsageError(`not a size: ${JSON.stringify(text)} (use e.g. 500MB, 10GiB or a number of bytes)`);
  const unit = (match[2] ?? "B").toUpperCase();
  const power = /** @type {Record<string, number>} */ ({ B: 0, K: 1, M: 2, G: 3, T: 4 })[unit[0] ?? "B"] ?? 0;
  return Math.round(Number(match[1]) * (unit.includes("I") ? 1024 : 1000) ** power);
}

/** `true` or `false`, nothing else. @param {string} text @param {string} what */
export function booleanArgument(text, what) {
  if (text !== "true" && text !== "false") throw new UsageError(`${what} must be true or false, got ${JSON.stringify(text)}`);
  return text === "true";
}
