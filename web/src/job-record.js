/**
 * The job record as the pages use it, read from `GET /jobs/{id}`: the stored record
 * (spaceport.contracts.job.JobRecord, snake_case) plus `links` (presigned downloads and the
 * viewer page) once the job has succeeded.
 *
 * @example
 *   const job = readJob(await api.get(`/jobs/${id}`));
 *   if (job.isFinal) stopPolling();
 */

export const JOB_STAGES = ['sfm', 'train', 'compress'];
export const STAGE_NAMES = { sfm: 'Structure from motion', train: 'Training the splat', compress: 'Compressing to SOG', notify: 'Sending the email' };
const FINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export function readJob(raw) {
  const status = String(raw.status ?? 'QUEUED').toUpperCase();
  const stage = String(raw.stage ?? 'sfm').toLowerCase();
  const percent = Number(raw.stage_percent ?? 0);
  const { viewer, ...downloads } = raw.links ?? {};
  return {
    jobId: String(raw.job_id ?? raw.jobId ?? ''),
    status,
    stage,
    stagePercent: Number.isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0,
    runId: raw.run_id ?? '',
    email: raw.email ?? '',
    createdAt: raw.created_at ?? null,
    updatedAt: raw.updated_at ?? null,
    preset: raw.options?.preset ?? '',
    error: raw.error ? { stage: raw.error.stage ?? stage, code: raw.error.code ?? '', message: raw.error.message ?? '' } : null,
    // name -> presigned URL: "sog", "ply", "report"
    downloads: Object.fromEntries(Object.entries(downloads).filter(([, url]) => typeof url === 'string' && url)),
    summary: raw.summary ?? {},
    isFinal: FINAL.has(status),
    sogUrl: typeof downloads.sog === 'string' && downloads.sog ? downloads.sog : null,
  };
}

/** The whole job's progress in [0, 1]: finished stages plus the share of the current one. */
export function overallFraction(job) {
  if (job.status === 'SUCCEEDED') return 1;
  const index = JOB_STAGES.indexOf(job.stage);
  if (index < 0) return job.stage === 'notify' ? 0.99 : 0;
  return (index + job.stagePercent / 100) / JOB_STAGES.length;
}
