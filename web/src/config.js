/**
 * The site's runtime configuration, written by the server beside the built files.
 *
 * `spaceport serve` (and the deploy, for the site bucket) writes `/config.json`: where the API
 * is, and the user pool to sign in to (public ids: the app client has no secret):
 *
 *     {"apiBaseUrl": "http://127.0.0.1:8000",
 *      "auth": {"region", "userPoolId", "clientId", "endpoint": null, "authFlow": "USER_SRP_AUTH"}}
 *
 * Nothing about the API is built into the site, so one build serves every environment.
 *
 * @example
 *   const { apiBaseUrl, auth } = await loadConfig();
 */

export class ConfigError extends Error {
  name = 'ConfigError';
}

let cached = null;

/** @returns {Promise<{apiBaseUrl: string, auth: object|null}>} */
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
  const { apiBaseUrl, auth = null } = raw ?? {};
  if (typeof apiBaseUrl !== 'string' || !apiBaseUrl) {
    throw new ConfigError('The site configuration (/config.json) does not name the API (apiBaseUrl).');
  }
  if (auth && (typeof auth.userPoolId !== 'string' || typeof auth.clientId !== 'string')) {
    throw new ConfigError('The site configuration (/config.json) names no user pool and app client to sign in to.');
  }
  return { apiBaseUrl: new URL(apiBaseUrl, window.location.href).href.replace(/\/$/, ''), auth };
}
