/** `edgerun broker`: the embedded MQTT broker (Aedes, TCP + WebSocket) on its own, until Ctrl-C. */
import { startEmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';

export interface BrokerCommandOptions {
  port: number;
  wsPort: number;
  /** Commander's --no-ws. */
  ws: boolean;
  host: string;
}

export async function brokerCommand(opts: BrokerCommandOptions): Promise<void> {
  const broker = await startEmbeddedBroker({ port: opts.port, wsPort: opts.ws ? opts.wsPort : null, host: opts.host });
  console.log(`edgerun broker (Aedes, MQTT 3.1.1): ${broker.url}${broker.wsUrl ? `  ${broker.wsUrl}` : ''}`);
  console.log('Ctrl-C stops it.');
  await new Promise<void>((resolve) => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await broker.close();
  console.log('broker closed');
}
