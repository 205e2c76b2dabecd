/**
 * The site's runtime configuration, written by the server beside the built files.
 *
 * `spaceport serve` (and the deploy, for the site bucket) writes `/config.json`:
 *
 *     {"apiBaseUrl": "http://127.0.0.1:8000", "apiKey": "...", "apiKeyHeader": "x-api-key"}
 *
 * Nothing about the API is built into the site, so one build serves every environment.
 *
 * @example
 *   const { apiBaseUrl, apiKey, apiKeyHeader } = await loadConfig();
 */

export class ConfigError extends Error {
  name = 'ConfigError';
}

let cached = null;

/** @returns {Promise<{apiBaseUrl: string, apiKey: string, apiKeyHeader: string}>} */
export function loadConfig() {
  cached ??= fetchConfig().catch((error) => {
    cached = null; // a later page may try again (the server may have been restarted)
    throw error;
  });
  return cached;
}

async function fetchConfig() {
  let response;
  try {
    response = await fetch('/config.json', { cache: 'no-store' });
  } catch {
    throw new ConfigError('Could not reach the server for its configuration (/config.json).');
  }
  if (!response.ok) {
    throw new ConfigError(
      `The server has no site configuration (/config.json answered ${response.status}). ` +
        'Start the site with `spaceport serve`, which writes it.',
    );
  }
  let raw;
  try {
    raw = await response.json();
  } catch {
    throw new ConfigError('The site configuration (/config.json) is not valid JSON.');
  }
  const { apiBaseUrl, apiKey = '', apiKeyHeader = 'x-api-key' } = raw ?? {};
  if (typeof apiBaseUrl !== 'string' || !apiBaseUrl) {
    throw new ConfigError('The site configuration (/config.json) does not name the API (apiBaseUrl).');
  }
  return { apiBaseUrl: new URL(apiBaseUrl, window.location.href).href.replace(/\/$/, ''), apiKey, apiKeyHeader };
}
