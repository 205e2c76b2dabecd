/**
 * Measuring on the splat: picking a point on its surface, and the distance, height, area and
 * position tools, with a scale bar and a north arrow. Everything works in the scene's own
 * coordinates (east-north-up metres for a georeferenced scene), which the splat entity's
 * transform turns into the engine's world.
 *
 * Picking follows a ray through the pixel into the splats: each Gaussian the ray passes adds
 * its opacity at the ray's closest approach to its centre (as the renderer blends it), front to
 * back, and the picked depth is that of the Gaussian at which the accumulated opacity crosses
 * one half: the visible surface, not a faint floater in front of it nor the first splat the
 * ray grazes.
 *
 * @example
 *   const picker = new SplatPicker(gsplatData);          // engine GSplatData (decompressed)
 *   const hit = picker.pick(origin, direction);          // scene coordinates, or null
 */
import { Mat4, Vec3 } from 'playcanvas';
import { h } from './dom.js';
import { enuToLatLonAlt, formatArea, formatLatLon, formatLength } from './geo.js';

// Gaussians are cut at three standard deviations, as the renderers do.
const CUTOFF_SQUARED = 9;
const MIN_ALPHA = 1 / 255;
const MAX_ALPHA = 0.99;
const SURFACE_OPACITY = 0.5;
// A press that moves less than this (CSS pixels) is a click that picks, not an orbit.
const CLICK_SLOP_PX = 4;
const SCALE_BAR_MAX_PX = 120;

/** CPU picking over a splat's Gaussians (positions, rotations, scales and opacities). */
export class SplatPicker {
  constructor(data) {
    const prop = (name) => data.getProp(name);
    const [x, y, z] = [prop('x'), prop('y'), prop('z')];
    const [qw, qx, qy, qz] = [prop('rot_0'), prop('rot_1'), prop('rot_2'), prop('rot_3')];
    const [s0, s1, s2] = [prop('scale_0'), prop('scale_1'), prop('scale_2')];
    const opacity = prop('opacity');
    const n = data.numSplats;
    this.count = n;
    this.centres = new Float32Array(n * 3);
    this.inverse = new Float32Array(n * 6); // xx, xy, xz, yy, yz, zz of the inverse covariance
    this.alpha = new Float32Array(n);
    this.reach = new Float32Array(n); // squared 3-sigma radius along the longest axis
    for (let i = 0; i < n; i++) {
      this.centres.set([x[i], y[i], z[i]], i * 3);
      let w = qw[i];
      let a = qx[i];
      let b = qy[i];
      let c = qz[i];
      const norm = Math.hypot(w, a, b, c) || 1;
      w /= norm; a /= norm; b /= norm; c /= norm;
      const r = [
        1 - 2 * (b * b + c * c), 2 * (a * b - w * c), 2 * (a * c + w * b),
        2 * (a * b + w * c), 1 - 2 * (a * a + c * c), 2 * (b * c - w * a),
        2 * (a * c - w * b), 2 * (b * c + w * a), 1 - 2 * (a * a + b * b),
      ];
      const inv = [Math.exp(-2 * s0[i]), Math.exp(-2 * s1[i]), Math.exp(-2 * s2[i])];
      // R diag(1/s^2) R^T
      const m = (p, q) => r[p * 3] * r[q * 3] * inv[0] + r[p * 3 + 1] * r[q * 3 + 1] * inv[1] + r[p * 3 + 2] * r[q * 3 + 2] * inv[2];
      this.inverse.set([m(0, 0), m(0, 1), m(0, 2), m(1, 1), m(1, 2), m(2, 2)], i * 6);
      this.alpha[i] = 1 / (1 + Math.exp(-opacity[i]));
      const longest = Math.exp(Math.max(s0[i], s1[i], s2[i]));
      this.reach[i] = CUTOFF_SQUARED * longest * longest;
    }
  }

  /** The surface point ([x, y, z], scene coordinates) along the ray, or null if it hits nothing. */
  pick(origin, direction) {
    const [ox, oy, oz] = origin;
    const norm = Math.hypot(...direction);
    const [dx, dy, dz] = direction.map((v) => v / norm);
    const hits = [];
    const { centres, inverse, alpha, reach } = this;
    for (let i = 0; i < this.count; i++) {
      const vx = centres[i * 3] - ox;
      const vy = centres[i * 3 + 1] - oy;
      const vz = centres[i * 3 + 2] - oz;
      const along = vx * dx + vy * dy + vz * dz;
      if (along <= 0 || vx * vx + vy * vy + vz * vz - along * along > reach[i]) continue;
      const k = i * 6;
      const [xx, xy, xz, yy, yz, zz] = [inverse[k], inverse[k + 1], inverse[k + 2], inverse[k + 3], inverse[k + 4], inverse[k + 5]];
      const adx = xx * dx + xy * dy + xz * dz;
      const ady = xy * dx + yy * dy + yz * dz;
      const adz = xz * dx + yz * dy + zz * dz;
      const dad = dx * adx + dy * ady + dz * adz;
      const dav = vx * adx + vy * ady + vz * adz;
      const vav = vx * (xx * vx + xy * vy + xz * vz) + vy * (xy * vx + yy * vy + yz * vz) + vz * (xz * vx + yz * vy + zz * vz);
      const mahalanobis = vav - (dav * dav) / dad; // squared, at the ray's closest approach
      if (mahalanobis > CUTOFF_SQUARED) continue;
      const a = Math.min(MAX_ALPHA, alpha[i] * Math.exp(-0.5 * mahalanobis));
      if (a < MIN_ALPHA) continue;
      hits.push([dav / dad, a]);
    }
    hits.sort((p, q) => p[0] - q[0]);
    let transmittance = 1;
    for (const [t, a] of hits) {
      transmittance *= 1 - a;
      if (1 - transmittance >= SURFACE_OPACITY) return [ox + t * dx, oy + t * dy, oz + t * dz];
    }
    return null;
  }
}

const subtract = (p, q) => [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
const length = (v) => Math.hypot(v[0], v[1], v[2]);

/** Area of a planar-ish polygon in 3-D (Newell's normal: exact for a plane polygon). */
export function polygonArea(points) {
  let nx = 0;
  let ny = 0;
  let nz = 0;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1, z1] = points[i];
    const [x2, y2, z2] = points[(i + 1) % points.length];
    nx += (y1 - y2) * (z1 + z2);
    ny += (z1 - z2) * (x1 + x2);
    nz += (x1 - x2) * (y1 + y2);
  }
  return Math.hypot(nx, ny, nz) / 2;
}

/** What a tool reports for its points; null until it has enough of them. */
export function measurement(tool, points, georeference) {
  const relative = !georeference;
  if (tool === 'distance' && points.length >= 2) {
    const value = length(subtract(points[1], points[0]));
    return { tool, value, text: `Distance: ${formatLength(value, relative)}` };
  }
  if (tool === 'height' && points.length >= 2) {
    const [low, high] = points[0][2] <= points[1][2] ? points : [points[1], points[0]];
    const value = high[2] - low[2];
    const across = Math.hypot(high[0] - low[0], high[1] - low[1]);
    return { tool, value, across, text: `Height: ${formatLength(value, relative)} (horizontally ${formatLength(across, relative)} apart)` };
  }
  if (tool === 'area' && points.length >= 3) {
    const value = polygonArea(points);
    let perimeter = 0;
    for (let i = 0; i < points.length; i++) perimeter += length(subtract(points[(i + 1) % points.length], points[i]));
    return { tool, value, perimeter, text: `Area: ${formatArea(value, relative)}, perimeter ${formatLength(perimeter, relative)}` };
  }
  if (tool === 'point' && points.length >= 1) {
    const [p] = points.slice(-1);
    if (relative) return { tool, value: p, text: `Point: ${p.map((v) => v.toFixed(3)).join(', ')} (relative units: this scene has no georeference)` };
    const geo = enuToLatLonAlt(georeference.origin, p);
    return { tool, value: p, geo, text: `Point: ${formatLatLon(geo)}, altitude ${geo.alt.toFixed(2)} m (WGS84 ellipsoid)` };
  }
  return null;
}

const TOOLS = {
  distance: { label: 'Distance', points: 2, hint: 'Click two points on the scene.' },
  height: { label: 'Height', points: 2, hint: 'Click the foot and the top.' },
  area: { label: 'Area', points: Infinity, hint: 'Click the corners; double-click or press Done to close.' },
  point: { label: 'Point', points: 1, hint: 'Click a point to see where it is on Earth.' },
};

/** A round length (1, 2 or 5 times a power of ten) at most `limit`. */
export function roundLength(limit) {
  const power = 10 ** Math.floor(Math.log10(limit));
  return [5, 2, 1].map((k) => k * power).find((v) => v <= limit) ?? power;
}

/**
 * The measuring tools on a viewer: a panel, markers, the scale bar and the north arrow.
 * `pickerReady()` resolves to a SplatPicker (it may download the scene's picking data).
 */
export function measuringTools({ app, camera, splat, canvas, georeference, pickerReady, centre }) {
  const relative = !georeference;
  const state = { tool: null, points: [], result: null, picking: false };
  const result = h('p', { id: 'measure-result', class: 'measure-result' }, relative
    ? 'This scene has no georeference: lengths are in relative units.'
    : 'Lengths in metres; positions in WGS84.');
  const done = h('button', { type: 'button', id: 'measure-done', class: 'secondary', hidden: true }, 'Done');
  const buttons = Object.entries(TOOLS).map(([name, tool]) => h('button', {
    type: 'button', class: 'secondary measure-tool', 'data-tool': name, id: `measure-${name}`,
  }, tool.label));
  const clear = h('button', { type: 'button', id: 'measure-clear', class: 'secondary' }, 'Clear');
  const panel = h('div', { class: 'measure-panel', id: 'measure-panel' }, h('strong', {}, 'Measure'), ...buttons, done, clear, result);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'measure-overlay');
  const scaleBar = h('div', { class: 'scale-bar', id: 'scale-bar' }, h('div', { class: 'scale-bar-line' }), h('span', {}, ''));
  const north = h('div', { class: 'north-arrow', id: 'north-arrow', title: 'North', hidden: relative }, h('span', {}, '▲'), h('b', {}, 'N'));

  const world = splat.getWorldTransform();
  const toScene = new Mat4();
  const sceneToWorld = (p) => world.transformPoint(new Vec3(p[0], p[1], p[2]));
  const screenOf = (p) => {
    const out = new Vec3();
    camera.camera.worldToScreen(sceneToWorld(p), out);
    return [out.x, out.y, out.z];
  };

  const say = (text, isError = false) => {
    result.textContent = text;
    result.classList.toggle('error', isError);
  };
  const select = (name) => {
    state.tool = state.tool === name ? null : name;
    state.points = [];
    state.result = null;
    buttons.forEach((button) => button.classList.toggle('active', button.dataset.tool === state.tool));
    done.hidden = state.tool !== 'area';
    say(state.tool ? TOOLS[state.tool].hint : 'Pick a tool to measure.');
    draw();
    if (state.tool) pickerReady().catch((error) => say(`Measuring is not available: ${error.message}`, true));
  };
  buttons.forEach((button) => button.addEventListener('click', () => select(button.dataset.tool)));
  clear.addEventListener('click', () => select(null));

  const finish = () => {
    state.result = measurement(state.tool, state.points, georeference);
    if (state.result) say(state.result.text);
    draw();
  };
  done.addEventListener('click', finish);

  /** Picks the surface under CSS pixel (x, y) of the canvas; the scene point or null. */
  const pickAt = async (x, y) => {
    const picker = await pickerReady();
    const near = camera.camera.screenToWorld(x, y, camera.camera.nearClip);
    const far = camera.camera.screenToWorld(x, y, camera.camera.farClip);
    toScene.copy(world).invert();
    const origin = toScene.transformPoint(near);
    const end = toScene.transformPoint(far);
    return picker.pick([origin.x, origin.y, origin.z], [end.x - origin.x, end.y - origin.y, end.z - origin.z]);
  };

  const addPoint = async (x, y) => {
    if (!state.tool || state.picking) return;
    state.picking = true;
    try {
      const point = await pickAt(x, y);
      if (!point) {
        say('Nothing there: click on the scene itself.', true);
        return;
      }
      const wanted = TOOLS[state.tool].points;
      if (state.points.length >= wanted) state.points = [];
      state.points.push(point);
      if (state.points.length >= wanted) finish();
      else {
        say(`${TOOLS[state.tool].hint} (${state.points.length} picked)`);
        draw();
      }
    } catch (error) {
      say(`Measuring is not available: ${error.message}`, true);
    } finally {
      state.picking = false;
    }
  };

  let pressed = null;
  canvas.addEventListener('pointerdown', (event) => {
    pressed = [event.clientX, event.clientY];
  });
  canvas.addEventListener('pointerup', (event) => {
    if (!pressed || Math.hypot(event.clientX - pressed[0], event.clientY - pressed[1]) > CLICK_SLOP_PX) return;
    const box = canvas.getBoundingClientRect();
    addPoint(event.clientX - box.left, event.clientY - box.top);
  });
  canvas.addEventListener('dblclick', () => {
    if (state.tool === 'area') finish();
  });

  /** Markers and lines of the current points, the scale bar and the north arrow. */
  function draw() {
    const { width, height } = canvas.getBoundingClientRect();
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const screen = state.points.map(screenOf).filter((p) => p[2] > 0);
    const closed = state.tool === 'area' && state.result;
    const path = screen.map((p, i) => `${i ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ') + (closed ? ' Z' : '');
    svg.innerHTML = '';
    if (screen.length > 1) {
      const line = document.createElementNS(svg.namespaceURI, 'path');
      line.setAttribute('d', path);
      line.setAttribute('class', 'measure-line');
      svg.append(line);
    }
    for (const [x, y] of screen) {
      const dot = document.createElementNS(svg.namespaceURI, 'circle');
      Object.entries({ cx: x, cy: y, r: 5, class: 'measure-point' }).forEach(([k, v]) => dot.setAttribute(k, v));
      svg.append(dot);
    }
    // Scale: the size of a pixel at the depth of the scene's centre.
    const depth = Math.max(camera.forward.dot(sceneToWorld(centre).sub(camera.getPosition())), camera.camera.nearClip);
    const metresPerPixel = (2 * depth * Math.tan((camera.camera.fov * Math.PI) / 360)) / Math.max(height, 1);
    const bar = roundLength(SCALE_BAR_MAX_PX * metresPerPixel);
    scaleBar.firstChild.style.width = `${(bar / metresPerPixel).toFixed(1)}px`;
    scaleBar.lastChild.textContent = relative ? `${bar} units` : formatLength(bar).replace('.00 m', ' m');
    state.metresPerPixel = metresPerPixel;
    if (!relative) {
      const from = screenOf(centre);
      const to = screenOf([centre[0], centre[1] + bar, centre[2]]);
      const angle = Math.atan2(to[0] - from[0], from[1] - to[1]); // 0: north is up the screen
      if (Math.hypot(to[0] - from[0], to[1] - from[1]) > 1) north.style.transform = `rotate(${angle}rad)`;
      state.northAngle = angle;
    }
  }
  app.on('frameend', draw);

  return { elements: [panel, svg, scaleBar, north], state, screenOf, pickAt, select };
}
