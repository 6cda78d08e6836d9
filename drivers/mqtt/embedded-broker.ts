/**
 * The embedded MQTT broker: Aedes 1.x with a TCP listener and a WebSocket listener (the dashboard's
 * and browsers' way in). It is the default when config `mqtt.url` is absent, so `npm start` needs no
 * broker installed; `edgerun broker` runs it alone.
 *
 * Aedes speaks MQTT 3.1.1 (not 5): clients of the embedded broker connect with protocolVersion 4.
 * Sessions and retained messages live in memory (aedes' default persistence): they survive client
 * reconnects, not a restart of the broker.
 *
 *   const broker = await startEmbeddedBroker({ port: 0, wsPort: 0, host: '127.0.0.1' });
 *   broker.url      // mqtt://127.0.0.1:41234
 *   broker.wsUrl    // ws://127.0.0.1:41235
 *   await broker.close();
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 = a free port (default 1883). */
  port?: number;
  /** WebSocket port; 0 = a free port, null = no WebSocket listener (default 8883). */
  wsPort?: number | null;
  /** Interface to listen on (default 127.0.0.1; "0.0.0.0" for every interface). */
  host?: string;
}

export interface EmbeddedBroker {
  /** mqtt://host:port */
  readonly url: string;
  /** ws://host:port, when the WebSocket listener is on. */
  readonly wsUrl?: string;
  readonly port: number;
  readonly wsPort?: number;
  /** Clients connected now. */
  readonly clients: number;
  readonly aedes: Aedes;
  /** Stops both listeners, disconnects every client and closes the broker. Idempotent. */
  close(): Promise<void>;
}

const listen = (server: TcpServer | HttpServer, port: number, host: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });

const urlHost = (host: string): string => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  // Connection-level errors (a client vanishing mid-packet) are the client's problem, not the broker's.
  aedes.on('clientError', () => undefined);
  aedes.on('connectionError', () => undefined);

  const sockets = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    aedes.handle(socket);
  });
  let http: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  const closeServers = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
    if (wss) {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss!.close(() => r()));
    }
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((r) => http!.close(() => r()));
    }
  };

  let port: number;
  let wsPort: number | undefined;
  try {
    port = await listen(tcp, options.port ?? 1883, host);
    const wantWs = options.wsPort === undefined ? 8883 : options.wsPort;
    if (wantWs !== null) {
      http = createHttpServer((_req, res) => { res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n'); });
      wss = new WebSocketServer({ server: http });
      wss.on('connection', (websocket, req) => {
        const stream = createWebSocketStream(websocket);
        stream.on('error', () => undefined);
        aedes.handle(stream, req);
      });
      wsPort = await listen(http, wantWs, host);
    }
  } catch (e) {
    await closeServers().catch(() => undefined);
    await new Promise<void>((r) => aedes.close(() => r()));
    throw new Error(`embedded MQTT broker: cannot listen on ${host}: ${(e as Error).message}`);
  }

  let closing: Promise<void> | undefined;
  const h = urlHost(host);
  return {
    url: `mqtt://${h}:${port}`,
    wsUrl: wsPort === undefined ? undefined : `ws://${h}:${wsPort}`,
    port,
    wsPort,
    get clients() { return aedes.connectedClients; },
    aedes,
    close(): Promise<void> {
      closing ??= (async () => {
        await new Promise<void>((r) => aedes.close(() => r()));
        await closeServers();
      })();
      return closing;
    },
  };
}
