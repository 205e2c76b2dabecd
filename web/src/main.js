/**
 * The site's router: one page, its views chosen by the path.
 *
 *   /                   upload page (signed in)
 *   /signin             sign in, or create an account
 *   /jobs               my jobs
 *   /jobs/<id>          job page (live status; the owner's and the operators' only)
 *   /view?sog=<url>     viewer for a .sog URL
 *   /view/<job>         viewer for a job's scene (signed in)
 *   /view/share/<token> viewer for a shared scene (anyone with the link)
 */
import './style.css';
import { showAccount } from './account.js';
import { h } from './dom.js';

const routes = [
  { pattern: /^\/(index\.html)?$/, load: () => import('./upload.js'), params: () => ({}) },
  { pattern: /^\/signin\/?$/, load: () => import('./signin.js'), params: () => ({}) },
  { pattern: /^\/jobs\/?$/, load: () => import('./my-jobs.js'), params: () => ({}) },
  { pattern: /^\/jobs\/([^/]+)\/?$/, load: () => import('./job.js'), params: (m) => ({ jobId: decodeURIComponent(m[1]) }) },
  { pattern: /^\/view\/share\/([^/]+)\/?$/, load: () => import('./viewer.js'), params: (m) => ({ shareToken: decodeURIComponent(m[1]) }) },
  { pattern: /^\/view\/?$/, load: () => import('./viewer.js'), params: () => ({ sogUrl: new URLSearchParams(location.search).get('sog') }) },
  { pattern: /^\/view\/([^/]+)\/?$/, load: () => import('./viewer.js'), params: (m) => ({ jobId: decodeURIComponent(m[1]) }) },
];

const root = document.getElementById('app');
const account = document.getElementById('account');
let leaveCurrent = () => {};

/** Go to a path inside the site without reloading it. */
export function navigate(path) {
  history.pushState(null, '', path);
  render();
}

async function render() {
  leaveCurrent();
  leaveCurrent = () => {};
  root.replaceChildren();
  document.body.classList.remove('viewer-page');
  if (account) showAccount(account, navigate);
  const route = routes.map((r) => ({ r, m: location.pathname.match(r.pattern) })).find(({ m }) => m);
  if (!route) {
    root.append(h('section', { class: 'card' }, h('h1', {}, 'Page not found'), h('p', {}, 'There is nothing at ', h('code', {}, location.pathname), '. ', h('a', { href: '/', 'data-link': true }, 'Upload photos'), '.')));
    return;
  }
  const page = await route.r.load();
  leaveCurrent = page.mount(root, route.r.params(route.m), { navigate }) ?? (() => {});
}

document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[data-link]');
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', render);
render();
