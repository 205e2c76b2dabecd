/**
 * Sharing a scene: an `<iframe>` snippet for a website, and the scene as one self-contained
 * HTML page (the standalone viewer of the build with the `.sog` inlined) to download.
 *
 * @example
 *   embedSnippet('https://spaceport.example/view/0a1b', 'Roof survey')
 *   await standalonePage({ sogUrl, title: 'Roof survey', georeference })   // -> Blob (text/html)
 */
import { downloadScene } from './scene-file.js';

// Where the built standalone page lies (vite.standalone.config.js) and its scene slot.
const STANDALONE_PAGE = '/standalone.html';
const SCENE_SLOT = '<!--spaceport-scene-->';

/** Markup that embeds the viewer at `viewerUrl` in another page. */
export function embedSnippet(viewerUrl, title) {
  const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<iframe src="${escape(viewerUrl)}" title="${escape(title)}" width="800" height="600" style="border:0" allow="fullscreen" allowfullscreen loading="lazy"></iframe>`;
}

function base64(bytes) {
  const view = new Uint8Array(bytes);
  let text = '';
  for (let i = 0; i < view.length; i += 0x8000) text += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The scene at `sogUrl` as one HTML page that needs no server. */
export async function standalonePage({ sogUrl, title, georeference }) {
  const response = await fetch(STANDALONE_PAGE);
  const template = response.ok ? await response.text() : '';
  if (!template.includes(SCENE_SLOT)) throw new Error('this site has no standalone viewer page (build the web app with npm run build).');
  const scene = JSON.stringify({ title, sog: base64(await downloadScene(sogUrl)), georeference: georeference ?? undefined });
  // JSON inside <script>: "</" must not close the element early.
  const script = `<script type="application/json" id="spaceport-scene">${scene.replace(/<\//g, '<\\/')}</script>`;
  return new Blob([template.replace(SCENE_SLOT, script)], { type: 'text/html' });
}
