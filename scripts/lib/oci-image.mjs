// Writes deterministic OCI image layouts for end-to-end tests and benchmarks: each layer is a real
// uncompressed tar holding one file of seeded pseudo-random bytes, so podman can unpack it.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync, createWriteStream, renameSync } from "node:fs";
import { createGzip } from "node:zlib";
import { join } from "node:path";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
const LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG = "application/vnd.oci.image.config.v1+json";

/** @typedef {{ mediaType: string, digest: string, size: number }} Descriptor */
/** @typedef {Descriptor & { diffId: string }} LayerDescriptor */
/**
 * @typedef {object} ImageSpec
 * @property {number} seed
 * @property {number[]} layerSizes
 * @property {number[]} [layerSeeds]
 * @property {string} [architecture]
 * @property {boolean} [gzip]
 * @property {boolean} [runnable]
 */

/** xorshift128+ seeded bytes: fast, reproducible, incompressible. @param {number} seed @param {number} size */
function* pseudoRandomChunks(seed, size, chunkSize = 1 << 20) {
  let s0 = BigInt(seed) | 1n;
  let s1 = 0x9e3779b97f4a7c15n ^ BigInt(seed);
  const mask = (1n << 64n) - 1n;
  let remaining = size;
  while (remaining > 0) {
    const n = Math.min(chunkSize, remaining);
    const chunk = Buffer.allocUnsafe(Math.ceil(n / 8) * 8);
    for (let i = 0; i < chunk.length; i += 8) {
      let x = s0;
      const y = s1;
      s0 = y;
      x = (x ^ (x << 23n)) & mask;
      s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
      chunk.writeBigUInt64LE((s1 + y) & mask, i);
    }
    yield chunk.subarray(0, n);
    remaining -= n;
  }
}

/** @param {string} name @param {number} size */
function tarHeader(name, size, mode = "0000644") {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write(`${mode}\0`, 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(size.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return header;
}

/** @param {string} dir @param {Buffer} bytes @param {string} mediaType @returns {Descriptor} */
function writeBlob(dir, bytes, mediaType) {
  const hex = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(dir, "blobs", "sha256", hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/**
 * Streams a tar layer of `size` content bytes to disk while hashing it; returns its descriptor and the
 * diff id (digest of the uncompressed tar). With `gzip`, the stored blob is gzip level 1 (as pushed).
 * @param {string} dir @param {number} seed @param {number} size @param {boolean} gzip @returns {Promise<LayerDescriptor>}
 */
async function writeLayer(dir, seed, size, gzip) {
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const tmp = join(dir, "blobs", `layer-${seed}.tmp`);
  const out = createWriteStream(tmp);
  /** @type {Promise<void>} */
  const done = new Promise((resolve, reject) => out.on("finish", () => resolve()).on("error", reject));
  let blobSize = 0;
  // With gzip, the compressor is piped into the file (back-pressure included); without, bytes go straight in.
  const sink = gzip ? createGzip({ level: 1 }) : out;
  if (gzip) sink.pipe(out);
  const blobSide = gzip ? sink : out;
  if (gzip) {
    sink.on("data", (/** @type {Buffer} */ buf) => {
      blobHash.update(buf);
      blobSize += buf.length;
    });
  }
  const write = async (/** @type {Buffer} */ buf) => {
    diffHash.update(buf);
    if (!gzip) {
      blobHash.update(buf);
      blobSize += buf.length;
    }
    if (!sink.write(buf)) await new Promise((resolve) => sink.once("drain", () => resolve(undefined)));
  };
  await write(tarHeader(`data-${seed}.bin`, size));
  for (const chunk of pseudoRandomChunks(seed, size)) await write(chunk);
  await write(Buffer.alloc((512 - (size % 512)) % 512));
  await write(Buffer.alloc(1024));
  blobSide.end();
  await done;
  const hex = blobHash.digest("hex");
  renameSync(tmp, join(dir, "blobs", "sha256", hex));
  const diffId = `sha256:${diffHash.digest("hex")}`;
  return { mediaType: gzip ? LAYER_TAR_GZIP : LAYER_TAR, digest: `sha256:${hex}`, size: blobSize, diffId };
}

/** What the runnable images' `/hello` prints. */
export const HELLO_OUTPUT = "edge-registry: hello from a pushed image\n";

/**
 * A static x86-64 Linux executable of 194 bytes that writes HELLO_OUTPUT and exits 0: one ELF header, one
 * loadable segment, write(1, msg, len) and exit_group(0). Images with it run under podman without a base image.
 */
export function helloExecutable() {
  const message = Buffer.from(HELLO_OUTPUT);
  const base = 0x400000n;
  const codeOffset = 64 + 56;
  const code = Buffer.from([
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
    0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (stdout)
    0x48, 0x8d, 0x35, 0x10, 0x00, 0x00, 0x00, // lea rsi, [rip + 16] (the message, after this code)
    0xba, message.length, 0x00, 0x00, 0x00, // mov edx, length
    0x0f, 0x05, // syscall
    0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231 (exit_group)
    0x31, 0xff, // xor edi, edi
    0x0f, 0x05, // syscall
  ]);
  const size = BigInt(codeOffset + code.length + message.length);
  const elf = Buffer.alloc(codeOffset);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0); // ELF64, little-endian, version 1
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(base + BigInt(codeOffset), 24); // entry
  elf.writeBigUInt64LE(64n, 32); // program headers right after this header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R + X
  elf.writeBigUInt64LE(0n, 72);
  elf.writeBigUInt64LE(base, 80);
  elf.writeBigUInt64LE(base, 88);
  elf.writeBigUInt64LE(size, 96);
  elf.writeBigUInt64LE(size, 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  return Buffer.concat([elf, code, message]);
}

/** An uncompressed tar layer holding the executable `/hello` (mode 0755). @param {string} dir @returns {LayerDescriptor} */
function helloLayer(dir) {
  const executable = helloExecutable();
  const tar = Buffer.concat([
    tarHeader("hello", executable.length, "0000755"),
    executable,
    Buffer.alloc((512 - (executable.length % 512)) % 512),
    Buffer.alloc(1024),
  ]);
  const descriptor = writeBlob(dir, tar, LAYER_TAR);
  return { ...descriptor, diffId: descriptor.digest };
}

/** @param {LayerDescriptor[]} layers @param {string[]} [cmd] */
function imageConfig(layers, architecture = "amd64", cmd = ["/bin/true"]) {
  return Buffer.from(
    JSON.stringify({
      architecture,
      os: "linux",
      config: { Cmd: cmd },
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
      history: layers.map(() => ({ created_by: "edge-registry test image" })),
    }),
  );
}

/**
 * Writes an OCI layout at `dir` with one image per entry of `images` ({ seed, layerSizes, architecture, gzip,
 * runnable }). `runnable` (amd64): a first layer with the static `/hello` (helloExecutable), the image's command.
 * `layerSeeds` (optional, one per layer) fixes layer contents across images, so images can share layers.
 * With more than one image the layout's index.json holds an OCI index of them (a multi-arch image).
 * @param {string} dir @param {ImageSpec[]} images
 * @returns {Promise<{ digest: string, manifests: (Descriptor & { platform: { architecture: string, os: string } })[] }>}
 */
export async function writeOciLayout(dir, images, tag = "latest") {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  /** @type {(Descriptor & { platform: { architecture: string, os: string } })[]} */
  const manifests = [];
  for (const image of images) {
    const layers = image.runnable ? [helloLayer(dir)] : [];
    for (const [index, size] of image.layerSizes.entries()) {
      const seed = image.layerSeeds?.[index] ?? image.seed * 1000 + index;
      layers.push(await writeLayer(dir, seed, size, Boolean(image.gzip)));
    }
    const config = writeBlob(dir, imageConfig(layers, image.architecture, image.runnable ? ["/hello"] : undefined), CONFIG);
    const descriptors = layers.map(({ diffId: _diffId, ...descriptor }) => descriptor);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: descriptors }));
    manifests.push({
      ...writeBlob(dir, manifest, OCI_MANIFEST),
      platform: { architecture: image.architecture ?? "amd64", os: "linux" },
    });
  }
  /** @type {Descriptor} */
  let top = manifests[0];
  if (manifests.length > 1) {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    top = writeBlob(dir, index, OCI_INDEX);
  }
  const descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.size };
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...descriptor, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
  return { digest: top.digest, manifests };
}
