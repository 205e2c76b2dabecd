/**
 * Viewer (/view?sog=<url>, /view?lod=<url of lod-meta.json>, /view/<job> for its owner, or
 * /view/share/<token> for anyone with a share link): shows a PlayCanvas
 * SOG bundle, or streams a streamed SOG (levels of detail) under a splat budget, with the
 * PlayCanvas engine; fits the camera to the splat, and lets the user orbit (left drag), pan
 * (right drag or shift) and zoom (wheel), and measure (measure.js). Every failure ends in a
 * readable message, never an endless spinner.
 *
 * A georeferenced scene (the job's `georeference`, or `?lat=&lon=&alt=`) is east-north-up: it
 * opens with z up and north at the top of the screen, looking down at 45 degrees, and measures
 * in metres. `?budget=<splats>` sets the splat budget of a streamed scene (default: about 1M on
 * a phone, 4M on a desktop).
 *
 * Tests and tools read the state from `document.body.dataset.viewerState`
 * ("loading" | "ready" | "error") and `window.spaceportViewer`.
 */
import { Application, Asset, BoundingBox, Color, Entity, FILLMODE_NONE, RESOLUTION_AUTO, Vec3, createGraphicsDevice } from 'playcanvas';
import { CameraControls } from 'playcanvas/scripts/esm/camera-controls.mjs';
import { api, ApiError } from './api.js';
import { ConfigError } from './config.js';
import { formatBytes, h, progressBar } from './dom.js';
import { georeferenceFrom, georeferenceFromQuery } from './geo.js';
import { readJob } from './job-record.js';
import { measuringTools, SplatPicker } from './measure.js';
import { downloadScene, fetchLodMeta, SceneError, siblingUrl } from './scene-file.js';

// The engine gets this long after the download to build the scene before we call it stuck.
const LOAD_TIMEOUT_MS = 60_000;
// The viewer draws only when something changed (battery, and a CPU-only browser stays
// responsive): while the camera moves, while the splats' depth sort is pending, and for this
// many frames after, so the last sort for the resting camera lands on screen.
const FRAMES_AFTER_CHANGE = 3;
// Which way is up in the file -> the entity's rotation (PlayCanvas is y-up). The pipeline's
// scenes are geo-registered east-north-up, so z is up unless the link says otherwise.
const UP_AXES = {
  z: [-90, 0, 0],
  y: [0, 0, 0],
  '-y': [0, 0, 180],
  '-z': [90, 0, 0],
};
// Splats drawn at once from a streamed scene: what a phone's GPU holds, and a desktop's.
const PHONE_SPLAT_BUDGET = 1_000_000;
const DESKTOP_SPLAT_BUDGET = 4_000_000;
// Where the engine switches levels: level 1 from LOD_BASE_FACTOR half diagonals of the scene's
// bound, each next level LOD_MULTIPLIER times farther (spaceport_compress.streamed measures each
// level's fidelity from there).
const LOD_BASE_FACTOR = 4;
const LOD_MULTIPLIER = 3;
// The streamed scene's single-file twin, beside it in the job's output, for picking.
const PICKING_SCENE = '../scene.sog';

/** The splat budget for this device, or the `?budget=` the link asks for. */
export function splatBudget(query = new URLSearchParams(location.search), agent = navigator) {
  const asked = Number(query.get('budget'));
  if (Number.isFinite(asked) && asked > 0) return Math.round(asked);
  const phone = agent.userAgentData?.mobile ?? /Android|iPhone|iPad|iPod|Mobile/i.test(agent.userAgent ?? '');
  return phone ? PHONE_SPLAT_BUDGET : DESKTOP_SPLAT_BUDGET;
}

export function mount(root, { sogUrl, lodUrl, jobId, shareToken, sceneBytes, georeference: given }) {
  document.body.classList.add('viewer-page');
  const query = new URLSearchParams(location.search);
  let up = UP_AXES[query.get('up')] ? query.get('up') : 'z';
  let georeference = given ?? georeferenceFromQuery(location.search);

  const canvas = h('canvas', { id: 'viewer-canvas', 'aria-label': '3D scene' });
  const loadingText = h('p', { id: 'viewer-loading-text' }, 'Loading the scene…');
  const bar = progressBar('');
  const loading = h('div', { class: 'viewer-overlay', id: 'viewer-loading', role: 'status' }, h('div', { class: 'spinner' }), loadingText, bar.element);
  const errorText = h('p', { id: 'viewer-error-text' });
  const errorBox = h('div', { class: 'viewer-overlay viewer-error', id: 'viewer-error', role: 'alert', hidden: true },
    h('h2', {}, 'Could not show this scene'), errorText,
    jobId ? h('a', { href: `/jobs/${encodeURIComponent(jobId)}`, 'data-link': true }, 'Back to the job') : h('a', { href: '/', 'data-link': true }, 'Upload photos'));
  const upSelect = h('select', { id: 'viewer-up', title: 'Which axis of the scene points up' },
    Object.keys(UP_AXES).map((axis) => h('option', { value: axis, selected: axis === up }, `Up: ${axis}`)));
  const resetButton = h('button', { type: 'button', id: 'viewer-reset', class: 'secondary' }, 'Reset view');
  const toolbar = h('div', { class: 'viewer-toolbar', hidden: true },
    jobId ? h('a', { href: `/jobs/${encodeURIComponent(jobId)}`, 'data-link': true }, '← Job') : null,
    h('span', { class: 'hint' }, 'Drag to orbit · shift-drag or middle-drag to pan · wheel to zoom'), upSelect, resetButton);
  const stage = h('div', { class: 'viewer' }, canvas, loading, errorBox, toolbar);
  root.append(stage);

  const started = performance.now();
  const status = { state: 'loading', error: null, frames: 0, splats: 0, streamed: false, chunksLoaded: 0, firstImageMs: null, georeferenced: false };
  window.spaceportViewer = status;
  const setState = (state) => {
    status.state = state;
    document.body.dataset.viewerState = state;
  };
  setState('loading');

  let app = null;
  let watchdog = null;
  let left = false;

  const fail = (message) => {
    if (left || status.state === 'error') return;
    clearTimeout(watchdog);
    status.error = message;
    errorText.textContent = message;
    loading.hidden = true;
    errorBox.hidden = false;
    if (app) app.autoRender = false; // nothing left to draw
    setState('error');
  };

  const start = async () => {
    let scene = { sogUrl, lodUrl: lodUrl ?? query.get('lod') };
    if (!scene.sogUrl && !scene.lodUrl && jobId) scene = await sceneOfJob(jobId);
    if (!scene.sogUrl && !scene.lodUrl && shareToken) scene = await sharedScene(shareToken);
    georeference = scene.georeference ?? georeference;
    status.georeferenced = Boolean(georeference);
    if (!scene.sogUrl && !scene.lodUrl && !sceneBytes) {
      throw new SceneError('No scene was given. Open /view?sog=<link to a .sog file>, /view?lod=<link to a lod-meta.json>, or /view/<job id>.');
    }
    let bytes = sceneBytes ?? null;
    let lodMeta = null;
    if (scene.lodUrl) {
      lodMeta = await fetchLodMeta(scene.lodUrl);
      status.streamed = true;
      status.splats = lodMeta.counts[0];
      loadingText.textContent = 'Streaming the scene…';
    } else if (!bytes) {
      bytes = await downloadScene(scene.sogUrl, (received, total) => {
        if (total) bar.update(received / total, `${formatBytes(received)} of ${formatBytes(total)}`);
        else bar.update(0, `${formatBytes(received)} downloaded`);
      });
      if (left) return;
      loadingText.textContent = 'Preparing the splats…';
      bar.update(1, `${formatBytes(bytes.byteLength)} downloaded`);
    }
    watchdog = setTimeout(() => fail('The scene downloaded but did not finish loading within a minute. The file may be damaged.'), LOAD_TIMEOUT_MS);

    let device;
    try {
      device = await createGraphicsDevice(canvas, { deviceTypes: ['webgl2'], antialias: false });
    } catch {
      throw new SceneError('This browser could not start WebGL 2, which the viewer needs.');
    }
    if (left) return;
    app = new Application(canvas, { graphicsDevice: device });
    app.setCanvasFillMode(FILLMODE_NONE);
    app.setCanvasResolution(RESOLUTION_AUTO);
    app.start();

    const camera = new Entity('camera');
    camera.addComponent('camera', { clearColor: new Color(0.09, 0.1, 0.12), fov: 50 });
    camera.addComponent('script');
    app.root.addChild(camera);
    const controls = camera.script.create(CameraControls, { properties: { enableFly: false } });

    // A .sog's bytes are already here (with our own progress and error messages), so the engine
    // parses them instead of fetching; the name only tells it the format. A streamed scene is
    // fetched by the engine itself, chunk by chunk, as the camera needs them.
    const asset = lodMeta
      ? new Asset('scene', 'gsplat', { url: scene.lodUrl, filename: 'lod-meta.json' })
      : new Asset('scene', 'gsplat', { url: 'scene.sog', filename: 'scene.sog', contents: bytes });
    asset.once('error', (error) => fail(`The scene file is damaged or is not a SOG file (${String(error?.message ?? error)}).`));
    // The bundle's images (and a streamed scene's chunks) load as assets of their own; the
    // engine goes on without one that fails, which would leave holes, so a failed one is a
    // damaged file.
    app.assets.on('error', (error, failed) => {
      if (failed !== asset) fail(`The scene file is damaged: its ${lodMeta ? 'chunk' : 'image'} ${failed?.name ?? ''} could not be read.`);
    });
    app.assets.on('load', (loaded) => {
      if (lodMeta && loaded !== asset && loaded.type === 'gsplat') status.chunksLoaded += 1;
    });
    asset.once('load', () => {
      if (left || status.state === 'error') return;
      const splat = new Entity('splat');
      splat.addComponent('gsplat', { asset, unified: true });
      app.root.addChild(splat);
      let bounds;
      if (lodMeta) {
        const { min, max } = lodMeta.tree.bound;
        bounds = new BoundingBox();
        bounds.setMinMax(new Vec3(...min), new Vec3(...max));
        const halfDiagonal = bounds.halfExtents.length();
        splat.gsplat.lodBaseDistance = Math.max(0.1, LOD_BASE_FACTOR * halfDiagonal);
        splat.gsplat.lodMultiplier = LOD_MULTIPLIER;
        // The coarsest level first, so that a first image needs only a small part of the
        // scene; finer levels are let in once it is on screen.
        splat.gsplat.lodRangeMin = lodMeta.lodLevels - 1;
        app.scene.gsplat.splatBudget = splatBudget(query);
        status.splatBudget = app.scene.gsplat.splatBudget;
      } else {
        status.splats = asset.resource?.gsplatData?.numSplats ?? 0;
        bounds = robustBounds(asset.resource);
      }
      let sceneRadius = 1;
      const frame = () => {
        sceneRadius = fitCamera(app, camera, controls, splat, bounds, up, Boolean(georeference));
      };
      // The first view appears at once; later resets glide (the controls' damping).
      const damping = controls.focusDamping;
      controls.focusDamping = 0;
      app.once('update', () => {
        controls.focusDamping = damping;
      });
      frame();
      upSelect.addEventListener('change', () => {
        up = upSelect.value;
        frame();
      });
      resetButton.addEventListener('click', frame);
      const tools = measuringTools({
        app, camera, splat, canvas, georeference,
        centre: [bounds.center.x, bounds.center.y, bounds.center.z],
        pickerReady: once(() => pickingData(app, lodMeta ? siblingUrl(scene.lodUrl, PICKING_SCENE) : null, asset)),
      });
      stage.append(...tools.elements);
      status.measure = tools.state;
      status.screenOf = tools.screenOf;
      status.selectTool = tools.select;
      renderOnDemand(app, camera, () => sceneRadius * 1e-5, () => {
        if (status.state !== 'loading' || (lodMeta && status.chunksLoaded === 0)) return;
        clearTimeout(watchdog);
        status.firstImageAt = performance.now(); // the clock of the page's resource timings
        status.firstImageMs = status.firstImageAt - started;
        status.chunksAtFirstImage = status.chunksLoaded;
        if (lodMeta) splat.gsplat.lodRangeMin = 0;
        loading.hidden = true;
        toolbar.hidden = false;
        setState('ready');
      }, () => {
        status.frames += 1;
      }, () => Boolean(lodMeta));
    });
    app.assets.add(asset);
    app.assets.load(asset);
  };

  const onResize = () => app?.resizeCanvas();
  window.addEventListener('resize', onResize);
  const readable = (error) => error instanceof SceneError || error instanceof ApiError || error instanceof ConfigError;
  start().catch((error) => fail(readable(error) ? error.message : `The viewer failed: ${error.message}`));

  return () => {
    left = true;
    clearTimeout(watchdog);
    window.removeEventListener('resize', onResize);
    app?.destroy();
    delete document.body.dataset.viewerState;
  };
}

/**
 * Draws a frame only when the picture can change, and calls `onSettled` after the first frame
 * that shows the sorted splats from a resting camera.
 */
function renderOnDemand(app, camera, tolerance, onSettled, onFrame, streaming = () => false) {
  app.autoRender = false;
  const lastPosition = new Vec3(Infinity, 0, 0);
  const lastForward = new Vec3();
  let framesLeft = FRAMES_AFTER_CHANGE;
  let sorted = false;
  let drawing = false;
  // Fired while rendering: `ready` is false until the splats' sort for the current state is in.
  let loadingChunks = 0;
  app.systems.gsplat.on('frame:ready', (_camera, _layer, ready, loadingCount) => {
    sorted = ready;
    loadingChunks = loadingCount ?? 0;
  });
  app.on('update', () => {
    // The controls' damping creeps towards rest for a long time; invisible moves draw nothing.
    if (!lastPosition.equalsApprox(camera.getPosition(), tolerance()) || !lastForward.equalsApprox(camera.forward, 1e-5)) {
      lastPosition.copy(camera.getPosition());
      lastForward.copy(camera.forward);
      framesLeft = FRAMES_AFTER_CHANGE;
    }
    // A streamed scene keeps changing while chunks arrive: draw until they have.
    drawing = framesLeft > 0 || !sorted || (streaming() && loadingChunks > 0);
    app.renderNextFrame = drawing;
  });
  app.on('frameend', () => {
    if (!drawing) return;
    onFrame();
    if (sorted && framesLeft > 0) framesLeft -= 1;
    if (sorted && framesLeft === 0) onSettled();
  });
  app.graphicsDevice.on('resizecanvas', () => {
    framesLeft = FRAMES_AFTER_CHANGE;
  });
}

/** `fn`'s promise, made on the first call and shared by every later one. */
function once(fn) {
  let promise = null;
  return () => {
    promise ??= fn();
    return promise;
  };
}

/**
 * The picking data of the scene shown: the loaded .sog's Gaussians, or for a streamed scene its
 * single-file twin (`url`), downloaded on the first measurement.
 */
async function pickingData(app, url, asset) {
  let resource = asset.resource;
  if (url) {
    const bytes = await downloadScene(url);
    const twin = new Asset('picking', 'gsplat', { url: 'scene.sog', filename: 'scene.sog', contents: bytes });
    resource = await new Promise((resolve, reject) => {
      twin.once('load', () => resolve(twin.resource));
      twin.once('error', (error) => reject(new SceneError(`The scene's picking data could not be read (${error}).`)));
      app.assets.add(twin);
      app.assets.load(twin);
    });
  }
  const data = resource?.gsplatData;
  if (!data?.decompress) throw new SceneError('this scene format keeps no picking data.');
  return new SplatPicker(await data.decompress());
}

/** The job's scene: its streamed scene when it has one, else its .sog, and its georeference. */
/** A shared scene, from its public view (GET /share/{token}: no sign-in); streamed when it can be. */
async function sharedScene(token) {
  let raw;
  try {
    raw = await api.public(`/share/${encodeURIComponent(token)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) throw new SceneError('This share link does not work (any more): ask for a new one.');
    throw error;
  }
  const links = raw.links ?? {};
  const pick = (name) => (typeof links[name] === 'string' && links[name] ? links[name] : null);
  return { sogUrl: pick('sog'), lodUrl: pick('streamed'), georeference: georeferenceFrom(raw.georeference) };
}

async function sceneOfJob(jobId) {
  const raw = await api.get(`/jobs/${encodeURIComponent(jobId)}`);
  const job = readJob(raw);
  const georeference = georeferenceFrom(raw.georeference);
  const lodUrl = typeof raw.links?.streamed === 'string' && raw.links.streamed ? raw.links.streamed : null;
  if (lodUrl || job.sogUrl) return { sogUrl: job.sogUrl, lodUrl, georeference };
  if (job.status === 'SUCCEEDED') throw new SceneError(`Job ${jobId} finished but has no .sog scene to show.`);
  if (job.isFinal) throw new SceneError(`Job ${jobId} ended (${job.status.toLowerCase()}) without a scene.`);
  throw new SceneError(`Job ${jobId} has no scene yet: it is still at ${job.stage} (${job.stagePercent.toFixed(0)}%). Try again when it is done.`);
}

/**
 * Orients the splat so `up` points up and puts the camera where it frames `sceneBounds` (the
 * splat's own frame): a 3/4 view, or for a georeferenced scene from the south, looking north and
 * down at 45 degrees (north at the top of the screen). Returns the framed radius.
 */
function fitCamera(app, camera, controls, splat, sceneBounds, up, northUp) {
  splat.setLocalEulerAngles(...UP_AXES[up]);
  const bounds = new BoundingBox();
  bounds.setFromTransformedAabb(sceneBounds, splat.getWorldTransform());
  const radius = Math.max(bounds.halfExtents.length(), 1e-3);
  const { width, height } = app.graphicsDevice;
  const halfFov = (camera.camera.fov * Math.PI) / 360;
  const halfAngle = Math.min(halfFov, Math.atan(Math.tan(halfFov) * (width / Math.max(height, 1))));
  const distance = (radius / Math.sin(halfAngle)) * 1.05;
  camera.camera.nearClip = distance / 1000;
  camera.camera.farClip = distance * 50;
  // The engine is y-up; an east-north-up scene turned z-up has north along -z, so the camera
  // sits on +z (south) to look north.
  const yaw = northUp && up === 'z' ? 0 : Math.PI / 6;
  const pitch = northUp && up === 'z' ? Math.PI / 4 : Math.PI / 6;
  const position = new Vec3(Math.sin(yaw) * Math.cos(pitch), Math.sin(pitch), Math.cos(yaw) * Math.cos(pitch))
    .mulScalar(distance)
    .add(bounds.center);
  controls.reset(bounds.center, position);
  return radius;
}

/**
 * The box holding the middle 96% of the splat centres on each axis, in the splat's own frame:
 * a few stray Gaussians far away would otherwise shrink the scene to a dot.
 */
function robustBounds(resource) {
  const centers = resource.centers; // [N * 3] xyz, when the engine kept them
  if (!centers || centers.length < 300) return resource.aabb;
  const count = centers.length / 3;
  const step = Math.max(1, Math.floor(count / 50_000));
  const box = new BoundingBox();
  const low = [];
  const high = [];
  for (let axis = 0; axis < 3; axis++) {
    const values = [];
    for (let i = 0; i < count; i += step) values.push(centers[i * 3 + axis]);
    values.sort((a, b) => a - b);
    low.push(values[Math.floor(values.length * 0.02)]);
    high.push(values[Math.ceil(values.length * 0.98) - 1]);
  }
  box.setMinMax(new Vec3(...low), new Vec3(...high));
  return box;
}
