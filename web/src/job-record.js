/**
 * The job record as the pages use it, read from `GET /jobs/{id}` (spaceport.contracts.job.JobRecord).
 *
 * @example
 *   const job = readJob(await api.get(`/jobs/${id}`));
 *   if (job.isFinal) stopPolling();
 */

export const JOB_STAGES = ['sfm', 'train', 'compress'];
export const STAGE_NAMES = { sfm: 'Structure from motion', train: 'Training the splat', compress: 'Compressing to SOG', notify: 'Sending the email' };
const FINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Reads snake_case (the record as stored) or camelCase (a JSON API convention) field names. */
const field = (raw, snake, camel) => raw[snake] ?? raw[camel];

export function readJob(raw) {
  const status = String(field(raw, 'status', 'status') ?? 'QUEUED').toUpperCase();
  const stage = String(field(raw, 'stage', 'stage') ?? 'sfm').toLowerCase();
  const percent = Number(field(raw, 'stage_percent', 'stagePercent') ?? 0);
  const error = field(raw, 'error', 'error');
  const artifacts = field(raw, 'artifacts', 'artifacts') ?? {};
  return {
    jobId: String(field(raw, 'job_id', 'jobId') ?? ''),
    status,
    stage,
    stagePercent: Number.isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0,
    runId: field(raw, 'run_id', 'runId') ?? '',
    email: field(raw, 'email', 'email') ?? '',
    createdAt: field(raw, 'created_at', 'createdAt') ?? null,
    updatedAt: field(raw, 'updated_at', 'updatedAt') ?? null,
    preset: field(raw, 'options', 'options')?.preset ?? '',
    error: error ? { stage: error.stage ?? stage, code: error.code ?? '', message: error.message ?? String(error) } : null,
    artifacts,
    summary: field(raw, 'summary', 'summary') ?? {},
    runs: field(raw, 'runs', 'runs') ?? [],
    isFinal: FINAL.has(status),
    sogUrl: findSogUrl(artifacts),
  };
}

/** The whole job's progress in [0, 1]: finished stages plus the share of the current one. */
export function overallFraction(job) {
  if (job.status === 'SUCCEEDED') return 1;
  const index = JOB_STAGES.indexOf(job.stage);
  if (index < 0) return job.stage === 'notify' ? 0.99 : 0;
  return (index + job.stagePercent / 100) / JOB_STAGES.length;
}

/** The downloadable `.sog` among the artifacts: an http(s) link whose path ends in .sog. */
function findSogUrl(artifacts) {
  for (const value of Object.values(artifacts)) {
    if (typeof value !== 'string' || !/^https?:/i.test(value)) continue;
    if (new URL(value).pathname.toLowerCase().endsWith('.sog')) return value;
  }
  return null;
}
