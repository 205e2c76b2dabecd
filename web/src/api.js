/**
 * A small client for the Spaceport API: base URL from /config.json, the signed-in user's ID token
 * in Authorization (auth.js), errors in plain words. A 401 means the sign-in is missing or expired.
 *
 * @example
 *   const { uploadUrl, s3Url } = await api.post('/uploads', { filename: 'photos.zip' });
 *   const job = await api.get(`/jobs/${jobId}`);
 */
import { idToken } from './auth.js';
import { loadConfig } from './config.js';

/** An API call that failed; `message` is fit to show a person, `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  name = 'ApiError';

  constructor(message, status, code = '') {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body, headers = {}, signed = true) {
  const { apiBaseUrl } = await loadConfig();
  const init = { method, headers: { ...headers } };
  const token = signed ? await idToken() : null;
  if (token) init.headers.authorization = token;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${apiBaseUrl}${path}`, init);
  } catch {
    throw new ApiError(`Could not reach the Spaceport API at ${apiBaseUrl}. Is the server running?`, 0);
  }
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (response.status === 401) {
    throw new ApiError('Sign in to see this: your sign-in is missing or has expired.', 401, 'not_signed_in');
  }
  if (!response.ok) {
    const { message, code } = errorOf(payload);
    throw new ApiError(message || `The API answered ${response.status} ${response.statusText}.`, response.status, code);
  }
  return payload;
}

/** The message and code of an error body, whichever of the usual shapes it has. */
function errorOf(payload) {
  if (!payload || typeof payload !== 'object') return { message: '', code: '' };
  const inner = typeof payload.error === 'object' && payload.error ? payload.error : payload;
  const message = inner.message ?? inner.Message ?? (typeof payload.error === 'string' ? payload.error : '');
  const code = inner.code ?? inner.Code ?? '';
  return { message: String(message), code: String(code) };
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body, headers) => request('POST', path, body ?? {}, headers),
  delete: (path) => request('DELETE', path),
  /** A public route (a share link's view): no sign-in is sent. */
  public: (path) => request('GET', path, undefined, {}, false),
};
