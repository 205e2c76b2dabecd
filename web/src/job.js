/**
 * Job page (/jobs/<id>, its owner's and the operators'): the live stage and progress polled from
 * GET /jobs/{id}, the error in plain words, downloads and "open viewer" when done, the share link
 * (make a new one, stop sharing) with its embed snippet, and reprocess and cancel.
 */
import { api, ApiError } from './api.js';
import { signInLink } from './my-jobs.js';
import { formatBytes, h, progressBar } from './dom.js';
import { formatLatLon, georeferenceFrom } from './geo.js';
import { JOB_STAGES, STAGE_NAMES, overallFraction, readJob } from './job-record.js';
import { embedSnippet, standalonePage } from './share.js';

// The API's link to the streamed scene's lod-meta.json: for the viewer, not a download.
const STREAMED_LINK = 'streamed';
const PLAN_SIZE = 220; // pixels of the flight path's plan view

const POLL_MS = 2000;
const POLL_BACKOFF_MS = 6000;

export function mount(root, { jobId }) {
  let timer = null;
  let stopped = false;

  const title = h('h1', {}, 'Job ', h('code', {}, jobId));
  const statusLine = h('p', { class: 'status-line', id: 'job-status' }, 'Loading…');
  const stages = h('ol', { class: 'stages', id: 'job-stages' });
  const stageBar = progressBar('');
  const overallBar = progressBar('');
  const problem = h('p', { class: 'message error', id: 'job-error', hidden: true });
  const notice = h('p', { class: 'message', id: 'job-notice', hidden: true });
  const results = h('section', { class: 'results', id: 'job-results', hidden: true });
  const facts = h('dl', { class: 'facts', id: 'job-facts' });
  const allFigures = h('details', { class: 'all-figures', hidden: true });
  const operator = operatorPanel(jobId, () => poll(), (text, isError) => say(notice, text, isError));

  root.append(h('section', { class: 'card job' },
    title, statusLine, stages, h('p', { class: 'bar-label' }, 'This stage'), stageBar.element,
    h('p', { class: 'bar-label' }, 'Whole job'), overallBar.element, problem, notice, results, facts, allFigures, operator));

  async function poll() {
    clearTimeout(timer);
    let delay = POLL_MS;
    try {
      const raw = await api.get(`/jobs/${encodeURIComponent(jobId)}`);
      const job = readJob(raw);
      if (notice.dataset.transient) notice.hidden = true; // contact is back
      show(job, raw);
      if (job.isFinal) return; // nothing more will change unless an operator reprocesses
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        statusLine.textContent = `There is no job ${jobId}. Check the link, or upload the photos again.`;
        return;
      }
      if (error instanceof ApiError && error.status === 401) {
        statusLine.replaceChildren(signInLink(location.pathname), ' to see this job.');
        return;
      }
      say(notice, `${error.message} Retrying…`, true, true);
      delay = POLL_BACKOFF_MS;
    }
    if (!stopped) timer = setTimeout(poll, delay);
  }

  function show(job, raw) {
    document.body.dataset.jobStatus = job.status;
    document.body.dataset.jobStage = job.stage;
    document.body.dataset.jobRun = job.runId;
    document.body.dataset.jobPercent = job.stagePercent.toFixed(0);
    const stageName = STAGE_NAMES[job.stage] ?? job.stage;
    statusLine.textContent = {
      QUEUED: 'Queued: waiting for a worker.',
      RUNNING: `Running: ${stageName}, ${job.stagePercent.toFixed(0)}% of this stage.`,
      SUCCEEDED: 'Done: your scene is ready.',
      FAILED: `Failed during ${stageName}.`,
      CANCELLED: 'Cancelled.',
    }[job.status] ?? job.status;
    statusLine.className = `status-line status-${job.status.toLowerCase()}`;

    const current = JOB_STAGES.indexOf(job.stage);
    stages.replaceChildren(...JOB_STAGES.map((stage, index) => {
      const state = job.status === 'SUCCEEDED' || index < current ? 'done'
        : index === current ? (job.status === 'FAILED' ? 'failed' : job.isFinal ? 'stopped' : 'active') : 'waiting';
      return h('li', { class: `stage stage-${state}`, 'data-stage': stage, 'data-state': state }, STAGE_NAMES[stage]);
    }));
    const stageFraction = job.status === 'SUCCEEDED' ? 1 : job.stagePercent / 100;
    stageBar.update(stageFraction, `${stageName}: ${(stageFraction * 100).toFixed(0)}%`);
    const overall = overallFraction(job);
    overallBar.update(overall, `${(overall * 100).toFixed(0)}%${job.createdAt ? `, ${elapsed(job)}` : ''}`);

    problem.hidden = !job.error;
    if (job.error) {
      problem.replaceChildren(h('strong', {}, `${STAGE_NAMES[job.error.stage] ?? job.error.stage} failed: `), job.error.message);
    }

    results.hidden = job.status !== 'SUCCEEDED';
    if (job.status === 'SUCCEEDED' && results.dataset.run !== job.runId) {
      results.dataset.run = job.runId; // built once a run: the share box keeps its state
      results.replaceChildren(...resultLinks(job), ...where(raw), ...sharing(job, raw));
    }

    facts.replaceChildren(...[['Email', job.email], ['Preset', job.preset], ['Run', job.runId], ...headline(job.summary)]
      .filter(([, value]) => value !== '' && value !== undefined && value !== null)
      .flatMap(([key, value]) => [h('dt', {}, key), h('dd', {}, String(value))]));
    allFigures.hidden = Object.keys(job.summary).length === 0;
    allFigures.replaceChildren(h('summary', {}, 'All figures'), h('dl', { class: 'facts' },
      Object.entries(job.summary).flatMap(([key, value]) => [h('dt', {}, key.replaceAll('_', ' ')), h('dd', {}, String(formatValue(value)))])));
    operator.setRunning(!job.isFinal);
  }

  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    delete document.body.dataset.jobStatus;
    delete document.body.dataset.jobStage;
    delete document.body.dataset.jobRun;
    delete document.body.dataset.jobPercent;
  };
}

function resultLinks(job) {
  const labels = {
    sog: 'Compressed scene (.sog)',
    spz: 'Scene for Niantic and other SPZ tools (.spz)',
    glb: 'Scene as glTF (.glb, KHR_gaussian_splatting)',
    ply: 'Full splat (.ply)',
    report: 'Report (.json)',
  };
  const downloads = Object.entries(job.downloads)
    .filter(([name]) => name !== STREAMED_LINK)
    .map(([name, url]) => h('li', {}, h('a', { href: url, download: true, class: 'download', 'data-artifact': name }, labels[name] ?? name)));
  const viewable = job.sogUrl || job.downloads[STREAMED_LINK];
  return [
    h('h2', {}, 'Results'),
    viewable
      ? h('a', { href: `/view/${encodeURIComponent(job.jobId)}`, 'data-link': true, class: 'button', id: 'open-viewer' }, 'Open viewer')
      : h('p', {}, 'This job has no viewable scene (.sog).'),
    downloads.length ? h('ul', { class: 'downloads' }, downloads) : null,
  ];
}

/** Where the capture is: its latitude and longitude, and the photos' flight path seen from above. */
function where(raw) {
  const georeference = georeferenceFrom(raw?.georeference);
  if (!georeference) {
    return [h('h2', {}, 'Location'), h('p', { id: 'job-location' }, 'This scene is not georeferenced (the photos had no usable GPS): the viewer measures in relative units.')];
  }
  const path = Array.isArray(raw.flightPath) ? raw.flightPath.filter((p) => Array.isArray(p) && p.length >= 2 && p.every(Number.isFinite)) : [];
  return [
    h('h2', {}, 'Location'),
    h('p', { id: 'job-location' }, `Captured around ${formatLatLon(georeference.origin)}, ${georeference.origin.alt.toFixed(1)} m (WGS84).`),
    path.length >= 2 ? flightPlan(path) : h('p', { id: 'flight-plan-missing' }, 'No flight path was recorded for this job.'),
  ];
}

/** The camera positions (east, north in metres) as a small plan view, north up. */
function flightPlan(points) {
  const east = points.map((p) => p[0]);
  const north = points.map((p) => p[1]);
  const [minE, maxE, minN, maxN] = [Math.min(...east), Math.max(...east), Math.min(...north), Math.max(...north)];
  const span = Math.max(maxE - minE, maxN - minN, 1e-6);
  const margin = 12;
  const scale = (PLAN_SIZE - 2 * margin) / span;
  const x = (e) => margin + (e - minE) * scale + ((span - (maxE - minE)) * scale) / 2;
  const y = (n) => PLAN_SIZE - margin - (n - minN) * scale - ((span - (maxN - minN)) * scale) / 2;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  Object.entries({ viewBox: `0 0 ${PLAN_SIZE} ${PLAN_SIZE}`, width: PLAN_SIZE, height: PLAN_SIZE, class: 'flight-plan', id: 'flight-plan', role: 'img' })
    .forEach(([k, v]) => svg.setAttribute(k, v));
  const add = (tag, attributes) => {
    const element = document.createElementNS(ns, tag);
    Object.entries(attributes).forEach(([k, v]) => element.setAttribute(k, v));
    svg.append(element);
    return element;
  };
  add('title', {}).textContent = `Flight path of ${points.length} photos, ${span.toFixed(0)} m across, north up`;
  add('polyline', { points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '), class: 'flight-line' });
  points.forEach((p) => add('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.5, class: 'flight-photo' }));
  add('text', { x: PLAN_SIZE - 14, y: 16, class: 'flight-north' }).textContent = 'N↑';
  return h('figure', { class: 'flight' }, svg, h('figcaption', {}, `${points.length} photos over ${span.toFixed(0)} m, north up`));
}

/**
 * The share link (anyone with it may view the scene; the API shows its token only when it makes
 * one), its embed snippet, stopping sharing, and the scene as one HTML page to download.
 */
function sharing(job, raw) {
  const state = h('p', { id: 'share-state' }, raw?.shared
    ? 'This scene is shared: anyone with its link can view it. A new link replaces the old one.'
    : 'This scene is not shared.');
  const link = h('input', { type: 'text', readonly: true, id: 'share-link', class: 'share-link', hidden: true });
  const snippet = h('textarea', { id: 'embed-snippet', readonly: true, rows: 3, hidden: true });
  const copy = h('button', { type: 'button', class: 'secondary', id: 'copy-embed', hidden: true }, 'Copy');
  copy.addEventListener('click', async () => {
    snippet.select();
    try {
      await navigator.clipboard.writeText(snippet.value);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Select and copy';
    }
  });
  const make = h('button', { type: 'button', id: 'make-share' }, raw?.shared ? 'Make a new share link' : 'Make a share link');
  const stop = h('button', { type: 'button', class: 'secondary', id: 'stop-share', hidden: !raw?.shared }, 'Stop sharing');
  const problem = h('p', { class: 'message error', id: 'share-message', hidden: true });
  const fail = (error) => {
    problem.hidden = false;
    problem.textContent = error.message;
  };
  make.addEventListener('click', async () => {
    make.disabled = true;
    try {
      const { shareUrl } = await api.post(`/jobs/${encodeURIComponent(job.jobId)}/share`, {});
      link.value = shareUrl;
      snippet.value = embedSnippet(shareUrl, `Spaceport scene ${job.jobId}`);
      for (const element of [link, snippet, copy, stop]) element.hidden = false;
      state.textContent = 'Shared: anyone with this link can view the scene (it is shown only now; keep it).';
      make.textContent = 'Make a new share link';
    } catch (error) {
      fail(error);
    } finally {
      make.disabled = false;
    }
  });
  stop.addEventListener('click', async () => {
    stop.disabled = true;
    try {
      await api.delete(`/jobs/${encodeURIComponent(job.jobId)}/share`);
      for (const element of [link, snippet, copy, stop]) element.hidden = true;
      state.textContent = 'This scene is not shared: the link no longer works.';
      make.textContent = 'Make a share link';
    } catch (error) {
      fail(error);
    } finally {
      stop.disabled = false;
    }
  });
  const message = h('p', { class: 'message', id: 'standalone-message', hidden: true });
  const download = h('button', { type: 'button', class: 'secondary', id: 'download-html', disabled: !job.sogUrl }, 'Download as one HTML page');
  download.addEventListener('click', async () => {
    download.disabled = true;
    message.hidden = false;
    message.className = 'message';
    message.textContent = 'Building the page…';
    try {
      const page = await standalonePage({ sogUrl: job.sogUrl, title: `Spaceport scene ${job.jobId}`, georeference: raw?.georeference });
      const link = h('a', { href: URL.createObjectURL(page), download: `${job.jobId}.html`, id: 'standalone-link' }, `${job.jobId}.html`);
      message.replaceChildren('Ready: ', link, ` (${formatBytes(page.size)}), opens in a browser with no server.`);
      link.click();
    } catch (error) {
      message.className = 'message error';
      message.textContent = `The page could not be built: ${error.message}`;
    } finally {
      download.disabled = false;
    }
  });
  return [
    h('h2', {}, 'Share'), state, h('p', { class: 'actions' }, make, ' ', stop), problem,
    link, h('label', { for: 'embed-snippet', hidden: true }, 'Embed the viewer in a website'), snippet, copy,
    h('p', {}, download), message,
  ];
}

function operatorPanel(jobId, refresh, say) {
  const fromStage = h('select', { id: 'reprocess-stage' }, JOB_STAGES.map((stage) => h('option', { value: stage }, STAGE_NAMES[stage])));
  const reprocess = h('button', { type: 'submit', id: 'reprocess' }, 'Reprocess from this stage');
  const cancel = h('button', { type: 'button', id: 'cancel', class: 'secondary' }, 'Cancel the job');
  const form = h('form', { class: 'operator-form' }, h('label', { for: 'reprocess-stage' }, 'Start a new run from'), fromStage, reprocess);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    reprocess.disabled = true;
    try {
      await api.post(`/jobs/${encodeURIComponent(jobId)}/reprocess`, { fromStage: fromStage.value, options: {} });
      say(`A new run from ${STAGE_NAMES[fromStage.value]} was requested.`, false);
      refresh();
    } catch (error) {
      say(`Reprocess was refused: ${error.message}`, true);
    } finally {
      reprocess.disabled = false;
    }
  });
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api.post(`/jobs/${encodeURIComponent(jobId)}/cancel`, {});
      say('Cancellation requested.', false);
      refresh();
    } catch (error) {
      say(`Cancel was refused: ${error.message}`, true);
    } finally {
      cancel.disabled = false;
    }
  });
  const panel = h('details', { class: 'operator', id: 'operator' }, h('summary', {}, 'Operator'), form, cancel);
  // A running job can be cancelled; an ended one can be reprocessed (the API refuses the other way round).
  panel.setRunning = (running) => {
    cancel.hidden = !running;
    form.hidden = running;
  };
  return panel;
}

function say(element, text, isError, transient = false) {
  element.textContent = text;
  element.className = `message${isError ? ' error' : ''}`;
  element.hidden = false;
  if (transient) element.dataset.transient = 'true';
  else delete element.dataset.transient;
}

function elapsed(job) {
  const end = job.isFinal && job.updatedAt ? new Date(job.updatedAt) : new Date();
  const seconds = Math.max(0, Math.round((end - new Date(job.createdAt)) / 1000));
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s elapsed`;
}

/** The figures a person looks for first (the email's too), from the stages' summary fields. */
function headline(summary) {
  const rows = [];
  if (summary.sfm_images_registered !== undefined) {
    rows.push(['Photos used', `${summary.sfm_images_registered} of ${summary.sfm_images_used ?? summary.sfm_images_registered}`]);
  }
  if (typeof summary.train_psnr === 'number') rows.push(['Held-out PSNR', `${summary.train_psnr.toFixed(2)} dB`]);
  if (typeof summary.train_num_gaussians === 'number') rows.push(['Gaussians', summary.train_num_gaussians.toLocaleString('en')]);
  if (typeof summary.train_blocks === 'number') rows.push(['Trained in blocks', `${summary.train_blocks}, merged`]);
  if (typeof summary.compress_sog_bytes === 'number') rows.push(['Scene size (.sog)', formatBytes(summary.compress_sog_bytes)]);
  return rows;
}

function formatValue(value) {
  if (typeof value === 'number') return Number.isInteger(value) ? value : value.toFixed(2);
  return typeof value === 'object' ? JSON.stringify(value) : value;
}
