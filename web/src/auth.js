/**
 * Signing in to the user pool /config.json names (Cognito in AWS; the local runtime's, in moto),
 * with amazon-cognito-identity-js: sign up with an email and a password, confirm the address
 * with the code Cognito emails, sign in, sign out, and the ID token the API takes. The app
 * client has no secret: nothing secret is in the browser. In AWS the password never leaves it
 * (SRP); the local runtime asks for USER_PASSWORD_AUTH, since moto checks no SRP proof.
 *
 * @example
 *   await signUp('pilot@example.com', 'a long password');
 *   await confirmSignUp('pilot@example.com', '123456');
 *   await signIn('pilot@example.com', 'a long password');
 *   const token = await idToken();   // null when signed out
 */
import { AuthenticationDetails, CognitoUser, CognitoUserAttribute, CognitoUserPool } from 'amazon-cognito-identity-js';
import { loadConfig } from './config.js';

export class AuthError extends Error {
  name = 'AuthError';
}

let cached = null;

/** The pool and how to sign in to it, or null when the site has no sign-in (a static stand-in). */
async function userPool() {
  const { auth } = await loadConfig();
  if (!auth) return null;
  cached ??= {
    pool: new CognitoUserPool({ UserPoolId: auth.userPoolId, ClientId: auth.clientId, ...(auth.endpoint ? { endpoint: auth.endpoint } : {}) }),
    flow: auth.authFlow || 'USER_SRP_AUTH',
  };
  return cached;
}

async function requirePool() {
  const found = await userPool();
  if (!found) throw new AuthError('This site has no sign-in configured.');
  return found;
}

/** Whether the site signs people in at all. */
export async function hasSignIn() {
  return (await userPool()) !== null;
}

const plain = (error) => new AuthError(error?.message ?? String(error));

export async function signUp(email, password) {
  const { pool } = await requirePool();
  return new Promise((resolve, reject) => {
    pool.signUp(email, password, [new CognitoUserAttribute({ Name: 'email', Value: email })], null,
      (error, result) => (error ? reject(plain(error)) : resolve({ confirmed: Boolean(result?.userConfirmed) })));
  });
}

export async function confirmSignUp(email, code) {
  const { pool } = await requirePool();
  const user = new CognitoUser({ Username: email, Pool: pool });
  return new Promise((resolve, reject) => {
    user.confirmRegistration(code, true, (error) => (error ? reject(plain(error)) : resolve()));
  });
}

export async function signIn(email, password) {
  const { pool, flow } = await requirePool();
  const user = new CognitoUser({ Username: email, Pool: pool });
  user.setAuthenticationFlowType(flow);
  return new Promise((resolve, reject) => {
    user.authenticateUser(new AuthenticationDetails({ Username: email, Password: password }), {
      onSuccess: (session) => resolve(session.getIdToken().getJwtToken()),
      onFailure: (error) => reject(plain(error)),
      newPasswordRequired: () => reject(new AuthError('This account needs a new password: reset it first.')),
    });
  });
}

export async function signOut() {
  const found = await userPool();
  found?.pool.getCurrentUser()?.signOut();
}

/** The signed-in user's session (refreshed when its ID token expired), or null. */
async function session() {
  const found = await userPool();
  const user = found?.pool.getCurrentUser();
  if (!user) return null;
  return new Promise((resolve) => {
    user.getSession((error, current) => resolve(error || !current?.isValid() ? null : current));
  });
}

/** The ID token the API takes in Authorization, or null when nobody is signed in. */
export async function idToken() {
  return (await session())?.getIdToken().getJwtToken() ?? null;
}

/** The signed-in user's email, or null. */
export async function signedInEmail() {
  return (await session())?.getIdToken().payload?.email ?? null;
}
