import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';


export interface Received {
    id: string;
    timestamp: number;
    body: string;
    verified: boolean;                  // the signature checked out against the secret, independently of Aegis's code
    at: number;
}

export type Behaviour = 'ok' | 'fail' | 'hang';


// A local webhook receiver that verifies Standard Webhooks signatures as a receiver would (its own HMAC, a constant-
// time comparison, a 5-minute timestamp tolerance) and answers as its script says: each request takes the next
// behaviour ('ok' → 204, 'fail' → 500, 'hang' → never answers), the last one repeating.
export const startReceiver = async (secret: () => string, script: Behaviour[] = ['ok']) => {

    const received: Received[] = [];
    const hanging: Http.ServerResponse[] = [];
    let calls = 0;
    const server = Http.createServer((req, res) => {

        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {

            const body = Buffer.concat(chunks).toString('utf8');
            const id = String(req.headers['webhook-id']);
            const timestamp = Number(req.headers['webhook-timestamp']);
            const key = Buffer.from(secret().slice('whsec_'.length), 'base64');
            const expected = Buffer.from(`v1,${Crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`);
            const verified = String(req.headers['webhook-signature']).split(' ').some((candidate) => {

                const given = Buffer.from(candidate);
                return given.length === expected.length && Crypto.timingSafeEqual(given, expected);
            }) && Math.abs(Date.now() / 1000 - timestamp) < 300;

            received.push({ id, timestamp, body, verified, at: Date.now() });
            const behaviour = script[Math.min(calls++, script.length - 1)];
            if (behaviour === 'hang') {
                hanging.push(res);
                return;
            }

            res.writeHead(behaviour === 'ok' ? (verified ? 204 : 401) : 500).end();
        });
    });

    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        url: `http://127.0.0.1:${port}/hooks`,
        received,
        script: (next: Behaviour[]) => {

            script = next;
            calls = 0;
        },
        close: async () => {

            hanging.forEach((res) => res.destroy());
            server.closeAllConnections();
            await new Promise((resolve) => server.close(resolve));
        }
    };
};
