import Joi from 'joi';

import type { FactorProof } from '../services/second-factor';

import { timestamp } from './common';
import * as UserSchemas from './users';
import { password, session } from './users';


// A current code of the authenticator app: 6 digits
export const totpCode = Joi.string().pattern(/^\d{6}$/).message('code must be the 6 digits your authenticator app shows');

// A recovery code as shown (xxxx-xxxx-xxxx-xxxx), in any case, with or without the dashes
export const recoveryCode = Joi.string().pattern(/^[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){3}$/).message('recovery_code must be one of your recovery codes (xxxx-xxxx-xxxx-xxxx)');

// The challenge the password step answered: 32 random bytes, base64url
export const challenge = Joi.string().pattern(/^[A-Za-z0-9_-]{43}$/).message('challenge must be the challenge the login answered');


// Either a code or a recovery code, never both
const proof = { code: totpCode, recovery_code: recoveryCode };


export const loginSecondFactor = Joi.object<FactorProof & { challenge: string }, true>({ challenge: challenge.required(), ...proof }).xor('code', 'recovery_code').label('LoginSecondFactor');

export const loginEnrolment = Joi.object({ challenge: challenge.required() }).label('LoginEnrolmentStart');

export const loginEnrolmentConfirm = Joi.object({ challenge: challenge.required(), code: totpCode.required() }).label('LoginEnrolmentConfirm');

export const enrolmentStart = Joi.object({ password: password.required() }).label('TotpEnrolmentStart');

export const enrolmentConfirm = Joi.object({ code: totpCode.required() }).label('TotpEnrolmentConfirm');

export const removal = Joi.object<FactorProof & { password: string }, true>({ password: password.required(), ...proof }).xor('code', 'recovery_code').label('SecondFactorRemoval');

export const recoveryCodesRequest = Joi.object({ code: totpCode.required() }).label('RecoveryCodesRequest');


// What the password step answers when a second step is needed: no session, no cookie
export const loginChallenge = Joi.object({
    second_factor_required: Joi.boolean().valid(true).required(),
    enrolment_required: Joi.boolean().required().description('true: the role requires a second factor and the user has none; set one up with the challenge (POST /auth/login/second-factor/totp)'),
    challenge: Joi.string().required().description('Single use; send it to POST /auth/login/second-factor (or the enrolment routes)'),
    expires_at: timestamp.required(),
    methods: Joi.array().items(Joi.string().valid('totp', 'recovery_code')).required()
}).label('LoginChallenge');

// A session, or a challenge for the second step: one object schema with either set of fields (alternatives would
// not reach the OpenAPI document as a schema clients can read); expires_at is the session's or the challenge's
export const loginAnswer = Joi.object({
    access_token: Joi.string().description('The session (also set as the aegis_token cookie); absent when a second step is needed'),
    token_type: Joi.string().valid('bearer'),
    user: UserSchemas.user,
    second_factor_required: Joi.boolean().valid(true).description('Present when a second step is needed: no session and no cookie yet'),
    enrolment_required: loginChallenge.extract('enrolment_required').optional(),
    challenge: loginChallenge.extract('challenge').optional(),
    methods: loginChallenge.extract('methods').optional(),
    expires_at: timestamp.required()
})
    .xor('access_token', 'challenge')
    .and('access_token', 'token_type', 'user')
    .and('challenge', 'second_factor_required', 'enrolment_required', 'methods')
    .label('LoginAnswer');


export const recoveryCodes = Joi.object({
    recovery_codes: Joi.array().items(Joi.string()).length(10).required().description('Shown this once: each works once, in place of a code')
}).label('RecoveryCodes');

export const sessionWithRecoveryCodes = session.keys({ recovery_codes: recoveryCodes.extract('recovery_codes') }).label('SessionWithRecoveryCodes');


export const totpEnrolment = Joi.object({
    method: Joi.string().valid('totp').required(),
    otpauth_uri: Joi.string().required().description('otpauth://totp/… for an authenticator app (the QR code holds it)'),
    secret: Joi.string().required().description('The secret in base32, for typing into an app that cannot scan'),
    qr_code: Joi.string().required().description('The otpauth URI as a QR code: an SVG data URL')
}).label('TotpEnrolment');


export const status = Joi.object({
    enabled: Joi.boolean().required(),
    method: Joi.string().valid('totp').allow(null).required(),
    pending: Joi.boolean().required().description('An enrolment was started and not confirmed yet'),
    required: Joi.boolean().required().description('The user\'s role requires a second factor (auth.second_factor_required_roles)'),
    managed_by_identity_provider: Joi.boolean().required().description('An SSO user: the identity provider handles second factors'),
    confirmed_at: timestamp.allow(null).required(),
    last_used_at: timestamp.allow(null).required(),
    recovery_codes_remaining: Joi.number().integer().min(0).required()
}).label('SecondFactorStatus');
