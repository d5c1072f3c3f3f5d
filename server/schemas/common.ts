import Joi from 'joi';


export const uuid = Joi.string().guid({ version: ['uuidv4', 'uuidv5', 'uuidv7'] });

export const idParams = Joi.object({ id: uuid.required() });

// Free text a user types: bounded, and trimmed of surrounding white space
export const text = (max: number) => Joi.string().trim().max(max);

export const searchText = Joi.string().trim().min(1).max(200);

export const timestamp = Joi.date().iso();

// Where a browser may be sent back to after a sign-in (a login's redirect_to, SAML's RelayState): only a path of this
// origin, one leading slash, no scheme, no authority, no backslash, space or control character (an open redirect
// otherwise). One rule for the schemas and for what comes back from an identity provider.
const sameOriginPathPattern = /^\/(?![/\\])[^\\\u0000-\u001f\u007f\s]*$/;
export const isSameOriginPath = (value: string): boolean => value.length <= 1024 && sameOriginPathPattern.test(value);
export const sameOriginPath = Joi.string().max(1024).pattern(sameOriginPathPattern).message('{{#label}} must be a path of this site starting with a single /');


// limit/offset/sort/order of conventions.md; `sort` only from the route's allowlist (SEC-17)
export const listQuery = (sortFields: string[], filters: Record<string, Joi.Schema> = {}) => Joi.object({
    limit: Joi.number().integer().min(1).max(500).default(50),
    offset: Joi.number().integer().min(0).max(10_000_000).default(0),
    sort: Joi.string().valid(...sortFields),
    order: Joi.string().valid('asc', 'desc'),
    ...filters
});


export const pageOf = (item: Joi.Schema, label: string) => Joi.object({
    items: Joi.array().items(item).required(),
    total: Joi.number().integer().min(0).required(),
    limit: Joi.number().integer().required(),
    offset: Joi.number().integer().required()
}).unknown(true).label(label);


// The body of every error answer (server/plugins/errors.ts): Boom's three fields, the domain error's stable `code`, the
// offending `fields` of a 400 or 409, and the request id that the log carries too
export const errorEnvelope = Joi.object({
    statusCode: Joi.number().integer().min(400).max(599).required(),
    error: Joi.string().required(),
    message: Joi.string().required(),
    code: Joi.string(),
    fields: Joi.array().items(Joi.string()),
    request_id: Joi.string().required()
}).label('Error');


const statusText = {
    204: 'Done; no body',
    400: 'The input is invalid (`fields` names it) or breaks a rule of the domain',
    401: 'Missing, invalid or expired credentials',
    403: 'The role, the API key\'s scope, a temporary password or the origin refuses the call',
    404: 'The resource does not exist or is not visible to the caller',
    409: 'The change conflicts with the resource\'s state or with a stored record (`code` says which rule)',
    413: 'The body is too large',
    415: 'The body\'s media type is not accepted',
    429: 'Too many attempts (`Retry-After` says when to retry)',
    // jira (issue 14)
    502: 'A remote system Aegis calls (Jira) failed or refused the call: the message says what to check'
} as const;

export type AnswerStatus = keyof typeof statusText;


// The documented answers of a route beside its success body (hapi-swagger): the error statuses its service can answer,
// each with the error envelope, or a 204. Never `response.status` for errors: hapi validates a response before
// plugins/errors.ts has shaped it. The statuses every route shares are added by routes/route.ts.
export const responses = (...statuses: AnswerStatus[]) => Object.fromEntries(statuses.map((status) => [status, status < 300 ?
    { description: statusText[status] } :
    { description: statusText[status], schema: errorEnvelope }]));

// The same as a route's `plugins` entry: `plugins: answers(404, 409)`
export const answers = (...statuses: AnswerStatus[]) => ({ 'hapi-swagger': { responses: responses(...statuses) } });
