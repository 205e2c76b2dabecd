// Drives Debian's headless Chromium with playwright-core for the web tests (never downloads a browser).
// Usage: node browser.mjs '<json plan>'   -> prints one JSON result line on stdout.
// Plans: {"kind": "viewer", "pages": [{"url", "screenshot", "orbit"?}], "timeoutMs"}: one result per page
//        {"kind": "upload", "url", "zip", "email", "preset", "screenshotDir", "timeoutMs", "notZip"?, "reprocessFrom"?}
//        {"kind": "job", "url", "screenshot"}: a direct load of a job page, until it shows the job's status
//        {"kind": "stream", "url", "scenePrefix", "screenshot", "timeoutMs", "throttle"?: {"latencyMs", "downloadKbps"}}:
//            a streamed scene on a throttled network: time to first image, the scene's bytes (URLs under
//            scenePrefix) and the page's fetched by then and at rest
//        {"kind": "share", "url", "download", "screenshot", "timeoutMs"}: a finished job's page: its location,
//            flight plan, links and embed snippet; then its one-page HTML download, opened from disk
//        {"kind": "measure", "url", "screenshot", "timeoutMs", "actions": [{"tool", "points": [[x, y, z], ...]}]}:
//            clicks each scene point where the viewer draws it, with each tool, and reads the results
//        {"kind": "accounts", "url", "zip", "owner": {"email", "password"}, "stranger": {...}, "screenshotDir"}:
//            signs the owner up (any confirmation code: the local pool has no mail), uploads, lists
//            "my jobs", signs out and in again, and opens the owner's job page signed out and as
//            the stranger (signed up too)
// An upload plan with "signUp": {"email", "password"} signs up first.
import { createRequire } from 'node:module';
import path from 'node:path';

const plan = JSON.parse(process.argv[2]);
// playwright-core is installed with the site's own dependencies (web/node_modules).
const { chromium } = createRequire(path.join(plan.webDir, 'package.json'))('playwright-core');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync',
  // WebGL without a GPU: ANGLE on SwiftShader, the CPU rasteriser Chromium ships.
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

const browser = await chromium.launch({ executablePath: plan.chromium, args: CHROMIUM_ARGS, headless: true });
let page;
let consoleMessages;

async function openPage() {
  await page?.close();
  page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  consoleMessages = [];
  page.on('console', (message) => consoleMessages.push({ type: message.type(), text: message.text() }));
  page.on('pageerror', (error) => consoleMessages.push({ type: 'pageerror', text: String(error) }));
}

const viewerState = () => page.evaluate(() => ({
  state: document.body.dataset.viewerState ?? null,
  error: window.spaceportViewer?.error ?? null,
  frames: window.spaceportViewer?.frames ?? 0,
  splats: window.spaceportViewer?.splats ?? 0,
  errorText: document.getElementById('viewer-error-text')?.textContent ?? '',
  errorVisible: Boolean(document.getElementById('viewer-error') && !document.getElementById('viewer-error').hidden),
  spinnerVisible: Boolean(document.getElementById('viewer-loading') && !document.getElementById('viewer-loading').hidden),
}));

/**
 * Waits for the viewer to report ready or error and screenshots the page (for a person). When
 * ready, also screenshots the bare canvas (overlays hidden) to `<name>.canvas.png` for the
 * blank-or-not check, so the toolbar's text cannot pass for a rendered splat.
 */
async function settleViewer(screenshot, timeoutMs) {
  const started = Date.now();
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.viewerState), null, { timeout: timeoutMs, polling: 100 })
    .catch(() => {});
  const waitedMs = Date.now() - started;
  const result = await viewerState();
  await page.screenshot({ path: screenshot });
  if (result.state === 'ready') {
    await page.addStyleTag({ content: '.viewer-toolbar, .viewer-overlay { visibility: hidden !important; }' });
    await page.locator('#viewer-canvas').screenshot({ path: screenshot.replace(/\.png$/, '.canvas.png') });
  }
  return { ...result, waitedMs, console: consoleMessages };
}

/** Drags across the canvas (an orbit), waits for the redraw to come to rest, screenshots the canvas. */
async function orbitAndShoot(path) {
  const box = await page.locator('#viewer-canvas').boundingBox();
  const before = await page.evaluate(() => window.spaceportViewer.frames);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 200, box.y + box.height / 2 + 40, { steps: 8 });
  await page.mouse.up();
  // At rest: no new frame for a while (the viewer draws only when something changed).
  let frames = -1;
  for (let i = 0; i < 120; i++) {
    await page.waitForTimeout(500);
    const now = await page.evaluate(() => window.spaceportViewer.frames);
    if (now === frames && now > before) break;
    frames = now;
  }
  await page.locator('#viewer-canvas').screenshot({ path });
  return frames - before;
}

let result;
try {
  if (plan.kind === 'viewer') {
    result = { pages: [] };
    for (const { url, screenshot, orbit } of plan.pages) {
      await openPage();
      await page.goto(url);
      const settled = await settleViewer(screenshot, plan.timeoutMs);
      if (orbit && settled.state === 'ready') settled.orbitFrames = await orbitAndShoot(screenshot.replace(/\.png$/, '.orbited.canvas.png'));
      result.pages.push({ url, ...settled });
    }
  } else if (plan.kind === 'job') {
    await openPage();
    if (plan.signIn) {
      await signIn(new URL(plan.url).origin, plan.signIn);
      await page.waitForSelector('#photos', { state: 'attached', timeout: 30_000 });
    }
    await page.goto(plan.url);
    await page.waitForFunction(() => document.body.dataset.jobStatus, null, { timeout: 30_000 }).catch(() => {});
    await page.screenshot({ path: plan.screenshot, fullPage: true });
    result = {
      status: await page.evaluate(() => document.body.dataset.jobStatus ?? null),
      statusLine: await page.evaluate(() => document.getElementById('job-status')?.textContent ?? ''),
      console: consoleMessages,
    };
  } else if (plan.kind === 'stream') {
    await openPage();
    result = await streamFlow(plan);
  } else if (plan.kind === 'share') {
    await openPage();
    result = await shareFlow(plan);
  } else if (plan.kind === 'measure') {
    await openPage();
    result = await measureFlow(plan);
  } else if (plan.kind === 'accounts') {
    await openPage();
    result = await accountsFlow(plan);
    result.console = consoleMessages;
  } else if (plan.kind === 'upload') {
    await openPage();
    if (plan.signUp) await signUp(new URL(plan.url).origin, plan.signUp);
    result = await uploadFlow(plan);
    result.console = consoleMessages;
  } else {
    throw new Error(`unknown plan kind ${plan.kind}`);
  }
} catch (error) {
  result = { failure: String(error?.stack ?? error), console: consoleMessages };
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);

/** Create an account on the sign-in page, confirm it (the local pool takes any code) and land signed in. */
async function signUp(base, { email, password }) {
  await page.goto(`${base}/signin`);
  await page.fill('#auth-email', email);
  await page.fill('#auth-password', password);
  await page.click('#signup');
  await page.waitForSelector('#confirm-box:not([hidden])', { timeout: 30_000 });
  await page.fill('#confirm-code', '000000');
  await page.click('#confirm');
  await page.waitForSelector('#photos', { state: 'attached', timeout: 30_000 });
}

async function signIn(base, { email, password }) {
  await page.goto(`${base}/signin`);
  await page.fill('#auth-email', email);
  await page.fill('#auth-password', password);
  await page.click('#signin');
}

async function signOut() {
  await page.click('#signout');
  await page.waitForURL(/\/signin$/, { timeout: 10_000 });
}

function jobPageState() {
  return page.evaluate(() => ({
    status: document.body.dataset.jobStatus ?? null,
    statusLine: document.getElementById('job-status')?.textContent ?? '',
    signInLink: Boolean(document.getElementById('signin-link')),
  }));
}

async function accountsFlow({ url, zip, owner, stranger, screenshotDir }) {
  const shot = (name) => page.screenshot({ path: path.join(screenshotDir, name), fullPage: true });
  const base = new URL(url).origin;
  await signUp(base, owner);
  await shot('01-signed-up.png');
  const account = await page.textContent('#account-email');
  const resultAddress = await page.textContent('#result-address');
  await page.setInputFiles('#photos', zip);
  await page.click('#submit');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 60_000 });
  const jobId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  await page.waitForFunction(() => document.body.dataset.jobStatus, null, { timeout: 30_000 });
  await shot('02-job.png');
  const ownerView = await jobPageState();
  await page.click('#my-jobs-link');
  await page.waitForSelector(`#my-jobs li[data-job="${jobId}"]`, { timeout: 30_000 });
  await shot('03-my-jobs.png');
  const myJobs = await page.$$eval('#my-jobs li', (items) => items.map((li) => li.dataset.job));
  await signOut();
  // Signed out, the job page asks for a sign-in.
  await page.goto(`${base}/jobs/${encodeURIComponent(jobId)}`);
  await page.waitForFunction(() => document.getElementById('signin-link'), null, { timeout: 30_000 });
  const signedOutView = await jobPageState();
  // A wrong password is refused on the sign-in page; the right one signs in.
  await signIn(base, { ...owner, password: `${owner.password}-wrong` });
  await page.waitForFunction(() => document.getElementById('auth-message')?.classList.contains('error'), null, { timeout: 30_000 });
  const wrongPassword = await page.textContent('#auth-message');
  await signIn(base, owner);
  await page.waitForSelector('#photos', { state: 'attached', timeout: 30_000 });
  const signedInAgain = await page.textContent('#account-email');
  await signOut();
  // Another user cannot open the owner's job page, nor sees it in their jobs.
  await signUp(base, stranger);
  await page.goto(`${base}/jobs/${encodeURIComponent(jobId)}`);
  await page.waitForFunction(() => /There is no job/.test(document.getElementById('job-status')?.textContent ?? ''), null,
    { timeout: 30_000 }).catch(() => {});
  await shot('04-stranger-job.png');
  const strangerView = await jobPageState();
  await page.goto(`${base}/jobs`);
  await page.waitForFunction(() => document.getElementById('my-jobs-message')?.textContent !== 'Loading…', null, { timeout: 30_000 });
  const strangerJobs = await page.$$eval('#my-jobs li', (items) => items.map((li) => li.dataset.job));
  return { jobId, account, resultAddress, ownerView, myJobs, signedOutView, wrongPassword, signedInAgain, strangerView, strangerJobs };
}

async function uploadFlow(plan) {
  const { url, zip, preset, screenshotDir, timeoutMs, notZip, reprocessFrom } = plan;
  const shot = (name) => page.screenshot({ path: path.join(screenshotDir, name), fullPage: true });
  await page.goto(url);
  let notZipMessage = null;
  if (notZip) {
    // A file that is not a ZIP is refused on the page, before anything is uploaded.
    await page.setInputFiles('#photos', notZip);
    await page.click('#submit');
    await page.waitForFunction(() => document.getElementById('upload-message')?.textContent, null, { timeout: 10_000 });
    notZipMessage = { text: await page.textContent('#upload-message'), url: page.url() };
    await shot('00-not-a-zip.png');
  }
  await page.setInputFiles('#photos', zip);
  await page.selectOption('#preset', preset);
  await shot('01-upload-form.png');
  await page.click('#submit');
  await page.waitForURL(/\/jobs\/[^/]+$/, { timeout: 60_000 }).catch(async () => {
    await shot('01-upload-failed.png');
    const message = await page.textContent('#upload-message');
    throw new Error(`the upload page did not move on to the job page: ${message}`);
  });
  const jobId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  // Record every (status, stage) the job page shows, with a screenshot per new one, and the
  // percents it showed for each stage.
  const seen = [];
  const percents = {};
  const deadline = Date.now() + timeoutMs;
  let status = '';
  while (Date.now() < deadline) {
    const now = await page.evaluate(() => ({
      status: document.body.dataset.jobStatus ?? '',
      stage: document.body.dataset.jobStage ?? '',
      percent: Number(document.body.dataset.jobPercent ?? 0),
      line: document.getElementById('job-status')?.textContent ?? '',
    }));
    status = now.status;
    if (now.stage) (percents[now.stage] ??= new Set()).add(now.percent);
    const last = seen[seen.length - 1];
    if (!last || last.status !== now.status || last.stage !== now.stage) {
      seen.push(now);
      await shot(`02-job-${String(seen.length).padStart(2, '0')}-${now.status || 'loading'}-${now.stage || 'none'}.png`);
    }
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(status)) break;
    await page.waitForTimeout(500);
  }
  const errorText = await page.evaluate(() => {
    const element = document.getElementById('job-error');
    return element && !element.hidden ? element.textContent : '';
  });
  let reprocess = null;
  if (reprocessFrom) {
    // The operator's button: a new run of the same job, which the page follows to its end.
    await page.click('#operator summary');
    await page.selectOption('#reprocess-stage', reprocessFrom);
    await page.click('#reprocess');
    await page.waitForFunction(() => document.body.dataset.jobRun === 'r2', null, { timeout: 60_000 });
    await page.waitForFunction(() => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(document.body.dataset.jobStatus)
      && document.body.dataset.jobRun === 'r2', null, { timeout: timeoutMs, polling: 500 });
    await shot('02-job-99-reprocessed.png');
    reprocess = await page.evaluate(() => ({
      runId: document.body.dataset.jobRun,
      status: document.body.dataset.jobStatus,
      notice: document.getElementById('job-notice')?.hidden === false ? document.getElementById('job-notice').textContent : '',
    }));
  }
  let shareLink = null;
  if (plan.share && status === 'SUCCEEDED') {
    await page.click('#make-share');
    await page.waitForFunction(() => document.getElementById('share-link')?.value, null, { timeout: 30_000 });
    shareLink = await page.inputValue('#share-link');
  }
  const facts = await page.$$eval('#job-facts dt', (terms) => Object.fromEntries(terms.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? ''])));
  const links = await page.$$eval('a.download', (anchors) => anchors.map((a) => ({ name: a.dataset.artifact, href: a.href })));
  let viewer = null;
  if (status === 'SUCCEEDED' && (await page.$('#open-viewer'))) {
    await page.click('#open-viewer');
    await page.waitForURL(/\/view\//);
    viewer = await settleViewer(path.join(screenshotDir, '03-viewer.png'), 60_000);
    viewer.url = page.url();
  }
  const percentsShown = Object.fromEntries(Object.entries(percents).map(([stage, set]) => [stage, [...set].sort((a, b) => a - b)]));
  return { jobId, seen, percentsShown, status, errorText, facts, links, viewer, reprocess, notZipMessage, shareLink };
}

/** Bytes the page has fetched (every resource's body as it came over the wire) up to `untilMs`. */
/** Bytes of the resources under `prefix` the page has fetched (bodies as they came over the wire) by `untilMs`. */
function fetchedBytes(prefix, untilMs) {
  return page.evaluate(([start, until]) => performance.getEntriesByType('resource')
    .filter((entry) => entry.name.startsWith(start) && (until === null || entry.responseEnd <= until))
    .reduce((sum, entry) => sum + (entry.encodedBodySize || entry.transferSize || 0), 0), [prefix, untilMs ?? null]);
}

async function streamFlow({ url, screenshot, timeoutMs, throttle, scenePrefix }) {
  if (throttle) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: throttle.latencyMs,
      downloadThroughput: (throttle.downloadKbps * 1000) / 8,
      uploadThroughput: (throttle.downloadKbps * 1000) / 8,
    });
  }
  await page.goto(url);
  const settled = await settleViewer(screenshot, timeoutMs);
  const status = await page.evaluate(() => ({
    firstImageMs: window.spaceportViewer?.firstImageMs ?? null, // since the viewer started (its code loaded)
    chunksLoaded: window.spaceportViewer?.chunksLoaded ?? 0,
    splatBudget: window.spaceportViewer?.splatBudget ?? null,
    streamed: window.spaceportViewer?.streamed ?? false,
    // performance.now() of the first image, on the same clock as the resource timings
    firstImageAt: window.spaceportViewer?.firstImageAt ?? null,
  }));
  const bytesAtFirstImage = status.firstImageAt === null ? null : await fetchedBytes(scenePrefix, status.firstImageAt);
  const pageBytesAtFirstImage = status.firstImageAt === null ? null : await fetchedBytes('', status.firstImageAt);
  const chunksAtFirstImage = await page.evaluate(() => window.spaceportViewer?.chunksAtFirstImage ?? null);
  // Then until the streaming comes to rest: no new chunk for three seconds.
  let chunks = -1;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await page.waitForTimeout(3000);
    const now = await page.evaluate(() => window.spaceportViewer?.chunksLoaded ?? 0);
    if (now === chunks) break;
    chunks = now;
  }
  await page.locator('#viewer-canvas').screenshot({ path: screenshot.replace(/\.png$/, '.settled.canvas.png') });
  return {
    ...settled, ...status, chunksAtFirstImage, bytesAtFirstImage, pageBytesAtFirstImage, chunksAtRest: chunks,
    bytesAtRest: await fetchedBytes(scenePrefix, null), pageBytesAtRest: await fetchedBytes('', null),
  };
}

async function measureFlow(plan) {
  const { url, screenshot, timeoutMs, actions } = plan;
  await page.goto(url);
  const settled = await settleViewer(screenshot, timeoutMs);
  if (settled.state !== 'ready') return { ...settled, measurements: [] };
  const box = await page.locator('#viewer-canvas').boundingBox();
  const measurements = [];
  for (const { tool, points } of actions) {
    await page.evaluate((name) => window.spaceportViewer.selectTool(name), tool);
    const clicked = [];
    for (const point of points) {
      const [x, y] = await page.evaluate((p) => window.spaceportViewer.screenOf(p), point);
      const before = await page.evaluate(() => window.spaceportViewer.measure.points.length);
      await page.mouse.click(box.x + x, box.y + y);
      await page.waitForFunction((count) => {
        const m = window.spaceportViewer.measure;
        return !m.picking && (m.points.length !== count || m.result || document.getElementById('measure-result').classList.contains('error'));
      }, before, { timeout: plan.pickTimeoutMs ?? 60_000, polling: 100 }).catch(async (error) => {
        await page.screenshot({ path: screenshot.replace(/\.png$/, '.failed.png') });
        const state = await page.evaluate(() => ({ ...window.spaceportViewer.measure, text: document.getElementById('measure-result').textContent }));
        throw new Error(`${tool} point ${JSON.stringify(point)} at (${x}, ${y}): ${error.message}; measure state ${JSON.stringify(state)}`);
      });
      clicked.push([x, y]);
    }
    if (tool === 'area') await page.click('#measure-done');
    const measured = await page.evaluate(() => {
      const m = window.spaceportViewer.measure;
      return { points: m.points, result: m.result, text: document.getElementById('measure-result').textContent };
    });
    measurements.push({ tool, clicked, ...measured });
  }
  await page.screenshot({ path: screenshot.replace(/\.png$/, '.measured.png') });
  const overlays = await page.evaluate(() => ({
    northAngle: window.spaceportViewer.measure.northAngle ?? null,
    metresPerPixel: window.spaceportViewer.measure.metresPerPixel ?? null,
    scaleBar: document.getElementById('scale-bar')?.textContent ?? '',
    northVisible: Boolean(document.getElementById('north-arrow') && !document.getElementById('north-arrow').hidden),
  }));
  return { ...settled, measurements, ...overlays };
}

async function shareFlow({ url, download, screenshot, timeoutMs }) {
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.jobStatus === 'SUCCEEDED' && document.getElementById('make-share'),
    null, { timeout: 30_000 });
  await page.click('#make-share');
  await page.waitForFunction(() => !document.getElementById('embed-snippet').hidden, null, { timeout: 30_000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  const job = await page.evaluate(() => ({
    location: document.getElementById('job-location')?.textContent ?? '',
    flightPhotos: document.querySelectorAll('#flight-plan circle').length,
    flightMissing: Boolean(document.getElementById('flight-plan-missing')),
    links: [...document.querySelectorAll('a.download')].map((a) => a.dataset.artifact),
    viewer: document.getElementById('open-viewer')?.getAttribute('href') ?? null,
    embed: document.getElementById('embed-snippet')?.value ?? '',
    shareLink: document.getElementById('share-link')?.value ?? '',
  }));
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: timeoutMs }), page.click('#download-html')]);
  await file.saveAs(download);
  // The page on its own, from disk, with no server.
  await openPage();
  await page.goto(`file://${download}`);
  const standalone = await settleViewer(screenshot.replace(/\.png$/, '.standalone.png'), timeoutMs);
  return { ...job, standalone, console: consoleMessages };
}
