/**
 * `edgerun dashboard`: serves the fleet dashboard (apps/dashboard) over HTTP until Ctrl-C. The page
 * connects to the broker's MQTT-over-WebSocket listener itself; this process only serves files.
 */
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { startDashboard } from '../../dashboard/server.js';
import { loadConfig, type GlobalOptions } from '../context.js';

export interface DashboardCommandOptions {
  port: number;
  host: string;
  brokerWs?: string;
  prefix?: string;
}

/** The broker URL the page uses: --broker-ws, else config mqtt.url when it is a WebSocket URL, else the embedded broker's default. */
export const defaultBrokerWs = (mqttUrl: string | undefined): string => (mqttUrl && /^wss?:\/\//.test(mqttUrl) ? mqttUrl : 'ws://127.0.0.1:8883');

export async function dashboardCommand(opts: DashboardCommandOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const brokerWs = opts.brokerWs ?? defaultBrokerWs(config.mqtt.url);
  const dashboard = await startDashboard({ port: opts.port, host: opts.host, brokerWs, prefix: opts.prefix ?? config.mqtt.prefix });
  console.log(`edgerun dashboard: ${dashboard.url}  (the page connects to ${redactUrl(brokerWs)})`);
  console.log('Ctrl-C stops it.');
  await new Promise<void>((resolve) => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await dashboard.close();
}
