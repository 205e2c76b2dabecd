/**
 * The self-contained scene page (`spaceport export scene.sog scene.html`, the job page's HTML
 * download): the viewer with the scene inlined, for opening from disk with no server.
 *
 * The page carries `<script type="application/json" id="spaceport-scene">` with
 * `{ "title", "sog": <base64 of the .sog bundle>, "georeference"?: { "used", "frame", "origin" } }`
 * where the template has its slot (SCENE_SLOT in spaceport_compress/export.py).
 */
import './style.css';
import { h } from './dom.js';
import { georeferenceFrom } from './geo.js';
import { mount } from './viewer.js';

const root = document.getElementById('app');
const slot = document.getElementById('spaceport-scene');
if (!slot) {
  root.append(h('section', { class: 'card' }, h('h1', {}, 'No scene'), h('p', {}, 'This page was saved without its scene.')));
} else {
  const scene = JSON.parse(slot.textContent);
  const binary = atob(scene.sog);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  if (scene.title) document.title = scene.title;
  mount(root, { sceneBytes: bytes.buffer, georeference: georeferenceFrom(scene.georeference) });
}
