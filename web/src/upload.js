/**
 * Upload page (signed in): pick or drop a ZIP of photos and a preset, then POST /uploads -> POST the
 * ZIP to S3 with the presigned form (with progress) -> POST /jobs -> job page. The result is
 * emailed to the user's verified address.
 */
import { api, ApiError } from './api.js';
import { hasSignIn, signedInEmail } from './auth.js';
import { formatBytes, h, progressBar } from './dom.js';
import { signInLink } from './my-jobs.js';
import { looksLikeZip } from './zip-magic.js';

const PRESETS = [
  ['quick', 'Quick: a first look in minutes'],
  ['default', 'Default: balanced quality and time'],
  ['quality', 'Quality: slowest, sharpest'],
];

export function mount(root, _params, context) {
  Promise.all([hasSignIn(), signedInEmail()]).then(([required, email]) => {
    if (required && !email) {
      root.append(h('section', { class: 'card', id: 'upload-signin' }, h('h1', {}, 'Turn drone photos into a 3D scene'),
        h('p', {}, signInLink('/'), ' to upload photos: the result is emailed to your address.')));
      return;
    }
    uploadForm(root, email, context);
  }).catch((error) => root.append(h('p', { class: 'message error' }, error.message)));
}

function uploadForm(root, signedIn, { navigate }) {
  let file = null;
  const fileInput = h('input', { type: 'file', id: 'photos', name: 'photos', accept: '.zip,application/zip', class: 'visually-hidden' });
  const fileLabel = h('span', { class: 'drop-file' }, 'No file chosen');
  const dropZone = h('label', { class: 'drop-zone', for: 'photos' },
    h('strong', {}, 'Drop a ZIP of drone photos here'), h('span', {}, 'or click to choose one'), fileLabel);
  const preset = h('select', { id: 'preset', name: 'preset' },
    PRESETS.map(([value, label]) => h('option', { value, selected: value === 'default' }, label)));
  const submit = h('button', { type: 'submit', id: 'submit' }, 'Upload and start');
  const progress = progressBar('Waiting for a file');
  const message = h('p', { class: 'message', id: 'upload-message', role: 'status' });
  progress.element.hidden = true;

  const choose = (chosen) => {
    file = chosen ?? null;
    fileLabel.textContent = file ? `${file.name} (${formatBytes(file.size)})` : 'No file chosen';
    dropZone.classList.toggle('has-file', Boolean(file));
  };
  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    choose(event.dataTransfer.files[0]);
  });

  const form = h('form', { class: 'card upload-form', novalidate: true },
    h('h1', {}, 'Turn drone photos into a 3D scene'),
    dropZone, fileInput,
    signedIn ? h('p', { id: 'result-address' }, 'The result is emailed to ', h('strong', {}, signedIn), '.') : null,
    h('label', { for: 'preset' }, 'Preset'), preset,
    submit, progress.element, message);

  const fail = (text) => {
    message.textContent = text;
    message.className = 'message error';
    submit.disabled = false;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.className = 'message';
    message.textContent = '';
    if (!file) return fail('Choose a ZIP of photos first.');
    if (!(await isZip(file))) return fail(`${file.name} is not a ZIP file. Put the photos in a .zip and try again.`);
    submit.disabled = true;
    progress.element.hidden = false;
    try {
      progress.update(0, 'Preparing the upload…');
      const { uploadUrl, uploadFields, s3Url } = await api.post('/uploads', { filename: file.name });
      await postWithProgress(uploadUrl, uploadFields, file, (fraction) =>
        progress.update(fraction, `Uploading ${file.name}: ${(fraction * 100).toFixed(0)}%`));
      progress.update(1, 'Upload complete, starting the job…');
      // One key per submission: a retried POST (flaky network) returns the same job, not a second one.
      const { jobId } = await api.post('/jobs',
        { s3Url, options: { preset: preset.value } },
        { 'Idempotency-Key': crypto.randomUUID() });
      navigate(`/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      progress.element.hidden = true;
      fail(error instanceof ApiError || error instanceof UploadError ? error.message : `Something went wrong: ${error.message}`);
    }
  });

  root.append(form);
}

async function isZip(file) {
  return looksLikeZip(new Uint8Array(await file.slice(0, 4).arrayBuffer()));
}

class UploadError extends Error {
  name = 'UploadError';
}

/**
 * POST the file to S3 with the presigned form: its fields, then the file (S3 checks the size range
 * and the type the form names). fetch() reports no upload progress, XMLHttpRequest does.
 */
function postWithProgress(url, fields, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', file);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new UploadError(`The upload was refused (HTTP ${xhr.status}). Try again; if it keeps failing the upload link may have expired.`)));
    xhr.addEventListener('error', () => reject(new UploadError('The upload failed: the storage server could not be reached.')));
    xhr.addEventListener('abort', () => reject(new UploadError('The upload was cancelled.')));
    xhr.send(form);
  });
}
