/**
 * The header's account line: the signed-in user's email, "My jobs" and "Sign out", or "Sign in".
 * Redrawn on every page change (main.js calls it).
 */
import { hasSignIn, signedInEmail, signOut } from './auth.js';
import { h } from './dom.js';

export async function showAccount(element, navigate) {
  if (!(await hasSignIn().catch(() => false))) {
    element.replaceChildren();
    return;
  }
  const email = await signedInEmail();
  if (!email) {
    element.replaceChildren(h('a', { href: `/signin?next=${encodeURIComponent(location.pathname)}`, 'data-link': true }, 'Sign in'));
    return;
  }
  const out = h('button', { type: 'button', class: 'link', id: 'signout' }, 'Sign out');
  out.addEventListener('click', async () => {
    await signOut();
    navigate('/signin');
  });
  element.replaceChildren(h('span', { id: 'account-email' }, email), ' · ',
    h('a', { href: '/jobs', 'data-link': true, id: 'my-jobs-link' }, 'My jobs'), ' · ', out);
}
