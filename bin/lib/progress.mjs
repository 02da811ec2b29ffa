// @ts-check
// Push progress on stderr: on a terminal, one bar per blob (bytes, rate, time left) redrawn in place;
// otherwise plain lines at each step (a chunk stored, a blob done), which logs and tests can read.

const MiB = 1024 * 1024;

export function formatBytes(/** @type {number} */ bytes) {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function formatSeconds(/** @type {number} */ seconds) {
  if (!Number.isFinite(seconds)) return "--";
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.ceil(seconds)}s`;
}

/** One blob's line. */
class Bar {
  constructor(/** @type {Progress} */ owner, /** @type {string} */ label, /** @type {number} */ total) {
    this.owner = owner;
    this.label = label;
    this.total = total;
    this.done = 0;
    /** Bytes counted from here on for the rate (a resumed upload's first bytes were sent earlier). */
    this.base = 0;
    this.started = performance.now();
    this.status = "waiting";
  }

  /** Bytes of the blob the registry now has or is receiving. */
  update(/** @type {number} */ done, status = "pushing") {
    if (this.status === "waiting") {
      this.base = done;
      this.started = performance.now();
    }
    this.done = done;
    this.status = status;
    this.owner.changed();
  }

  /** A step worth a plain line: a chunk stored, a resume, a retry. */
  note(/** @type {string} */ text) {
    this.owner.plain(`${this.label}: ${text}`);
  }

  finish(/** @type {string} */ status) {
    this.status = status;
    this.done = status === "failed" ? this.done : this.total;
    this.owner.plain(`${this.label}: ${status} (${formatBytes(this.total)})`);
    this.owner.changed(true);
  }

  rate() {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? (this.done - this.base) / seconds : 0;
  }

  render(/** @type {number} */ width) {
    const fraction = this.total > 0 ? this.done / this.total : 1;
    const barWidth = Math.max(10, Math.min(30, width - 70));
    const filled = Math.round(fraction * barWidth);
    const bar = `[${"=".repeat(filled)}${" ".repeat(barWidth - filled)}]`;
    let tail = `${formatBytes(this.done)} / ${formatBytes(this.total)}`;
    if (this.status === "pushing") {
      const rate = this.rate();
      tail += `  ${formatBytes(rate)}/s  ETA ${formatSeconds(rate > 0 ? (this.total - this.done) / rate : Infinity)}`;
    } else tail += `  ${this.status}`;
    return `${this.label}  ${bar}  ${tail}`.slice(0, width - 1);
  }
}

export class Progress {
  /** @param {{ stream: NodeJS.WriteStream, quiet?: boolean }} options */
  constructor(options) {
    this.stream = options.stream;
    this.tty = Boolean(options.stream.isTTY) && !options.quiet;
    this.quiet = Boolean(options.quiet);
    /** @type {Bar[]} */
    this.bars = [];
    this.drawnLines = 0;
    this.lastDraw = 0;
  }

  bar(/** @type {string} */ label, /** @type {number} */ total) {
    const bar = new Bar(this, label, total);
    this.bars.push(bar);
    return bar;
  }

  /** A line for non-terminals (on a terminal the bars say it). */
  plain(/** @type {string} */ text) {
    if (!this.tty && !this.quiet) this.stream.write(`${text}\n`);
  }

  /** A line in both modes (printed above the bars on a terminal). */
  line(/** @type {string} */ text) {
    if (this.quiet) return;
    if (!this.tty) return void this.stream.write(`${text}\n`);
    this.clear();
    this.stream.write(`${text}\n`);
    this.draw();
  }

  changed(force = false) {
    if (!this.tty) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.clear();
    this.draw();
  }

  clear() {
    if (this.drawnLines > 0) this.stream.write(`\x1b[${this.drawnLines}A\x1b[0J`);
    this.drawnLines = 0;
  }

  draw() {
    const width = this.stream.columns || 100;
    const lines = this.bars.map((bar) => bar.render(width));
    if (lines.length > 0) this.stream.write(`${lines.join("\n")}\n`);
    this.drawnLines = lines.length;
  }
}
