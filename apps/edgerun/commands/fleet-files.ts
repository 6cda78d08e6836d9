/** Fleet result files: the JSON result (written atomically enough: whole file at once) and its HTML report; reading one back checked. */
import { writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { readFileLimited } from '../../../drivers/storage/read-file.js';
import type { FleetReport } from '../../../runtime/fleet/report.js';
import { parseJson } from '../../../runtime/json.js';

export async function writeReport(jsonPath: string, report: FleetReport, htmlPath: string | undefined, html: string): Promise<void> {
  await writeFile(jsonPath, JSON.stringify(report, null, 1) + '\n');
  if (htmlPath) await writeFile(htmlPath, html);
}

const finite = z.number().finite();
/** What compare reads; the rest of the file passes through untouched. */
const reportSchema = z.looseObject({
  kind: z.literal('edgerun-fleet-report'),
  created: z.string(),
  scenarios: z.array(z.looseObject({
    scenario: z.enum(['SingleStream', 'MultiStream', 'Server', 'Offline']), mode: z.enum(['performance', 'accuracy']),
    percentileMs: finite, samplesPerSecond: finite, accuracy: finite.optional(), targetQps: finite.optional(),
  })),
  dse: z.looseObject({ points: z.array(z.looseObject({ id: z.string(), accuracy: finite, energyJ: finite, latencyMs: finite })) }).optional(),
  metrics: z.looseObject({ fleet: z.looseObject({ latency: z.looseObject({ p99Ms: finite }), resultsPerSecond: finite, lost: finite }) }).optional(),
});

export async function readReport(path: string): Promise<FleetReport> {
  const text = new TextDecoder().decode(await readFileLimited(path, 256 << 20, 'fleet result'));
  const r = reportSchema.safeParse(parseJson(text, path));
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`${path}: not an edgerun fleet result: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return r.data as unknown as FleetReport;
}
