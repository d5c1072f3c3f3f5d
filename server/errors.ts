// Domain errors: services throw these, the HTTP layer maps them to Boom (server/plugins/errors.ts), the worker logs them.

export class DomainError extends Error {

    constructor(message: string, public readonly code: string, public readonly details?: Record<string, unknown>) {

        super(message);
        this.name = new.target.name;
    }
}


export class NotFoundError extends DomainError {

    constructor(entity: string, details?: Record<string, unknown>) {

        super(`${entity} not found`, 'not_found', details);
    }
}


export class ForbiddenError extends DomainError {

    constructor(message = 'Not allowed', code = 'forbidden') {

        super(message, code);
    }
}


export class UnauthorizedError extends DomainError {

    constructor(message = 'Invalid credentials', code = 'unauthorized') {

        super(message, code);
    }
}


export class ConflictError extends DomainError {

    constructor(message: string, code = 'conflict', details?: Record<string, unknown>) {

        super(message, code, details);
    }
}


export class InvalidTransitionError extends ConflictError {

    constructor(action: string, state: string) {

        super(`Cannot ${action} a test in state ${state}`, 'invalid_state_transition', { action, state });
    }
}


export class ValidationError extends DomainError {

    constructor(message: string, public readonly fields: string[] = [], code = 'validation_failed') {

        super(message, code, { fields });
    }
}


export class RateLimitedError extends DomainError {

    constructor(public readonly retryAfterSeconds: number) {

        super('Too many attempts, try again later', 'rate_limited');
    }
}


export class UnavailableError extends DomainError {

    constructor(message = 'Service temporarily unavailable', public readonly retryAfterSeconds = 1) {

        super(message, 'service_unavailable');
    }
}


// A server Aegis depends on (SMTP, a webhook, Jira) failed the call: its own words stay in the log, never in the answer.
export class UpstreamError extends DomainError {

    constructor(message: string, code = 'upstream_failed') {

        super(message, code);
    }
}


export class PayloadTooLargeError extends DomainError {

    constructor(message = 'Payload too large') {

        super(message, 'payload_too_large');
    }
}


export class UnsupportedMediaTypeError extends DomainError {

    constructor(message = 'Unsupported media type') {

        super(message, 'unsupported_media_type');
    }
}


// sso (issue 15): why a single sign-on was refused; answered as a 401 with this code, nothing created
export type SsoRefusal =
    'saml_response_invalid' | 'saml_signature_invalid' | 'saml_weak_algorithm' | 'saml_destination_mismatch' | 'saml_recipient_mismatch' |
    'saml_audience_mismatch' | 'saml_issuer_mismatch' | 'saml_expired' | 'saml_not_yet_valid' | 'saml_replayed' | 'saml_unsolicited' |
    'saml_request_mismatch' | 'saml_relay_state_invalid' | 'saml_status_failed';

export class SsoRefusedError extends UnauthorizedError {

    constructor(message: string, code: SsoRefusal) {

        super(message, code);
    }
}


// jira (issue 14): an integration used before an administrator configured it (409; `code` names the integration)
export class NotConfiguredError extends ConflictError {

    constructor(message: string, code = 'not_configured') {

        super(message, code);
    }
}
