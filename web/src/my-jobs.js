/**
 * "My jobs" (/jobs): the signed-in user's jobs, newest first (GET /jobs lists only the caller's).
 */
import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { STAGE_NAMES } from './job-record.js';

export function mount(root) {
  const list = h('ul', { class: 'my-jobs', id: 'my-jobs' });
  const message = h('p', { class: 'message', id: 'my-jobs-message' }, 'Loading…');
  root.append(h('section', { class: 'card' }, h('h1', {}, 'My jobs'), message, list));
  api.get('/jobs').then(({ jobs }) => {
    message.textContent = jobs.length ? '' : 'No jobs yet: upload a ZIP of photos to start one.';
    list.replaceChildren(...jobs.map((job) => h('li', { 'data-job': job.jobId },
      h('a', { href: `/jobs/${encodeURIComponent(job.jobId)}`, 'data-link': true }, h('code', {}, job.jobId)),
      ` ${job.status.toLowerCase()}, ${STAGE_NAMES[job.stage] ?? job.stage}, started ${new Date(job.createdAt).toLocaleString()}`)));
  }).catch((error) => {
    message.className = 'message error';
    message.replaceChildren(error.message, ' ', ...(error instanceof ApiError && error.status === 401 ? [signInLink('/jobs')] : []));
  });
}

export function signInLink(next) {
  return h('a', { href: `/signin?next=${encodeURIComponent(next)}`, 'data-link': true, id: 'signin-link' }, 'Sign in');
}
