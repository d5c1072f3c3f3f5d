import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import * as Hapi from '@hapi/hapi';

import { createLogger, type LogFormat } from '../../server/logger';
import { loggingPlugin } from '../../server/plugins/logging';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const internals = {
    userId: '7c6870f4-049a-4c87-beb0-27674daae26a',

    // The logging plugin alone on a server, its logger writing into `lines`: a route that answers, one that fails,
    // one that authenticates
    server: async (lines: string[], level = 'info', format: LogFormat = 'json') => {

        const logger = createLogger({ level, name: 'aegis-api', format, destination: { write: (line: string) => lines.push(line) } });
        const server = Hapi.server();
        server.auth.scheme('fixed', () => ({ authenticate: (request, h) => h.authenticated({ credentials: { user: { id: internals.userId } } as unknown as Hapi.AuthCredentials }) }));
        server.auth.strategy('fixed', 'fixed');
        await server.register({ plugin: loggingPlugin, options: { logger } });
        server.route([
            { method: 'GET', path: '/ok/{id}', handler: () => ({ ok: true }) },
            { method: 'GET', path: '/me', options: { auth: 'fixed' }, handler: () => ({ ok: true }) },
            { method: 'GET', path: '/fails', handler: () => {

                throw new Error('the handler failed');
            } }
        ]);
        return { server, logger };
    }
};


describe('The access line', () => {

    it('is the line pino writes for the same fields: level, time, the bindings, the fields, the message', async () => {

        const lines: string[] = [];
        const { server, logger } = await internals.server(lines);
        await server.inject({ url: '/ok/1"2?token=secret-token', remoteAddress: '203.0.113.9' });

        expect(lines.length).to.equal(1);
        const line = JSON.parse(lines[0]!);
        expect(new Date(line.time).toISOString()).to.equal(line.time);
        expect(line.ms).to.be.a.number();
        expect(line.ms as number).to.be.at.least(0);

        // pino itself, given the same entry, writes the same keys in the same order with the same values
        const written: string[] = [];
        const pino = createLogger({ level: 'info', name: 'aegis-api', format: 'json', destination: { write: (text: string) => written.push(text) } });
        pino.info({ request_id: line.request_id, method: 'get', path: '/ok/1"2', status: 200, ms: line.ms, user_id: undefined, ip: '203.0.113.9' }, 'request');
        const expected = JSON.parse(written[0]!);
        expect(Object.keys(line)).to.equal(Object.keys(expected));
        expect({ ...line, time: null }).to.equal({ ...expected, time: null });
        expect(line).to.include({ level: 30, pid: process.pid, name: 'aegis-api', method: 'get', path: '/ok/1"2', status: 200, ip: '203.0.113.9', msg: 'request' });
        expect(logger.levels.values.info).to.equal(30);

        // Never the query string, the headers or a credential
        expect(lines[0]).to.not.include('secret-token');
        expect(lines[0]!.endsWith('}\n')).to.be.true();
    });

    it('names the authenticated user, and writes a failed request at the error level', async () => {

        const lines: string[] = [];
        const { server } = await internals.server(lines);
        await server.inject('/me');
        await server.inject('/fails');

        const entries = lines.map((text) => JSON.parse(text));
        expect(entries.map((entry) => entry.msg)).to.equal(['request', 'request failed']);
        expect(entries[0]).to.include({ level: 30, path: '/me', status: 200, user_id: internals.userId });
        expect(entries[1]).to.include({ level: 50, path: '/fails', status: 500 });
        expect(entries[1].user_id).to.not.exist();
    });

    it('follows the logger level: at warn, only the failed requests', async () => {

        const lines: string[] = [];
        const { server } = await internals.server(lines, 'warn');
        await server.inject('/ok/1');
        await server.inject('/fails');

        const access = lines.map((text) => JSON.parse(text)).filter((entry) => entry.msg === 'request' || entry.msg === 'request failed');
        expect(access.map((entry) => [entry.path, entry.level])).to.equal([['/fails', 50]]);

        const silent: string[] = [];
        const quiet = await internals.server(silent, 'silent');
        await quiet.server.inject('/fails');
        expect(silent).to.equal([]);
    });

    it('is readable in the pretty format', async () => {

        const lines: string[] = [];
        const { server } = await internals.server(lines, 'info', 'pretty');
        await server.inject('/ok/1');

        expect(lines.length).to.equal(1);
        expect(lines[0]).to.match(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO \(aegis-api\): request\n/);
        expect(lines[0]).to.include('path: "/ok/1"').and.to.include('status: 200');
    });
});
