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

/** `relative` resolved against `url` (the streamed scene's files lie under its lod-meta.json). */
export function siblingUrl(url, relative) {
  return new URL(relative, new URL(url, location.href)).href;
}

/**
 * A streamed scene's `lod-meta.json`, checked enough that the engine gets a usable index: its
 * version, levels, counts, file list and the tree's bound.
 */
export async function fetchLodMeta(url) {
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new SceneError(`The streamed scene could not be downloaded from ${url}: the server did not answer (or does not allow this site to read it).`);
  }
  if (response.status === 404) throw new SceneError('The streamed scene was not found (HTTP 404). The link may be wrong.');
  if (response.status === 403) throw new SceneError('The scene link was refused (HTTP 403). Links expire: open the viewer again from the job page.');
  if (!response.ok) throw new SceneError(`The streamed scene could not be downloaded (HTTP ${response.status} ${response.statusText}).`);
  let meta;
  try {
    meta = await response.json();
  } catch {
    throw new SceneError('This is not a streamed scene: its lod-meta.json is not JSON.');
  }
  const bound = meta?.tree?.bound;
  const valid = meta?.version === 1 && Number.isInteger(meta.lodLevels) && meta.lodLevels > 0
    && Array.isArray(meta.counts) && meta.counts.length === meta.lodLevels
    && Array.isArray(meta.filenames) && meta.filenames.length > 0
    && Array.isArray(bound?.min) && Array.isArray(bound?.max);
  if (!valid) throw new SceneError('This is not a streamed scene of version 1: its lod-meta.json lacks levels, files or a bound.');
  return meta;
}
