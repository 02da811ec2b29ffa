// @ts-check
// Reads the table of contents of a tar archive (POSIX ustar, with PAX and GNU long-name extensions) without
// extracting it: each regular file's name, size and the offset of its data, so blobs are read in place.
import { closeSync, openSync, readSync } from "node:fs";
import { posix } from "node:path";

const BLOCK = 512;

/** @typedef {{ name: string, offset: number, size: number }} TarEntry */

/** @param {Buffer} field */
function text(field) {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString("utf8");
}

/** Numeric header field: octal text, or base-256 when the high bit of the first byte is set (GNU, > 8 GiB). */
function number(/** @type {Buffer} */ field) {
  if (field[0] !== undefined && field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = text(field).trim();
  return digits === "" ? 0 : parseInt(digits, 8);
}

/** PAX extended header records: `<length> <key>=<value>\n`. */
function paxRecords(/** @type {Buffer} */ data) {
  /** @type {Record<string, string>} */
  const records = {};
  let position = 0;
  while (position < data.length) {
    const space = data.indexOf(0x20, position);
    if (space === -1) break;
    const length = Number(data.subarray(position, space).toString("ascii"));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, position + length - 1).toString("utf8");
    const equals = record.indexOf("=");
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    position += length;
  }
  return records;
}

/** Strips `./` and leading slashes: `./blobs/sha256/…` and `blobs/sha256/…` name the same entry. */
export function normalizeTarPath(/** @type {string} */ name) {
  return name.replace(/^(\.\/|\/)+/, "");
}

/**
 * Lists the regular files of the tar at `path`, keyed by normalized name.
 * @param {string} path
 * @returns {Map<string, TarEntry>}
 */
export function readTarIndex(path) {
  const fd = openSync(path, "r");
  /** @type {Map<string, TarEntry>} */
  const entries = new Map();
  try {
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    /** @type {Record<string, string>} */
    let pax = {};
    /** @type {string | undefined} */
    let longName;
    /** @type {{ name: string, type: string, target: string }[]} */
    const links = [];
    for (;;) {
      if (readSync(fd, header, 0, BLOCK, offset) < BLOCK) break;
      if (header.every((byte) => byte === 0)) break; // end of archive: two zero blocks
      // ustar: the checksum is the sum of the header's bytes with its own field counted as spaces.
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : /** @type {number} */ (header[i]);
      if (number(header.subarray(148, 156)) !== sum) throw new Error(`${path}: not a tar archive (bad header checksum at byte ${offset})`);
      const type = String.fromCharCode(/** @type {number} */ (header[156]) || 0x30);
      let size = number(header.subarray(124, 136));
      const dataOffset = offset + BLOCK;
      if (type === "x" || type === "L") {
        const data = Buffer.alloc(size);
        readSync(fd, data, 0, size, dataOffset);
        if (type === "x") pax = paxRecords(data);
        else longName = text(data);
      } else if (type !== "g") {
        const prefix = text(header.subarray(345, 500));
        const ustar = text(header.subarray(257, 263)).startsWith("ustar");
        const name = pax.path ?? longName ?? (ustar && prefix ? `${prefix}/${text(header.subarray(0, 100))}` : text(header.subarray(0, 100)));
        if (pax.size !== undefined) size = Number(pax.size);
        if (type === "0" || type === "7") entries.set(normalizeTarPath(name), { name, offset: dataOffset, size });
        // Links (docker save's `<id>/layer.tar -> ../<digest>.tar`): resolved once every entry is known.
        if (type === "1" || type === "2") links.push({ name, type, target: pax.linkpath ?? text(header.subarray(157, 257)) });
        pax = {};
        longName = undefined;
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    }
    for (const link of links) {
      // A hard link names an archive path; a symbolic one is relative to the link's directory.
      const target = link.type === "1" ? link.target : posix.join(posix.dirname(normalizeTarPath(link.name)), link.target);
      const entry = entries.get(normalizeTarPath(posix.normalize(target)));
      if (entry) entries.set(normalizeTarPath(link.name), entry);
    }
  } finally {
    closeSync(fd);
  }
  return entries;
}

/** Reads one whole entry (a small file: index.json, a manifest, a config). */
export function readTarEntry(/** @type {string} */ path, /** @type {TarEntry} */ entry) {
  const fd = openSync(path, "r");
  try {
    const data = Buffer.alloc(entry.size);
    let read = 0;
    while (read < entry.size) {
      const n = readSync(fd, data, read, entry.size - read, entry.offset + read);
      if (n === 0) throw new Error(`${path}: ${entry.name} is truncated`);
      read += n;
    }
    return data;
  } finally {
    closeSync(fd);
  }
}
