/**
 * Whether bytes start like a ZIP: photo uploads and SOG bundles are both ZIPs, and a wrong file is
 * best refused in plain words before it travels or reaches the engine.
 *
 * @example
 *   looksLikeZip(new Uint8Array(await file.slice(0, 4).arrayBuffer()))
 */
// "PK\x03\x04": a ZIP's first local file header.
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** @param {Uint8Array} head - the first bytes (four are enough) */
export function looksLikeZip(head) {
  return ZIP_MAGIC.every((byte, i) => head[i] === byte);
}
