/**
 * Where a scene is on Earth. A georeferenced scene's coordinates are east-north-up metres (z up)
 * around an origin latitude/longitude/altitude (WGS84, height above the ellipsoid), as SfM
 * reports it: `{ used: true, frame: "ENU", origin: { lat, lon, alt } }` on the job, or
 * `?lat=&lon=&alt=` on a standalone viewer link. The ellipsoid maths is the geodesy library's.
 *
 * @example
 *   const geo = georeferenceFrom(job.georeference) ?? georeferenceFromQuery(location.search);
 *   const { lat, lon, alt } = enuToLatLonAlt(geo.origin, [12.5, -3, 1.2]);
 */
import LatLon, { Cartesian } from 'geodesy/latlon-ellipsoidal.js';

/** A georeference the viewer can use, or null (missing, not ENU, or values out of range). */
export function georeferenceFrom(raw) {
  if (!raw || raw.used === false || (raw.frame && String(raw.frame).toUpperCase() !== 'ENU')) return null;
  const origin = raw.origin ?? {};
  const lat = Number(origin.lat);
  const lon = Number(origin.lon);
  const alt = Number(origin.alt ?? 0);
  if (![lat, lon, alt].every(Number.isFinite) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { frame: 'ENU', origin: { lat, lon, alt } };
}

/** `?lat=..&lon=..[&alt=..]` (a standalone viewer link) as a georeference, or null. */
export function georeferenceFromQuery(search) {
  const query = new URLSearchParams(search);
  if (!query.has('lat') || !query.has('lon')) return null;
  return georeferenceFrom({ used: true, frame: 'ENU', origin: { lat: query.get('lat'), lon: query.get('lon'), alt: query.get('alt') ?? 0 } });
}

/** The WGS84 latitude, longitude (degrees) and ellipsoidal altitude (metres) of ENU point `enu`. */
export function enuToLatLonAlt(origin, [east, north, up]) {
  const phi = (origin.lat * Math.PI) / 180;
  const lambda = (origin.lon * Math.PI) / 180;
  const base = new LatLon(origin.lat, origin.lon, origin.alt).toCartesian();
  // The ENU axes at the origin, in Earth-centred Earth-fixed coordinates.
  const dx = -Math.sin(lambda) * east - Math.sin(phi) * Math.cos(lambda) * north + Math.cos(phi) * Math.cos(lambda) * up;
  const dy = Math.cos(lambda) * east - Math.sin(phi) * Math.sin(lambda) * north + Math.cos(phi) * Math.sin(lambda) * up;
  const dz = Math.cos(phi) * north + Math.sin(phi) * up;
  const point = new Cartesian(base.x + dx, base.y + dy, base.z + dz).toLatLon();
  return { lat: point.lat, lon: point.lon, alt: point.height };
}

/** "47.376900° N, 8.541700° E" (6 decimals: about 0.1 m). */
export function formatLatLon({ lat, lon }) {
  return `${Math.abs(lat).toFixed(6)}° ${lat >= 0 ? 'N' : 'S'}, ${Math.abs(lon).toFixed(6)}° ${lon >= 0 ? 'E' : 'W'}`;
}

/** A length for people: "84 cm", "12.3 m", "1.25 km"; relative units say so. */
export function formatLength(metres, relative = false) {
  if (relative) return `${metres.toPrecision(3)} units (relative)`;
  const size = Math.abs(metres);
  if (size < 1) return `${(metres * 100).toFixed(1)} cm`;
  if (size < 1000) return `${metres.toFixed(2)} m`;
  return `${(metres / 1000).toFixed(3)} km`;
}

/** An area for people: m² or hectares; relative units say so. */
export function formatArea(squareMetres, relative = false) {
  if (relative) return `${squareMetres.toPrecision(3)} square units (relative)`;
  if (squareMetres < 10_000) return `${squareMetres.toFixed(2)} m²`;
  return `${(squareMetres / 10_000).toFixed(3)} ha`;
}
