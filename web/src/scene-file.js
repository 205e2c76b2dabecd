/**
 * Downloading a `.sog` scene with progress, and telling a missing or wrong file apart in plain words
 * before the engine sees it.
 *
 * @example
 *   const bytes = await downloadScene(url, (received, total) => console.log(received, total));
 */
import { looksLikeZip } from './zip-magic.js';

/** A scene that cannot be shown; `message` is fit to show a person. */
export class SceneError extends Error {
  name = 'SceneError';
}

/** @returns {Promise<ArrayBuffer>} */
export async function downloadScene(url, onProgress = () => {}) {
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new SceneError(`The scene could not be downloaded from ${url}: the server did not answer (or does not allow this site to read it).`);
  }
  if (response.status === 404) {
    throw new SceneError('The scene file was not found (HTTP 404). The link may be wrong, or the job has not produced it.');
  }
  if (response.status === 403) {
    throw new SceneError('The scene link was refused (HTTP 403). Links expire: open the viewer again from the job page.');
  }
  if (!response.ok) {
    throw new SceneError(`The scene could not be downloaded (HTTP ${response.status} ${response.statusText}).`);
  }
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks = [];
  let received = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    onProgress(received, total);
  }
  const bytes = await new Blob(chunks).arrayBuffer();
  if (bytes.byteLength === 0) throw new SceneError('The scene file is empty.');
  // A SOG bundle is a ZIP.
  if (!looksLikeZip(new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength)))) {
    throw new SceneError('This file is not a SOG scene: a .sog is a ZIP bundle, and this file is not a ZIP.');
  }
  return bytes;
}
