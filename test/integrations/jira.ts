import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { OutboundHttp } from '../../integrations/http';
import { JiraClient, JiraError, parseRetryAfter } from '../../integrations/jira';

import { startFakeJira } from '../helpers/jira-server';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


// jira (issue 14): the typed Jira client over the outbound client, against the local Jira-compatible server and a
// server that answers what Jira should not
describe('Jira client', () => {

    const outbound = new OutboundHttp({ allow: ['127.0.0.1'], allowHttp: true });
    const sleeps: number[] = [];
    const sleep = (ms: number) => {

        sleeps.push(ms);
        return Promise.resolve();
    };

    // A server answering each call with the next scripted answer
    const odd = async (answers: { status: number; body?: string; headers?: Record<string, string> }[]) => {

        const server = Http.createServer((req, res) => {

            const answer = answers.shift() ?? { status: 500 };
            res.writeHead(answer.status, answer.headers ?? {});
            res.end(answer.body);
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    };

    const error = async (promise: Promise<unknown>): Promise<JiraError> => {

        const err = await promise.then(() => null, (caught: unknown) => caught);
        expect(err).to.be.an.instanceof(JiraError);
        return err as JiraError;
    };

    it('reads Retry-After as seconds or as an HTTP date', () => {

        expect(parseRetryAfter('120')).to.equal(120_000);
        expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())!).to.be.within(8_000, 10_000);
        expect(parseRetryAfter(['5', '7'])).to.equal(5_000);
        expect(parseRetryAfter('soon')).to.be.undefined();
        expect(parseRetryAfter(undefined)).to.be.undefined();
    });

    it('retries 429 and 503 within its wait, then says what happened in words', async () => {

        const server = await odd([
            { status: 503 },
            { status: 429, headers: { 'retry-after': '2' } },
            { status: 200, body: JSON.stringify({ displayName: 'Bot' }) },
            { status: 429, headers: { 'retry-after': '600' }, body: '{"errorMessages":["Rate limit exceeded."]}' },
            { status: 403, body: '{"errorMessages":["secret words"]}' },
            { status: 200, body: '<html>not json</html>' },
            { status: 418 },
            { status: 200, body: '{"id":"1"}' },
            { status: 200, body: '{"nope":true}' }
        ]);
        try {
            const client = new JiraClient(outbound, { url: server.url, deployment: 'data_center', personalAccessToken: 'pat' }, { sleep, maxWaitMs: 5_000 });
            sleeps.length = 0;
            expect(await client.myself()).to.equal({ displayName: 'Bot' });
            expect(sleeps).to.equal([1000, 2000]);

            const limited = await error(client.myself());
            expect(limited).to.include({ kind: 'rate_limited', status: 429, retryAfterMs: 600_000 });
            expect(limited.message).to.equal('Jira is rate limiting Aegis (429, retry after 600 s)');

            const forbidden = await error(client.myself());
            expect(forbidden.kind).to.equal('forbidden');
            expect(forbidden.message).to.not.include('secret words');
            expect((await error(client.myself())).kind).to.equal('invalid_answer');
            expect((await error(client.myself())).message).to.equal('Jira answered 418');
            expect((await error(client.createIssue({ summary: 'x' }))).message).to.include('without an issue key');
            expect((await error(client.search('project in ("A")').next())).message).to.include('without an issues list');
        }
        finally {
            await server.stop();
        }
    });

    it('refuses a client without credentials, a blocked address and a closed port', async () => {

        expect((await error(new JiraClient(outbound, { url: 'http://127.0.0.1:9', deployment: 'cloud', username: 'a@b.c' }).myself())).kind).to.equal('not_configured');
        expect((await error(new JiraClient(outbound, { url: 'http://127.0.0.1:9', deployment: 'data_center' }).myself())).message).to.include('personal_access_token');
        const blocked = await error(new JiraClient(new OutboundHttp({ allowHttp: true }), { url: 'http://127.0.0.1:9', deployment: 'data_center', personalAccessToken: 'x' }).myself());
        expect(blocked.kind).to.equal('blocked');
        const closed = await error(new JiraClient(outbound, { url: 'http://127.0.0.1:9', deployment: 'data_center', personalAccessToken: 'x' }).myself());
        expect(closed.kind).to.equal('unreachable');
    });

    it('creates, comments and pages through both searches of the local Jira', async () => {

        const token = Crypto.randomBytes(8).toString('hex');
        const dc = await startFakeJira({ deployment: 'data_center', token, maxResults: 3 });
        const cloud = await startFakeJira({ deployment: 'cloud', token, share: dc.state, maxResults: 3 });
        try {
            dc.addProject('CLI');
            const client = new JiraClient(outbound, { url: dc.url, deployment: 'data_center', personalAccessToken: token });
            const created = await client.createIssue({ project: { key: 'CLI' }, issuetype: { name: 'Task' }, summary: 'One' });
            expect(created.key).to.equal('CLI-1');
            for (let i = 0; i < 6; ++i) {
                dc.addIssue('CLI');
            }

            await client.addComment('CLI-1', 'hello');
            expect(dc.state.issues.get('CLI-1')!.comments[0]!.body).to.equal('hello');
            expect((await error(client.addComment('CLI-999', 'x'))).kind).to.equal('not_found');
            expect((await error(client.createIssue({ project: { key: 'CLI' }, issuetype: { name: 'Epic' }, summary: 'x' }))).kind).to.equal('refused');

            const pages = async (jira: JiraClient) => {

                const sizes: number[] = [];
                for await (const issues of jira.search('project in ("CLI") AND updated >= "-5m" ORDER BY updated ASC', 10)) {
                    sizes.push(issues.length);
                }

                return sizes;
            };

            expect(await pages(client)).to.equal([3, 3, 1]);
            expect(await pages(new JiraClient(outbound, { url: cloud.url, deployment: 'cloud', username: cloud.auth.email, apiToken: token }))).to.equal([3, 3, 1]);
            expect((await error(pages(new JiraClient(outbound, { url: cloud.url, deployment: 'cloud', username: cloud.auth.email, apiToken: 'wrong' })))).kind).to.equal('unauthorised');
        }
        finally {
            await dc.stop();
            await cloud.stop();
        }
    });
});
